// The page store's on-disk format, as constants. kv/README.md is the specification; this
// header mirrors it. All integers are little-endian.
#pragma once

#include <cstddef>
#include <cstdint>

namespace kv::format {

// Bumped on every incompatible change. A store written by a newer version is refused.
inline constexpr uint32_t kFormatVersion = 1;

// ---- Superblock: file "SUPERBLOCK" ----
inline constexpr char kSuperblockMagic[8] = {'K', 'V', 'F', 'S', 'S', 'U', 'P', 'R'};
inline constexpr char kSuperblockFile[] = "SUPERBLOCK";
inline constexpr char kLockFile[] = "LOCK";

// ---- Page file: "page-NNNN.kv" ----
inline constexpr char kPageMagic[8] = {'K', 'V', 'F', 'S', 'P', 'A', 'G', 'E'};
// magic[8] version u32 page_index u32 generation u64 store_id u64 header_crc u32 reserved u32
inline constexpr size_t kPageHeaderSize = 40;

// ---- Record ----
// Byte offsets of the fixed record header fields.
inline constexpr size_t kRecHeaderCrc = 0;     // u32 crc32 of header bytes [4, kRecordHeaderSize)
inline constexpr size_t kRecDataCrc = 4;       // u32 crc32 of the key and stored value bytes
inline constexpr size_t kRecType = 8;          // u8 RecordType
inline constexpr size_t kRecFlags = 9;         // u8 kFlag* bits
inline constexpr size_t kRecKeyLen = 10;       // u16
inline constexpr size_t kRecValueLen = 12;     // u32 stored value bytes
inline constexpr size_t kRecSequence = 16;     // u64
inline constexpr size_t kRecTime = 24;         // u64 ns since the epoch
inline constexpr size_t kRecPrev = 32;         // u64 offset of the key's previous version
inline constexpr size_t kRecRawLen = 40;       // u32 uncompressed value bytes
inline constexpr size_t kRecPartRecords = 44;  // u32 records of this batch in this page
inline constexpr size_t kRecBatchPages = 48;   // u32 pages this batch spans
inline constexpr size_t kRecReserved = 52;     // u32 zero
inline constexpr size_t kRecordHeaderSize = 56;

enum RecordType : uint8_t { kTypePut = 1, kTypeDelete = 2 };
inline constexpr uint8_t kFlagCompressed = 1;  // value is raw deflate (RFC 1951)
inline constexpr uint8_t kKnownFlags = kFlagCompressed;

// prev field value for a key's first stored version.
inline constexpr uint64_t kNoPrev = ~uint64_t{0};

inline constexpr size_t kMaxKeySize = 65535;
inline constexpr size_t kMaxValueSize = 64u << 20;

// ---- Hint file: "page-NNNN.hint", an index snapshot of one page ----
inline constexpr char kHintMagic[8] = {'K', 'V', 'F', 'S', 'H', 'I', 'N', 'T'};

}  // namespace kv::format

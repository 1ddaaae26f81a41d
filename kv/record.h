// Encoding and decoding of page-file records (see kv/README.md, "Record").
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "kv/format.h"
#include "kv/status.h"

namespace kv {

// The decoded fixed header of one record.
struct RecordHeader {
  uint8_t type = format::kTypePut;
  uint8_t flags = 0;
  uint16_t key_len = 0;
  uint32_t value_len = 0;  // stored bytes
  uint64_t sequence = 0;
  uint64_t time_ns = 0;
  uint64_t prev = format::kNoPrev;
  uint32_t raw_len = 0;  // uncompressed value bytes
  uint32_t part_records = 1;
  uint32_t batch_pages = 1;
  uint32_t data_crc = 0;

  bool deleted() const { return type == format::kTypeDelete; }
  bool compressed() const { return (flags & format::kFlagCompressed) != 0; }
  uint64_t record_size() const { return format::kRecordHeaderSize + key_len + value_len; }
};

// Checksum used throughout the format: CRC-32C (Castagnoli).
uint32_t Crc32(const void* data, size_t n, uint32_t seed = 0);

// Appends a whole record (header, key, stored value) to *out. header.data_crc is computed
// here; key_len and value_len are taken from key and stored_value.
void EncodeRecord(RecordHeader header, std::string_view key, std::string_view stored_value,
                  std::string* out);

// Writes the header fields into buf[0, kRecordHeaderSize), including the header checksum.
// header.data_crc must already be set.
void EncodeRecordHeader(const RecordHeader& header, char* buf);

// Decodes and verifies a header. Corruption when the checksum or a field is invalid.
Status DecodeRecordHeader(const char* buf, RecordHeader* header);

// Verifies the data checksum of a whole record held in `record` (header already decoded).
Status VerifyRecordData(const RecordHeader& header, std::string_view record);
// The same for a record's key and stored value held apart (read into different buffers).
Status VerifyRecordParts(const RecordHeader& header, std::string_view key,
                         std::string_view stored_value);

}  // namespace kv

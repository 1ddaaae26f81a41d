// Encodings of the small fs/ values: superblock (S), directory entry (D), sealed version (V),
// orphan (O), trash (T, W), history link (H) and snapshot (N). fs/README.md, "Values", is the
// specification.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace fs {

struct Superblock {
  uint32_t format = 2;
  uint32_t chunk_size = 0;
  // Sealed versions kept per file (the newest ones); 0 turns versioning off.
  uint32_t version_retention = 0;
  // Inode numbers below this may have been handed out; allocation resumes here after a
  // restart. Advanced in steps so that creating a file does not rewrite S every time.
  uint64_t ino_limit = 0;
  int64_t created_ns = 0;
  // Format 2. Versions younger than this are kept whatever their number.
  int64_t version_min_age_ns = 0;
  // Format 2. How long deleted files stay in the trash; 0: deletion is immediate.
  int64_t trash_retention_ns = 0;
  // Format 3. Features a reader must know to open the volume safely.
  enum : uint32_t {
    // POSIX ACLs are enforced (fs/acl.h). A reader that ignored them would open up access.
    kPosixAcl = 1 << 0,
  };
  uint32_t features = 0;
};
// The newest format this code reads. It writes format 3 only when a feature is on, so that
// a volume without any stays readable by code that knows format 2.
inline constexpr uint32_t kSuperblockFormat = 3;
// Sets sb.format to the format it writes.
std::string EncodeSuperblock(Superblock& sb);
// Reads formats 1 to 3 (an older format gets the defaults of the fields it lacks).
[[nodiscard]] bool DecodeSuperblock(std::string_view value, Superblock* sb);

// D<parent><name> -> the child and its file type (the S_IFMT bits of its mode), so that
// readdir needs no inode reads.
struct DentryValue {
  uint64_t ino = 0;
  uint32_t type = 0;
};
std::string EncodeDentry(const DentryValue& d);
[[nodiscard]] bool DecodeDentry(std::string_view value, DentryValue* d);

// V<ino><version>. The store sequence the version was sealed at is the sequence of this
// record's own (newest) write, reported by Store::Versions and Iterator::sequence(): a value
// cannot contain the sequence number of the batch that writes it.
struct VersionRecord {
  int64_t time_ns = 0;
  uint64_t size = 0;
};
std::string EncodeVersion(const VersionRecord& v);
[[nodiscard]] bool DecodeVersion(std::string_view value, VersionRecord* v);

// O<ino>, T<time><ino> and W<parent><name>\0<time><ino>: where a file was linked when it lost
// its last name, and what became of it.
struct PlaceRecord {
  enum : uint8_t {
    // O only: the file was replaced by a rename and its history continues in the file that
    // replaced it (an H link); on last release its data goes, its versions stay.
    kArchive = 1,
    // W only: the entry belongs to its trashed parent directory's tree (it was the newest
    // trashed child of that name when the directory itself was deleted) and has no T key.
    kMember = 2,
  };
  uint64_t parent = 0;
  uint64_t ino = 0;
  uint32_t mode = 0;
  uint64_t size = 0;
  std::string name;     // its name in `parent`
  std::string path;     // its path from the root when it lost its last name, no leading '/'
  int64_t time_ns = 0;  // when it lost its last name
  uint8_t flags = 0;
  // The parent directory's mtime just before this entry was removed from it: restoring a
  // trashed tree puts each directory's mtime back to what it was before `rm -rf`.
  int64_t parent_mtime_ns = 0;
};
std::string EncodePlace(const PlaceRecord& p);
[[nodiscard]] bool DecodePlace(std::string_view value, PlaceRecord* p);

// H<ino>: the file was put in place by a rename over `prev`, whose versions are the older
// part of this file's history. This file's version k is shown as number base + k.
struct HistoryLink {
  uint64_t prev = 0;
  uint64_t base = 0;
};
std::string EncodeHistoryLink(const HistoryLink& h);
[[nodiscard]] bool DecodeHistoryLink(std::string_view value, HistoryLink* h);

// N<name>: a named snapshot of the whole tree as of store sequence `sequence`. `id` is a
// small number unique among live snapshots (it is part of the snapshot's inode numbers).
struct SnapshotRecord {
  uint32_t id = 0;
  uint64_t sequence = 0;
  int64_t time_ns = 0;
};
std::string EncodeSnapshot(const SnapshotRecord& s);
[[nodiscard]] bool DecodeSnapshot(std::string_view value, SnapshotRecord* s);

}  // namespace fs

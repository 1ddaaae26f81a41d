// RecordScanner: reads a page file's records in order, telling a torn tail (the end of
// the log) from corruption in the middle (an error naming the offset).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "kv/env.h"
#include "kv/record.h"

namespace kv {

class RecordScanner {
 public:
  enum class Result { kRecord, kEnd, kTornTail, kCorrupt };

  // Scans [start, limit) of `file`. With `salvage`, corruption is not an error: Next skips
  // the damaged bytes (see kCorrupt) and carries on with the next record that verifies.
  RecordScanner(const File& file, uint64_t start, uint64_t limit, bool salvage = false)
      : file_(file), pos_(start), limit_(limit), salvage_(salvage) {}

  // On kRecord sets *header, *record (valid until the next call) and *offset. A record
  // that does not fit before `limit`, or a bad checksum in the last record, is kTornTail;
  // a bad checksum with more data behind it is Corruption.
  // In salvage mode that corruption is kCorrupt instead: *offset is where the damage
  // starts, skipped() its length, corruption() why; when the damaged record's header
  // verified, corrupt_header_valid() is true, *header is that header and corrupt_key()
  // its (unverified) key. The scanner then stands at the next record whose header and data
  // checksums verify, or at the limit when there is none.
  Status Next(Result* result, RecordHeader* header, std::string_view* record, uint64_t* offset);

  // Offset of the next record to be read.
  uint64_t position() const { return pos_; }
  // After kTornTail: whether the torn record's header was whole, and that header.
  bool torn_header_valid() const { return torn_header_valid_; }
  // After kCorrupt: see Next.
  uint64_t skipped() const { return skipped_; }
  const std::string& corruption() const { return corruption_; }
  bool corrupt_header_valid() const { return corrupt_header_valid_; }
  const std::string& corrupt_key() const { return corrupt_key_; }

 private:
  // Makes [pos, pos+n) available in buf_.
  Status Fill(uint64_t pos, size_t n);
  std::string_view View(uint64_t pos, size_t n) const {
    return std::string_view(buf_).substr(pos - buf_off_, n);
  }
  Status TailIsZero(uint64_t pos, bool* zero);
  // Whether a whole record whose header and data checksums verify starts at pos.
  Status VerifiesAt(uint64_t pos, bool* ok);
  // Salvage: reports the damage at pos_ as kCorrupt and moves to the next good record, at
  // or after `next` (the end of the damaged record) when its header is valid.
  Status SkipCorrupt(const std::string& why, bool header_valid, uint64_t next, Result* result,
                     uint64_t* offset);

  const File& file_;
  uint64_t pos_;
  const uint64_t limit_;
  const bool salvage_;
  std::string buf_;
  uint64_t buf_off_ = 0;
  bool torn_header_valid_ = false;
  uint64_t skipped_ = 0;
  std::string corruption_;
  bool corrupt_header_valid_ = false;
  std::string corrupt_key_;
};

}  // namespace kv

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
  enum class Result { kRecord, kEnd, kTornTail };

  // Scans [start, limit) of `file`.
  RecordScanner(const File& file, uint64_t start, uint64_t limit)
      : file_(file), pos_(start), limit_(limit) {}

  // On kRecord sets *header, *record (valid until the next call) and *offset. A record
  // that does not fit before `limit`, or a bad checksum in the last record, is kTornTail;
  // a bad checksum with more data behind it is Corruption.
  Status Next(Result* result, RecordHeader* header, std::string_view* record, uint64_t* offset);

  // Offset of the next record to be read.
  uint64_t position() const { return pos_; }
  // After kTornTail: whether the torn record's header was whole, and that header.
  bool torn_header_valid() const { return torn_header_valid_; }

 private:
  // Makes [pos, pos+n) available in buf_.
  Status Fill(uint64_t pos, size_t n);
  std::string_view View(uint64_t pos, size_t n) const {
    return std::string_view(buf_).substr(pos - buf_off_, n);
  }
  Status TailIsZero(uint64_t pos, bool* zero);

  const File& file_;
  uint64_t pos_;
  const uint64_t limit_;
  std::string buf_;
  uint64_t buf_off_ = 0;
  bool torn_header_valid_ = false;
};

}  // namespace kv

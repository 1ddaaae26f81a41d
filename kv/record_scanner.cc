// Sequential, buffered record reading with torn-tail classification.
#include "kv/record_scanner.h"

#include <algorithm>

#include "kv/coding.h"

namespace kv {
namespace {
constexpr size_t kReadAhead = 1 << 20;
}

Status RecordScanner::Fill(uint64_t pos, size_t n) {
  if (pos >= buf_off_ && pos + n <= buf_off_ + buf_.size()) return Status::OK();
  size_t want = static_cast<size_t>(std::min<uint64_t>(std::max(n, kReadAhead), limit_ - pos));
  buf_.resize(want);
  size_t got = 0;
  KV_RETURN_IF_ERROR(file_.Read(pos, want, buf_.data(), &got));
  buf_.resize(got);
  buf_off_ = pos;
  if (got < n) return Status::Corruption("page file shorter than expected");
  return Status::OK();
}

Status RecordScanner::TailIsZero(uint64_t pos, bool* zero) {
  *zero = true;
  while (pos < limit_) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(kReadAhead, limit_ - pos));
    KV_RETURN_IF_ERROR(Fill(pos, n));
    std::string_view v = View(pos, n);
    if (v.find_first_not_of('\0') != std::string_view::npos) {
      *zero = false;
      return Status::OK();
    }
    pos += n;
  }
  return Status::OK();
}

Status RecordScanner::VerifiesAt(uint64_t pos, bool* ok) {
  *ok = false;
  if (limit_ - pos < format::kRecordHeaderSize) return Status::OK();
  KV_RETURN_IF_ERROR(Fill(pos, format::kRecordHeaderSize));
  const char* p = View(pos, format::kRecordHeaderSize).data();
  // Cheap tests first: a resynchronizing search calls this at every byte offset.
  const auto type = static_cast<uint8_t>(p[format::kRecType]);
  if ((type != format::kTypePut && type != format::kTypeDelete) ||
      (static_cast<uint8_t>(p[format::kRecFlags]) & ~format::kKnownFlags) != 0 ||
      DecodeFixed32(p + format::kRecReserved) != 0) {
    return Status::OK();
  }
  RecordHeader h;
  if (!DecodeRecordHeader(p, &h).ok() || h.record_size() > limit_ - pos) return Status::OK();
  KV_RETURN_IF_ERROR(Fill(pos, static_cast<size_t>(h.record_size())));
  *ok = VerifyRecordData(h, View(pos, static_cast<size_t>(h.record_size()))).ok();
  return Status::OK();
}

Status RecordScanner::SkipCorrupt(const std::string& why, bool header_valid, uint64_t next,
                                  Result* result, uint64_t* offset) {
  const uint64_t start = pos_;
  // A verified header vouches for the damaged record's length: search after it, not inside
  // its value (which may hold bytes that look like records).
  for (next = header_valid ? next : start + 1; next < limit_; ++next) {
    bool ok = false;
    KV_RETURN_IF_ERROR(VerifiesAt(next, &ok));
    if (ok) break;
  }
  next = std::min(next, limit_);
  *result = Result::kCorrupt;
  *offset = start;
  skipped_ = next - start;
  corruption_ = why;
  corrupt_header_valid_ = header_valid;
  pos_ = next;
  torn_header_valid_ = false;
  return Status::OK();
}

Status RecordScanner::Next(Result* result, RecordHeader* header, std::string_view* record,
                           uint64_t* offset) {
  if (pos_ >= limit_) {
    *result = Result::kEnd;
    return Status::OK();
  }
  const uint64_t remaining = limit_ - pos_;
  *result = Result::kTornTail;
  if (remaining < format::kRecordHeaderSize) return Status::OK();
  KV_RETURN_IF_ERROR(Fill(pos_, format::kRecordHeaderSize));
  Status s = DecodeRecordHeader(View(pos_, format::kRecordHeaderSize).data(), header);
  if (!s.ok()) {
    // A header that never made it to disk reads as zeros up to the end of the file.
    bool zero = false;
    KV_RETURN_IF_ERROR(TailIsZero(pos_, &zero));
    if (zero) return Status::OK();
    if (salvage_) {
      corrupt_key_.clear();
      return SkipCorrupt(s.message(), false, 0, result, offset);
    }
    return Status::Corruption("offset " + std::to_string(pos_) + ": " + s.message());
  }
  torn_header_valid_ = true;  // whatever follows, this header is whole
  const uint64_t size = header->record_size();
  if (size > remaining) return Status::OK();
  KV_RETURN_IF_ERROR(Fill(pos_, static_cast<size_t>(size)));
  *record = View(pos_, static_cast<size_t>(size));
  s = VerifyRecordData(*header, *record);
  if (!s.ok()) {
    if (size == remaining) return Status::OK();  // the last record's payload is incomplete
    if (salvage_) {
      corrupt_key_.assign(record->substr(format::kRecordHeaderSize, header->key_len));
      return SkipCorrupt(s.message(), true, pos_ + size, result, offset);
    }
    return Status::Corruption("offset " + std::to_string(pos_) + ": " + s.message());
  }
  *offset = pos_;
  pos_ += size;
  torn_header_valid_ = false;
  *result = Result::kRecord;
  return Status::OK();
}

}  // namespace kv

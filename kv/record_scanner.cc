// Sequential, buffered record reading with torn-tail classification.
#include "kv/record_scanner.h"

#include <algorithm>

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
    return Status::Corruption("offset " + std::to_string(pos_) + ": " + s.message());
  }
  *offset = pos_;
  pos_ += size;
  torn_header_valid_ = false;
  *result = Result::kRecord;
  return Status::OK();
}

}  // namespace kv

// Journal entries: u32 crc32c of the rest, u32 payload length, payload. Payload: u32 range
// count, then per range u32 page, u64 generation, u64 offset, u32 length, bytes.
#include "kv/journal.h"

#include "kv/coding.h"
#include "kv/crc32c.h"
#include "kv/format.h"

namespace kv {
namespace {
constexpr char kJournalFile[] = "JOURNAL";
}

Status Journal::Open(Env* env, const std::string& dir, std::unique_ptr<Journal>* journal) {
  std::unique_ptr<File> file;
  KV_RETURN_IF_ERROR(env->OpenFile(dir + "/" + kJournalFile, Env::OpenMode::kCreate, &file));
  journal->reset(new Journal(std::move(file)));
  return Status::OK();
}

Status Journal::Commit(const std::vector<JournalRange>& ranges) {
  std::string payload;
  PutFixed32(&payload, static_cast<uint32_t>(ranges.size()));
  for (const JournalRange& r : ranges) {
    PutFixed32(&payload, r.page);
    PutFixed64(&payload, r.generation);
    PutFixed64(&payload, r.offset);
    PutFixed32(&payload, static_cast<uint32_t>(r.bytes.size()));
    payload += r.bytes;
  }
  std::string entry;
  PutFixed32(&entry, 0);
  PutFixed32(&entry, static_cast<uint32_t>(payload.size()));
  entry += payload;
  EncodeFixed32(entry.data(), Crc32c(entry.data() + 4, entry.size() - 4));
  const uint64_t end = file_->Size();
  Status s = file_->Append(entry.data(), entry.size());
  if (s.ok()) s = file_->Sync();
  if (!s.ok()) file_->Truncate(end).IgnoreError();
  return s;
}

Status Journal::Reset() {
  if (file_->Size() == 0) return Status::OK();
  KV_RETURN_IF_ERROR(file_->Truncate(0));
  return file_->Sync();
}

Status Journal::ReadAll(Env* env, const std::string& dir, std::vector<JournalRange>* ranges) {
  ranges->clear();
  const std::string path = dir + "/" + kJournalFile;
  if (!env->FileExists(path)) return Status::OK();
  std::string data;
  KV_RETURN_IF_ERROR(ReadWholeFile(env, path, &data));
  size_t pos = 0;
  while (data.size() - pos >= 8) {
    const uint32_t crc = DecodeFixed32(data.data() + pos);
    const uint32_t len = DecodeFixed32(data.data() + pos + 4);
    if (data.size() - pos - 8 < len || Crc32c(data.data() + pos + 4, len + 4) != crc) break;
    Decoder d(data.data() + pos + 8, len);
    uint32_t count = 0;
    if (!d.GetFixed32(&count)) return Status::Corruption("journal entry malformed");
    for (uint32_t i = 0; i < count; ++i) {
      JournalRange r;
      uint32_t n = 0;
      if (!d.GetFixed32(&r.page) || !d.GetFixed64(&r.generation) || !d.GetFixed64(&r.offset) ||
          !d.GetFixed32(&n) || !d.GetBytes(n, &r.bytes)) {
        return Status::Corruption("journal entry malformed");
      }
      ranges->push_back(std::move(r));
    }
    pos += 8 + len;
  }
  return Status::OK();
}

Status ReplayJournalRange(Env* env, const std::string& path, const JournalRange& r,
                          ReplayOutcome* outcome) {
  std::unique_ptr<File> file;
  KV_RETURN_IF_ERROR(env->OpenFile(path, Env::OpenMode::kAppend, &file));
  char header[format::kPageHeaderSize];
  size_t got = 0;
  KV_RETURN_IF_ERROR(file->Read(0, sizeof(header), header, &got));
  // The generation (page header bytes 16..23) changes with every compaction.
  if (got < sizeof(header) || DecodeFixed64(header + 16) != r.generation) {
    *outcome = ReplayOutcome::kStale;
    return Status::OK();
  }
  std::string existing(r.bytes.size(), '\0');
  KV_RETURN_IF_ERROR(file->Read(r.offset, r.bytes.size(), existing.data(), &got));
  if (got == r.bytes.size() && existing == r.bytes) {
    *outcome = ReplayOutcome::kPresent;
    return Status::OK();
  }
  if (file->Size() < r.offset) {
    *outcome = ReplayOutcome::kTooShort;
    return Status::OK();
  }
  // The page lost these bytes, and with them everything after (never synced).
  KV_RETURN_IF_ERROR(file->Truncate(r.offset));
  KV_RETURN_IF_ERROR(file->Append(r.bytes.data(), r.bytes.size()));
  KV_RETURN_IF_ERROR(file->Sync());
  *outcome = ReplayOutcome::kApplied;
  return Status::OK();
}

}  // namespace kv

// Page: recovery, reads and appends. Compaction and hint files are in page_compact.cc.
#include "kv/page.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <unordered_map>

#include "kv/coding.h"
#include "kv/compression.h"
#include "kv/record_scanner.h"

namespace kv {

using namespace format;

namespace {
constexpr uint64_t kReserveChunk = 4 << 20;
constexpr size_t kWriteBufferLimit = 64 << 10;

// Stands in for a missing page file in a salvage open: no records, nothing writable.
class EmptyFile final : public File {
 public:
  Status Read(uint64_t, size_t, char*, size_t* got) const override {
    *got = 0;
    return Status::OK();
  }
  Status Append(const char*, size_t) override { return ReadOnly(); }
  Status Sync() override { return Status::OK(); }
  Status Truncate(uint64_t) override { return ReadOnly(); }
  Status Reserve(uint64_t, uint64_t) override { return ReadOnly(); }
  uint64_t Size() const override { return 0; }

 private:
  static Status ReadOnly() { return Status::InvalidArgument("store is open read-only"); }
};
}  // namespace

std::string PageFileName(uint32_t index) {
  char name[32];
  std::snprintf(name, sizeof(name), "page-%04u.kv", index);
  return name;
}

std::string EncodePageHeader(uint32_t index, uint64_t generation, uint64_t store_id) {
  std::string out(kPageMagic, sizeof(kPageMagic));
  PutFixed32(&out, kFormatVersion);
  PutFixed32(&out, index);
  PutFixed64(&out, generation);
  PutFixed64(&out, store_id);
  PutFixed32(&out, Crc32(out.data(), out.size()));
  PutFixed32(&out, 0);
  return out;
}

Page::Page(Env* env, std::string dir, uint32_t index, uint64_t store_id)
    : env_(env),
      dir_(std::move(dir)),
      path_(dir_ + "/" + PageFileName(index)),
      index_no_(index),
      store_id_(store_id),
      index_(std::make_unique<KeyIndex>()) {}

Status Page::CorruptionAt(uint64_t offset, const Status& what) const {
  return Status::Corruption(PageFileName(index_no_) + " offset " + std::to_string(offset) + ": " +
                            what.message());
}

Status Page::Create() {
  std::unique_ptr<File> file;
  KV_RETURN_IF_ERROR(env_->OpenFile(path_, Env::OpenMode::kCreateTruncate, &file));
  std::string header = EncodePageHeader(index_no_, 0, store_id_);
  KV_RETURN_IF_ERROR(file->Append(header.data(), header.size()));
  return file->Sync();
}

Status Page::Open(bool read_only, SequenceNumber durable, PageRecovery* recovery, bool salvage) {
  std::unique_lock lock(mu_);
  read_only_ = read_only;
  salvage_ = salvage && read_only;
  const std::string name = PageFileName(index_no_);
  if (!env_->FileExists(path_)) {
    if (!salvage_) return Status::Corruption("page file " + name + " is missing");
    file_ = std::make_shared<EmptyFile>();
    *recovery = PageRecovery{};
    return Status::OK();
  }
  std::unique_ptr<File> file;
  KV_RETURN_IF_ERROR(
      env_->OpenFile(path_, read_only ? Env::OpenMode::kRead : Env::OpenMode::kAppend, &file));
  char header[kPageHeaderSize];
  size_t got = 0;
  KV_RETURN_IF_ERROR(file->Read(0, kPageHeaderSize, header, &got));
  Status bad;
  if (got < kPageHeaderSize || std::memcmp(header, kPageMagic, sizeof(kPageMagic)) != 0) {
    bad = Status::Corruption(name + ": not a kvfs page file");
  } else if (DecodeFixed32(header + 32) != Crc32(header, 32)) {
    bad = Status::Corruption(name + ": page header checksum mismatch");
  } else if (DecodeFixed32(header + 8) > kFormatVersion) {
    return Status::NotSupported(name + ": page format version " +
                                std::to_string(DecodeFixed32(header + 8)) + " is newer than " +
                                std::to_string(kFormatVersion));
  } else if (DecodeFixed32(header + 12) != index_no_ || DecodeFixed64(header + 24) != store_id_) {
    if (!salvage_) return Status::Corruption(name + ": page file belongs to another store or page");
    // Its records are not this page's.
    file_ = std::make_shared<EmptyFile>();
    *recovery = PageRecovery{};
    return Status::OK();
  }
  if (!bad.ok() && !salvage_) return bad;
  // A salvage open reads past a damaged header: the records after it may be fine.
  generation_ = bad.ok() ? DecodeFixed64(header + 16) : 0;
  file_ = std::move(file);
  reserved_end_ = file_->Size();
  uint64_t valid_end = 0;
  KV_RETURN_IF_ERROR(LoadLocked(file_->Size(), durable, recovery, &valid_end));
  if (valid_end < file_->Size() && !read_only) KV_RETURN_IF_ERROR(file_->Truncate(valid_end));
  // What a crashed process wrote may still be only in the page cache: nothing counts as
  // durable until the store's first checkpoint syncs it.
  synced_end_ = journaled_end_ = 0;
  return Status::OK();
}

Status Page::CutAt(uint64_t offset, SequenceNumber durable) {
  std::unique_lock lock(mu_);
  PageRecovery ignored;
  uint64_t valid_end = 0;
  KV_RETURN_IF_ERROR(LoadLocked(offset, durable, &ignored, &valid_end));
  // A read-only page is not cut; its index simply stops at `offset`.
  if (!read_only_ && file_->Size() > offset) KV_RETURN_IF_ERROR(file_->Truncate(offset));
  return Status::OK();
}

void Page::IndexRecord(std::string_view key, const RecordHeader& h, uint64_t offset,
                       KeyIndex* index, Counters* c) {
  IndexEntry entry;
  entry.offset = offset;
  entry.sequence = h.sequence;
  entry.record_size = static_cast<uint32_t>(h.record_size());
  entry.value_size = h.raw_len;
  entry.deleted = h.deleted() ? 1 : 0;
  IndexEntry old;
  if (index->Upsert(key, entry, &old)) {
    if (old.deleted) {
      --c->tombstones;
    } else {
      --c->live_keys;
      c->live_bytes -= old.record_size;
    }
  }
  if (h.deleted()) {
    ++c->tombstones;
  } else {
    ++c->live_keys;
    c->live_bytes += entry.record_size;
  }
  ++c->records;
  c->raw_value_bytes += h.raw_len;
  c->stored_value_bytes += h.value_len;
}

Status Page::LoadLocked(uint64_t limit, SequenceNumber durable, PageRecovery* recovery,
                        uint64_t* valid_end) {
  *recovery = PageRecovery{};
  index_ = std::make_unique<KeyIndex>();
  counters_ = Counters{};
  max_sequence_ = 0;
  last_group_ = RecoveredGroup{};
  uint64_t start = kPageHeaderSize;
  // A salvage scan reads every record: a hint may index damaged ones.
  if (salvage_ || !LoadHintLocked(limit, &start, &last_group_)) {
    index_ = std::make_unique<KeyIndex>();
    counters_ = Counters{};
    max_sequence_ = 0;
    last_group_ = RecoveredGroup{};
    start = kPageHeaderSize;
  }
  *valid_end = start;

  // Records of one batch part are indexed only once the whole part has been read.
  struct Pending {
    std::string key;
    RecordHeader header;
    uint64_t offset;
  };
  std::vector<Pending> group;
  auto index_group = [&] {
    for (const Pending& p : group) IndexRecord(p.key, p.header, p.offset, index_.get(), &counters_);
    const RecordHeader& h = group.back().header;
    max_sequence_ = h.sequence;
    last_group_ = RecoveredGroup{h.sequence, group.front().offset, h.batch_pages};
    if (h.sequence > durable) recovery->groups.push_back(last_group_);
    group.clear();
  };
  RecordScanner scanner(*file_, start, limit, salvage_);
  RecordScanner::Result result;
  // Salvage: damage was skipped since the last group started / the current group is next
  // to damage (so it may lack records, or continue a part whose start was indexed).
  bool damaged = false;
  bool group_damaged = false;
  for (;;) {
    RecordHeader h;
    std::string_view record;
    uint64_t offset = 0;
    Status s = scanner.Next(&result, &h, &record, &offset);
    if (!s.ok()) return Status::Corruption(PageFileName(index_no_) + " " + s.message());
    if (result == RecordScanner::Result::kCorrupt) {
      // What verified of an interrupted batch part is used as it is.
      if (!group.empty()) index_group();
      damaged = true;
      continue;
    }
    if (result != RecordScanner::Result::kRecord) {
      if (!group.empty() && group_damaged) index_group();
      if (result == RecordScanner::Result::kTornTail && group.empty()) {
        recovery->torn = true;
        recovery->torn_sequence_known = scanner.torn_header_valid();
        recovery->torn_sequence = h.sequence;
      }
      break;
    }
    if (!group.empty() && h.sequence != group.front().header.sequence) {
      if (!salvage_) {
        return CorruptionAt(group.front().offset, Status::Corruption("incomplete batch part"));
      }
      index_group();
    }
    if (group.empty()) {
      if (max_sequence_ != 0 &&
          (h.sequence < max_sequence_ || (h.sequence == max_sequence_ && !(salvage_ && damaged)))) {
        if (salvage_) continue;  // indexing it would hide the newer versions
        return CorruptionAt(offset, Status::Corruption("sequence number out of order"));
      }
      group_damaged = damaged;
      damaged = false;
    }
    group.push_back(Pending{std::string(record.substr(kRecordHeaderSize, h.key_len)), h, offset});
    if (group.size() < group.front().header.part_records) continue;
    index_group();
    *valid_end = scanner.position();
  }
  if (!group.empty()) {  // a batch part missing its last records
    recovery->torn = true;
    recovery->torn_sequence_known = true;
    recovery->torn_sequence = group.front().header.sequence;
  }
  recovery->has_last_group = last_group_.sequence != 0;
  recovery->last_group = last_group_;
  recovery->max_sequence = max_sequence_;
  return Status::OK();
}

Status Page::ReadLocked(const File& file, bool buffered, uint64_t offset, size_t n, char* buf,
                        size_t* got) const {
  const uint64_t flushed = file.Size();
  if (!buffered || offset + n <= flushed) return file.Read(offset, n, buf, got);
  // The range reaches into the write buffer, which continues the file at `flushed`.
  size_t from_file = 0;
  if (offset < flushed) {
    KV_RETURN_IF_ERROR(file.Read(offset, flushed - offset, buf, &from_file));
    if (from_file < flushed - offset) {
      *got = from_file;
      return Status::OK();
    }
  }
  const uint64_t in_buf = offset + from_file - flushed;
  const size_t from_buf =
      in_buf >= wbuf_.size() ? 0 : std::min<uint64_t>(n - from_file, wbuf_.size() - in_buf);
  std::memcpy(buf + from_file, wbuf_.data() + in_buf, from_buf);
  *got = from_file + from_buf;
  return Status::OK();
}

Status Page::ReadHeaderLocked(const File& file, bool buffered, uint64_t offset,
                              RecordHeader* header) const {
  char buf[kRecordHeaderSize];
  size_t got = 0;
  KV_RETURN_IF_ERROR(ReadLocked(file, buffered, offset, kRecordHeaderSize, buf, &got));
  if (got < kRecordHeaderSize) {
    return CorruptionAt(offset, Status::Corruption("record header past end of file"));
  }
  Status s = DecodeRecordHeader(buf, header);
  if (!s.ok()) return CorruptionAt(offset, s);
  return Status::OK();
}

Status Page::ReadRecordLocked(const File& file, bool buffered, uint64_t offset, uint64_t size,
                              RecordHeader* header, std::string* record) const {
  record->resize(size);
  size_t got = 0;
  KV_RETURN_IF_ERROR(ReadLocked(file, buffered, offset, size, record->data(), &got));
  if (got < size)
    return CorruptionAt(offset, Status::Corruption("record extends past end of file"));
  return CheckRecord(offset, *record, header);
}

Status Page::ViewRecordLocked(uint64_t offset, uint64_t size, RecordHeader* header,
                              std::string* scratch, std::string_view* record) const {
  // Small records are viewed in place; large ones are copied into *scratch by File::Read
  // (which copies from the same mapping when the file has one: measured on a cold 1 GiB
  // file read, that ran at 1.1-1.4 GB/s where pread ran at 0.6-0.7 GB/s with twice the CPU).
  constexpr uint64_t kMaxMappedRecord = 16 << 10;
  const char* mapped = size <= kMaxMappedRecord ? file_->Map(offset, size) : nullptr;
  if (mapped != nullptr) {
    *record = std::string_view(mapped, size);
    return CheckRecord(offset, *record, header);
  }
  KV_RETURN_IF_ERROR(ReadRecordLocked(*file_, true, offset, size, header, scratch));
  *record = *scratch;
  return Status::OK();
}

Status Page::CheckRecord(uint64_t offset, std::string_view record, RecordHeader* header) const {
  if (record.size() < kRecordHeaderSize) {
    return CorruptionAt(offset, Status::Corruption("record extends past end of file"));
  }
  Status s = DecodeRecordHeader(record.data(), header);
  if (s.ok()) s = VerifyRecordData(*header, record);
  if (!s.ok()) return CorruptionAt(offset, s);
  return Status::OK();
}

Status Page::ValueFromRecord(const RecordHeader& h, std::string_view record, size_t prefix,
                             std::string* value) const {
  std::string_view stored = record.substr(kRecordHeaderSize + h.key_len, h.value_len);
  const size_t size = prefix == 0 ? h.raw_len : std::min<size_t>(prefix, h.raw_len);
  if (!h.compressed()) {
    value->assign(stored.substr(0, size));
    return Status::OK();
  }
  if (size == h.raw_len) return DecompressValue(stored, h.raw_len, value);
  value->resize(size);
  return DecompressValuePrefix(stored, *value);
}

Status Page::ResolveLocked(std::string_view key, const IndexEntry& entry, SequenceNumber at,
                           bool* found, RecordHeader* header, uint64_t* offset) {
  *found = false;
  uint64_t off = entry.offset;
  for (;;) {
    Status s = ReadHeaderLocked(*file_, true, off, header);
    if (!s.ok() && salvage_ && off != entry.offset) return Status::OK();  // a damaged link
    KV_RETURN_IF_ERROR(s);
    if (header->key_len != key.size()) {
      if (salvage_) return Status::OK();
      return CorruptionAt(off, Status::Corruption("version chain leads to another key"));
    }
    if (header->sequence <= at) {
      *found = true;
      *offset = off;
      return Status::OK();
    }
    if (header->prev == kNoPrev) return Status::OK();
    if (header->prev >= off) {
      if (salvage_) return Status::OK();
      return CorruptionAt(off, Status::Corruption("version chain points forward"));
    }
    off = header->prev;
  }
}

Status Page::LocateLocked(std::string_view key, SequenceNumber at, bool in_memory, uint64_t* offset,
                          uint64_t* size) {
  // Short keys: find the entry by hash alone and check the key in the record, whose bytes
  // are read next anyway; the index's own copy of the key would cost a cache miss.
  constexpr size_t kMaxCheckedKey = 256;
  const bool check_in_record = !in_memory && key.size() <= kMaxCheckedKey;
  const IndexEntry* found_entry = check_in_record ? index_->FindByHash(key) : index_->Find(key);
  if (found_entry == nullptr) return Status::NotFound({});
  if (check_in_record) {
    char buf[kRecordHeaderSize + kMaxCheckedKey];
    const size_t n = kRecordHeaderSize + key.size();
    const char* head = file_->Map(found_entry->offset, n);
    size_t got = n;
    if (head == nullptr) {
      KV_RETURN_IF_ERROR(ReadLocked(*file_, true, found_entry->offset, n, buf, &got));
      head = buf;
    }
    if (got < n || std::string_view(head + kRecordHeaderSize, key.size()) != key) {
      found_entry = index_->Find(key);  // another key with the same hash
      if (found_entry == nullptr) return Status::NotFound({});
    }
  }
  const IndexEntry entry = *found_entry;
  *offset = entry.offset;
  *size = entry.record_size;
  if (entry.sequence > at) {
    RecordHeader h;
    bool found = false;
    KV_RETURN_IF_ERROR(ResolveLocked(key, entry, at, &found, &h, offset));
    if (!found || h.deleted()) return Status::NotFound({});
    *size = h.record_size();
  } else if (entry.deleted) {
    return Status::NotFound({});
  }
  return Status::OK();
}

Status Page::Get(std::string_view key, SequenceNumber at, const ReadOptions& options,
                 std::string* value) {
  thread_local std::string scratch;
  std::shared_lock lock(mu_);
  uint64_t offset = 0;
  uint64_t size = 0;
  KV_RETURN_IF_ERROR(LocateLocked(key, at, options.keys_only, &offset, &size));
  if (options.keys_only) {
    value->clear();
    return Status::OK();
  }
  RecordHeader h;
  std::string_view record;
  KV_RETURN_IF_ERROR(ViewRecordLocked(offset, size, &h, &scratch, &record));
  if (h.deleted()) return Status::NotFound({});
  if (record.substr(kRecordHeaderSize, h.key_len) != key) {
    return CorruptionAt(offset, Status::Corruption("index points to another key"));
  }
  Status s = ValueFromRecord(h, record, options.value_prefix, value);
  if (!s.ok()) return CorruptionAt(offset, s);
  return Status::OK();
}

Status Page::GetInto(std::string_view key, SequenceNumber at, std::span<char> buf, size_t* size) {
  thread_local std::string scratch;
  std::shared_lock lock(mu_);
  uint64_t offset = 0;
  uint64_t record_size = 0;
  KV_RETURN_IF_ERROR(LocateLocked(key, at, /*in_memory=*/false, &offset, &record_size));
  // The header and key first, so that a value stored raw is read straight into buf.
  const size_t head = kRecordHeaderSize + key.size();
  scratch.resize(std::min<uint64_t>(head, record_size));
  size_t got = 0;
  KV_RETURN_IF_ERROR(ReadLocked(*file_, true, offset, scratch.size(), scratch.data(), &got));
  if (got < head) return CorruptionAt(offset, Status::Corruption("record length mismatch"));
  RecordHeader h;
  Status s = DecodeRecordHeader(scratch.data(), &h);
  if (!s.ok()) return CorruptionAt(offset, s);
  if (h.record_size() != record_size || h.key_len != key.size()) {
    return CorruptionAt(offset, Status::Corruption("record length mismatch"));
  }
  if (std::string_view(scratch).substr(kRecordHeaderSize) != key) {
    return CorruptionAt(offset, Status::Corruption("index points to another key"));
  }
  if (h.deleted()) return Status::NotFound({});
  if (h.raw_len > buf.size()) return Status::InvalidArgument("value larger than the buffer");
  // A raw value is read into buf itself; a compressed one into scratch, to inflate into buf.
  char* stored = buf.data();
  if (h.compressed()) {
    scratch.resize(h.value_len);
    stored = scratch.data();
  }
  KV_RETURN_IF_ERROR(ReadLocked(*file_, true, offset + head, h.value_len, stored, &got));
  s = VerifyRecordParts(h, key, std::string_view(stored, got));
  if (s.ok() && h.compressed()) {
    s = DecompressValueInto(std::string_view(stored, got), buf.first(h.raw_len));
  }
  if (!s.ok()) return CorruptionAt(offset, s);
  *size = h.raw_len;
  return Status::OK();
}

Status Page::Versions(std::string_view key, std::vector<VersionInfo>* versions) {
  versions->clear();
  std::shared_lock lock(mu_);
  const IndexEntry* entry = index_->Find(key);
  if (entry == nullptr) return Status::OK();
  uint64_t off = entry->offset;
  while (off != kNoPrev) {
    RecordHeader h;
    Status s = ReadHeaderLocked(*file_, true, off, &h);
    // Salvage: the versions before a damaged link are out of reach.
    if (!s.ok() && salvage_ && off != entry->offset) break;
    KV_RETURN_IF_ERROR(s);
    if (salvage_ && h.key_len != key.size()) break;
    versions->push_back(
        VersionInfo{h.sequence, h.time_ns, h.deleted() ? 0 : h.raw_len, h.deleted()});
    if (h.prev != kNoPrev && h.prev >= off) {
      if (salvage_) break;
      return CorruptionAt(off, Status::Corruption("version chain points forward"));
    }
    off = h.prev;
  }
  return Status::OK();
}

Status Page::Scan(std::string_view prefix, std::string_view start, bool exclusive,
                  SequenceNumber at, bool keys_only, size_t max_items, size_t max_bytes,
                  std::vector<ScanItem>* items, bool* exhausted) {
  thread_local std::string scratch;
  std::shared_lock lock(mu_);
  Status status;
  size_t bytes = 0;
  *exhausted = true;
  if (start < prefix) {
    start = prefix;
    exclusive = false;
  }
  index_->ScanFrom(start, exclusive, [&](std::string_view key, const IndexEntry& entry) {
    if (key.substr(0, prefix.size()) != prefix) return false;
    if (items->size() >= max_items || bytes >= max_bytes) {
      *exhausted = false;
      return false;
    }
    RecordHeader h;
    uint64_t offset = entry.offset;
    uint64_t size = entry.record_size;
    if (entry.sequence > at) {
      bool found = false;
      status = ResolveLocked(key, entry, at, &found, &h, &offset);
      if (!status.ok()) return false;
      if (!found || h.deleted()) return true;
      size = h.record_size();
    } else if (entry.deleted) {
      return true;
    } else if (keys_only) {
      items->push_back(ScanItem{std::string(key), {}, entry.sequence});
      bytes += key.size();
      return true;
    }
    if (keys_only) {
      items->push_back(ScanItem{std::string(key), {}, h.sequence});
      bytes += key.size();
      return true;
    }
    std::string_view record;
    status = ViewRecordLocked(offset, size, &h, &scratch, &record);
    if (!status.ok()) return false;
    ScanItem item{std::string(key), {}, h.sequence};
    status = ValueFromRecord(h, record, /*prefix=*/0, &item.value);
    if (!status.ok()) return false;
    bytes += item.key.size() + item.value.size();
    items->push_back(std::move(item));
    return true;
  });
  return status;
}

Status Page::ReserveLocked(uint64_t bytes) {
  const uint64_t end = EndLocked();
  if (end + bytes <= reserved_end_) return Status::OK();
  const uint64_t len = std::max(bytes, kReserveChunk);
  KV_RETURN_IF_ERROR(file_->Reserve(end, len));
  reserved_end_ = end + len;
  return Status::OK();
}

Status Page::AppendLocked(PagePart* part, SequenceNumber seq, uint64_t time_ns,
                          uint32_t batch_pages) {
  part->base_offset = EndLocked();
  // Later records of the same key in this part chain to the earlier ones.
  const bool use_map = part->recs.size() > 16;
  std::unordered_map<std::string_view, uint64_t> in_part;
  for (size_t i = 0; i < part->recs.size(); ++i) {
    PagePart::Rec& rec = part->recs[i];
    uint64_t prev = kNoPrev;
    bool in_batch = false;
    if (use_map) {
      auto it = in_part.find(rec.key);
      if (it != in_part.end()) {
        prev = it->second;
        in_batch = true;
      }
      in_part[rec.key] = part->base_offset + rec.offset_in_buf;
    } else {
      for (size_t j = i; j-- > 0;) {
        if (part->recs[j].key == rec.key) {
          prev = part->base_offset + part->recs[j].offset_in_buf;
          in_batch = true;
          break;
        }
      }
    }
    if (!in_batch) {
      const IndexEntry* e = index_->Find(rec.key);
      if (e != nullptr) prev = e->offset;
    }
    rec.header.sequence = seq;
    rec.header.time_ns = time_ns;
    rec.header.prev = prev;
    rec.header.part_records = static_cast<uint32_t>(part->recs.size());
    rec.header.batch_pages = batch_pages;
    EncodeRecordHeader(rec.header, part->buf.data() + rec.offset_in_buf);
  }
  if (wbuf_.empty() && part->buf.size() >= kWriteBufferLimit) {
    return file_->Append(part->buf.data(), part->buf.size());
  }
  wbuf_.append(part->buf);
  return wbuf_.size() >= kWriteBufferLimit ? FlushLocked() : Status::OK();
}

Status Page::FlushLocked() {
  if (wbuf_.empty()) return Status::OK();
  const uint64_t end = file_->Size();
  Status s = file_->Append(wbuf_.data(), wbuf_.size());
  if (!s.ok()) {
    // Keep the buffer: what is indexed stays readable while the store refuses new writes.
    file_->Truncate(end).IgnoreError();
    return s;
  }
  wbuf_.clear();
  if (wbuf_.capacity() > 4 * kWriteBufferLimit) wbuf_.shrink_to_fit();
  return s;
}

Status Page::Flush() {
  std::unique_lock lock(mu_);
  return FlushLocked();
}

void Page::ApplyLocked(const PagePart& part) {
  for (const PagePart::Rec& rec : part.recs) {
    IndexRecord(rec.key, rec.header, part.base_offset + rec.offset_in_buf, index_.get(),
                &counters_);
  }
  if (part.recs.empty()) return;
  const RecordHeader& h = part.recs.back().header;
  max_sequence_ = h.sequence;
  last_group_ = RecoveredGroup{h.sequence, part.base_offset, h.batch_pages};
}

Status Page::RollbackLocked(uint64_t end) {
  if (end >= file_->Size()) {
    wbuf_.resize(std::min<uint64_t>(wbuf_.size(), end - file_->Size()));
    return Status::OK();
  }
  wbuf_.clear();
  return file_->Truncate(end);
}

Page::Tail Page::UnjournaledTail() {
  std::shared_lock lock(mu_);
  return Tail{generation_, journaled_end_, EndLocked()};
}

Page::Tail Page::UnsyncedTail() {
  std::shared_lock lock(mu_);
  return Tail{generation_, synced_end_, EndLocked()};
}

Status Page::ReadTail(const Tail& tail, std::string* bytes, bool* current) {
  std::shared_lock lock(mu_);
  *current = tail.generation == generation_;
  if (!*current) return Status::OK();
  bytes->resize(tail.to - tail.from);
  size_t got = 0;
  KV_RETURN_IF_ERROR(ReadLocked(*file_, true, tail.from, bytes->size(), bytes->data(), &got));
  if (got != bytes->size()) return CorruptionAt(tail.from, Status::Corruption("short tail read"));
  return Status::OK();
}

void Page::MarkJournaled(const Tail& tail) {
  std::unique_lock lock(mu_);
  if (tail.generation == generation_) journaled_end_ = std::max(journaled_end_, tail.to);
}

Status Page::SyncFile() {
  std::shared_ptr<File> file;
  Tail tail;
  {
    std::unique_lock lock(mu_);
    KV_RETURN_IF_ERROR(FlushLocked());
    file = file_;
    tail = Tail{generation_, synced_end_, file_->Size()};
  }
  KV_RETURN_IF_ERROR(file->Sync());
  std::unique_lock lock(mu_);
  if (tail.generation == generation_) {
    synced_end_ = std::max(synced_end_, tail.to);
    journaled_end_ = std::max(journaled_end_, tail.to);
  }
  return Status::OK();
}

Status Page::TrimReservation() {
  std::unique_lock lock(mu_);
  KV_RETURN_IF_ERROR(FlushLocked());
  if (reserved_end_ <= file_->Size()) return Status::OK();
  // Truncating to the current length frees the blocks fallocate reserved past it.
  KV_RETURN_IF_ERROR(file_->Truncate(file_->Size()));
  reserved_end_ = file_->Size();
  return Status::OK();
}

Page::End Page::CaptureEnd() {
  std::shared_lock lock(mu_);
  return End{generation_, EndLocked(), max_sequence_};
}

void Page::SetDurableEnd(uint64_t generation, uint64_t offset, SequenceNumber watermark) {
  std::unique_lock lock(mu_);
  if (generation != generation_ || offset < durable_end_) return;
  durable_end_ = offset;
  durable_watermark_ = std::max(durable_watermark_, watermark);
}

ShardStats Page::Stats() {
  std::shared_lock lock(mu_);
  ShardStats s;
  s.live_keys = counters_.live_keys;
  s.tombstones = counters_.tombstones;
  s.records = counters_.records;
  s.file_bytes = EndLocked();
  s.live_bytes = counters_.live_bytes;
  s.garbage_bytes = s.file_bytes - std::min(s.file_bytes, counters_.live_bytes + kPageHeaderSize);
  s.raw_value_bytes = counters_.raw_value_bytes;
  s.stored_value_bytes = counters_.stored_value_bytes;
  s.compactions = compactions_;
  return s;
}

size_t Page::IndexMemory() {
  std::shared_lock lock(mu_);
  return index_->MemoryUsage();
}

uint64_t Page::CompactableGarbage() {
  ShardStats s = Stats();
  std::shared_lock lock(mu_);
  return s.garbage_bytes > garbage_after_compaction_ ? s.garbage_bytes - garbage_after_compaction_
                                                     : 0;
}

}  // namespace kv

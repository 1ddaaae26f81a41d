// Page compaction (copy what the retention rules keep into a new file, then swap it in) and
// hint files (index snapshots that make reopening fast).
#include <algorithm>
#include <cstdio>

#include "kv/coding.h"
#include "kv/page.h"
#include "kv/record_scanner.h"

namespace kv {

using namespace format;

namespace {

constexpr size_t kCopyBuffer = 1 << 20;

// Hint layout: magic, version u32, page u32, generation u64, store_id u64, covered u64,
// records u64, raw_value_bytes u64, stored_value_bytes u64, compactions u64,
// max_sequence u64, last group (sequence u64, offset u64, batch pages u32), entry count u64,
// entries, crc32c u32 of everything before it.
// Entry: key_len u16, key, offset u64, sequence u64, record_size u32, value_size u32 whose
// top bit marks a tombstone.
constexpr size_t kHintHeaderSize = 8 + 4 + 4 + 8 * 11 + 4;

// One version of a key as found by walking its chain.
struct ChainVersion {
  VersionInfo info;
  uint64_t offset;
  uint64_t size;
};

// A record compaction copies.
struct KeptRecord {
  uint64_t old_offset;
  uint64_t size;
  SequenceNumber sequence;
  int64_t older;  // index of the key's next older kept record, or -1
  uint64_t new_offset = 0;
  uint32_t part_records = 1;  // kept records of its batch, contiguous in the new file
};

// Buffers appends to a file.
class BufferedAppender {
 public:
  explicit BufferedAppender(File* file) : file_(file) {}
  Status Add(std::string_view data) {
    buf_.append(data);
    return buf_.size() >= kCopyBuffer ? Flush() : Status::OK();
  }
  Status Flush() {
    Status s = file_->Append(buf_.data(), buf_.size());
    buf_.clear();
    return s;
  }

 private:
  File* file_;
  std::string buf_;
};

}  // namespace

std::string HintFileName(uint32_t index) {
  char name[32];
  std::snprintf(name, sizeof(name), "page-%04u.hint", index);
  return name;
}

std::string Page::HintPath() const { return dir_ + "/" + HintFileName(index_no_); }

Status ReadHintSummary(Env* env, const std::string& path, HintSummary* summary) {
  if (!env->FileExists(path)) return Status::NotFound(path);
  std::string data;
  KV_RETURN_IF_ERROR(ReadWholeFile(env, path, &data));
  if (data.size() < kHintHeaderSize + 4 || std::string_view(data).substr(0, sizeof(kHintMagic)) !=
                                               std::string_view(kHintMagic, sizeof(kHintMagic))) {
    return Status::Corruption("not a hint file");
  }
  if (Crc32(data.data(), data.size() - 4) != DecodeFixed32(data.data() + data.size() - 4)) {
    return Status::Corruption("hint checksum mismatch");
  }
  Decoder d(data.data() + sizeof(kHintMagic), data.size() - sizeof(kHintMagic) - 4);
  uint32_t version = 0;
  if (!d.GetFixed32(&version) || !d.GetFixed32(&summary->page) ||
      !d.GetFixed64(&summary->generation) || !d.GetFixed64(&summary->store_id) ||
      !d.GetFixed64(&summary->covered)) {
    return Status::Corruption("hint truncated");
  }
  if (version != kFormatVersion) {
    return Status::Corruption("hint format version " + std::to_string(version));
  }
  return Status::OK();
}

// REQUIRES: mu_ held. Encodes the index as it stands at `covered`.
static std::string EncodeHint(uint32_t page, uint64_t generation, uint64_t store_id,
                              uint64_t covered, uint64_t records, uint64_t raw, uint64_t stored,
                              uint64_t compactions, SequenceNumber max_seq,
                              const RecoveredGroup& last_group, const KeyIndex& index) {
  std::string out(kHintMagic, sizeof(kHintMagic));
  PutFixed32(&out, kFormatVersion);
  PutFixed32(&out, page);
  PutFixed64(&out, generation);
  PutFixed64(&out, store_id);
  PutFixed64(&out, covered);
  PutFixed64(&out, records);
  PutFixed64(&out, raw);
  PutFixed64(&out, stored);
  PutFixed64(&out, compactions);
  PutFixed64(&out, max_seq);
  PutFixed64(&out, last_group.sequence);
  PutFixed64(&out, last_group.offset);
  PutFixed32(&out, last_group.batch_pages);
  PutFixed64(&out, index.size());
  index.ScanFrom({}, false, [&](std::string_view key, const IndexEntry& e) {
    PutFixed16(&out, static_cast<uint16_t>(key.size()));
    out.append(key);
    PutFixed64(&out, e.offset);
    PutFixed64(&out, e.sequence);
    PutFixed32(&out, e.record_size);
    PutFixed32(&out, e.value_size | (e.deleted ? 0x80000000u : 0));
    return true;
  });
  PutFixed32(&out, Crc32(out.data(), out.size()));
  return out;
}

bool Page::LoadHintLocked(uint64_t file_size, uint64_t* covered, RecoveredGroup* last_group) {
  std::string data;
  if (!env_->FileExists(HintPath()) || !ReadWholeFile(env_, HintPath(), &data).ok()) return false;
  if (data.size() < kHintHeaderSize + 4 ||
      std::string_view(data).substr(0, sizeof(kHintMagic)) !=
          std::string_view(kHintMagic, sizeof(kHintMagic)) ||
      Crc32(data.data(), data.size() - 4) != DecodeFixed32(data.data() + data.size() - 4)) {
    return false;
  }
  Decoder d(data.data() + sizeof(kHintMagic), data.size() - sizeof(kHintMagic) - 4);
  uint32_t version = 0, page = 0;
  uint64_t generation = 0, store_id = 0, count = 0, compactions = 0, max_seq = 0;
  Counters c;
  if (!d.GetFixed32(&version) || !d.GetFixed32(&page) || !d.GetFixed64(&generation) ||
      !d.GetFixed64(&store_id) || !d.GetFixed64(covered) || !d.GetFixed64(&c.records) ||
      !d.GetFixed64(&c.raw_value_bytes) || !d.GetFixed64(&c.stored_value_bytes) ||
      !d.GetFixed64(&compactions) || !d.GetFixed64(&max_seq) ||
      !d.GetFixed64(&last_group->sequence) || !d.GetFixed64(&last_group->offset) ||
      !d.GetFixed32(&last_group->batch_pages) || !d.GetFixed64(&count)) {
    return false;
  }
  if (version != kFormatVersion || page != index_no_ || generation != generation_ ||
      store_id != store_id_ || *covered < kPageHeaderSize || *covered > file_size) {
    return false;
  }
  std::string key;
  for (uint64_t i = 0; i < count; ++i) {
    uint16_t key_len = 0;
    uint32_t size_and_flag = 0;
    IndexEntry e;
    uint64_t offset = 0, seq = 0;
    uint32_t record_size = 0;
    if (!d.GetFixed16(&key_len) || !d.GetBytes(key_len, &key) || !d.GetFixed64(&offset) ||
        !d.GetFixed64(&seq) || !d.GetFixed32(&record_size) || !d.GetFixed32(&size_and_flag)) {
      return false;
    }
    e.offset = offset;
    e.sequence = seq;
    e.record_size = record_size;
    e.value_size = size_and_flag & 0x7fffffffu;
    e.deleted = (size_and_flag >> 31) != 0;
    index_->Upsert(key, e, nullptr);
    if (e.deleted) {
      ++c.tombstones;
    } else {
      ++c.live_keys;
      c.live_bytes += record_size;
    }
  }
  counters_ = c;
  compactions_ = compactions;
  max_sequence_ = max_seq;
  return true;
}

Status Page::WriteHint() {
  std::string hint;
  {
    std::shared_lock lock(mu_);
    if (durable_end_ != EndLocked()) return Status::OK();  // the next close writes it
    hint = EncodeHint(index_no_, generation_, store_id_, EndLocked(), counters_.records,
                      counters_.raw_value_bytes, counters_.stored_value_bytes, compactions_,
                      max_sequence_, last_group_, *index_);
  }
  return WriteFileAtomically(env_, HintPath(), hint);
}

Status Page::Compact(const RetentionPolicy& policy, const std::vector<SequenceNumber>& snapshots,
                     SequenceNumber protect, double min_reclaim) {
  std::lock_guard compact_lock(compact_mu_);
  if (read_only_) return Status::InvalidArgument("store is open read-only");

  // 1. Take the page's state at its durable end E: everything below E is in the file and
  // immutable. For each key, note its newest version below E (walking back from newer
  // versions, which may still be in the write buffer, needs the lock).
  std::shared_ptr<File> old_file;
  uint64_t end = 0;
  uint64_t generation = 0;
  SequenceNumber watermark = 0;
  std::vector<std::pair<std::string, uint64_t>> keys;  // key, offset of a version below E
  {
    std::shared_lock lock(mu_);
    old_file = file_;
    end = durable_end_;
    watermark = durable_watermark_;
    generation = generation_ + 1;
    keys.reserve(index_->size());
    Status status;
    index_->ScanFrom({}, false, [&](std::string_view key, const IndexEntry& e) {
      uint64_t off = e.offset;
      while (off != kNoPrev && off >= end) {
        RecordHeader h;
        status = ReadHeaderLocked(*file_, true, off, &h);
        if (!status.ok()) return false;
        off = h.prev < off ? h.prev : kNoPrev;
      }
      if (off != kNoPrev) keys.emplace_back(std::string(key), off);
      return true;
    });
    KV_RETURN_IF_ERROR(status);
  }

  // 2. Walk each key's versions and choose what to keep. Runs without mu_.
  std::vector<KeptRecord> kept;
  // Garbage kept for the retention policy or a snapshot: an older version under a newer one
  // below E, or a tombstone. (A newest version below E replaced by a write since is garbage
  // the next compaction drops.)
  uint64_t retained_garbage = 0;
  std::vector<std::pair<size_t, size_t>> newest_kept;  // (key index, kept index)
  std::vector<ChainVersion> chain;
  std::vector<VersionInfo> infos;
  for (size_t k = 0; k < keys.size(); ++k) {
    chain.clear();
    for (uint64_t off = keys[k].second; off != kNoPrev;) {
      RecordHeader h;
      KV_RETURN_IF_ERROR(ReadHeaderLocked(*old_file, false, off, &h));
      if (h.prev != kNoPrev && h.prev >= off) {
        return CorruptionAt(off, Status::Corruption("version chain points forward"));
      }
      chain.push_back(
          ChainVersion{VersionInfo{h.sequence, h.time_ns, h.deleted() ? 0 : h.raw_len, h.deleted()},
                       off, h.record_size()});
      off = h.prev;
    }
    if (chain.empty()) continue;
    infos.clear();
    for (const ChainVersion& v : chain) infos.push_back(v.info);
    std::vector<bool> keep(chain.size(), false);
    policy.Select(keys[k].first, infos, &keep);
    keep.resize(chain.size());
    // The newest live version always stays, and so does every record of the batches that
    // may be the newest after a crash (the store's newest, the watermark's), which recovery
    // uses to tell whether that batch is whole.
    if (!chain[0].info.deleted || chain[0].info.sequence == protect ||
        chain[0].info.sequence == watermark) {
      keep[0] = true;
    }
    for (SequenceNumber snap : snapshots) {
      for (size_t i = 0; i < chain.size(); ++i) {
        if (chain[i].info.sequence <= snap) {
          keep[i] = true;
          break;
        }
      }
    }
    // Keeping an older version under a dropped newest one would bring it back to life.
    if (std::find(keep.begin() + 1, keep.end(), true) != keep.end()) keep[0] = true;
    int64_t older = -1;
    for (size_t i = chain.size(); i-- > 0;) {
      if (!keep[i]) continue;
      if (i > 0 || chain[i].info.deleted) retained_garbage += chain[i].size;
      kept.push_back(KeptRecord{chain[i].offset, chain[i].size, chain[i].info.sequence, older});
      older = static_cast<int64_t>(kept.size() - 1);
    }
    if (older >= 0) newest_kept.emplace_back(k, static_cast<size_t>(older));
  }

  uint64_t kept_bytes = kPageHeaderSize;
  for (const KeptRecord& k : kept) kept_bytes += k.size;
  if (min_reclaim > 0 && static_cast<double>(end - std::min(end, kept_bytes)) <
                             min_reclaim * static_cast<double>(end)) {
    // Not worth a copy; count the garbage below E as the page's baseline, so that only
    // garbage made from now on triggers the next background attempt.
    std::unique_lock lock(mu_);
    garbage_after_compaction_ = end - std::min(end, kept_bytes) + retained_garbage;
    return Status::OK();
  }

  // 3. Copy the kept records in their original (sequence) order into a new file.
  const std::string tmp_path = path_ + ".compact";
  std::unique_ptr<File> new_file;
  KV_RETURN_IF_ERROR(env_->OpenFile(tmp_path, Env::OpenMode::kCreateTruncate, &new_file));
  auto fail = [&](Status s) {
    new_file.reset();
    env_->RemoveFile(tmp_path).IgnoreError();
    return s;
  };
  std::vector<size_t> order(kept.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return kept[a].old_offset < kept[b].old_offset; });
  uint64_t total = kPageHeaderSize;
  for (size_t i : order) {
    kept[i].new_offset = total;
    total += kept[i].size;
  }
  // What is kept of one batch stays one group (same sequence number, contiguous).
  for (size_t run = 0; run < order.size();) {
    size_t next = run + 1;
    while (next < order.size() && kept[order[next]].sequence == kept[order[run]].sequence) ++next;
    for (size_t j = run; j < next; ++j)
      kept[order[j]].part_records = static_cast<uint32_t>(next - run);
    run = next;
  }
  Status s = new_file->Reserve(0, total);
  if (!s.ok()) return fail(s);
  BufferedAppender out(new_file.get());
  s = out.Add(EncodePageHeader(index_no_, generation, store_id_));
  if (!s.ok()) return fail(s);
  auto new_index = std::make_unique<KeyIndex>();
  Counters counters;
  SequenceNumber max_seq = 0;
  std::string record;
  for (size_t i : order) {
    RecordHeader h;
    s = ReadRecordLocked(*old_file, false, kept[i].old_offset, kept[i].size, &h, &record);
    if (!s.ok()) return fail(s);
    h.prev = kept[i].older >= 0 ? kept[static_cast<size_t>(kept[i].older)].new_offset : kNoPrev;
    h.part_records = kept[i].part_records;
    h.batch_pages = 1;  // everything here is below the durable watermark: no cross-page check
    EncodeRecordHeader(h, record.data());
    max_seq = std::max(max_seq, h.sequence);
    counters.records++;
    counters.raw_value_bytes += h.raw_len;
    counters.stored_value_bytes += h.value_len;
    s = out.Add(record);
    if (!s.ok()) return fail(s);
  }
  // Index the newest kept version of each key, in key order.
  for (auto [k, idx] : newest_kept) {
    RecordHeader h;
    s = ReadHeaderLocked(*old_file, false, kept[idx].old_offset, &h);
    if (!s.ok()) return fail(s);
    Counters ignored;
    h.prev = kNoPrev;
    IndexRecord(keys[k].first, h, kept[idx].new_offset, new_index.get(), &ignored);
    if (h.deleted()) {
      ++counters.tombstones;
    } else {
      ++counters.live_keys;
      counters.live_bytes += kept[idx].size;
    }
  }
  s = out.Flush();
  if (s.ok()) s = new_file->Sync();
  if (!s.ok()) return fail(s);
  const uint64_t compacted_end = new_file->Size();
  uint64_t compactions = 0;
  {
    std::shared_lock lock(mu_);
    compactions = compactions_ + 1;
  }
  // The hint covers only the compacted part: everything in it is durable. It names the new
  // generation, so until the rename below it does not match the page and is ignored.
  s = WriteFileAtomically(
      env_, HintPath(),
      EncodeHint(index_no_, generation, store_id_, compacted_end, counters.records,
                 counters.raw_value_bytes, counters.stored_value_bytes, compactions, max_seq,
                 RecoveredGroup{max_seq, kPageHeaderSize, 1}, *new_index));
  if (!s.ok()) return fail(s);

  // 4. Under the lock, copy what was appended meanwhile, then swap the files.
  RecoveredGroup last_group{max_seq, kPageHeaderSize, 1};
  std::unique_lock lock(mu_);
  s = FlushLocked();
  if (!s.ok()) return fail(s);
  RecordScanner tail(*file_, end, file_->Size());
  for (;;) {
    RecordScanner::Result result;
    RecordHeader h;
    std::string_view rec;
    uint64_t offset = 0;
    s = tail.Next(&result, &h, &rec, &offset);
    if (!s.ok()) return fail(CorruptionAt(end, s));
    if (result != RecordScanner::Result::kRecord) break;
    std::string_view key = rec.substr(kRecordHeaderSize, h.key_len);
    const IndexEntry* e = new_index->Find(key);
    h.prev = e != nullptr ? e->offset : kNoPrev;
    record.assign(rec);
    EncodeRecordHeader(h, record.data());
    uint64_t new_offset = compacted_end + (offset - end);
    IndexRecord(key, h, new_offset, new_index.get(), &counters);
    max_seq = std::max(max_seq, h.sequence);
    if (h.sequence != last_group.sequence)
      last_group = RecoveredGroup{h.sequence, new_offset, h.batch_pages};
    s = out.Add(record);
    if (!s.ok()) return fail(s);
  }
  s = out.Flush();
  if (s.ok()) s = new_file->Sync();
  if (s.ok()) s = env_->Rename(tmp_path, path_);
  if (!s.ok()) return fail(s);
  // Past the rename the new file is the page; a failed directory sync only risks that a
  // crash brings back the old file, which holds the same data.
  Status dir_status = env_->SyncDir(dir_);
  file_ = std::move(new_file);
  index_ = std::move(new_index);
  counters_ = counters;
  generation_ = generation;
  max_sequence_ = max_seq;
  last_group_ = last_group;
  compactions_ = compactions;
  reserved_end_ = file_->Size();
  synced_end_ = journaled_end_ = file_->Size();
  durable_end_ = compacted_end + (durable_end_ > end ? durable_end_ - end : 0);
  // Only what the rules keep is a baseline: versions that writes made during the copy
  // replaced are garbage for the next background compaction.
  garbage_after_compaction_ = retained_garbage;
  return dir_status;
}

}  // namespace kv

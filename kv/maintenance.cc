// Verify, repair and reshard: store-wide maintenance that works on the files directly.
#include "kv/maintenance.h"

#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <functional>
#include <limits>
#include <optional>
#include <set>
#include <unordered_map>

#include "kv/coding.h"
#include "kv/compression.h"
#include "kv/format.h"
#include "kv/journal.h"
#include "kv/page.h"
#include "kv/page_store.h"
#include "kv/record_scanner.h"
#include "kv/superblock.h"

namespace kv {

using namespace format;

namespace {

constexpr char kReshardSuffix[] = ".reshard-tmp";
constexpr char kJournalFile[] = "JOURNAL";
constexpr uint64_t kProgressStep = 4 << 20;

std::string StripSlashes(std::string dir) {
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  return dir;
}

std::string PagePath(const std::string& dir, uint32_t page) {
  return dir + "/" + PageFileName(page);
}

std::string At(uint32_t page, uint64_t offset) {
  return PageFileName(page) + " offset " + std::to_string(offset);
}

// Reports progress now and then, and at the end.
class Progress {
 public:
  Progress(const ProgressFn& fn, uint64_t total) : fn_(fn), total_(total) {}
  void Add(uint64_t bytes) {
    done_ += bytes;
    if (fn_ && done_ >= reported_ + kProgressStep) Report();
  }
  void Report() {
    reported_ = done_;
    if (fn_) fn_(std::min(done_, total_), total_);
  }

 private:
  const ProgressFn& fn_;
  const uint64_t total_;
  uint64_t done_ = 0;
  uint64_t reported_ = 0;
};

// RecordScanner::Next, telling `progress` about the bytes it moved past.
Status NextCounted(RecordScanner* scanner, Progress* progress, RecordScanner::Result* result,
                   RecordHeader* header, std::string_view* record, uint64_t* offset) {
  const uint64_t before = scanner->position();
  KV_RETURN_IF_ERROR(scanner->Next(result, header, record, offset));
  progress->Add(scanner->position() - before);
  return Status::OK();
}

// What a page file's header says.
struct PageHeaderInfo {
  bool valid = false;  // magic and checksum verify
  uint32_t version = 0;
  uint32_t page = 0;
  uint64_t generation = 0;
  uint64_t store_id = 0;
};

Status ReadPageHeader(const File& file, PageHeaderInfo* info, std::string* problem) {
  char header[kPageHeaderSize];
  size_t got = 0;
  KV_RETURN_IF_ERROR(file.Read(0, kPageHeaderSize, header, &got));
  *info = PageHeaderInfo{};
  problem->clear();
  if (got < kPageHeaderSize || std::memcmp(header, kPageMagic, sizeof(kPageMagic)) != 0) {
    *problem = "not a kvfs page file (bad header)";
  } else if (DecodeFixed32(header + 32) != Crc32(header, 32)) {
    *problem = "page header checksum mismatch";
  } else {
    info->valid = true;
    info->version = DecodeFixed32(header + 8);
    info->page = DecodeFixed32(header + 12);
    info->generation = DecodeFixed64(header + 16);
    info->store_id = DecodeFixed64(header + 24);
  }
  return Status::OK();
}

// A hint file, read whole and checked (layout: EncodeHint in kv/page_compact.cc; the
// identity fields as ReadHintSummary reads them, which checks nothing more).
struct HintFile {
  HintSummary summary;
  std::string data;
  size_t entries_at = 0;  // where the entries begin in `data`
  uint64_t entry_count = 0;
};

// NotFound when `path` is missing, Corruption when its magic, checksum or version is wrong.
Status ReadHintFile(Env* env, const std::string& path, HintFile* hint) {
  if (!env->FileExists(path)) return Status::NotFound(path);
  KV_RETURN_IF_ERROR(ReadWholeFile(env, path, &hint->data));
  const std::string& data = hint->data;
  if (data.size() < sizeof(kHintMagic) + 4 ||
      std::memcmp(data.data(), kHintMagic, sizeof(kHintMagic)) != 0) {
    return Status::Corruption("not a hint file");
  }
  if (Crc32(data.data(), data.size() - 4) != DecodeFixed32(data.data() + data.size() - 4)) {
    return Status::Corruption("hint checksum mismatch");
  }
  Decoder d(data.data() + sizeof(kHintMagic), data.size() - sizeof(kHintMagic) - 4);
  uint32_t version = 0, batch_pages = 0;
  uint64_t unused = 0;
  bool ok = d.GetFixed32(&version) && d.GetFixed32(&hint->summary.page) &&
            d.GetFixed64(&hint->summary.generation) && d.GetFixed64(&hint->summary.store_id) &&
            d.GetFixed64(&hint->summary.covered);
  // Records, raw and stored value bytes, compactions, max sequence, and the last batch
  // part's sequence, offset and page count.
  for (int i = 0; ok && i < 7; ++i) ok = d.GetFixed64(&unused);
  ok = ok && d.GetFixed32(&batch_pages) && d.GetFixed64(&hint->entry_count);
  if (!ok) return Status::Corruption("hint truncated");
  if (version != kFormatVersion) {
    return Status::Corruption("hint format version " + std::to_string(version));
  }
  hint->entries_at = static_cast<size_t>(d.position() - data.data());
  return Status::OK();
}

// Calls `visit` with each entry of `hint`, in key order: a key and the offset of its newest
// record when the hint was written. Corruption when the entries do not decode (after
// visiting those before).
Status ForEachHintEntry(const HintFile& hint,
                        const std::function<void(std::string_view key, uint64_t offset)>& visit) {
  Decoder d(hint.data.data() + hint.entries_at, hint.data.size() - hint.entries_at - 4);
  std::string key;
  for (uint64_t i = 0; i < hint.entry_count; ++i) {
    uint16_t key_len = 0;
    uint64_t offset = 0, sequence = 0;
    uint32_t record_size = 0, value_size = 0;
    if (!d.GetFixed16(&key_len) || !d.GetBytes(key_len, &key) || !d.GetFixed64(&offset) ||
        !d.GetFixed64(&sequence) || !d.GetFixed32(&record_size) || !d.GetFixed32(&value_size)) {
      return Status::Corruption("hint entries truncated");
    }
    visit(key, offset);
  }
  return Status::OK();
}

// Buffers appends to a file.
class Appender {
 public:
  explicit Appender(std::unique_ptr<File> file, size_t limit = 1 << 20)
      : file_(std::move(file)), limit_(limit) {}
  Status Add(std::string_view data) {
    buf_.append(data);
    return buf_.size() >= limit_ ? Flush() : Status::OK();
  }
  Status Flush() {
    Status s = file_->Append(buf_.data(), buf_.size());
    buf_.clear();
    return s;
  }
  Status FlushAndSync() {
    KV_RETURN_IF_ERROR(Flush());
    return file_->Sync();
  }

 private:
  std::unique_ptr<File> file_;
  const size_t limit_;
  std::string buf_;
};

// Removes every file of `path`, then the directory itself.
Status RemoveStoreDir(Env* env, const std::string& path) {
  std::vector<std::string> names;
  KV_RETURN_IF_ERROR(env->ListDir(path, &names));
  // LOCK last: while it exists, another remover has to take it first.
  std::stable_partition(names.begin(), names.end(),
                        [](const std::string& n) { return n != kLockFile; });
  for (const std::string& name : names) KV_RETURN_IF_ERROR(env->RemoveFile(path + "/" + name));
  if (::rmdir(path.c_str()) != 0 && errno != ENOENT) {
    return Status::FromErrno(errno, "rmdir " + path);
  }
  return env->SyncDir(ParentDir(path));
}

bool IsStoreFileName(const std::string& name) {
  return name == kSuperblockFile || name == kLockFile || name == kJournalFile ||
         name.starts_with("page-") || name.ends_with(".tmp");
}

// ---- Verify ----

// Damaged bytes [begin, end) of a page, the problem that reports them, and the keys found
// to have lost data there so far.
struct Damage {
  uint64_t begin = 0;
  uint64_t end = 0;
  size_t problem = 0;  // index in VerifyReport::problems
  std::set<std::string, std::less<>> keys;
  bool capped = false;

  void Add(std::string_view key) {
    if (keys.size() < VerifyProblem::kMaxLostKeys) {
      keys.emplace(key);
    } else if (keys.find(key) == keys.end()) {
      capped = true;
    }
  }
};

// The damage in `damages` (sorted by offset, not overlapping) that holds `offset`, or null.
Damage* FindDamage(std::vector<Damage>* damages, uint64_t offset) {
  auto it = std::upper_bound(damages->begin(), damages->end(), offset,
                             [](uint64_t off, const Damage& d) { return off < d.begin; });
  if (it == damages->begin()) return nullptr;
  --it;
  return offset < it->end ? &*it : nullptr;
}

class Verifier {
 public:
  Verifier(Env* env, std::string dir, const VerifyOptions& options, VerifyReport* report)
      : env_(env), dir_(std::move(dir)), options_(options), report_(report) {}

  Status Run();

 private:
  // Both return the index of the problem in report_->problems.
  size_t Problem(int64_t page, std::string message) {
    VerifyProblem p;
    p.page = page;
    p.message = std::move(message);
    report_->problems.push_back(std::move(p));
    return report_->problems.size() - 1;
  }
  size_t ProblemAt(uint32_t page, uint64_t offset, const std::string& what,
                   const std::string* key) {
    VerifyProblem p;
    p.page = page;
    p.has_offset = true;
    p.offset = offset;
    if (key != nullptr) {
      p.has_key = true;
      p.key = *key;
    }
    p.message = At(page, offset) + ": " + what;
    report_->problems.push_back(std::move(p));
    return report_->problems.size() - 1;
  }
  Status VerifyPage(uint32_t page, Progress* progress);
  // Adds to `damages` (sorted by offset) the keys whose newest record lies in them according
  // to the page's hint file, when that hint is of this page, `store_id` (none: use no hint)
  // and `generation` (none: any); then moves every damage's keys to its problem.
  void SettleLostKeys(uint32_t page, std::optional<uint64_t> store_id,
                      std::optional<uint64_t> generation, std::vector<Damage>* damages);

  Env* const env_;
  const std::string dir_;
  const VerifyOptions& options_;
  VerifyReport* const report_;
  bool have_superblock_ = false;
  Superblock sb_;
};

Status Verifier::Run() {
  if (!env_->FileExists(dir_)) return Status::NotFound("no kvfs store at " + dir_);
  std::vector<std::string> names;
  KV_RETURN_IF_ERROR(env_->ListDir(dir_, &names));
  uint32_t pages_present = 0;  // one more than the highest page file number found
  for (const std::string& name : names) {
    unsigned n = 0;
    char tail = 0;
    if (std::sscanf(name.c_str(), "page-%4u.k%c", &n, &tail) == 2 && tail == 'v' &&
        name == PageFileName(n)) {
      pages_present = std::max(pages_present, n + 1);
    }
  }
  Status s = ReadSuperblock(env_, dir_, &sb_);
  if (s.IsNotSupported()) return s;
  if (s.ok()) {
    have_superblock_ = true;
    report_->page_count = sb_.page_count;
    report_->durable_sequence = sb_.durable_sequence;
  } else if (s.IsNotFound() && pages_present == 0) {
    return Status::NotFound("no kvfs store at " + dir_ + " (no SUPERBLOCK)");
  } else {
    // Check the page files there are, without knowing the store's identity.
    Problem(-1, std::string(kSuperblockFile) + ": " + s.message());
    report_->page_count = pages_present;
  }
  if (have_superblock_ && pages_present > sb_.page_count) {
    report_->notes.push_back("page files beyond the superblock's " +
                             std::to_string(sb_.page_count) + " pages are ignored");
  }

  std::vector<JournalRange> ranges;
  s = Journal::ReadAll(env_, dir_, &ranges);
  if (!s.ok()) {
    Problem(-1, std::string(kJournalFile) + ": " + s.message());
  } else if (!ranges.empty()) {
    report_->notes.push_back(std::string(kJournalFile) + " holds " + std::to_string(ranges.size()) +
                             " page tails not yet checkpointed (replayed on the next open)");
  }

  uint64_t total = 0;
  for (uint32_t i = 0; i < report_->page_count; ++i) {
    std::unique_ptr<File> file;
    if (env_->FileExists(PagePath(dir_, i)) &&
        env_->OpenFile(PagePath(dir_, i), Env::OpenMode::kRead, &file).ok()) {
      total += file->Size();
    }
  }
  Progress progress(options_.progress, total);
  for (uint32_t i = 0; i < report_->page_count; ++i) KV_RETURN_IF_ERROR(VerifyPage(i, &progress));
  progress.Report();
  return Status::OK();
}

Status Verifier::VerifyPage(uint32_t page, Progress* progress) {
  const std::string name = PageFileName(page);
  const std::string path = PagePath(dir_, page);
  if (!env_->FileExists(path)) {
    std::vector<Damage> all(1);
    all[0].end = std::numeric_limits<uint64_t>::max();
    all[0].problem = Problem(page, name + " is missing (its records are lost)");
    // Without the superblock the store id is unknown, and so is whether the hint is ours.
    SettleLostKeys(page, have_superblock_ ? std::optional(sb_.store_id) : std::nullopt,
                   std::nullopt, &all);
    return Status::OK();
  }
  std::unique_ptr<File> file;
  KV_RETURN_IF_ERROR(env_->OpenFile(path, Env::OpenMode::kRead, &file));
  // A writer may append meanwhile: check what was there when we started.
  const uint64_t size = file->Size();
  ++report_->pages;
  report_->bytes += size;

  PageHeaderInfo header;
  std::string problem;
  KV_RETURN_IF_ERROR(ReadPageHeader(*file, &header, &problem));
  if (!header.valid) {
    Problem(page, name + ": " + problem);
  } else if (header.version > kFormatVersion) {
    Problem(page, name + ": page format version " + std::to_string(header.version) +
                      " is newer than this kvfs supports");
  } else if (header.page != page) {
    Problem(page, name + ": header names page " + std::to_string(header.page));
  } else if (have_superblock_ && header.store_id != sb_.store_id) {
    Problem(page, name + ": page file belongs to another store");
  }

  // The hint tells how far the page had been written when it was made.
  uint64_t covered = 0;
  bool hint_current = false;
  constexpr size_t kNone = std::numeric_limits<size_t>::max();
  size_t truncation_problem = kNone;
  HintSummary hint;
  Status hs = ReadHintSummary(env_, dir_ + "/" + HintFileName(page), &hint);
  if (hs.ok() && header.valid && hint.page == page && hint.store_id == header.store_id &&
      hint.generation == header.generation) {
    hint_current = true;
    covered = hint.covered;
    if (covered > size) {
      truncation_problem = Problem(
          page, name + " is " + std::to_string(size) + " bytes but its hint file says it had " +
                    std::to_string(covered) + ": the page was truncated and lost data");
    }
  } else if (!hs.ok() && !hs.IsNotFound()) {
    report_->notes.push_back(HintFileName(page) + ": " + hs.message() +
                             " (ignored; rewritten on the next clean close)");
  }

  struct Link {
    uint64_t offset;
    uint64_t key_hash;
  };
  std::vector<Link> links;  // every record with a verified header, in file order
  auto key_hash = [](std::string_view key) { return std::hash<std::string_view>{}(key); };
  SequenceNumber page_max = 0;
  SequenceNumber group_seq = 0;
  uint64_t group_offset = 0;
  uint32_t group_have = 0, group_want = 0;
  // Framing next to damaged bytes is not reported again: the damage is the problem.
  bool damaged = false, group_damaged = false;
  std::string value;
  // The damaged bytes found, in file order, and the keys that lost data in them.
  std::vector<Damage> damages;

  RecordScanner scanner(*file, kPageHeaderSize, std::max<uint64_t>(size, kPageHeaderSize), true);
  progress->Add(std::min<uint64_t>(size, kPageHeaderSize));
  for (;;) {
    RecordScanner::Result result;
    RecordHeader h;
    std::string_view record;
    uint64_t offset = 0;
    KV_RETURN_IF_ERROR(NextCounted(&scanner, progress, &result, &h, &record, &offset));
    if (result == RecordScanner::Result::kEnd) break;
    if (result == RecordScanner::Result::kTornTail) {
      progress->Add(size - scanner.position());
      const uint64_t at = scanner.position();
      if (at < covered) {
        Damage d;
        d.begin = at;
        d.end = size;
        d.problem = ProblemAt(page, at,
                              "incomplete record below the hint's " + std::to_string(covered) +
                                  ": the page lost data",
                              nullptr);
        damages.push_back(std::move(d));
      } else {
        report_->notes.push_back(At(page, at) + ": torn tail of " + std::to_string(size - at) +
                                 " bytes (an incomplete last write: normal while the store is "
                                 "open or after a crash)");
      }
      break;
    }
    if (result == RecordScanner::Result::kCorrupt) {
      std::string what = scanner.corruption();
      if (scanner.skipped() > (scanner.corrupt_header_valid() ? h.record_size() : 0)) {
        what += " (" + std::to_string(scanner.skipped()) + " bytes unreadable)";
      }
      Damage d;
      d.begin = offset;
      d.end = offset + scanner.skipped();
      if (scanner.corrupt_header_valid()) {
        links.push_back(Link{offset, key_hash(scanner.corrupt_key())});
        d.problem = ProblemAt(page, offset, what, &scanner.corrupt_key());
      } else {
        d.problem = ProblemAt(page, offset, what, nullptr);
      }
      damages.push_back(std::move(d));
      damaged = group_damaged = true;
      continue;
    }
    const std::string key(record.substr(kRecordHeaderSize, h.key_len));
    ++report_->records;
    report_->max_sequence = std::max(report_->max_sequence, h.sequence);
    links.push_back(Link{offset, key_hash(key)});
    // Batch framing: the records of a part are contiguous and say how many they are.
    const bool in_group = group_have > 0 && group_have < group_want;
    if (in_group && h.sequence != group_seq && !group_damaged) {
      ProblemAt(page, group_offset,
                "incomplete batch part (sequence " + std::to_string(group_seq) + ")", nullptr);
    }
    if (!in_group || h.sequence != group_seq) {
      if (page_max != 0 && (h.sequence < page_max || (h.sequence == page_max && !damaged))) {
        ProblemAt(page, offset, "sequence number " + std::to_string(h.sequence) + " out of order",
                  &key);
      }
      group_seq = h.sequence;
      group_offset = offset;
      group_have = 0;
      group_want = h.part_records;
      group_damaged = damaged;
      damaged = false;
    }
    ++group_have;
    page_max = std::max(page_max, h.sequence);
    if (h.prev != kNoPrev) {
      // An older version of this key was in damaged bytes.
      if (Damage* d = FindDamage(&damages, h.prev)) d->Add(key);
      auto it = std::lower_bound(links.begin(), links.end(), h.prev,
                                 [](const Link& l, uint64_t off) { return l.offset < off; });
      if (h.prev >= offset || it == links.end() || it->offset != h.prev ||
          it->key_hash != links.back().key_hash) {
        ProblemAt(page, offset,
                  "version chain broken: previous version at " + std::to_string(h.prev) +
                      " is not one of this key",
                  &key);
      }
    }
    if (options_.check_values && h.compressed()) {
      Status s = DecompressValue(record.substr(kRecordHeaderSize + h.key_len, h.value_len),
                                 h.raw_len, &value);
      if (!s.ok()) ProblemAt(page, offset, "compressed value: " + s.message(), &key);
    }
  }
  if (group_have > 0 && group_have < group_want && !group_damaged) {
    if (scanner.position() < covered) {
      ProblemAt(page, group_offset, "incomplete batch part below the hint's covered offset",
                nullptr);
    } else {
      report_->notes.push_back(At(page, group_offset) +
                               ": incomplete last batch part (an interrupted write)");
    }
  }
  if (truncation_problem != kNone) {
    Damage d;  // after every other damage: they all lie before `size`
    d.begin = size;
    d.end = std::numeric_limits<uint64_t>::max();
    d.problem = truncation_problem;
    damages.push_back(std::move(d));
  }
  if (!damages.empty()) {
    SettleLostKeys(page, hint_current ? std::optional(header.store_id) : std::nullopt,
                   header.generation, &damages);
  }
  return Status::OK();
}

void Verifier::SettleLostKeys(uint32_t page, std::optional<uint64_t> store_id,
                              std::optional<uint64_t> generation, std::vector<Damage>* damages) {
  HintFile hint;
  // A hint that is not current (or not there, or not readable) tells nothing about the
  // page file: only what the scan found is reported. The hint is read again because a
  // writer may have replaced it since; it must still describe this file.
  const bool use_hint = store_id.has_value() &&
                        ReadHintFile(env_, dir_ + "/" + HintFileName(page), &hint).ok() &&
                        hint.summary.page == page && hint.summary.store_id == *store_id &&
                        (!generation || hint.summary.generation == *generation);
  if (use_hint) {
    // A malformed entry (with a good checksum) ends the list: what came before stands.
    ForEachHintEntry(hint, [&](std::string_view key, uint64_t offset) {
      if (Damage* d = FindDamage(damages, offset)) d->Add(key);
    }).IgnoreError();
  }
  for (Damage& d : *damages) {
    VerifyProblem& p = report_->problems[d.problem];
    p.lost_keys.assign(d.keys.begin(), d.keys.end());
    p.lost_keys_capped = d.capped;
  }
}

// ---- Repair ----

struct ScannedRecord {
  uint64_t offset;
  uint64_t size;
  SequenceNumber sequence;
  uint32_t part_records;
  uint32_t batch_pages;
  std::string key;
};

class Repairer {
 public:
  Repairer(Env* env, std::string dir, const RepairOptions& options, RepairReport* report)
      : env_(env), dir_(std::move(dir)), options_(options), report_(report) {}
  Status Run();

 private:
  void Drop(int64_t page, uint64_t offset, uint64_t bytes, const std::string* key,
            std::string message) {
    RepairAction a{
        page, offset, bytes, key != nullptr, key != nullptr ? *key : "", std::move(message)};
    report_->dropped.push_back(std::move(a));
  }
  Status ReplayJournal(const std::vector<bool>& recreated);
  Status RepairPage(uint32_t page, Progress* progress);
  Status RewritePage(uint32_t page, const File& old, uint64_t generation,
                     const std::vector<ScannedRecord>& records, uint64_t torn_at, uint64_t size);

  Env* const env_;
  const std::string dir_;
  const RepairOptions& options_;
  RepairReport* const report_;
  Superblock sb_;
};

Status Repairer::Run() {
  if (!env_->FileExists(dir_ + "/" + kSuperblockFile)) {
    return Status::NotFound("no kvfs store at " + dir_ + " (no SUPERBLOCK)");
  }
  std::unique_ptr<FileLock> lock;
  KV_RETURN_IF_ERROR(env_->LockFile(dir_ + "/" + kLockFile, &lock));
  Status s = ReadSuperblock(env_, dir_, &sb_);
  if (s.IsNotSupported()) return s;
  if (!s.ok()) return Status::Corruption("cannot repair " + dir_ + ": " + s.message());

  std::vector<std::string> names;
  KV_RETURN_IF_ERROR(env_->ListDir(dir_, &names));
  for (const std::string& name : names) {
    if (name.ends_with(".compact") || name.ends_with(".tmp")) {
      KV_RETURN_IF_ERROR(env_->RemoveFile(dir_ + "/" + name));
    }
  }
  std::vector<bool> recreated(sb_.page_count, false);
  for (uint32_t i = 0; i < sb_.page_count; ++i) {
    if (env_->FileExists(PagePath(dir_, i))) continue;
    const std::string hint = dir_ + "/" + HintFileName(i);
    if (env_->FileExists(hint)) KV_RETURN_IF_ERROR(env_->RemoveFile(hint));
    Page empty(env_, dir_, i, sb_.store_id);
    KV_RETURN_IF_ERROR(empty.Create());
    recreated[i] = true;
    ++report_->pages_recreated;
    Drop(i, 0, 0, nullptr,
         PageFileName(i) + " was missing (its records are lost); recreated empty");
  }
  KV_RETURN_IF_ERROR(env_->SyncDir(dir_));
  KV_RETURN_IF_ERROR(ReplayJournal(recreated));

  uint64_t total = 0;
  for (uint32_t i = 0; i < sb_.page_count; ++i) {
    std::unique_ptr<File> file;
    KV_RETURN_IF_ERROR(env_->OpenFile(PagePath(dir_, i), Env::OpenMode::kRead, &file));
    total += file->Size();
  }
  Progress progress(options_.progress, total);
  for (uint32_t i = 0; i < sb_.page_count; ++i) {
    if (!recreated[i]) KV_RETURN_IF_ERROR(RepairPage(i, &progress));
  }
  progress.Report();
  lock.reset();

  // Recovery does the rest (torn tails, batches above the watermark, lost writes), then a
  // clean close moves the watermark to the end and writes fresh hints.
  Options o;
  o.env = env_;
  o.create_if_missing = false;
  o.background_compaction = false;
  o.sharder = NameOnlySharder(sb_.sharder_name);
  std::unique_ptr<Store> store;
  s = OpenPageStore(o, dir_, &store);
  if (!s.ok()) {
    return s.IsBusy() ? s : Status::Corruption("the repaired store does not open: " + s.ToString());
  }
  report_->last_sequence = store->LastSequence();
  store.reset();
  return Status::OK();
}

// As recovery does (PageStore::ReplayJournal), but what cannot be put back is dropped and
// reported instead of failing.
Status Repairer::ReplayJournal(const std::vector<bool>& recreated) {
  std::vector<JournalRange> ranges;
  Status s = Journal::ReadAll(env_, dir_, &ranges);
  if (!s.ok()) {
    Drop(-1, 0, 0, nullptr, std::string(kJournalFile) + " unreadable, discarded: " + s.message());
    ranges.clear();
  }
  for (const JournalRange& r : ranges) {
    if (r.page >= sb_.page_count || recreated[r.page]) {
      Drop(r.page, r.offset, r.bytes.size(), nullptr,
           "journaled bytes of a missing page file discarded");
      continue;
    }
    ReplayOutcome outcome;
    KV_RETURN_IF_ERROR(ReplayJournalRange(env_, PagePath(dir_, r.page), r, &outcome));
    if (outcome == ReplayOutcome::kTooShort) {
      Drop(r.page, r.offset, r.bytes.size(), nullptr,
           "journaled bytes discarded: the page file is shorter than where they belong");
    }
  }
  std::unique_ptr<Journal> journal;
  KV_RETURN_IF_ERROR(Journal::Open(env_, dir_, &journal));
  return journal->Reset();
}

Status Repairer::RepairPage(uint32_t page, Progress* progress) {
  const std::string name = PageFileName(page);
  const std::string path = PagePath(dir_, page);
  std::unique_ptr<File> file;
  KV_RETURN_IF_ERROR(env_->OpenFile(path, Env::OpenMode::kRead, &file));
  const uint64_t size = file->Size();
  PageHeaderInfo header;
  std::string problem;
  KV_RETURN_IF_ERROR(ReadPageHeader(*file, &header, &problem));
  if (header.valid && header.version > kFormatVersion) {
    return Status::NotSupported(name + ": page format version " + std::to_string(header.version) +
                                " is newer than this kvfs supports");
  }
  if (header.valid && (header.page != page || header.store_id != sb_.store_id)) {
    // Not this page: keep it aside rather than mixing its records in.
    const std::string aside = path + ".foreign";
    KV_RETURN_IF_ERROR(env_->Rename(path, aside));
    const std::string hint = dir_ + "/" + HintFileName(page);
    if (env_->FileExists(hint)) KV_RETURN_IF_ERROR(env_->RemoveFile(hint));
    Page empty(env_, dir_, page, sb_.store_id);
    KV_RETURN_IF_ERROR(empty.Create());
    KV_RETURN_IF_ERROR(env_->SyncDir(dir_));
    ++report_->pages_recreated;
    Drop(page, 0, size, nullptr,
         name + " belongs to another store or page: set aside as " + name +
             ".foreign and replaced by an empty page");
    progress->Add(size);
    return Status::OK();
  }
  bool damaged = !header.valid;
  if (damaged) Drop(page, 0, kPageHeaderSize, nullptr, name + ": " + problem);

  HintSummary hint;
  if (header.valid && ReadHintSummary(env_, dir_ + "/" + HintFileName(page), &hint).ok() &&
      hint.page == page && hint.store_id == sb_.store_id && hint.generation == header.generation &&
      hint.covered > size) {
    damaged = true;
    Drop(page, size, hint.covered - size, nullptr,
         name + " was truncated: the bytes its hint covered past its end are lost");
  }

  std::vector<ScannedRecord> records;
  RecordScanner scanner(*file, kPageHeaderSize, std::max<uint64_t>(size, kPageHeaderSize), true);
  progress->Add(std::min<uint64_t>(size, kPageHeaderSize));
  uint64_t torn_at = size;
  SequenceNumber max_seq = 0;
  uint32_t have = 0;
  for (;;) {
    RecordScanner::Result result;
    RecordHeader h;
    std::string_view record;
    uint64_t offset = 0;
    KV_RETURN_IF_ERROR(NextCounted(&scanner, progress, &result, &h, &record, &offset));
    if (result == RecordScanner::Result::kEnd) break;
    if (result == RecordScanner::Result::kTornTail) {
      torn_at = scanner.position();
      progress->Add(size - torn_at);
      break;
    }
    if (result == RecordScanner::Result::kCorrupt) {
      damaged = true;
      const bool known = scanner.corrupt_header_valid();
      Drop(page, offset, scanner.skipped(), known ? &scanner.corrupt_key() : nullptr,
           At(page, offset) + ": " + scanner.corruption());
      continue;
    }
    // Framing that recovery refuses: a part cut short or a sequence number going back.
    if (!records.empty() && have < records.back().part_records &&
        h.sequence != records.back().sequence) {
      damaged = true;
    }
    if (records.empty() || have >= records.back().part_records ||
        h.sequence != records.back().sequence) {
      if (h.sequence <= max_seq && max_seq != 0) damaged = true;
      have = 0;
    }
    ++have;
    max_seq = std::max(max_seq, h.sequence);
    records.push_back(ScannedRecord{offset, h.record_size(), h.sequence, h.part_records,
                                    h.batch_pages,
                                    std::string(record.substr(kRecordHeaderSize, h.key_len))});
  }
  if (!damaged) return Status::OK();  // a torn tail is recovery's business
  return RewritePage(page, *file, header.valid ? header.generation + 1 : 1, records, torn_at, size);
}

Status Repairer::RewritePage(uint32_t page, const File& old, uint64_t generation,
                             const std::vector<ScannedRecord>& records, uint64_t torn_at,
                             uint64_t size) {
  if (torn_at < size) {
    Drop(page, torn_at, size - torn_at, nullptr, At(page, torn_at) + ": torn tail");
  }
  // Choose what to keep, batch part by batch part (runs of one sequence number).
  struct Kept {
    size_t index;
    uint32_t part_records;
    uint32_t batch_pages;
  };
  std::vector<Kept> kept;
  SequenceNumber last_kept = 0;
  for (size_t run = 0; run < records.size();) {
    const ScannedRecord& first = records[run];
    size_t next = run + 1;
    while (next < records.size() && records[next].sequence == first.sequence) ++next;
    const auto count = static_cast<uint32_t>(next - run);
    std::string why;
    if (first.sequence <= last_kept && last_kept != 0) {
      why = "sequence number out of order";
    } else if (first.sequence <= sb_.durable_sequence) {
      // At or below the watermark recovery checks no batches: keep what there is.
      for (size_t i = run; i < next; ++i) kept.push_back(Kept{i, count, 1});
      last_kept = first.sequence;
    } else if (count == first.part_records) {
      for (size_t i = run; i < next; ++i) kept.push_back(Kept{i, count, first.batch_pages});
      last_kept = first.sequence;
    } else {
      why = "record of batch " + std::to_string(first.sequence) +
            ", above the durable watermark, that lost other records";
    }
    if (!why.empty()) {
      for (size_t i = run; i < next; ++i) {
        Drop(page, records[i].offset, records[i].size, &records[i].key,
             At(page, records[i].offset) + ": " + why);
      }
    }
    run = next;
  }

  const std::string path = PagePath(dir_, page);
  const std::string tmp_path = path + ".repair.tmp";
  std::unique_ptr<File> new_file;
  KV_RETURN_IF_ERROR(env_->OpenFile(tmp_path, Env::OpenMode::kCreateTruncate, &new_file));
  Appender out(std::move(new_file));
  KV_RETURN_IF_ERROR(out.Add(EncodePageHeader(page, generation, sb_.store_id)));
  uint64_t end = kPageHeaderSize;
  std::unordered_map<std::string, uint64_t> newest;  // key -> its newest kept record
  std::string record;
  for (const Kept& k : kept) {
    const ScannedRecord& r = records[k.index];
    record.resize(r.size);
    size_t got = 0;
    KV_RETURN_IF_ERROR(old.Read(r.offset, r.size, record.data(), &got));
    RecordHeader h;
    Status s =
        got == r.size ? DecodeRecordHeader(record.data(), &h) : Status::Corruption("short read");
    if (s.ok()) s = VerifyRecordData(h, record);
    if (!s.ok()) return Status::Corruption(At(page, r.offset) + " changed during repair");
    auto it = newest.find(r.key);
    h.prev = it != newest.end() ? it->second : kNoPrev;
    h.part_records = k.part_records;
    h.batch_pages = k.batch_pages;
    EncodeRecordHeader(h, record.data());
    newest[r.key] = end;
    end += r.size;
    KV_RETURN_IF_ERROR(out.Add(record));
  }
  KV_RETURN_IF_ERROR(out.FlushAndSync());
  // The old hint describes the old file; without one, recovery scans the new file.
  const std::string hint = dir_ + "/" + HintFileName(page);
  if (env_->FileExists(hint)) KV_RETURN_IF_ERROR(env_->RemoveFile(hint));
  KV_RETURN_IF_ERROR(env_->Rename(tmp_path, path));
  KV_RETURN_IF_ERROR(env_->SyncDir(dir_));
  ++report_->pages_rewritten;
  report_->records_kept += kept.size();
  return Status::OK();
}

// ---- Reshard ----

// One record of the old store, for sorting by sequence number.
struct ReshardEntry {
  uint64_t old_offset;
  uint64_t new_offset;
  SequenceNumber sequence;
  uint32_t size;
  uint32_t old_page;
  uint32_t new_page;
  uint32_t part_records;
};

class Resharder {
 public:
  Resharder(Env* env, std::string dir, uint32_t new_count, const ReshardOptions& options)
      : env_(env),
        dir_(std::move(dir)),
        tmp_(dir_ + kReshardSuffix),
        new_count_(new_count),
        options_(options),
        sharder_(options.sharder ? options.sharder.get() : WholeKeySharder()) {}
  Status Run();

 private:
  Status ScanOldPages();
  Status Build();
  Status CheckBuilt();

  Env* const env_;
  const std::string dir_;
  const std::string tmp_;
  uint32_t new_count_;  // 0 until Run reads the superblock: keep the page count
  const ReshardOptions& options_;
  const Sharder* const sharder_;
  Superblock sb_;
  std::vector<std::unique_ptr<File>> old_files_;
  std::vector<ReshardEntry> entries_;  // in (old page, offset) order
  std::vector<size_t> page_begin_;     // old page -> its first entry
  SequenceNumber max_sequence_ = 0;
  uint64_t total_bytes_ = 0;
};

Status Resharder::Run() {
  if (new_count_ > 65536) return Status::InvalidArgument("page count must be 1..65536");
  KV_RETURN_IF_ERROR(ReadSuperblock(env_, dir_, &sb_));
  if (new_count_ == 0) new_count_ = sb_.page_count;
  // A store of an earlier sharder moves to the current one: every record is placed anew.
  if (sb_.sharder_name != sharder_->Name() &&
      !FindSharder(sb_.sharder_name, options_.earlier_sharders)) {
    return Status::InvalidArgument("store at " + dir_ + " was created with sharder '" +
                                   sb_.sharder_name + "', not '" + sharder_->Name() + "'");
  }
  // 1. Recover the store and close it cleanly: then every record is whole and at or below
  // the watermark, the journal is empty, and batch framing no longer matters.
  {
    Options o;
    o.env = env_;
    o.create_if_missing = false;
    o.background_compaction = false;
    o.sharder = NameOnlySharder(sb_.sharder_name);
    std::unique_ptr<Store> store;
    KV_RETURN_IF_ERROR(OpenPageStore(o, dir_, &store));
  }
  std::unique_ptr<FileLock> lock;
  KV_RETURN_IF_ERROR(env_->LockFile(dir_ + "/" + kLockFile, &lock));
  KV_RETURN_IF_ERROR(RemoveReshardLeftovers(env_, dir_));
  KV_RETURN_IF_ERROR(ReadSuperblock(env_, dir_, &sb_));
  std::unique_ptr<File> journal;
  if (env_->FileExists(dir_ + "/" + kJournalFile)) {
    KV_RETURN_IF_ERROR(env_->OpenFile(dir_ + "/" + kJournalFile, Env::OpenMode::kRead, &journal));
    if (journal->Size() != 0) {
      return Status::Busy("store at " + dir_ + " was written by another process during reshard");
    }
  }
  KV_RETURN_IF_ERROR(ScanOldPages());

  // 2. Build the new store next to the old one; on failure, take it away again (a crash
  // leaves it for the next reshard or open to remove).
  Status s = Build();
  if (s.ok()) s = CheckBuilt();
  std::unique_ptr<FileLock> tmp_lock;
  if (s.ok()) s = env_->LockFile(tmp_ + "/" + kLockFile, &tmp_lock);
  if (!s.ok()) {
    tmp_lock.reset();
    if (env_->FileExists(tmp_)) RemoveStoreDir(env_, tmp_).IgnoreError();
    return s;
  }

  // 3. Swap: both directories are complete and durable, so either name state is a store.
  s = ExchangeDirectories(tmp_, dir_);
  if (!s.ok()) {
    tmp_lock.reset();
    RemoveStoreDir(env_, tmp_).IgnoreError();
    return s;
  }
  // Until this sync a crash may bring back the old name state: the old store, also complete.
  KV_RETURN_IF_ERROR(env_->SyncDir(ParentDir(dir_)));
  // 4. The old store is now at tmp_ and no longer needed (we still hold both locks). If it
  // cannot be removed now, the next open does it: the reshard itself is done.
  old_files_.clear();
  RemoveStoreDir(env_, tmp_).IgnoreError();
  return Status::OK();
}

Status Resharder::ScanOldPages() {
  page_begin_.resize(sb_.page_count + 1);
  for (uint32_t page = 0; page < sb_.page_count; ++page) {
    page_begin_[page] = entries_.size();
    std::unique_ptr<File> file;
    KV_RETURN_IF_ERROR(env_->OpenFile(PagePath(dir_, page), Env::OpenMode::kRead, &file));
    PageHeaderInfo header;
    std::string problem;
    KV_RETURN_IF_ERROR(ReadPageHeader(*file, &header, &problem));
    if (!header.valid || header.page != page || header.store_id != sb_.store_id) {
      return Status::Corruption(PageFileName(page) + ": bad page header; repair the store first");
    }
    const uint64_t size = file->Size();
    total_bytes_ += size - kPageHeaderSize;  // the bytes of the records copied
    RecordScanner scanner(*file, kPageHeaderSize, size);
    for (;;) {
      RecordScanner::Result result;
      RecordHeader h;
      std::string_view record;
      uint64_t offset = 0;
      Status s = scanner.Next(&result, &h, &record, &offset);
      if (!s.ok()) return Status::Corruption(PageFileName(page) + " " + s.message());
      if (result == RecordScanner::Result::kEnd) break;
      if (result != RecordScanner::Result::kRecord) {
        return Status::Busy(PageFileName(page) + " ends in an incomplete record: the store was " +
                            "written by another process during reshard");
      }
      if (h.sequence > sb_.durable_sequence) {
        return Status::Busy("store at " + dir_ + " was written by another process during reshard");
      }
      const std::string_view key = record.substr(kRecordHeaderSize, h.key_len);
      entries_.push_back(ReshardEntry{offset, 0, h.sequence, static_cast<uint32_t>(h.record_size()),
                                      page, PageForKey(*sharder_, key, new_count_), 0});
      max_sequence_ = std::max(max_sequence_, h.sequence);
    }
    old_files_.push_back(std::move(file));
  }
  page_begin_[sb_.page_count] = entries_.size();
  return Status::OK();
}

Status Resharder::Build() {
  // Sequence order; within one batch, the old file order (which keeps a key's versions in
  // order: they all lived in one old page).
  std::vector<size_t> order(entries_.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return entries_[a].sequence < entries_[b].sequence; });
  // Place the records; a batch's records in one new page form one part.
  std::vector<uint64_t> end(new_count_, kPageHeaderSize);
  std::vector<uint32_t> in_page(new_count_, 0);
  for (size_t run = 0; run < order.size();) {
    size_t next = run;
    while (next < order.size() && entries_[order[next]].sequence == entries_[order[run]].sequence) {
      ReshardEntry& e = entries_[order[next]];
      e.new_offset = end[e.new_page];
      end[e.new_page] += e.size;
      ++in_page[e.new_page];
      ++next;
    }
    for (size_t i = run; i < next; ++i) {
      ReshardEntry& e = entries_[order[i]];
      e.part_records = in_page[e.new_page];
    }
    for (size_t i = run; i < next; ++i) in_page[entries_[order[i]].new_page] = 0;
    run = next;
  }

  KV_RETURN_IF_ERROR(env_->CreateDir(tmp_));
  std::vector<std::unique_ptr<Appender>> pages;
  for (uint32_t i = 0; i < new_count_; ++i) {
    std::unique_ptr<File> file;
    KV_RETURN_IF_ERROR(env_->OpenFile(PagePath(tmp_, i), Env::OpenMode::kCreateTruncate, &file));
    KV_RETURN_IF_ERROR(file->Reserve(0, end[i]));
    pages.push_back(std::make_unique<Appender>(std::move(file), 256 << 10));
    KV_RETURN_IF_ERROR(pages.back()->Add(EncodePageHeader(i, 0, sb_.store_id)));
  }
  Progress progress(options_.progress, total_bytes_);
  std::string record;
  for (size_t idx : order) {
    const ReshardEntry& e = entries_[idx];
    record.resize(e.size);
    size_t got = 0;
    KV_RETURN_IF_ERROR(old_files_[e.old_page]->Read(e.old_offset, e.size, record.data(), &got));
    RecordHeader h;
    Status s =
        got == e.size ? DecodeRecordHeader(record.data(), &h) : Status::Corruption("short read");
    if (s.ok()) s = VerifyRecordData(h, record);
    if (!s.ok()) return Status::Corruption(At(e.old_page, e.old_offset) + ": " + s.message());
    if (h.prev != kNoPrev) {
      // The previous version lived in the same old page and moves to the same new page.
      auto first = entries_.begin() + static_cast<ptrdiff_t>(page_begin_[e.old_page]);
      auto last = entries_.begin() + static_cast<ptrdiff_t>(page_begin_[e.old_page + 1]);
      auto it = std::lower_bound(first, last, h.prev, [](const ReshardEntry& x, uint64_t off) {
        return x.old_offset < off;
      });
      if (it == last || it->old_offset != h.prev || it->new_page != e.new_page) {
        return Status::Corruption(At(e.old_page, e.old_offset) + ": version chain broken");
      }
      h.prev = it->new_offset;
    }
    h.part_records = e.part_records;
    h.batch_pages = 1;  // everything is at or below the watermark
    EncodeRecordHeader(h, record.data());
    KV_RETURN_IF_ERROR(pages[e.new_page]->Add(record));
    progress.Add(e.size);
  }
  for (auto& page : pages) KV_RETURN_IF_ERROR(page->FlushAndSync());
  pages.clear();
  Superblock sb = sb_;
  sb.page_count = new_count_;
  sb.sharder_name = sharder_->Name();
  sb.durable_sequence = std::max(sb_.durable_sequence, max_sequence_);
  KV_RETURN_IF_ERROR(WriteSuperblock(env_, tmp_, sb));  // syncs the directory
  KV_RETURN_IF_ERROR(env_->SyncDir(ParentDir(tmp_)));
  progress.Report();
  return Status::OK();
}

Status Resharder::CheckBuilt() {
  // Opening runs the full recovery over the new pages, and closing writes their hints.
  Options o;
  o.env = env_;
  o.create_if_missing = false;
  o.background_compaction = false;
  o.sharder = options_.sharder;
  std::unique_ptr<Store> store;
  KV_RETURN_IF_ERROR(OpenPageStore(o, tmp_, &store));
  const StoreStats stats = store->Stats();
  if (store->LastSequence() != max_sequence_ || stats.Total().records != entries_.size()) {
    return Status::Corruption(
        "resharded store at " + tmp_ + " holds " + std::to_string(stats.Total().records) +
        " records up to sequence " + std::to_string(store->LastSequence()) + ", expected " +
        std::to_string(entries_.size()) + " up to " + std::to_string(max_sequence_));
  }
  store.reset();
  return env_->SyncDir(tmp_);
}

}  // namespace

Status VerifyStore(const std::string& dir, const VerifyOptions& options, VerifyReport* report) {
  *report = VerifyReport{};
  Env* env = options.env != nullptr ? options.env : Env::Default();
  Verifier verifier(env, StripSlashes(dir), options, report);
  return verifier.Run();
}

Status RepairStore(const std::string& dir, const RepairOptions& options, RepairReport* report) {
  *report = RepairReport{};
  Env* env = options.env != nullptr ? options.env : Env::Default();
  Repairer repairer(env, StripSlashes(dir), options, report);
  return repairer.Run();
}

Status ReshardStore(const std::string& dir, uint32_t new_page_count,
                    const ReshardOptions& options) {
  Env* env = options.env != nullptr ? options.env : Env::Default();
  Resharder resharder(env, StripSlashes(dir), new_page_count, options);
  return resharder.Run();
}

Status RemoveReshardLeftovers(Env* env, const std::string& dir) {
  const std::string tmp = StripSlashes(dir) + kReshardSuffix;
  if (!env->FileExists(tmp)) return Status::OK();
  std::vector<std::string> names;
  KV_RETURN_IF_ERROR(env->ListDir(tmp, &names));
  for (const std::string& name : names) {
    if (!IsStoreFileName(name)) {
      return Status::InvalidArgument(tmp + " holds " + name + ", not a store file: not removed");
    }
  }
  // An interrupted reshard holds this lock until it dies.
  std::unique_ptr<FileLock> lock;
  KV_RETURN_IF_ERROR(env->LockFile(tmp + "/" + kLockFile, &lock));
  return RemoveStoreDir(env, tmp);
}

}  // namespace kv

// PageStore: opening and recovery, batched writes with group commit, reads, compaction and
// the background thread. The iterator is in store_iterator.cc.
#include "kv/page_store.h"

#include <xxhash.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <map>
#include <random>
#include <span>

#include "kv/coding.h"
#include "kv/format.h"
#include "kv/maintenance.h"

namespace kv {

using namespace format;

namespace {

uint64_t NowNs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

// Runs f(i) for i in [0, n) on up to `threads` threads (the caller's included).
void ParallelFor(size_t n, size_t threads, const std::function<void(size_t)>& f) {
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t i; (i = next.fetch_add(1)) < n;) f(i);
  };
  std::vector<std::thread> pool;
  for (size_t t = 1; t < std::min(n, threads); ++t) pool.emplace_back(work);
  work();
  for (std::thread& t : pool) t.join();
}

// The exclusive page locks of one batch, without allocating for small batches.
class PageLocks {
 public:
  explicit PageLocks(size_t n) {
    if (n > kInline) heap_.resize(n);
  }
  ~PageLocks() { Unlock(); }
  PageLocks(const PageLocks&) = delete;
  PageLocks& operator=(const PageLocks&) = delete;
  void Lock(std::shared_mutex& mu) {
    mu.lock();
    (heap_.empty() ? inline_[count_] : heap_[count_]) = &mu;
    ++count_;
  }
  void Unlock() {
    for (size_t i = 0; i < count_; ++i) (heap_.empty() ? inline_[i] : heap_[i])->unlock();
    count_ = 0;
  }

 private:
  static constexpr size_t kInline = 8;
  std::shared_mutex* inline_[kInline] = {};
  std::vector<std::shared_mutex*> heap_;
  size_t count_ = 0;
};

class StoreSnapshot final : public Snapshot {
 public:
  StoreSnapshot(std::shared_ptr<SnapshotList> list, SequenceNumber seq)
      : list_(std::move(list)), seq_(list_->Add(seq)) {}
  ~StoreSnapshot() override { list_->Remove(seq_); }
  SequenceNumber sequence() const override { return seq_; }

 private:
  std::shared_ptr<SnapshotList> list_;
  const SequenceNumber seq_;
};

constexpr auto kWatermarkInterval = std::chrono::seconds(5);
// A background compaction that would reclaim less than this fraction of a page skips the copy.
constexpr double kMinBackgroundReclaim = 0.2;
constexpr auto kFlushInterval = std::chrono::milliseconds(200);
// A group commit journals page tails up to this size; larger ones fdatasync the pages.
constexpr uint64_t kMaxJournalCommit = 1 << 20;
// A journal larger than this is checkpointed by the next group commit.
constexpr uint64_t kJournalCheckpointBytes = 64 << 20;

}  // namespace

SequenceNumber SnapshotList::Add(SequenceNumber seq) {
  std::lock_guard lock(mu_);
  seqs_.insert(seq);
  return seq;
}

void SnapshotList::Remove(SequenceNumber seq) {
  std::lock_guard lock(mu_);
  seqs_.erase(seqs_.find(seq));
}

std::vector<SequenceNumber> SnapshotList::Sequences() {
  std::lock_guard lock(mu_);
  return std::vector<SequenceNumber>(seqs_.begin(), seqs_.end());
}

std::unique_ptr<Iterator> NewStoreIterator(PageStore* store, std::shared_ptr<const Snapshot> pin,
                                           SequenceNumber at, bool keys_only,
                                           std::string_view prefix);

Status OpenPageStore(const Options& options, const std::string& dir,
                     std::unique_ptr<Store>* store) {
  return PageStore::Open(options, dir, store);
}

Status DestroyPageStore(const std::string& dir, Env* env) {
  if (env == nullptr) env = Env::Default();
  std::vector<std::string> names;
  KV_RETURN_IF_ERROR(env->ListDir(dir, &names));
  for (const std::string& name : names) {
    if (name == kSuperblockFile || name == kLockFile || name == "JOURNAL" ||
        name.rfind("page-", 0) == 0 || name.rfind(std::string(kSuperblockFile) + ".", 0) == 0) {
      KV_RETURN_IF_ERROR(env->RemoveFile(dir + "/" + name));
    }
  }
  return env->SyncDir(dir);
}

PageStore::PageStore(const Options& options, std::string dir)
    : options_(options),
      dir_(std::move(dir)),
      env_(options.env != nullptr ? options.env : Env::Default()),
      sharder_holder_(options.sharder) {
  sharder_ = sharder_holder_ ? sharder_holder_.get() : WholeKeySharder();
  compression_.level = options.compression_level;
  compression_.min_size = options.compression_min_size;
  compression_.stored_prefix = options.compression_stored_prefix;
  retention_ = options.retention ? options.retention : KeepLatestPolicy();
}

Status PageStore::Open(const Options& options, const std::string& dir,
                       std::unique_ptr<Store>* store) {
  if (options.compression_level < 0 || options.compression_level > 9) {
    return Status::InvalidArgument("compression level must be 0..9");
  }
  if (options.salvage && !options.read_only) {
    return Status::InvalidArgument("a salvage open must be read-only");
  }
  std::unique_ptr<PageStore> s(new PageStore(options, dir));
  KV_RETURN_IF_ERROR(s->Recover());
  s->recovered_ = true;
  if (!options.read_only) s->bg_thread_ = std::thread([p = s.get()] { p->BackgroundLoop(); });
  *store = std::move(s);
  return Status::OK();
}

Status PageStore::CreateNew() {
  if (options_.page_count == 0 || options_.page_count > 65536) {
    return Status::InvalidArgument("page count must be 1..65536");
  }
  std::random_device rd;
  superblock_.format_version = kFormatVersion;
  superblock_.page_count = options_.page_count;
  superblock_.store_id = (static_cast<uint64_t>(rd()) << 32) ^ rd() ^ NowNs();
  superblock_.durable_sequence = 0;
  superblock_.created_ns = NowNs();
  superblock_.sharder_name = sharder_->Name();
  // Page files first, the superblock last: a store without a superblock is not a store yet.
  for (uint32_t i = 0; i < superblock_.page_count; ++i) {
    Page page(env_, dir_, i, superblock_.store_id);
    KV_RETURN_IF_ERROR(page.Create());
  }
  KV_RETURN_IF_ERROR(env_->SyncDir(dir_));
  return WriteSuperblock(env_, dir_, superblock_);
}

Status PageStore::Recover() {
  if (!env_->FileExists(dir_)) {
    if (!options_.create_if_missing || options_.read_only) {
      return Status::NotFound("no kvfs store at " + dir_);
    }
    KV_RETURN_IF_ERROR(env_->CreateDir(dir_));
  }
  if (!options_.read_only) KV_RETURN_IF_ERROR(env_->LockFile(dir_ + "/" + kLockFile, &lock_));
  const std::string sb_path = dir_ + "/" + kSuperblockFile;
  if (!env_->FileExists(sb_path)) {
    if (!options_.create_if_missing || options_.read_only) {
      return Status::NotFound("no kvfs store at " + dir_ + " (no SUPERBLOCK)");
    }
    KV_RETURN_IF_ERROR(CreateNew());
  } else {
    if (options_.error_if_exists) return Status::InvalidArgument("a store exists at " + dir_);
    KV_RETURN_IF_ERROR(ReadSuperblock(env_, dir_, &superblock_));
    if (superblock_.sharder_name != sharder_->Name()) {
      std::shared_ptr<const Sharder> earlier =
          FindSharder(superblock_.sharder_name, options_.earlier_sharders);
      if (!earlier) {
        return Status::InvalidArgument("store at " + dir_ + " was created with sharder '" +
                                       superblock_.sharder_name + "', opened with '" +
                                       sharder_->Name() + "'");
      }
      sharder_holder_ = std::move(earlier);
      sharder_ = sharder_holder_.get();
    }
  }
  if (!options_.read_only) {
    // The copy an interrupted reshard was building beside the store.
    RemoveReshardLeftovers(env_, dir_).IgnoreError();
    // Leftovers of an interrupted compaction or atomic file write.
    std::vector<std::string> names;
    KV_RETURN_IF_ERROR(env_->ListDir(dir_, &names));
    for (const std::string& name : names) {
      if (name.ends_with(".compact") || name.ends_with(".tmp")) {
        KV_RETURN_IF_ERROR(env_->RemoveFile(dir_ + "/" + name));
      }
    }
  }
  for (uint32_t i = 0; i < superblock_.page_count; ++i) {
    pages_.push_back(std::make_unique<Page>(env_, dir_, i, superblock_.store_id));
  }
  if (!options_.read_only) {
    KV_RETURN_IF_ERROR(Journal::Open(env_, dir_, &journal_));
    KV_RETURN_IF_ERROR(ReplayJournal());
  }
  std::vector<PageRecovery> recovery(pages_.size());
  KV_RETURN_IF_ERROR(OpenPages(&recovery));
  KV_RETURN_IF_ERROR(CutTornBatches(&recovery));
  KV_RETURN_IF_ERROR(CutAfterLostWrites(recovery));

  SequenceNumber last = 0;
  for (auto& page : pages_) last = std::max(last, page->CaptureEnd().max_sequence);
  if (last < superblock_.durable_sequence) {
    // Only a cut of damaged synced data gets here: sequence numbers resume after what is left.
    superblock_.durable_sequence = last;
    if (!options_.read_only) KV_RETURN_IF_ERROR(WriteSuperblock(env_, dir_, superblock_));
  }
  next_sequence_.store(last + 1);
  published_.store(last);
  synced_ = 0;
  if (options_.read_only) return Status::OK();
  // Whatever survived recovery becomes durable before it is relied upon.
  return PersistWatermark();
}

Status PageStore::OpenPages(std::vector<PageRecovery>* recovery) {
  std::vector<Status> results(pages_.size());
  const size_t threads = std::max(1u, std::thread::hardware_concurrency());
  ParallelFor(pages_.size(), threads, [&](size_t i) {
    results[i] = pages_[i]->Open(options_.read_only, superblock_.durable_sequence, &(*recovery)[i],
                                 options_.salvage);
  });
  for (const Status& s : results) KV_RETURN_IF_ERROR(s);
  return Status::OK();
}

Status PageStore::CutTornBatches(std::vector<PageRecovery>* recovery) {
  std::set<SequenceNumber> cut;
  for (const PageRecovery& r : *recovery) {
    if (r.torn && r.torn_sequence_known) cut.insert(r.torn_sequence);
  }
  // The newest batch is every page's newest part where it appears; if fewer pages hold it
  // than it spans, a page lost its part (maybe cut cleanly at a record boundary).
  SequenceNumber newest = 0;
  for (const PageRecovery& r : *recovery) newest = std::max(newest, r.max_sequence);
  uint32_t found = 0, spans = 0;
  for (const PageRecovery& r : *recovery) {
    if (r.has_last_group && r.last_group.sequence == newest) {
      ++found;
      spans = std::max(spans, r.last_group.batch_pages);
    }
  }
  if (found < spans) cut.insert(newest);
  for (SequenceNumber seq : cut) {
    for (size_t i = 0; i < pages_.size(); ++i) {
      PageRecovery& r = (*recovery)[i];
      if (!r.has_last_group || r.last_group.sequence != seq) continue;
      KV_RETURN_IF_ERROR(pages_[i]->CutAt(r.last_group.offset, superblock_.durable_sequence));
      std::erase_if(r.groups, [&](const RecoveredGroup& g) { return g.sequence >= seq; });
    }
  }
  return Status::OK();
}

Status PageStore::CutAfterLostWrites(const std::vector<PageRecovery>& recovery) {
  // sequence -> (parts found, parts expected)
  std::map<SequenceNumber, std::pair<uint32_t, uint32_t>> parts;
  for (const PageRecovery& r : recovery) {
    for (const RecoveredGroup& g : r.groups) {
      auto& p = parts[g.sequence];
      p.first++;
      p.second = g.batch_pages;
    }
  }
  SequenceNumber expected = superblock_.durable_sequence + 1;
  SequenceNumber cut = kMaxSequence;
  for (const auto& [seq, count] : parts) {
    if (seq != expected || count.first != count.second) {
      cut = std::min(seq, expected);
      break;
    }
    ++expected;
  }
  if (cut == kMaxSequence) return Status::OK();
  for (size_t i = 0; i < pages_.size(); ++i) {
    for (const RecoveredGroup& g : recovery[i].groups) {
      if (g.sequence >= cut) {
        KV_RETURN_IF_ERROR(pages_[i]->CutAt(g.offset, superblock_.durable_sequence));
        break;
      }
    }
  }
  return Status::OK();
}

PageStore::~PageStore() {
  {
    std::lock_guard lock(bg_mu_);
    stop_ = true;
  }
  bg_cv_.notify_all();
  if (bg_thread_.joinable()) bg_thread_.join();
  if (!recovered_ || options_.read_only || has_error_.load()) return;
  // A clean close: everything durable, the watermark at the end, an index hint per page.
  if (!PersistWatermark().ok()) return;
  for (auto& page : pages_) {
    page->WriteHint().IgnoreError();
    page->TrimReservation().IgnoreError();
  }
}

PageRange PagesForPrefix(const Sharder& sharder, std::string_view prefix, uint32_t page_count) {
  PageRange range = sharder.Pages(prefix, page_count);
  // A range outside the store would be the sharder's bug; all pages is still a valid choice.
  if (range.count == 0 || range.first >= page_count || range.count > page_count - range.first) {
    range = {0, page_count};
  }
  return range;
}

uint32_t PageForPrefix(const Sharder& sharder, std::string_view prefix, std::string_view part,
                       uint32_t page_count) {
  const PageRange range = PagesForPrefix(sharder, prefix, page_count);
  return range.first + static_cast<uint32_t>(XXH3_64bits(part.data(), part.size()) % range.count);
}

uint32_t PageForKey(const Sharder& sharder, std::string_view key, uint32_t page_count) {
  return PageForPrefix(sharder, key, sharder.ShardPart(key), page_count);
}

uint32_t PageStore::PageOf(std::string_view key) const {
  return PageForKey(*sharder_, key, static_cast<uint32_t>(pages_.size()));
}

uint32_t PageStore::PageOfPrefix(std::string_view prefix, std::string_view part) const {
  return PageForPrefix(*sharder_, prefix, part, static_cast<uint32_t>(pages_.size()));
}

Status PageStore::CheckWritable() const {
  if (options_.read_only) return Status::InvalidArgument("store is open read-only");
  if (has_error_.load(std::memory_order_acquire)) {
    std::lock_guard lock(error_mu_);
    return bg_error_;
  }
  return Status::OK();
}

void PageStore::SetBackgroundError(const Status& s) {
  std::lock_guard lock(error_mu_);
  if (!has_error_.load()) {
    bg_error_ = Status::IOError("store stopped accepting writes after an error (" + s.ToString() +
                                "); reopen it");
    if (s.IsNoSpace()) bg_error_ = Status::NoSpace(s.message() + "; reopen the store");
    has_error_.store(true, std::memory_order_release);
  }
}

Status PageStore::Write(const WriteOptions& options, const WriteBatch& batch,
                        SequenceNumber* sequence) {
  std::vector<OpRef> ops;
  ops.reserve(batch.size());
  for (const WriteBatch::Op& op : batch.ops()) ops.push_back(OpRef{op.is_delete, op.key, op.value});
  return WriteOps(options, ops.data(), ops.size(), sequence);
}

Status PageStore::Put(const WriteOptions& options, std::string_view key, std::string_view value) {
  const OpRef op{false, key, value};
  return WriteOps(options, &op, 1, nullptr);
}

Status PageStore::Delete(const WriteOptions& options, std::string_view key) {
  const OpRef op{true, key, {}};
  return WriteOps(options, &op, 1, nullptr);
}

Status PageStore::WriteOps(const WriteOptions& options, const OpRef* ops, size_t n,
                           SequenceNumber* sequence) {
  KV_RETURN_IF_ERROR(CheckWritable());
  if (n == 0) {
    if (sequence != nullptr) *sequence = LastSequence();
    return Status::OK();
  }
  // A sync write counts from here until its sync returns: a group commit leader waits a
  // moment for the ones still appending (see SyncTo).
  struct SyncWriter {
    std::atomic<int>* count;
    explicit SyncWriter(std::atomic<int>* c) : count(c) {
      if (count) count->fetch_add(1, std::memory_order_relaxed);
    }
    ~SyncWriter() {
      if (count) count->fetch_sub(1, std::memory_order_relaxed);
    }
  } sync_writer(options.sync ? &sync_writers_ : nullptr);
  // Encode and compress outside every lock.
  // Per-thread scratch: a small write allocates nothing once the thread has warmed up. Parts
  // of big batches (whole chunks, a MiB at a time) give their memory back when the write
  // ends: kept, they came to 56 MiB across the FUSE daemon's threads.
  thread_local std::vector<PagePart> scratch;
  thread_local std::string compressed;
  struct TrimScratch {
    ~TrimScratch() {
      constexpr size_t kKeep = 256 << 10;
      for (PagePart& part : scratch) {
        if (part.buf.capacity() > kKeep) std::string().swap(part.buf);
      }
      if (compressed.capacity() > kKeep) std::string().swap(compressed);
    }
  } trim;
  size_t used = 0;
  for (size_t i = 0; i < n; ++i) {
    const OpRef& op = ops[i];
    if (op.key.size() > kMaxKeySize) {
      return Status::InvalidArgument("key of " + std::to_string(op.key.size()) +
                                     " bytes exceeds the limit of " + std::to_string(kMaxKeySize));
    }
    if (op.value.size() > kMaxValueSize) {
      return Status::InvalidArgument("value of " + std::to_string(op.value.size()) +
                                     " bytes exceeds the limit of " +
                                     std::to_string(kMaxValueSize));
    }
    const uint32_t page = PageOf(op.key);
    size_t p = 0;
    while (p < used && scratch[p].page != page) ++p;
    if (p == used) {
      if (used == scratch.size()) scratch.emplace_back();
      scratch[used].page = page;
      scratch[used].buf.clear();
      scratch[used].recs.clear();
      ++used;
    }
    PagePart& part = scratch[p];
    RecordHeader h;
    h.type = op.is_delete ? kTypeDelete : kTypePut;
    std::string_view stored;
    if (!op.is_delete) {
      stored = op.value;
      if (CompressValue(compression_, op.value, &compressed)) {
        h.flags = kFlagCompressed;
        stored = compressed;
      }
      h.raw_len = static_cast<uint32_t>(op.value.size());
    }
    h.key_len = static_cast<uint16_t>(op.key.size());
    h.value_len = static_cast<uint32_t>(stored.size());
    h.data_crc = Crc32(stored.data(), stored.size(), Crc32(op.key.data(), op.key.size()));
    const size_t offset = part.buf.size();
    part.buf.resize(offset + kRecordHeaderSize);
    part.buf.append(op.key);
    part.buf.append(stored);
    part.recs.push_back(PagePart::Rec{offset, op.key, h});
  }
  std::span<PagePart> parts(scratch.data(), used);
  std::sort(parts.begin(), parts.end(),
            [](const PagePart& a, const PagePart& b) { return a.page < b.page; });

  // Lock the batch's pages in ascending order, reserve space, then take a sequence number:
  // a full disk fails here, before any sequence number is used.
  PageLocks locks(parts.size());
  for (PagePart& part : parts) locks.Lock(pages_[part.page]->mu());
  for (PagePart& part : parts)
    KV_RETURN_IF_ERROR(pages_[part.page]->ReserveLocked(part.buf.size()));
  KV_RETURN_IF_ERROR(CheckWritable());
  const SequenceNumber seq = next_sequence_.fetch_add(1);
  const uint64_t now = NowNs();
  const auto batch_pages = static_cast<uint32_t>(parts.size());
  Status s;
  size_t appended = 0;
  for (; appended < parts.size(); ++appended) {
    s = pages_[parts[appended].page]->AppendLocked(&parts[appended], seq, now, batch_pages);
    if (!s.ok()) break;
  }
  if (!s.ok()) {
    // The sequence number is lost, so no later write may become durable before a reopen
    // (recovery would see the gap and drop it): the store stops taking writes.
    for (size_t i = 0; i <= appended && i < parts.size(); ++i) {
      pages_[parts[i].page]->RollbackLocked(parts[i].base_offset).IgnoreError();
    }
    SetBackgroundError(s);
    locks.Unlock();
    Publish(seq);
    return s;
  }
  for (PagePart& part : parts) pages_[part.page]->ApplyLocked(part);
  locks.Unlock();
  Publish(seq);
  if (sequence != nullptr) *sequence = seq;
  if (options.sync) return SyncTo(seq);
  // Every earlier batch goes too: recovery keeps a prefix, so a batch that reached the OS
  // ahead of an earlier buffered one would be dropped with it after a crash.
  return options.flush ? Flush() : Status::OK();
}

void PageStore::Publish(SequenceNumber seq) {
  std::unique_lock lock(publish_mu_);
  if (published_.load() + 1 != seq) {
    done_.push_back(seq);
    std::push_heap(done_.begin(), done_.end(), std::greater<>());
    publish_cv_.wait(lock, [&] { return published_.load() >= seq; });
    return;
  }
  SequenceNumber p = seq;
  while (!done_.empty() && done_.front() == p + 1) {
    std::pop_heap(done_.begin(), done_.end(), std::greater<>());
    done_.pop_back();
    ++p;
  }
  published_.store(p);
  publish_cv_.notify_all();
}

Status PageStore::SyncRound(bool checkpoint) {
  std::vector<Page*> pages;
  std::vector<Page::Tail> tails;
  uint64_t bytes = 0;
  for (auto& page : pages_) {
    Page::Tail t = checkpoint ? page->UnsyncedTail() : page->UnjournaledTail();
    if (t.to <= t.from) continue;
    pages.push_back(page.get());
    tails.push_back(t);
    bytes += t.to - t.from;
  }
  if (!checkpoint && pages.size() > 1 && bytes <= kMaxJournalCommit) {
    // Several pages, little data: one journal fdatasync instead of one per page.
    std::vector<JournalRange> ranges;
    for (size_t i = 0; i < pages.size(); ++i) {
      JournalRange r{pages[i]->index(), tails[i].generation, tails[i].from, {}};
      bool current = false;
      KV_RETURN_IF_ERROR(pages[i]->ReadTail(tails[i], &r.bytes, &current));
      if (current) ranges.push_back(std::move(r));
    }
    KV_RETURN_IF_ERROR(journal_->Commit(ranges));
    for (size_t i = 0; i < pages.size(); ++i) pages[i]->MarkJournaled(tails[i]);
    return Status::OK();
  }
  std::vector<Status> results(pages.size());
  // Concurrent fdatasyncs share the file system's journal commits.
  ParallelFor(pages.size(), 8, [&](size_t i) { results[i] = pages[i]->SyncFile(); });
  for (const Status& s : results) KV_RETURN_IF_ERROR(s);
  // Every page file now holds all it ever journaled.
  return checkpoint ? journal_->Reset() : Status::OK();
}

Status PageStore::SyncTo(SequenceNumber seq, bool checkpoint) {
  std::unique_lock lock(sync_mu_);
  ++sync_waiting_;
  if (gathering_) gather_cv_.notify_one();
  struct Leave {
    int* waiting;
    ~Leave() { --*waiting; }
  } leave{&sync_waiting_};
  for (;;) {
    if (synced_ >= seq && !checkpoint) return Status::OK();
    if (has_error_.load()) return CheckWritable();
    if (syncing_) {
      sync_cv_.wait(lock);
      continue;
    }
    // This writer leads: one round covers every write published so far. Writers released
    // by the last round are appending their next write right now; without waiting for them
    // they would all miss this round, and rounds would alternate between two half groups.
    // So wait until every sync writer is here, for at most a quarter of a round.
    syncing_ = true;
    gathering_ = true;
    gather_cv_.wait_for(lock, std::chrono::nanoseconds(last_round_ns_ / 4), [&] {
      return sync_waiting_ >= sync_writers_.load(std::memory_order_relaxed);
    });
    gathering_ = false;
    const SequenceNumber target = published_.load();
    lock.unlock();
    const auto started = std::chrono::steady_clock::now();
    Status s = SyncRound(checkpoint);
    if (s.ok() && !checkpoint && journal_->size() > kJournalCheckpointBytes) s = SyncRound(true);
    const int64_t took = std::chrono::duration_cast<std::chrono::nanoseconds>(
                             std::chrono::steady_clock::now() - started)
                             .count();
    lock.lock();
    last_round_ns_ = std::min<int64_t>(took, 4'000'000);
    syncing_ = false;
    if (s.ok()) synced_ = std::max(synced_, target);
    sync_cv_.notify_all();
    if (!s.ok()) {
      SetBackgroundError(s);
      return s;
    }
    checkpoint = false;
  }
}

Status PageStore::ReplayJournal() {
  std::vector<JournalRange> ranges;
  KV_RETURN_IF_ERROR(Journal::ReadAll(env_, dir_, &ranges));
  for (const JournalRange& r : ranges) {
    if (r.page >= superblock_.page_count) {
      return Status::Corruption("journal names page " + std::to_string(r.page));
    }
    ReplayOutcome outcome;
    KV_RETURN_IF_ERROR(ReplayJournalRange(env_, dir_ + "/" + PageFileName(r.page), r, &outcome));
    if (outcome == ReplayOutcome::kTooShort) {
      return Status::Corruption(PageFileName(r.page) + " is shorter than its journaled tail at " +
                                std::to_string(r.offset));
    }
  }
  return journal_->Reset();
}

Status PageStore::Flush() {
  KV_RETURN_IF_ERROR(CheckWritable());
  for (auto& page : pages_) {
    Status s = page->Flush();
    if (!s.ok()) {
      SetBackgroundError(s);
      return s;
    }
  }
  return Status::OK();
}

Status PageStore::Sync() {
  KV_RETURN_IF_ERROR(CheckWritable());
  return SyncTo(published_.load());
}

Status PageStore::PersistWatermark() {
  std::vector<Page::End> ends;
  SequenceNumber target = 0;
  for (auto& page : pages_) {
    ends.push_back(page->CaptureEnd());
    target = std::max(target, ends.back().max_sequence);
  }
  {
    // Every write up to target is appended (page locks are released) once it is published.
    std::unique_lock lock(publish_mu_);
    publish_cv_.wait(lock, [&] { return published_.load() >= target; });
  }
  KV_RETURN_IF_ERROR(SyncTo(target, /*checkpoint=*/true));
  {
    std::lock_guard lock(superblock_mu_);
    if (superblock_.durable_sequence < target) {
      Superblock sb = superblock_;
      sb.durable_sequence = target;
      KV_RETURN_IF_ERROR(WriteSuperblock(env_, dir_, sb));
      superblock_ = sb;
    }
  }
  for (size_t i = 0; i < pages_.size(); ++i) {
    pages_[i]->SetDurableEnd(ends[i].generation, ends[i].offset, target);
  }
  return Status::OK();
}

SequenceNumber PageStore::ReadSequence(const ReadOptions& options) const {
  return options.snapshot != nullptr ? options.snapshot->sequence() : options.sequence;
}

Status PageStore::Get(const ReadOptions& options, std::string_view key, std::string* value) {
  return pages_[PageOf(key)]->Get(key, ReadSequence(options), options, value);
}

Status PageStore::GetInto(const ReadOptions& options, std::string_view key, std::span<char> buf,
                          size_t* size) {
  return pages_[PageOf(key)]->GetInto(key, ReadSequence(options), buf, size);
}

Status PageStore::Versions(std::string_view key, std::vector<VersionInfo>* versions) {
  return pages_[PageOf(key)]->Versions(key, versions);
}

std::shared_ptr<const Snapshot> PageStore::GetSnapshot() {
  return std::make_shared<StoreSnapshot>(snapshots_, published_.load());
}

std::unique_ptr<Iterator> PageStore::NewIterator(const ReadOptions& options,
                                                 std::string_view prefix) {
  std::shared_ptr<const Snapshot> pin;
  SequenceNumber at = ReadSequence(options);
  if (options.snapshot == nullptr && options.sequence == kMaxSequence) {
    pin = GetSnapshot();  // a stable view for the iterator's lifetime
    at = pin->sequence();
  }
  return NewStoreIterator(this, std::move(pin), at, options.keys_only, prefix);
}

Status PageStore::CompactPage(uint32_t page, const RetentionPolicy& policy, double min_reclaim) {
  // Make as much of the page durable as possible: only that part is rewritten.
  KV_RETURN_IF_ERROR(PersistWatermark());
  return pages_[page]->Compact(policy, snapshots_->Sequences(), published_.load(), min_reclaim);
}

Status PageStore::Compact(const CompactOptions& options) {
  KV_RETURN_IF_ERROR(CheckWritable());
  const RetentionPolicy& policy = options.retention ? *options.retention : *retention_;
  if (options.shard >= 0) {
    if (static_cast<size_t>(options.shard) >= pages_.size()) {
      return Status::InvalidArgument("no shard " + std::to_string(options.shard));
    }
    return CompactPage(static_cast<uint32_t>(options.shard), policy);
  }
  for (uint32_t i = 0; i < pages_.size(); ++i) KV_RETURN_IF_ERROR(CompactPage(i, policy));
  return Status::OK();
}

StoreStats PageStore::Stats() {
  StoreStats stats;
  stats.sharder_name = sharder_->Name();
  for (auto& page : pages_) {
    stats.shards.push_back(page->Stats());
    stats.index_memory_bytes += page->IndexMemory();
  }
  stats.last_sequence = LastSequence();
  return stats;
}

void PageStore::BackgroundLoop() {
  auto last_watermark = std::chrono::steady_clock::now();
  auto last_compaction_check = last_watermark;
  for (;;) {
    {
      std::unique_lock lock(bg_mu_);
      bg_cv_.wait_for(lock, kFlushInterval, [&] { return stop_; });
      if (stop_) return;
    }
    if (has_error_.load()) continue;
    Status s = Flush();
    if (std::chrono::steady_clock::now() - last_compaction_check < std::chrono::seconds(1)) {
      if (!s.ok() && options_.on_background_error) options_.on_background_error(s);
      continue;
    }
    last_compaction_check = std::chrono::steady_clock::now();
    if (std::chrono::steady_clock::now() - last_watermark >= kWatermarkInterval) {
      last_watermark = std::chrono::steady_clock::now();
      bool behind = false;
      {
        std::lock_guard lock(superblock_mu_);
        behind = superblock_.durable_sequence < published_.load();
      }
      if (behind && s.ok()) s = PersistWatermark();
    }
    if (s.ok() && options_.background_compaction) {
      for (uint32_t i = 0; i < pages_.size() && s.ok(); ++i) {
        ShardStats st = pages_[i]->Stats();
        uint64_t garbage = pages_[i]->CompactableGarbage();
        if (garbage >= options_.compaction_min_garbage_bytes &&
            static_cast<double>(garbage) >=
                options_.compaction_garbage_ratio * static_cast<double>(st.file_bytes)) {
          s = CompactPage(i, *retention_, kMinBackgroundReclaim);
        }
        std::lock_guard lock(bg_mu_);
        if (stop_) return;
      }
    }
    if (!s.ok() && options_.on_background_error) options_.on_background_error(s);
  }
}

}  // namespace kv

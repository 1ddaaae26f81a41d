// PageStore: the embedded kv::Store. Keys are hashed (by the sharder's shard part) onto N
// page files; batches that span pages are framed so that recovery keeps them all or nothing.
//
// Lock order: page mu_ locks in ascending page order, then publish_mu_ / sync_mu_ /
// snapshots_mu_ / bg_mu_ (leaf locks, never held together).
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "kv/compression.h"
#include "kv/env.h"
#include "kv/journal.h"
#include "kv/page.h"
#include "kv/store.h"
#include "kv/superblock.h"

namespace kv {

// Live snapshots, shared with the Snapshot objects so that they may outlive the store.
class SnapshotList {
 public:
  SequenceNumber Add(SequenceNumber seq);
  void Remove(SequenceNumber seq);
  std::vector<SequenceNumber> Sequences();

 private:
  std::mutex mu_;
  std::multiset<SequenceNumber> seqs_;
};

// The page of `key` in a store of `page_count` pages.
uint32_t PageForKey(const Sharder& sharder, std::string_view key, uint32_t page_count);
// The pages that keys starting with `prefix` may live on (Sharder::Pages, checked).
PageRange PagesForPrefix(const Sharder& sharder, std::string_view prefix, uint32_t page_count);
// The one page holding every key that starts with `prefix`, whose shard part
// (Sharder::PrefixShardPart) is `part`.
uint32_t PageForPrefix(const Sharder& sharder, std::string_view prefix, std::string_view part,
                       uint32_t page_count);
// A sharder with this name that routes nothing: for opening a store only to recover it, which
// never routes keys, without the sharder object its superblock names.
std::shared_ptr<const Sharder> NameOnlySharder(std::string name);
// The sharder in `in` named `name`, or nullptr.
std::shared_ptr<const Sharder> FindSharder(const std::string& name,
                                           const std::vector<std::shared_ptr<const Sharder>>& in);

class PageStore final : public Store {
 public:
  static Status Open(const Options& options, const std::string& dir, std::unique_ptr<Store>* store);
  ~PageStore() override;

  Status Get(const ReadOptions& options, std::string_view key, std::string* value) override;
  Status GetInto(const ReadOptions& options, std::string_view key, std::span<char> buf,
                 size_t* size) override;
  Status Write(const WriteOptions& options, const WriteBatch& batch,
               SequenceNumber* sequence) override;
  Status Put(const WriteOptions& options, std::string_view key, std::string_view value) override;
  Status Delete(const WriteOptions& options, std::string_view key) override;
  Status Versions(std::string_view key, std::vector<VersionInfo>* versions) override;
  std::unique_ptr<Iterator> NewIterator(const ReadOptions& options,
                                        std::string_view prefix) override;
  std::shared_ptr<const Snapshot> GetSnapshot() override;
  SequenceNumber LastSequence() const override { return published_.load(); }
  Status Sync() override;
  Status Flush() override;
  Status Compact(const CompactOptions& options) override;
  StoreStats Stats() override;
  uint32_t ShardCount() const override { return static_cast<uint32_t>(pages_.size()); }

  // Used by the iterator.
  uint32_t PageOfPrefix(std::string_view prefix, std::string_view part) const;
  Page* page(uint32_t i) { return pages_[i].get(); }
  const Sharder& sharder() const { return *sharder_; }

 private:
  PageStore(const Options& options, std::string dir);
  Status Recover();
  Status CreateNew();
  // The page `key` lives on.
  uint32_t PageOf(std::string_view key) const;
  Status OpenPages(std::vector<PageRecovery>* recovery);
  // When a page lost the tail of a batch, drops that batch's parts from the other pages too
  // (they are those pages' newest parts), whatever the watermark says.
  Status CutTornBatches(std::vector<PageRecovery>* recovery);
  // Drops every batch at or after the first incomplete batch or missing sequence number
  // above the durable watermark: the surviving writes are a prefix of those made.
  Status CutAfterLostWrites(const std::vector<PageRecovery>& recovery);
  Status CheckWritable() const;
  // A put or delete of a batch, by reference.
  struct OpRef {
    bool is_delete;
    std::string_view key;
    std::string_view value;
  };
  // Write's body: applies ops[0, n) as one atomic batch.
  Status WriteOps(const WriteOptions& options, const OpRef* ops, size_t n,
                  SequenceNumber* sequence);
  // Waits until every sequence number up to `seq` is applied, then makes `seq` visible.
  void Publish(SequenceNumber seq);
  // Group commit: returns when everything up to `seq` is on disk. With `checkpoint`, also
  // syncs every page file itself and empties the journal.
  Status SyncTo(SequenceNumber seq, bool checkpoint = false);
  // One round of the group commit leader: journal or fdatasync what is not yet durable.
  Status SyncRound(bool checkpoint);
  // Puts journaled page tails back into page files that lost them (before recovery).
  Status ReplayJournal();
  // Checkpoints and records the durable watermark in the superblock.
  Status PersistWatermark();
  Status CompactPage(uint32_t page, const RetentionPolicy& policy, double min_reclaim = 0);
  void SetBackgroundError(const Status& s);
  void BackgroundLoop();
  SequenceNumber ReadSequence(const ReadOptions& options) const;

  const Options options_;
  bool recovered_ = false;  // Recover() succeeded: closing writes a clean state
  const std::string dir_;
  Env* const env_;
  std::shared_ptr<const Sharder> sharder_holder_;
  const Sharder* sharder_ = nullptr;
  CompressionOptions compression_;
  std::shared_ptr<const RetentionPolicy> retention_;
  std::unique_ptr<FileLock> lock_;
  std::unique_ptr<Journal> journal_;  // used only by the group commit leader
  Superblock superblock_;             // GUARDED_BY(superblock_mu_)
  std::mutex superblock_mu_;
  std::vector<std::unique_ptr<Page>> pages_;
  std::shared_ptr<SnapshotList> snapshots_ = std::make_shared<SnapshotList>();

  std::atomic<SequenceNumber> next_sequence_{1};  // taken under the batch's page locks
  std::atomic<SequenceNumber> published_{0};
  std::mutex publish_mu_;
  std::condition_variable publish_cv_;
  std::vector<SequenceNumber> done_;  // GUARDED_BY(publish_mu_): a min-heap

  std::mutex sync_mu_;
  std::condition_variable sync_cv_;
  bool syncing_ = false;       // GUARDED_BY(sync_mu_)
  SequenceNumber synced_ = 0;  // GUARDED_BY(sync_mu_)
  // Group commit gathering: sync writes between their start and their sync, the writers
  // waiting in SyncTo, and how long the last round's sync took.
  std::atomic<int> sync_writers_{0};
  int sync_waiting_ = 0;    // GUARDED_BY(sync_mu_)
  bool gathering_ = false;  // GUARDED_BY(sync_mu_): a leader waits on gather_cv_
  std::condition_variable gather_cv_;
  int64_t last_round_ns_ = 0;  // GUARDED_BY(sync_mu_)

  mutable std::mutex error_mu_;
  Status bg_error_;  // GUARDED_BY(error_mu_): once set, writes fail until reopen
  std::atomic<bool> has_error_{false};

  std::mutex bg_mu_;
  std::condition_variable bg_cv_;
  bool stop_ = false;  // GUARDED_BY(bg_mu_)
  std::thread bg_thread_;
};

}  // namespace kv

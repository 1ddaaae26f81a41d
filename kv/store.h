// kv::Store: the public face of kv/. An ordered, versioned key-value store with atomic
// multi-key write batches, snapshots and compaction. The page store (kv::OpenPageStore) is
// the embedded implementation; a distributed engine can implement the same interface.
//
// Thread safety: every method of Store may be called concurrently from any thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "kv/status.h"

namespace kv {

class Env;

// Sequence numbers order every write. Each successful Write() takes the next one; all puts
// and deletes of one batch share it.
using SequenceNumber = uint64_t;
inline constexpr SequenceNumber kMaxSequence = ~SequenceNumber{0};

// An ordered list of puts and deletes applied atomically by Store::Write.
class WriteBatch {
 public:
  struct Op {
    bool is_delete;
    std::string key;
    std::string value;
  };

  void Put(std::string_view key, std::string_view value) {
    ops_.push_back(Op{false, std::string(key), std::string(value)});
    bytes_ += key.size() + value.size();
  }
  void Delete(std::string_view key) {
    ops_.push_back(Op{true, std::string(key), {}});
    bytes_ += key.size();
  }
  void Clear() {
    ops_.clear();
    bytes_ = 0;
  }
  bool empty() const { return ops_.empty(); }
  size_t size() const { return ops_.size(); }
  // Sum of key and value bytes, a guide for callers that bound batch sizes.
  size_t ApproximateBytes() const { return bytes_; }
  const std::vector<Op>& ops() const { return ops_; }

 private:
  std::vector<Op> ops_;
  size_t bytes_ = 0;
};

// A run of page files: [first, first + count).
struct PageRange {
  uint32_t first = 0;
  uint32_t count = 0;
};

// Chooses a key's shard (page file): Pages() names the pages it may live on, and the hash of
// its shard part picks one of them. Keys with the same shard part live in one shard and can be
// iterated in order by a prefix that contains that part.
class Sharder {
 public:
  virtual ~Sharder() = default;
  // The bytes of `key` that are hashed to pick its shard.
  virtual std::string_view ShardPart(std::string_view key) const = 0;
  // When every key starting with `prefix` has the same shard part, stores it in *part and
  // returns true; iteration over such a prefix reads one shard only.
  virtual bool PrefixShardPart(std::string_view prefix, std::string_view* part) const = 0;
  // The pages of `page_count` that keys starting with `prefix` may live on: a non-empty
  // range inside them, and every key with that prefix gets a range within it (for a whole
  // key: the pages it may live on; for the empty prefix: all pages). Prefix iteration reads
  // only these pages. Lets kinds of keys keep to page files of their own (see fs/sharder.h).
  virtual PageRange Pages(std::string_view /*prefix*/, uint32_t page_count) const {
    return {0, page_count};
  }
  // Persisted name, checked on open so that a store is never read with another sharder.
  virtual std::string Name() const = 0;
};

// The default sharder: the whole key is the shard part.
const Sharder* WholeKeySharder();

// What is known about one version of a key.
struct VersionInfo {
  SequenceNumber sequence = 0;
  uint64_t time_ns = 0;     // wall-clock time of the write, ns since the epoch
  uint32_t value_size = 0;  // uncompressed size of the value; 0 for a delete
  bool deleted = false;     // a tombstone
};

// Decides which versions of a key compaction keeps. The store always keeps, on top of the
// policy's choice, the newest version of every key that is live and the newest version that
// each live snapshot can see.
class RetentionPolicy {
 public:
  virtual ~RetentionPolicy() = default;
  // versions: newest first. Set keep[i] for the versions to retain. keep has the same size as
  // versions and starts all false.
  virtual void Select(std::string_view key, std::span<const VersionInfo> versions,
                      std::vector<bool>* keep) const = 0;
};

// Keeps only the newest version of each key (dropping deleted keys entirely).
std::shared_ptr<const RetentionPolicy> KeepLatestPolicy();
// Keeps the newest n versions of each key.
std::shared_ptr<const RetentionPolicy> KeepLastNPolicy(uint32_t n);
// Keeps the version that a reader at `sequence` sees, and everything newer.
std::shared_ptr<const RetentionPolicy> KeepVisibleAtPolicy(SequenceNumber sequence);

struct Options {
  // Environment for all file access; nullptr means Env::Default().
  Env* env = nullptr;
  // Creates the store if the directory holds none.
  bool create_if_missing = true;
  // Fails if a store exists already.
  bool error_if_exists = false;
  // Opens without taking the writer lock; writes and compaction are refused.
  bool read_only = false;
  // With read_only only: reads what is intact of a damaged store (for checkers). Recovery
  // skips records whose checksums fail, resynchronizing at the next record that verifies,
  // takes a missing page file as empty and ignores hint files. See kv/maintenance.h.
  bool salvage = false;

  // ---- Fixed at creation (stored in the superblock; ignored when opening) ----
  uint32_t page_count = 16;
  std::shared_ptr<const Sharder> sharder;  // nullptr: WholeKeySharder()
  // A store opens only with the sharder its superblock names: `sharder`, or one of these,
  // kept for stores that earlier versions created (kv::ReshardStore moves such a store to
  // `sharder`).
  std::vector<std::shared_ptr<const Sharder>> earlier_sharders;

  // ---- May change on every open ----
  // zlib level 1..9 for values; 0 stores every value raw.
  int compression_level = 1;
  // Values shorter than this are stored raw: deflate cannot win much on them and costs time.
  uint32_t compression_min_size = 128;
  // The first this many bytes of a deflated value are written as a stored (uncompressed)
  // deflate block, so that a Get with a value_prefix of up to this size copies them instead
  // of decoding Huffman tables (kvfs: an inode's fixed head). Any reader inflates such a
  // value; 0 deflates values whole.
  uint32_t compression_stored_prefix = 0;
  // Retention used by background compaction and by Compact() without a policy.
  std::shared_ptr<const RetentionPolicy> retention;  // nullptr: KeepLatestPolicy()
  // Background compaction of a page starts when its superseded bytes exceed both this
  // many bytes and this fraction of its file.
  bool background_compaction = true;
  uint64_t compaction_min_garbage_bytes = 8 << 20;
  double compaction_garbage_ratio = 0.5;
  // Called (from a background thread) when background compaction fails.
  std::function<void(const Status&)> on_background_error;
};

struct WriteOptions {
  // When true, the batch is durable on disk before Write returns. Concurrent sync writers
  // share one flush.
  bool sync = false;
  // When true, the batch (and every earlier one) reaches the operating system before Write
  // returns, so that it survives a crash of this process. Otherwise small batches collect in a
  // buffer that reaches the OS within 200 ms (or on Flush/Sync): a crash of the process then loses
  // at most that window, and never part of a batch.
  bool flush = false;
};

class Snapshot;

struct ReadOptions {
  // Read as of this snapshot; nullptr reads the latest state.
  const Snapshot* snapshot = nullptr;
  // Read as of this sequence number when no snapshot is given. Versions compaction has
  // already dropped are gone: pin them with a snapshot or a retention policy.
  SequenceNumber sequence = kMaxSequence;
  // Leave values empty and skip reading them: iterators then count or list keys, and Get
  // says whether a key exists (OK or NotFound), from the index without the value's bytes.
  bool keys_only = false;
  // Get only: when not 0, read at most this many leading bytes of the value. A compressed
  // value is inflated only that far; the record's checksum is verified all the same. For a
  // value's fixed-size head, such as an inode's attributes ahead of its inline data.
  size_t value_prefix = 0;
};

// A pinned view of the store at one sequence number. It stays readable, and compaction keeps
// what it sees, until the last reference is dropped.
class Snapshot {
 public:
  virtual ~Snapshot() = default;
  virtual SequenceNumber sequence() const = 0;
};

// An ordered cursor over the keys with a given prefix, as of one sequence number (the
// ReadOptions' snapshot or sequence, else the state when the iterator was created).
class Iterator {
 public:
  virtual ~Iterator() = default;
  virtual bool Valid() const = 0;
  // Positions at the first key >= target (and with the iterator's prefix).
  virtual void Seek(std::string_view target) = 0;
  virtual void SeekToFirst() = 0;
  virtual void Next() = 0;
  // REQUIRES: Valid().
  virtual std::string_view key() const = 0;
  virtual std::string_view value() const = 0;
  virtual SequenceNumber sequence() const = 0;
  // Not OK when iteration stopped on an error (Valid() is then false).
  virtual Status status() const = 0;
};

struct ShardStats {
  uint64_t live_keys = 0;           // keys whose newest version is not a delete
  uint64_t tombstones = 0;          // keys whose newest version is a delete
  uint64_t records = 0;             // versions stored, all keys
  uint64_t file_bytes = 0;          // bytes on disk
  uint64_t live_bytes = 0;          // bytes of the newest version of each live key
  uint64_t garbage_bytes = 0;       // bytes of superseded versions and tombstones
  uint64_t raw_value_bytes = 0;     // uncompressed value bytes written to this shard's file
  uint64_t stored_value_bytes = 0;  // the same values as stored (after compression)
  uint64_t compactions = 0;
};

struct StoreStats {
  std::string sharder_name;  // of the sharder the store was created with (Sharder::Name)
  std::vector<ShardStats> shards;
  SequenceNumber last_sequence = 0;
  uint64_t index_memory_bytes = 0;  // memory held by the in-memory index
  ShardStats Total() const;
};

struct CompactOptions {
  // Versions to keep; nullptr uses Options::retention.
  std::shared_ptr<const RetentionPolicy> retention;
  // Compact only this shard; -1 compacts all.
  int shard = -1;
};

class Store {
 public:
  virtual ~Store() = default;
  Store() = default;
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Reads the value of `key` as of options' snapshot/sequence. NotFound if absent or deleted.
  virtual Status Get(const ReadOptions& options, std::string_view key, std::string* value) = 0;
  // The same into buf[0, *size), for a caller whose buffer is the value's destination: a value
  // stored raw is read into it without a copy. InvalidArgument when the value is longer.
  virtual Status GetInto(const ReadOptions& options, std::string_view key, std::span<char> buf,
                         size_t* size) = 0;
  // Applies every op of `batch` atomically under one new sequence number: after any crash,
  // either all of them are there or none. *sequence (if not null) receives that number.
  virtual Status Write(const WriteOptions& options, const WriteBatch& batch,
                       SequenceNumber* sequence = nullptr) = 0;
  // One-op batches.
  virtual Status Put(const WriteOptions& options, std::string_view key, std::string_view value);
  virtual Status Delete(const WriteOptions& options, std::string_view key);

  // All versions of `key` still stored, newest first (empty if none).
  virtual Status Versions(std::string_view key, std::vector<VersionInfo>* versions) = 0;
  // Iterates keys starting with `prefix` in byte order.
  virtual std::unique_ptr<Iterator> NewIterator(const ReadOptions& options,
                                                std::string_view prefix) = 0;
  virtual std::shared_ptr<const Snapshot> GetSnapshot() = 0;
  // The sequence number of the newest complete write.
  virtual SequenceNumber LastSequence() const = 0;

  // Makes every write so far durable.
  virtual Status Sync() = 0;
  // Hands every write so far to the operating system, so that it survives a crash of this
  // process (not of the machine). Without it, writes reach the OS within 200 ms.
  virtual Status Flush() = 0;
  // Rewrites shards dropping what the retention policy does not keep; safe while reads and
  // writes go on.
  virtual Status Compact(const CompactOptions& options) = 0;
  virtual StoreStats Stats() = 0;
  // Shard count, for tools that work shard by shard.
  virtual uint32_t ShardCount() const = 0;
};

// Opens (or creates) the page store in directory `dir`.
Status OpenPageStore(const Options& options, const std::string& dir, std::unique_ptr<Store>* store);

// Removes every file of the page store in `dir`. The store must be closed.
Status DestroyPageStore(const std::string& dir, Env* env = nullptr);

}  // namespace kv

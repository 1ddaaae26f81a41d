// KeyIndex: one page's in-memory index, from each key to its newest record. Point lookups go
// through a hash table; ordered scans through an array of entry ids sorted by key. New keys
// wait in an unsorted list until the next scan sorts them in, so that writes never pay for
// order. Keys live in an arena. Older versions are not indexed: each record points to the
// key's previous version on disk.
//
// Memory per key (beyond the key bytes): a 32-byte entry, 8-byte hash slots at 37.5-75%
// load, 4 bytes in the sorted array and a 1-2 byte length prefix: 45-59 bytes.
//
// Thread safety: mutations need exclusive access (the page lock held exclusively); Find and
// ScanFrom may run concurrently with each other (the page lock held shared).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string_view>
#include <vector>

namespace kv {

struct IndexEntry {
  uint64_t offset = 0;    // of the newest record in the page file
  uint64_t sequence = 0;  // its sequence number
  uint32_t record_size = 0;
  uint32_t value_size : 31 = 0;  // uncompressed value bytes
  uint32_t deleted : 1 = 0;      // the newest record is a delete
};

class KeyIndex {
 public:
  KeyIndex();
  KeyIndex(const KeyIndex&) = delete;
  KeyIndex& operator=(const KeyIndex&) = delete;

  // The entry for `key`, or nullptr. Valid until the next mutation.
  const IndexEntry* Find(std::string_view key) const;
  // The entry of the first key whose 32-bit hash equals key's, or nullptr: Find without
  // reading the key bytes (a cache miss). The caller checks the key where it reads the
  // record anyway, and calls Find when it was another key (about once in 2^32 / n lookups).
  const IndexEntry* FindByHash(std::string_view key) const;
  // Sets key's entry; returns the previous one through *old (if any) and whether it existed.
  bool Upsert(std::string_view key, const IndexEntry& entry, IndexEntry* old);

  size_t size() const { return count_; }
  size_t MemoryUsage() const;

  // Calls f(key, entry) for keys >= start in order (> start when `exclusive`) until f
  // returns false. The index must not change during the scan.
  template <typename F>
  void ScanFrom(std::string_view start, bool exclusive, F&& f) const;

 private:
  struct Entry {
    const char* key;  // varint length, then the bytes, in the arena
    IndexEntry value;
  };
  struct Slot {
    uint32_t id_plus_one;  // 0: empty
    uint32_t hash;
  };
  static constexpr uint32_t kBlockShift = 10;  // entries are stored in blocks of 1024

  Entry& entry(uint32_t id) { return blocks_[id >> kBlockShift][id & ((1u << kBlockShift) - 1)]; }
  const Entry& entry(uint32_t id) const {
    return blocks_[id >> kBlockShift][id & ((1u << kBlockShift) - 1)];
  }
  static std::string_view KeyAt(const char* p);
  std::string_view key(uint32_t id) const { return KeyAt(entry(id).key); }
  const char* StoreKey(std::string_view key);
  size_t FindSlot(std::string_view key, uint32_t hash) const;
  void Grow();
  // Sorts the pending ids into sorted_. Callable under the shared page lock.
  void SortPending() const;
  // Position of the first id in `ids` whose key is >= start (> start when exclusive).
  size_t LowerBound(const std::vector<uint32_t>& ids, std::string_view start, bool exclusive) const;

  size_t count_ = 0;
  std::vector<std::unique_ptr<Entry[]>> blocks_;
  std::vector<Slot> slots_;                // open addressing, linear probing, power-of-two size
  mutable std::mutex order_mu_;            // serializes SortPending between concurrent readers
  mutable std::vector<uint32_t> sorted_;   // ids in key order
  mutable std::vector<uint32_t> pending_;  // ids added since the last scan, unordered
  std::vector<std::unique_ptr<char[]>> arena_;
  char* arena_ptr_ = nullptr;
  size_t arena_left_ = 0;
  size_t arena_bytes_ = 0;
};

template <typename F>
void KeyIndex::ScanFrom(std::string_view start, bool exclusive, F&& f) const {
  SortPending();
  for (size_t i = LowerBound(sorted_, start, exclusive); i < sorted_.size(); ++i) {
    if (!f(key(sorted_[i]), entry(sorted_[i]).value)) return;
  }
}

}  // namespace kv

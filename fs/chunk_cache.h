// ChunkCache: an LRU cache of decompressed, committed file chunks, bounded in bytes.
#pragma once

#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

namespace fs {

// Thread-safe. Its mutex is a leaf lock: held only inside these methods.
// The cache holds committed chunk contents only; an inode's uncommitted (dirty) chunks live
// in its InodeState and are consulted first.
class ChunkCache {
 public:
  explicit ChunkCache(size_t capacity_bytes) : capacity_(capacity_bytes) {}
  ChunkCache(const ChunkCache&) = delete;
  ChunkCache& operator=(const ChunkCache&) = delete;

  // The cached chunk, or nullptr.
  std::shared_ptr<const std::string> Lookup(uint64_t ino, uint64_t index);
  void Insert(uint64_t ino, uint64_t index, std::shared_ptr<const std::string> data);
  // Drops the chunks of `ino` with index >= first.
  void EraseFrom(uint64_t ino, uint64_t first);

  uint64_t hits() const;
  uint64_t misses() const;

 private:
  using Key = std::pair<uint64_t, uint64_t>;  // (ino, chunk index)
  struct Entry {
    std::shared_ptr<const std::string> data;
    std::list<Key>::iterator lru;  // position in lru_
  };
  void EraseLocked(std::map<Key, Entry>::iterator it);

  const size_t capacity_;
  mutable std::mutex mu_;
  std::map<Key, Entry> map_;  // GUARDED_BY(mu_); ordered so that EraseFrom is a range
  std::list<Key> lru_;        // GUARDED_BY(mu_); most recently used first
  size_t bytes_ = 0;          // GUARDED_BY(mu_)
  uint64_t hits_ = 0;         // GUARDED_BY(mu_)
  uint64_t misses_ = 0;       // GUARDED_BY(mu_)
};

}  // namespace fs

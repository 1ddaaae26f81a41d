// ChunkCache: see fs/chunk_cache.h.
#include "fs/chunk_cache.h"

namespace fs {

std::shared_ptr<const std::string> ChunkCache::Lookup(uint64_t ino, uint64_t index) {
  std::lock_guard lock(mu_);
  auto it = map_.find(Key(ino, index));
  if (it == map_.end()) {
    ++misses_;
    return nullptr;
  }
  ++hits_;
  lru_.splice(lru_.begin(), lru_, it->second.lru);
  return it->second.data;
}

void ChunkCache::Insert(uint64_t ino, uint64_t index, std::shared_ptr<const std::string> data) {
  std::lock_guard lock(mu_);
  Key key(ino, index);
  auto it = map_.find(key);
  if (it != map_.end()) EraseLocked(it);
  if (data->size() > capacity_) return;
  bytes_ += data->size();
  lru_.push_front(key);
  map_.emplace(key, Entry{std::move(data), lru_.begin()});
  while (bytes_ > capacity_ && !lru_.empty()) EraseLocked(map_.find(lru_.back()));
}

void ChunkCache::EraseFrom(uint64_t ino, uint64_t first) {
  std::lock_guard lock(mu_);
  auto it = map_.lower_bound(Key(ino, first));
  while (it != map_.end() && it->first.first == ino) EraseLocked(it++);
}

void ChunkCache::EraseLocked(std::map<Key, Entry>::iterator it) {
  bytes_ -= it->second.data->size();
  lru_.erase(it->second.lru);
  map_.erase(it);
}

uint64_t ChunkCache::hits() const {
  std::lock_guard lock(mu_);
  return hits_;
}

uint64_t ChunkCache::misses() const {
  std::lock_guard lock(mu_);
  return misses_;
}

}  // namespace fs

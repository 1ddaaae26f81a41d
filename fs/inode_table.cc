// InodeTable: see fs/inode_table.h.
#include "fs/inode_table.h"

namespace fs {

std::shared_ptr<InodeState> InodeTable::Get(uint64_t ino) {
  std::lock_guard lock(mu_);
  auto it = map_.find(ino);
  if (it != map_.end()) return it->second;
  if (map_.size() >= capacity_) EvictLocked();
  auto state = std::make_shared<InodeState>(ino);
  map_.emplace(ino, state);
  return state;
}

std::vector<std::shared_ptr<InodeState>> InodeTable::All() {
  std::lock_guard lock(mu_);
  std::vector<std::shared_ptr<InodeState>> all;
  all.reserve(map_.size());
  for (auto& [ino, state] : map_) all.push_back(state);
  return all;
}

void InodeTable::EvictLocked() {
  // Evict down to 3/4 of capacity so that the scan is amortized over many inserts.
  size_t target = capacity_ - capacity_ / 4;
  for (auto it = map_.begin(); it != map_.end() && map_.size() > target;) {
    InodeState& s = *it->second;
    // use_count 1: only the table refers to it, so no thread can hold or wait for its lock
    // and nobody can find it meanwhile (we hold mu_). try_lock gives the memory ordering.
    if (it->second.use_count() == 1 && s.mu.try_lock()) {
      bool idle = !s.has_uncommitted() && s.open_handles == 0;
      s.mu.unlock();
      if (idle) {
        it = map_.erase(it);
        continue;
      }
    }
    ++it;
  }
}

}  // namespace fs

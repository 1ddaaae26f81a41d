// KernelInodes: see fs/fuse/kernel_inodes.h.
#include "fs/fuse/kernel_inodes.h"

namespace fs::fuse {

void KernelInodes::Add(uint64_t ino) {
  Shard& s = ShardOf(ino);
  std::lock_guard lock(s.mu);
  s.inos.insert(ino);
}

void KernelInodes::Forget(uint64_t ino) {
  Shard& s = ShardOf(ino);
  std::lock_guard lock(s.mu);
  s.inos.erase(ino);
}

bool KernelInodes::Holds(uint64_t ino) {
  Shard& s = ShardOf(ino);
  std::lock_guard lock(s.mu);
  return s.inos.count(ino) != 0;
}

}  // namespace fs::fuse

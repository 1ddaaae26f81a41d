// KernelInodes: which inodes the kernel holds, as far as the daemon's replies tell.
//
// A READDIRPLUS reply may give an entry without attributes (node id 0): the kernel then
// lists the name and links nothing. For an inode the kernel already holds, that is all it
// needs: it has the inode, most likely the dentry too (a lookup made it), and attributes it
// trusts until they time out. Skipping those entries saves the daemon an attribute read and
// the kernel a dentry walk and attribute update per entry; `git status` looks every tracked
// file up before it lists the directories, so every entry it lists is such an entry.
//
// Only a hint: a wrong answer costs a round trip, never correctness. Claiming an inode the
// kernel has dropped makes its next stat a LOOKUP; missing one sends attributes it already
// had. So the set is simply "replied with an entry, not forgotten since" (the kernel sends
// FORGET when it evicts an inode), with no lookup counts, and races between a reply and a
// forget may leave either answer.
#pragma once

#include <array>
#include <cstdint>
#include <mutex>
#include <unordered_set>

namespace fs::fuse {

class KernelInodes {
 public:
  void Add(uint64_t ino);
  void Forget(uint64_t ino);
  bool Holds(uint64_t ino);

 private:
  // Sharded by the low bits: inode numbers are dense, and concurrent lookups are of
  // neighbours as often as not.
  static constexpr size_t kShards = 16;
  struct Shard {
    std::mutex mu;
    std::unordered_set<uint64_t> inos;  // GUARDED_BY(mu)
  };
  Shard& ShardOf(uint64_t ino) { return shards_[ino % kShards]; }

  std::array<Shard, kShards> shards_;
};

}  // namespace fs::fuse

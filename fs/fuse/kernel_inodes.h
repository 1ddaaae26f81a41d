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
//
// One bit per inode number, in 64 KiB pages made on first use: inode numbers count up from
// 1, so the bits are dense, and a lookup costs an atomic load instead of a hash probe (the
// hash set this replaced cost 2.7% of a cold `git status`'s CPU samples). Numbers past
// kLimit (and the .kvfs views') are never held.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>

namespace fs::fuse {

class KernelInodes {
 public:
  KernelInodes() = default;
  ~KernelInodes();
  KernelInodes(const KernelInodes&) = delete;
  KernelInodes& operator=(const KernelInodes&) = delete;

  void Add(uint64_t ino);
  void Forget(uint64_t ino);
  bool Holds(uint64_t ino) const;

  static constexpr uint64_t kLimit = uint64_t{1} << 32;

 private:
  static constexpr uint64_t kBitsPerPage = uint64_t{1} << 19;  // 64 KiB of bits
  static constexpr size_t kWordsPerPage = kBitsPerPage / 64;
  using Page = std::array<std::atomic<uint64_t>, kWordsPerPage>;

  // The word holding `ino`'s bit, creating its page when `create`; null if there is none.
  std::atomic<uint64_t>* Word(uint64_t ino, bool create) const;

  mutable std::array<std::atomic<Page*>, kLimit / kBitsPerPage> pages_{};
};

}  // namespace fs::fuse

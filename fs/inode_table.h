// InodeState and InodeTable: the in-memory view of inodes (attribute cache, write buffer,
// open-handle count). Lock order: fs/README.md, "Locking".
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "fs/inode.h"

namespace fs {

// One inode as this process sees it: the committed I value plus uncommitted changes.
// Every field but `ino` is GUARDED_BY(mu).
struct InodeState {
  explicit InodeState(uint64_t n) : ino(n) {}
  InodeState(const InodeState&) = delete;
  InodeState& operator=(const InodeState&) = delete;

  const uint64_t ino;
  std::mutex mu;
  bool loaded = false;  // `inode` and `exists` reflect the store
  bool exists = false;  // an I key exists
  // Loaded by LoadHeadLocked: `inode` lacks its data (inline bytes, symlink target, a
  // directory's name), which LoadLocked reads when something needs it.
  bool head_only = false;
  // The inode including uncommitted changes (size and times of buffered writes, a lazy
  // relatime atime). Always what GetAttr reports.
  Inode inode;
  // True when `inode` differs from the committed I value.
  bool inode_dirty = false;
  // Uncommitted chunks: index -> the chunk's bytes from its start (shorter than a chunk when
  // the rest is a hole or past the end of the file).
  std::map<uint64_t, std::string> dirty;
  size_t dirty_bytes = 0;
  // Counts changes to the file's bytes (buffered writes, commits, reclaim). A read that
  // fetched chunks from the store without `mu` uses them only if this has not moved.
  uint64_t data_generation = 0;
  int open_handles = 0;  // file handles; an unlinked file is reclaimed when this drops to 0
  // The size changed (truncate, O_TRUNC) while handles were open: the next seal of any of
  // them makes a version even if that handle did not write.
  bool needs_seal = false;
  // Chunks stored for this inode (for st_blocks), counted when asked; -1: count again.
  mutable int64_t stored_chunks = -1;

  bool has_uncommitted() const { return inode_dirty || !dirty.empty(); }
};

// Maps inode numbers to their single InodeState. Thread-safe; its mutex is a leaf lock.
// States that nobody references and that hold nothing uncommitted or open are evicted when
// the table passes its capacity.
class InodeTable {
 public:
  // The map is sized for `capacity` up front: growing it rehashes every state, a cache miss
  // each, while the table fills at its busiest (a cold tree walk).
  explicit InodeTable(size_t capacity) : capacity_(capacity) { map_.reserve(capacity); }
  InodeTable(const InodeTable&) = delete;
  InodeTable& operator=(const InodeTable&) = delete;

  // The state of `ino`, created unloaded if the table has none.
  std::shared_ptr<InodeState> Get(uint64_t ino);
  // Every state in the table (for Close).
  std::vector<std::shared_ptr<InodeState>> All();

 private:
  void EvictLocked();

  const size_t capacity_;
  std::mutex mu_;
  std::unordered_map<uint64_t, std::shared_ptr<InodeState>> map_;  // GUARDED_BY(mu_)
};

}  // namespace fs

// InodeTxn: one file-system operation over several inodes, committed as ONE kv WriteBatch.
// It locks and loads the inodes it is given, lets the operation edit copies of them, and on
// Commit stages every changed inode (with its buffered chunks), reclaims the files that lost
// their last link, writes the batch, and only then updates the in-memory states. A failed
// commit changes nothing in memory.
#pragma once

#include <map>
#include <memory>
#include <mutex>

#include "fs/inode_table.h"
#include "fs/records.h"
#include "fs/volume_impl.h"
#include "kv/store.h"

namespace fs {

class InodeTxn {
 public:
  explicit InodeTxn(VolumeImpl* volume) : volume_(volume) {}
  InodeTxn(const InodeTxn&) = delete;
  InodeTxn& operator=(const InodeTxn&) = delete;

  // Locks and loads `ino` (no-op if already added). ENOENT when it does not exist.
  // REQUIRES: the caller holds ns_mu_ exclusively if it adds more than one inode.
  Errno Add(Ino ino);
  // Adds a freshly allocated inode that does not exist yet.
  void AddNew(const std::shared_ptr<InodeState>& state, const Inode& value);
  // REQUIRES: Add(ino) succeeded. Get reads the (possibly edited) value; Mut edits it.
  const Inode& Get(Ino ino) const { return entries_.at(ino).value; }
  Inode& Mut(Ino ino);
  InodeState& State(Ino ino) { return *entries_.at(ino).state; }
  bool Has(Ino ino) const { return entries_.count(ino) != 0; }
  // Files that lose their last name are deleted at once instead of going to the trash (the
  // retry of a deletion that did not fit on a full disk).
  void set_no_trash() { no_trash_ = true; }
  // Drops one link of `ino` (ctime = now). A file whose last link goes becomes an orphan
  // while handles are open; otherwise it (or a directory) goes to the trash, or is purged
  // when the trash is off. With `archive` (a file replaced by a rename that took over its
  // history) its data goes but its versions stay. `place` is where the link was (parent,
  // name, path) for the orphan and trash records.
  Errno DropLink(Ino ino, const PlaceRecord& place, int64_t now, bool archive = false);
  // Disposes of an orphan whose last handle went away, as DropLink would have.
  Errno ReclaimOrphan(Ino ino);
  // Deletes every key of `ino`, its history included (trash purge).
  Errno Purge(Ino ino);

  kv::WriteBatch* batch() { return &batch_; }
  // Writes everything; afterwards the locks are still held until destruction. Without
  // `flush` the batch may wait in the store's write buffer (up to 200 ms, or until the next
  // flushed commit) before it reaches the page files.
  Errno Commit(bool flush = true);
  // Called after a successful Commit for each drop_from registered with DropCache.
  void DropCache(Ino ino, uint64_t first) { drop_cache_.emplace_back(ino, first); }

 private:
  struct Entry {
    std::shared_ptr<InodeState> state;
    std::unique_lock<std::mutex> lock;
    Inode value;
    bool changed = false;
    bool reclaim = false;
  };

  // Trash, archive or purge an inode that has no name and no handle left.
  Errno Dispose(Entry& e, const PlaceRecord& place, bool was_orphan);

  VolumeImpl* const volume_;
  std::map<Ino, Entry> entries_;
  kv::WriteBatch batch_;
  std::vector<std::pair<Ino, uint64_t>> drop_cache_;
  bool no_trash_ = false;
};

}  // namespace fs

// InodeTxn: see fs/inode_txn.h.
#include "fs/inode_txn.h"

#include <cerrno>

#include "fs/keys.h"

namespace fs {

Errno InodeTxn::Add(Ino ino) {
  if (entries_.count(ino)) return Errno::OK();
  Entry e;
  e.state = volume_->inodes().Get(ino);
  e.lock = std::unique_lock<std::mutex>(e.state->mu);
  Errno err = volume_->LoadLocked(e.state.get());
  if (!err.ok()) return err;
  e.value = e.state->inode;
  entries_.emplace(ino, std::move(e));
  return Errno::OK();
}

void InodeTxn::AddNew(const std::shared_ptr<InodeState>& state, const Inode& value) {
  Entry e;
  e.state = state;
  e.lock = std::unique_lock<std::mutex>(state->mu);
  e.value = value;
  e.changed = true;
  entries_.emplace(state->ino, std::move(e));
}

Inode& InodeTxn::Mut(Ino ino) {
  Entry& e = entries_.at(ino);
  e.changed = true;
  return e.value;
}

Errno InodeTxn::DropLink(Ino ino, const PlaceRecord& place, int64_t now, bool archive) {
  Entry& e = entries_.at(ino);
  e.changed = true;
  e.value.ctime_ns = now;
  if (e.value.is_dir()) {
    e.value.nlink = 0;
  } else if (e.value.nlink > 0) {
    --e.value.nlink;
  }
  if (e.value.nlink > 0) return Errno::OK();
  PlaceRecord p = place;  // parent_mtime_ns comes from the caller
  p.ino = ino;
  p.mode = e.value.mode;
  p.size = e.value.size;
  p.time_ns = now;
  p.flags = archive ? PlaceRecord::kArchive : 0;
  if (!e.value.is_dir() && e.state->open_handles > 0) {
    // Open but unlinked: keep the inode (nlink 0) and remember it, so that the next Open of
    // the volume disposes of it if this process dies before the last Release.
    batch_.Put(keys::Orphan(ino), EncodePlace(p));
    return Errno::OK();
  }
  return Dispose(e, p, /*was_orphan=*/false);
}

Errno InodeTxn::Dispose(Entry& e, const PlaceRecord& place, bool was_orphan) {
  using Reclaim = VolumeImpl::Reclaim;
  if (place.flags & PlaceRecord::kArchive) {
    e.reclaim = true;
    return volume_->StageReclaim(&batch_, *e.state, Reclaim::kArchive, was_orphan);
  }
  if (!volume_->trash_enabled() || no_trash_) {
    e.reclaim = true;
    return volume_->StageReclaim(&batch_, *e.state, Reclaim::kPurge, was_orphan);
  }
  e.changed = true;
  e.value.nlink = 0;
  e.value.trashed = true;
  if (was_orphan) batch_.Delete(keys::Orphan(e.state->ino));
  return volume_->StageTrash(&batch_, e.state->ino, e.value, place);
}

Errno InodeTxn::ReclaimOrphan(Ino ino) {
  Entry& e = entries_.at(ino);
  PlaceRecord place;
  std::string value;
  kv::Status s = volume_->store()->Get(kv::ReadOptions(), keys::Orphan(ino), &value);
  if (s.ok()) {
    if (!DecodePlace(value, &place)) return Errno(EIO, "corrupt orphan record");
  } else if (!s.IsNotFound()) {
    return Errno::FromStatus(s);
  }
  place.ino = ino;
  place.mode = e.value.mode;
  place.size = e.value.size;
  return Dispose(e, place, /*was_orphan=*/true);
}

Errno InodeTxn::Purge(Ino ino) {
  Entry& e = entries_.at(ino);
  e.reclaim = true;
  return volume_->StageReclaim(&batch_, *e.state, VolumeImpl::Reclaim::kPurge,
                               /*was_orphan=*/false);
}

Errno InodeTxn::Commit(bool flush) {
  for (auto& [ino, e] : entries_) {
    if (e.changed && !e.reclaim) volume_->StageInodeLocked(&batch_, *e.state, e.value);
  }
  if (!batch_.empty()) {
    Errno err = volume_->Commit(batch_, /*sync=*/false, flush);
    if (!err.ok()) return err;
  }
  for (auto& [ino, e] : entries_) {
    if (e.reclaim) {
      volume_->ReclaimedLocked(e.state.get());
    } else if (e.changed) {
      e.state->exists = true;
      e.state->loaded = true;
      volume_->InodeCommittedLocked(e.state.get(), e.value);
    }
  }
  for (auto& [ino, first] : drop_cache_) volume_->cache().EraseFrom(ino, first);
  return Errno::OK();
}

}  // namespace fs

// File handles: create, open, read, write, flush, fsync, release, fallocate, and setattr
// (which shares the truncation path). Version sealing lives here too.
#include <fcntl.h>
#include <sys/stat.h>

#include <cerrno>

#include "fs/inode_txn.h"
#include "fs/keys.h"
#include "fs/meta_ino.h"
#include "fs/volume_impl.h"

namespace fs {

std::shared_ptr<FileHandle> VolumeImpl::FindFile(uint64_t handle) {
  std::lock_guard lock(handles_mu_);
  auto it = files_.find(handle);
  return it == files_.end() ? nullptr : it->second;
}

uint64_t VolumeImpl::AddHandle(std::shared_ptr<FileHandle> handle) {
  std::lock_guard lock(handles_mu_);
  uint64_t id = next_handle_++;
  files_.emplace(id, std::move(handle));
  return id;
}

Errno VolumeImpl::OpenLocked(const std::shared_ptr<InodeState>& state, int flags,
                             uint64_t* handle) {
  auto h = std::make_shared<FileHandle>();
  h->state = state;
  h->flags = flags;
  ++state->open_handles;
  *handle = AddHandle(std::move(h));
  return Errno::OK();
}

Errno VolumeImpl::Create(Ino parent, std::string_view name, uint32_t mode, int flags,
                         const Caller& caller, Attr* attr, uint64_t* handle) {
  if (!Enter()) return Errno(EIO, "volume closed");
  Inode proto;
  proto.mode = S_IFREG | (mode & 07777);
  proto.nlink = 1;
  proto.inline_data = true;
  std::unique_lock ns(ns_mu_);
  std::shared_ptr<InodeState> state;
  Errno err = CreateNodeLocked(parent, name, proto, caller, attr, &state);
  if (!err.ok()) return err;
  std::lock_guard lock(state->mu);
  return OpenLocked(state, flags, handle);
}

Errno VolumeImpl::Open(Ino ino, int flags, uint64_t* handle) {
  if (!Enter()) return Errno(EIO, "volume closed");
  if (IsMetaIno(ino)) return MetaOpen(ino, flags, handle);
  const bool writes = (flags & O_ACCMODE) != O_RDONLY;
  if ((flags & O_TRUNC) && writes) {
    SetAttrRequest truncate;
    truncate.valid = SetAttrRequest::kSize;
    truncate.size = 0;
    Errno err = SetAttrImpl(ino, truncate, nullptr, /*from_open=*/true);
    if (!err.ok()) return err;
  }
  std::shared_ptr<InodeState> state = inodes_.Get(ino);
  std::lock_guard lock(state->mu);
  Errno err = LoadLocked(state.get());
  if (!err.ok()) return err;
  if (state->inode.is_dir() && writes) return Errno(EISDIR);
  if (state->inode.trashed && writes) return Errno(EROFS);
  return OpenLocked(state, flags, handle);
}

Errno VolumeImpl::Read(uint64_t handle, uint64_t offset, size_t size, ReadBuffer* data) {
  data->Clear();
  if (!Enter()) return Errno(EIO, "volume closed");
  std::shared_ptr<FileHandle> h = FindFile(handle);
  if (!h) return Errno(EBADF);
  if (h->meta) {
    std::string bytes;
    Errno err = MetaRead(*h->meta, offset, size, &bytes);
    if (!err.ok()) return err;
    auto owner = std::make_shared<const std::string>(std::move(bytes));
    data->Append(owner, 0, owner->size());
    bytes_read_.fetch_add(data->size(), std::memory_order_relaxed);
    return Errno::OK();
  }
  InodeState* state = h->state.get();
  std::vector<ChunkPiece> pieces;
  // Chunks that are not cached are read from the store without the inode lock, so that the
  // kernel's concurrent readahead requests for one file fault in, check and decompress their
  // chunks in parallel. A change to the file meanwhile makes the read plan again; the last
  // attempt holds the lock throughout, so that a stream of writes cannot starve a reader.
  constexpr int kAttempts = 3;
  for (int attempt = 1;; ++attempt) {
    std::unique_lock lock(state->mu);
    Errno err = LoadLocked(state);
    if (!err.ok()) return err;
    if (state->inode.is_dir()) return Errno(EISDIR);
    const uint64_t file_size = state->inode.size;
    if (offset >= file_size || size == 0) return Errno::OK();
    const uint64_t end = offset + std::min<uint64_t>(size, file_size - offset);
    if (PlanReadLocked(state, offset, end, &pieces) > 0) {
      const uint64_t generation = state->data_generation;
      const bool unlocked = attempt < kAttempts;
      if (unlocked) lock.unlock();
      const std::span<char> destination = data->destination();
      for (ChunkPiece& piece : pieces) {
        if (piece.bytes) continue;
        // A whole chunk within the destination is read into it, not through a string (nor
        // into the cache: the kernel's page cache keeps what a large read brings in).
        if (piece.base >= offset && piece.base + chunk_size_ <= end &&
            piece.base - offset + chunk_size_ <= destination.size()) {
          err = FetchChunkInto(state->ino, piece.index,
                               destination.subspan(piece.base - offset, chunk_size_),
                               &piece.direct_size);
          if (!err.ok()) return err;
          piece.direct = true;
          continue;
        }
        err = FetchChunk(state->ino, piece.index, &piece.bytes);
        if (!err.ok()) return err;
        piece.fetched = true;
      }
      if (unlocked) {
        lock.lock();
        if (state->data_generation != generation) continue;
      }
      for (const ChunkPiece& piece : pieces) {
        if (piece.fetched) cache_.Insert(state->ino, piece.index, piece.bytes);
      }
    }
    AssembleRead(offset, end, pieces, data);
    bytes_read_.fetch_add(data->size(), std::memory_order_relaxed);
    // A trashed file is read-only, atime included.
    if (!state->inode.trashed) TouchAtimeLocked(state);
    return Errno::OK();
  }
}

Errno VolumeImpl::Write(uint64_t handle, uint64_t offset, std::string_view data, size_t* written) {
  if (!Enter()) return Errno(EIO, "volume closed");
  *written = 0;
  std::shared_ptr<FileHandle> h = FindFile(handle);
  if (!h) return Errno(EBADF);
  if ((h->flags & O_ACCMODE) == O_RDONLY || h->meta) return Errno(EBADF);
  InodeState* state = h->state.get();
  std::lock_guard lock(state->mu);
  Errno err = LoadLocked(state);
  if (!err.ok()) return err;
  if (!state->inode.is_reg()) return Errno(EINVAL);
  if (h->flags & O_APPEND) offset = state->inode.size;
  err = WriteLocked(state, offset, data);
  if (!err.ok()) return err;
  h->wrote_unsealed = true;
  *written = data.size();
  bytes_written_.fetch_add(data.size(), std::memory_order_relaxed);
  // Commit when a write ends on a chunk boundary (a sequential writer just filled a chunk)
  // or when the file's or the volume's buffer is full; small writes in between coalesce into
  // whole-chunk puts.
  const uint64_t end = offset + data.size();
  if ((!state->inode.inline_data && end % chunk_size_ == 0) ||
      state->dirty_bytes >= options_.max_dirty_bytes_per_inode ||
      dirty_bytes_.load(std::memory_order_relaxed) > options_.max_dirty_bytes) {
    return FlushLocked(state);
  }
  return Errno::OK();
}

Errno VolumeImpl::Flush(uint64_t handle) {
  if (!Enter()) return Errno(EIO, "volume closed");
  std::shared_ptr<FileHandle> h = FindFile(handle);
  if (!h) return Errno(EBADF);
  if (h->meta) return Errno::OK();
  // close(2) of a descriptor: what this handle wrote becomes a version now, not when the
  // kernel gets round to the (asynchronous) release, so that the history is complete as
  // soon as close returns.
  std::lock_guard lock(h->state->mu);
  return SealLocked(h.get());
}

Errno VolumeImpl::SealLocked(FileHandle* h) {
  InodeState* state = h->state.get();
  if (!state->exists) return Errno::OK();
  if (!h->wrote_unsealed && !state->needs_seal) return FlushLocked(state);
  if (!versioning() || state->inode.trashed) {
    Errno err = FlushLocked(state);
    if (!err.ok()) return err;
    h->wrote_unsealed = false;
    state->needs_seal = false;
    return Errno::OK();
  }
  const int64_t now = Now();
  Inode value = state->inode;
  // A handle that sealed the newest version moments ago replaces it: fsync after every
  // write must not mint a version per write.
  const bool collapse = h->sealed_version != 0 && h->sealed_version == value.version &&
                        now - h->sealed_at_ns < options_.seal_collapse_ns;
  if (!collapse) ++value.version;
  kv::WriteBatch batch;
  StageInodeLocked(&batch, *state, value);
  batch.Put(keys::Version(state->ino, value.version), EncodeVersion({now, value.size}));
  Errno err = Commit(batch);
  if (!err.ok()) return err;
  InodeCommittedLocked(state, std::move(value));
  VersionsChanged();
  versions_sealed_.fetch_add(1, std::memory_order_relaxed);
  h->wrote_unsealed = false;
  state->needs_seal = false;
  h->sealed_version = state->inode.version;
  h->sealed_at_ns = now;
  if (collapse) return Errno::OK();
  return MaybePruneLocked(state);
}

Errno VolumeImpl::MaybePruneLocked(InodeState* state) {
  // The newest version's number bounds how many there are; only past the retention is the
  // history read.
  uint64_t newest = state->inode.version;
  if (newest <= version_retention_) {
    HistoryLink link;
    bool linked = false;
    Errno err = GetHistoryLink(state->ino, &link, &linked);
    if (!err.ok()) return err;
    if (linked) newest += link.base;
  }
  if (newest <= version_retention_) return Errno::OK();
  return PruneHistoryLocked(state->ino);
}

Errno VolumeImpl::Fsync(uint64_t handle, bool /*datasync*/) {
  if (!Enter()) return Errno(EIO, "volume closed");
  std::shared_ptr<FileHandle> h = FindFile(handle);
  if (!h) return Errno(EBADF);
  if (h->meta) return Errno::OK();
  {
    std::lock_guard lock(h->state->mu);
    Errno err = SealLocked(h.get());
    if (!err.ok()) return err;
  }
  return Errno::FromStatus(store_->Sync());
}

Errno VolumeImpl::Release(uint64_t handle) {
  std::shared_ptr<FileHandle> h;
  {
    std::lock_guard lock(handles_mu_);
    auto it = files_.find(handle);
    if (it == files_.end()) return Errno(EBADF);
    h = std::move(it->second);
    files_.erase(it);
  }
  return ReleaseHandle(h);
}

Errno VolumeImpl::ReleaseHandle(const std::shared_ptr<FileHandle>& h) {
  if (h->meta) return Errno::OK();
  InodeState* state = h->state.get();
  Errno first;
  bool reclaim = false;
  bool wrote = false;
  {
    std::lock_guard lock(state->mu);
    wrote = h->wrote_unsealed;
    first = SealLocked(h.get());
    --state->open_handles;
    reclaim = state->exists && state->open_handles == 0 && state->inode.nlink == 0 &&
              !state->inode.trashed;
  }
  // A file closed after writing survives a crash of this process (not of the machine):
  // its batches leave the store's write buffer now rather than within 200 ms.
  if (wrote && first.ok()) first = Errno::FromStatus(store_->Flush());
  if (!reclaim) return first;
  // The last handle of an unlinked file: its data goes (one batch, with the O key).
  InodeTxn txn(this);
  Errno err = txn.Add(state->ino);
  if (err.ok() && state->open_handles == 0 && txn.Get(state->ino).nlink == 0 &&
      !txn.Get(state->ino).trashed) {
    err = txn.ReclaimOrphan(state->ino);
    if (err.ok()) err = txn.Commit();
  } else if (err.value() == ENOENT) {
    err = Errno::OK();
  }
  return first.ok() ? err : first;
}

Errno VolumeImpl::Fallocate(uint64_t handle, int mode, uint64_t offset, uint64_t length) {
  if (!Enter()) return Errno(EIO, "volume closed");
  std::shared_ptr<FileHandle> h = FindFile(handle);
  if (!h) return Errno(EBADF);
  if (h->meta) return Errno(EROFS);
  if (length == 0) return Errno(EINVAL);
  if (offset > kMaxFileSize || length > kMaxFileSize - offset) return Errno(EFBIG);
  const bool punch = mode == (kFallocKeepSize | kFallocPunchHole);
  if (mode != 0 && mode != kFallocKeepSize && !punch) return Errno(EOPNOTSUPP);
  const Ino ino = h->state->ino;
  InodeTxn txn(this);
  Errno err = txn.Add(ino);
  if (!err.ok()) return err;
  InodeState& state = txn.State(ino);
  if (!txn.Get(ino).is_reg()) return Errno(ENODEV);
  if (txn.Get(ino).trashed) return Errno(EROFS);
  const uint64_t end = offset + length;
  if (mode == kFallocKeepSize || (mode == 0 && end <= txn.Get(ino).size)) {
    return Errno::OK();  // nothing to allocate: absent chunks are already zeros
  }
  // The chunk rewrites below work on committed data.
  err = FlushLocked(&state);
  if (!err.ok()) return err;
  Inode& value = txn.Mut(ino);
  uint64_t drop_from = 0;
  if (punch) {
    err = StageZeroRangeLocked(&state, &value, offset, end, txn.batch(), &drop_from);
  } else {
    err = StageResizeLocked(&state, &value, end, txn.batch(), &drop_from);
  }
  if (!err.ok()) return err;
  txn.DropCache(ino, drop_from);
  value.mtime_ns = value.ctime_ns = Now();
  h->wrote_unsealed = true;
  return txn.Commit();
}

namespace {
// The time fields of a setattr; ctime is set even when not given (any change sets it).
void ApplyTimes(const SetAttrRequest& r, int64_t now, Inode* n) {
  if (r.valid & SetAttrRequest::kAtimeNow) n->atime_ns = now;
  if (r.valid & SetAttrRequest::kAtime) n->atime_ns = r.atime_ns;
  if (r.valid & SetAttrRequest::kMtimeNow) n->mtime_ns = now;
  if (r.valid & SetAttrRequest::kMtime) n->mtime_ns = r.mtime_ns;
  n->ctime_ns = (r.valid & SetAttrRequest::kCtime) ? r.ctime_ns : now;
}
}  // namespace

Errno VolumeImpl::SetAttr(Ino ino, const SetAttrRequest& r, Attr* attr) {
  if (!Enter()) return Errno(EIO, "volume closed");
  if (IsMetaIno(ino)) return Errno(EROFS);
  return SetAttrImpl(ino, r, attr, /*from_open=*/false);
}

Errno VolumeImpl::SetAttrImpl(Ino ino, const SetAttrRequest& r, Attr* attr, bool from_open) {
  // With the writeback cache the kernel sends a file's times after its last close, and the
  // file may have been deleted meanwhile: such a write-back must not fail (syncfs reports it).
  constexpr uint32_t kTimes = SetAttrRequest::kAtime | SetAttrRequest::kMtime |
                              SetAttrRequest::kAtimeNow | SetAttrRequest::kMtimeNow |
                              SetAttrRequest::kCtime;
  const bool times_only = (r.valid & ~kTimes) == 0 && !from_open;
  InodeTxn txn(this);
  Errno err = txn.Add(ino);
  if (err.value() == ENOENT && times_only) {
    std::shared_ptr<InodeState> gone = inodes_.Get(ino);
    std::lock_guard lock(gone->mu);
    if (gone->loaded && !gone->exists && gone->inode.mode != 0) {
      if (attr) *attr = ToAttr(*gone);
      return Errno::OK();  // deleted for good: nothing left to keep the times on
    }
  }
  if (!err.ok()) return err;
  InodeState& state = txn.State(ino);
  // A trashed file keeps the written-back times; anything else is refused.
  if (txn.Get(ino).trashed && !times_only) return Errno(EROFS);
  const int64_t now = Now();
  if (r.valid & SetAttrRequest::kSize) {
    if (txn.Get(ino).is_dir()) return Errno(EISDIR);
    if (!txn.Get(ino).is_reg()) return Errno(EINVAL);
    if (r.size > kMaxFileSize) return Errno(EFBIG);
    err = FlushLocked(&state);
    if (!err.ok()) return err;
  }
  // With the writeback cache the kernel owns a file's times and writes them back: after
  // its writes, just before the close's flush, and after link, unlink or rename, which set
  // the ctime. On an open file they join its buffered changes, which that flush or the last
  // release commits anyway. A new ctime alone is committed without a write of its own.
  if (times_only && state.open_handles > 0 && !txn.Get(ino).trashed) {
    ApplyTimes(r, now, &state.inode);
    MarkInodeDirtyLocked(&state);
    if (attr) *attr = ToAttr(state);
    return Errno::OK();
  }
  Inode& n = txn.Mut(ino);
  const int64_t atime_before = n.atime_ns, mtime_before = n.mtime_ns;
  if (r.valid & SetAttrRequest::kMode) {
    n.mode = (n.mode & S_IFMT) | (r.mode & 07777);
    err = StageAclChmodLocked(&txn, ino, n.mode);
    if (!err.ok()) return err;
  }
  if (r.valid & SetAttrRequest::kUid) n.uid = r.uid;
  if (r.valid & SetAttrRequest::kGid) n.gid = r.gid;
  bool resized = false;
  if (r.valid & SetAttrRequest::kSize && r.size != n.size) {
    uint64_t drop_from = 0;
    err = StageResizeLocked(&state, &n, r.size, txn.batch(), &drop_from);
    if (!err.ok()) return err;
    txn.DropCache(ino, drop_from);
    n.mtime_ns = now;
    resized = true;
  }
  ApplyTimes(r, now, &n);
  const bool ctime_only = times_only && n.atime_ns == atime_before && n.mtime_ns == mtime_before;
  // A truncation or extension is a change of content like a write: with no handle open to
  // seal it later (truncate(2)), it is a version of its own now.
  const bool seal_now = resized && versioning() && !from_open && state.open_handles == 0;
  if (seal_now) {
    ++n.version;
    txn.batch()->Put(keys::Version(ino, n.version), EncodeVersion({now, n.size}));
  }
  err = txn.Commit(/*flush=*/!ctime_only);
  if (!err.ok()) return err;
  if (seal_now) {
    VersionsChanged();
    versions_sealed_.fetch_add(1, std::memory_order_relaxed);
    err = MaybePruneLocked(&state);
    if (!err.ok()) return err;
  } else if (resized) {
    state.needs_seal = true;
  }
  if (attr) *attr = ToAttr(state);
  return Errno::OK();
}

}  // namespace fs

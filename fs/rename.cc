// Rename, with RENAME_NOREPLACE and RENAME_EXCHANGE: both entries, a replaced target, link
// counts, parent pointers and times change in one batch.
#include <sys/stat.h>

#include <cerrno>

#include "fs/inode_txn.h"
#include "fs/keys.h"
#include "fs/meta_ino.h"
#include "fs/volume_impl.h"

namespace fs {

Errno VolumeImpl::Rename(Ino parent, std::string_view name, Ino new_parent,
                         std::string_view new_name, uint32_t flags) {
  if (!Enter()) return Errno(EIO, "volume closed");
  if ((flags & ~(kRenameNoReplace | kRenameExchange)) != 0 ||
      flags == (kRenameNoReplace | kRenameExchange)) {
    return Errno(EINVAL, "rename flags");
  }
  if (name.size() > kNameMax || new_name.size() > kNameMax) return Errno(ENAMETOOLONG);
  for (std::string_view n : {name, new_name}) {
    if (n.empty() || n == "." || n == ".." || n.find('/') != std::string_view::npos) {
      return Errno(EINVAL, "rename of . or ..");
    }
  }
  if (IsMetaIno(new_parent) || (new_parent == kRootIno && new_name == kMetaDirName) ||
      (parent == kRootIno && name == kMetaDirName)) {
    return Errno(EROFS);
  }

  std::unique_lock ns(ns_mu_);
  bool replaced = false;
  Errno err = RenameLocked(parent, name, new_parent, new_name, flags, &replaced);
  // After the rename's inode locks are gone: the purge locks inodes of its own.
  if (err.ok() && replaced) MaybePurgeTrashLocked();
  return err;
}

Errno VolumeImpl::CheckReplace(bool src_dir, const DentryValue& dst, Ino parent,
                               std::string_view name, std::string* dst_path) {
  const bool dst_dir = S_ISDIR(dst.type);
  if (src_dir && !dst_dir) return Errno(ENOTDIR);
  if (!src_dir && dst_dir) return Errno(EISDIR);
  if (dst_dir) {
    bool empty = false;
    Errno err = IsEmptyDir(dst.ino, &empty);
    if (!err.ok()) return err;
    if (!empty) return Errno(ENOTEMPTY);
  }
  return EntryPath(parent, name, dst_path);
}

Errno VolumeImpl::RenameLocked(Ino parent, std::string_view name, Ino new_parent,
                               std::string_view new_name, uint32_t flags, bool* replaced) {
  const bool exchange = (flags & kRenameExchange) != 0;
  if (parent == meta::kTrashIno) {
    // Moving an entry out of .kvfs/trash restores it.
    if (exchange) return Errno(EROFS);
    TrashItem item;
    Errno err = FindTrashEntry(name, &item);
    if (!err.ok()) return err;
    return RestoreLocked(item, new_parent, new_name, !(flags & kRenameNoReplace));
  }
  if (IsMetaIno(parent)) return Errno(EROFS);
  DentryValue src, dst;
  bool have_dst = false;
  bool parent_trashed = false;
  {
    // Parents must be directories before their entries mean anything.
    for (Ino p : {parent, new_parent}) {
      std::shared_ptr<InodeState> state = inodes_.Get(p);
      std::lock_guard lock(state->mu);
      Errno err = LoadLocked(state.get());
      if (!err.ok()) return err;
      if (!state->inode.is_dir()) return Errno(ENOTDIR);
      if (state->inode.trashed) {
        if (p == new_parent) return Errno(EROFS);
        parent_trashed = true;
      }
    }
  }
  if (parent_trashed) {
    // A member of a trashed tree moved out of it: restored alone.
    if (exchange) return Errno(EROFS);
    TrashItem item;
    Errno err = FindTrashMember(parent, name, &item);
    if (!err.ok()) return err;
    return RestoreLocked(item, new_parent, new_name, !(flags & kRenameNoReplace));
  }
  Errno err = GetDentry(parent, name, &src);
  if (!err.ok()) return err;
  err = GetDentry(new_parent, new_name, &dst);
  if (err.ok()) {
    have_dst = true;
  } else if (err.value() != ENOENT) {
    return err;
  }
  if (exchange && !have_dst) return Errno(ENOENT);
  if ((flags & kRenameNoReplace) && have_dst) return Errno(EEXIST);
  // Two names of one file (or one name twice): POSIX says do nothing.
  if (have_dst && dst.ino == src.ino) return Errno::OK();

  const bool src_dir = S_ISDIR(src.type);
  const bool dst_dir = have_dst && S_ISDIR(dst.type);
  // A directory cannot move below itself (the walk needs no inode locks held).
  if (src_dir && parent != new_parent) {
    bool inside = false;
    err = IsInSubtree(new_parent, src.ino, &inside);
    if (!err.ok()) return err;
    if (inside) return Errno(EINVAL, "directory into its own subtree");
  }
  if (exchange && dst_dir && parent != new_parent) {
    bool inside = false;
    err = IsInSubtree(parent, dst.ino, &inside);
    if (!err.ok()) return err;
    if (inside) return Errno(EINVAL, "directory into its own subtree");
  }
  std::string dst_path;
  if (have_dst && !exchange) {
    err = CheckReplace(src_dir, dst, new_parent, new_name, &dst_path);
    if (!err.ok()) return err;
  }
  // Renaming a new file over an old one (an editor's save) carries the old file's history
  // over: the replaced file keeps its versions, and an H link makes them the older part of
  // the new file's history.
  bool link_history = false;
  bool archived = false;
  HistoryLink link;
  if (have_dst && !exchange && versioning() && S_ISREG(src.type) && S_ISREG(dst.type)) {
    HistoryLink src_link, dst_link;
    bool src_linked = false, dst_linked = false;
    err = GetHistoryLink(src.ino, &src_link, &src_linked);
    if (err.ok()) err = GetHistoryLink(dst.ino, &dst_link, &dst_linked);
    if (!err.ok()) return err;
    link_history = !src_linked;
    link.prev = dst.ino;
    link.base = dst_linked ? dst_link.base : 0;
  }

  InodeTxn txn(this);
  for (Ino ino : {parent, new_parent, src.ino}) {
    err = txn.Add(ino);
    if (!err.ok()) return err;
  }
  if (have_dst) {
    err = txn.Add(dst.ino);
    if (!err.ok()) return err;
  }
  int64_t now = Now();
  kv::WriteBatch* batch = txn.batch();
  Inode& src_node = txn.Mut(src.ino);
  src_node.ctime_ns = now;
  const bool moves = parent != new_parent;
  if (exchange) {
    batch->Put(keys::Dentry(parent, name), EncodeDentry(dst));
    batch->Put(keys::Dentry(new_parent, new_name), EncodeDentry(src));
    txn.Mut(dst.ino).ctime_ns = now;
    if (moves && src_dir) {
      src_node.parent = new_parent;
      --txn.Mut(parent).nlink;
      ++txn.Mut(new_parent).nlink;
    }
    if (moves && dst_dir) {
      txn.Mut(dst.ino).parent = parent;
      --txn.Mut(new_parent).nlink;
      ++txn.Mut(parent).nlink;
    }
  } else {
    batch->Delete(keys::Dentry(parent, name));
    batch->Put(keys::Dentry(new_parent, new_name), EncodeDentry(src));
    if (have_dst) {
      // The replaced target loses this link; a replaced directory also takes its ".." away.
      if (dst_dir) --txn.Mut(new_parent).nlink;
      const Inode& old = txn.Get(dst.ino);
      // Only a file that goes away for good (and has something to show) hands its history
      // over; otherwise it goes to the trash like any deleted file.
      const bool archive = link_history && old.nlink == 1 && (old.version > 0 || link.base > 0);
      if (archive) {
        link.base += old.version;
        batch->Put(keys::History(src.ino), EncodeHistoryLink(link));
        archived = true;
      }
      err = txn.DropLink(dst.ino,
                         PlaceRecord{new_parent, dst.ino, 0, 0, std::string(new_name), dst_path},
                         now, archive);
      if (!err.ok()) return err;
    }
    if (moves && src_dir) {
      src_node.parent = new_parent;
      --txn.Mut(parent).nlink;
      ++txn.Mut(new_parent).nlink;
    }
  }
  // Directories know their own names (for paths).
  if (src_dir) txn.Mut(src.ino).data.assign(new_name);
  if (exchange && dst_dir) txn.Mut(dst.ino).data.assign(name);
  for (Ino p : {parent, new_parent}) {
    Inode& dir = txn.Mut(p);
    dir.mtime_ns = dir.ctime_ns = now;
  }
  err = txn.Commit();
  if (!err.ok()) return err;
  *replaced = have_dst && !exchange;
  // The saved file's history grew by the replaced file's: keep it within the retention now,
  // as a seal would (the seal happened before the rename, when the chain was shorter).
  if (archived && link.base + txn.Get(src.ino).version > version_retention_) {
    err = PruneHistoryLocked(src.ino);
    if (!err.ok()) return err;
    VersionsChanged();
  }
  return Errno::OK();
}

}  // namespace fs

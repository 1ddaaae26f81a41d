// Name operations: lookup, getattr, create (mknod, mkdir, symlink), link, unlink, rmdir.
// Each change is one InodeTxn, i.e. one kv batch.
#include <sys/stat.h>

#include <cerrno>

#include "fs/inode_txn.h"
#include "fs/keys.h"
#include "fs/meta_ino.h"
#include "fs/volume_impl.h"

namespace fs {
namespace {
constexpr uint64_t kInoReserveStep = 1024;
constexpr size_t kSymlinkMax = 4095;  // PATH_MAX - 1
constexpr uint32_t kLinkMax = 65000;

// Checks a name that is looked up or removed: ENAMETOOLONG beyond kNameMax.
Errno CheckName(std::string_view name) {
  if (name.size() > kNameMax) return Errno(ENAMETOOLONG);
  if (name.empty() || name.find('/') != std::string_view::npos) return Errno(EINVAL);
  return Errno::OK();
}
}  // namespace

Errno VolumeImpl::GetDentry(Ino parent, std::string_view name, DentryValue* entry) {
  std::string value;
  kv::Status s = store_->Get(kv::ReadOptions(), keys::Dentry(parent, name), &value);
  if (!s.ok()) return Errno::FromStatus(s);
  if (!DecodeDentry(value, entry)) return Errno(EIO, "corrupt directory entry");
  return Errno::OK();
}

Errno VolumeImpl::IsEmptyDir(Ino dir, bool* empty) {
  std::unique_ptr<kv::Iterator> it =
      store_->NewIterator(kv::ReadOptions(), keys::InoKey(keys::kDentry, dir));
  it->SeekToFirst();
  *empty = !it->Valid();
  return Errno::FromStatus(it->status());
}

Errno VolumeImpl::IsInSubtree(Ino ino, Ino ancestor, bool* inside) {
  // Walks up the parent pointers of directories; they only change under ns_mu_, which the
  // caller holds exclusively. The walk is bounded in case of a corrupt cycle.
  *inside = false;
  for (int depth = 0; depth < 1 << 16; ++depth) {
    if (ino == ancestor) {
      *inside = true;
      return Errno::OK();
    }
    if (ino == kRootIno) return Errno::OK();
    std::shared_ptr<InodeState> state = inodes_.Get(ino);
    std::lock_guard lock(state->mu);
    Errno err = LoadLocked(state.get());
    if (!err.ok()) return err;
    ino = state->inode.parent;
  }
  return Errno(EIO, "directory parent chain too long");
}

Ino VolumeImpl::ReserveIno(kv::WriteBatch* batch) {
  pending_limit_ = 0;
  if (next_ino_ >= super_.ino_limit) {
    Superblock sb = super_;
    sb.ino_limit = next_ino_ + kInoReserveStep;
    batch->Put(keys::Super(), EncodeSuperblock(sb));
    pending_limit_ = sb.ino_limit;
  }
  return next_ino_;
}

void VolumeImpl::InoCommitted() {
  ++next_ino_;
  if (pending_limit_ != 0) super_.ino_limit = pending_limit_;
  pending_limit_ = 0;
}

Errno VolumeImpl::Lookup(Ino parent, std::string_view name, Attr* attr) {
  if (!Enter()) return Errno(EIO, "volume closed");
  Errno err = CheckName(name);
  if (!err.ok()) return err;
  if (IsMetaIno(parent)) return MetaLookup(parent, name, attr);
  if (parent == kRootIno && name == kMetaDirName) return MetaGetAttr(meta::kDirIno, attr);
  std::shared_lock ns(ns_mu_);
  Ino child = 0;
  bool trashed = false;
  {
    std::shared_ptr<InodeState> p = inodes_.Get(parent);
    std::lock_guard lock(p->mu);
    err = LoadHeadLocked(p.get());
    if (!err.ok()) return err;
    if (!p->inode.is_dir()) return Errno(ENOTDIR);
    if (name == ".") child = parent;
    if (name == "..") child = p->inode.parent;
    trashed = p->inode.trashed;
  }
  if (child == 0 && trashed) {
    // A trashed directory shows the members of its trashed tree.
    TrashItem item;
    err = FindTrashMember(parent, name, &item);
    if (!err.ok()) return err;
    child = item.place.ino;
  }
  if (child == 0) {
    DentryValue entry;
    err = GetDentry(parent, name, &entry);
    if (!err.ok()) return err;
    child = entry.ino;
  }
  std::shared_ptr<InodeState> c = inodes_.Get(child);
  std::lock_guard lock(c->mu);
  err = LoadHeadLocked(c.get());
  if (err.value() == ENOENT) return Errno(EIO, "dangling directory entry");
  if (!err.ok()) return err;
  *attr = ToAttr(*c);
  return Errno::OK();
}

Errno VolumeImpl::GetAttr(Ino ino, Attr* attr) {
  if (!Enter()) return Errno(EIO, "volume closed");
  if (IsMetaIno(ino)) return MetaGetAttr(ino, attr);
  std::shared_ptr<InodeState> state = inodes_.Get(ino);
  std::lock_guard lock(state->mu);
  Errno err = LoadHeadLocked(state.get());
  if (!err.ok()) return err;
  *attr = ToAttr(*state);
  return Errno::OK();
}

Errno VolumeImpl::CreateNodeLocked(Ino parent, std::string_view name, Inode proto,
                                   const Caller& caller, Attr* attr,
                                   std::shared_ptr<InodeState>* created) {
  Errno err = CheckNewName(name);
  if (!err.ok()) return err;
  if (IsMetaIno(parent)) return Errno(EROFS);
  if (parent == kRootIno && name == kMetaDirName) return Errno(EEXIST);
  InodeTxn txn(this);
  err = txn.Add(parent);
  if (!err.ok()) return err;
  const Inode& dir = txn.Get(parent);
  if (!dir.is_dir()) return Errno(ENOTDIR);
  if (dir.trashed) return Errno(EROFS);
  DentryValue existing;
  err = GetDentry(parent, name, &existing);
  if (err.ok()) return Errno(EEXIST);
  if (err.value() != ENOENT) return err;

  std::vector<std::pair<std::string_view, std::string>> acls;
  err = InheritAclsLocked(parent, caller, &proto.mode, &acls);
  if (!err.ok()) return err;
  int64_t now = Now();
  proto.uid = caller.uid;
  proto.gid = caller.gid;
  if (dir.mode & S_ISGID) {
    // BSD group semantics in a setgid directory; subdirectories inherit the bit.
    proto.gid = dir.gid;
    if (proto.is_dir()) proto.mode |= S_ISGID;
  }
  proto.atime_ns = proto.mtime_ns = proto.ctime_ns = now;
  if (proto.is_dir()) {
    proto.parent = parent;
    proto.data.assign(name);  // for paths (trash records); see Inode::data
  }

  Ino ino = ReserveIno(txn.batch());
  std::shared_ptr<InodeState> state = inodes_.Get(ino);
  txn.AddNew(state, proto);
  txn.batch()->Put(keys::Dentry(parent, name), EncodeDentry({ino, FileType(proto.mode)}));
  for (const auto& [xattr, value] : acls) txn.batch()->Put(keys::Xattr(ino, xattr), value);
  Inode& p = txn.Mut(parent);
  p.mtime_ns = p.ctime_ns = now;
  if (proto.is_dir()) ++p.nlink;
  err = txn.Commit();
  if (!err.ok()) return err;
  InoCommitted();
  if (attr) *attr = ToAttr(*state);
  if (created) *created = state;
  return Errno::OK();
}

Errno VolumeImpl::Mknod(Ino parent, std::string_view name, uint32_t mode, uint64_t rdev,
                        const Caller& caller, Attr* attr) {
  if (!Enter()) return Errno(EIO, "volume closed");
  uint32_t type = mode & S_IFMT;
  if (type == 0) type = S_IFREG;
  if (type != S_IFREG && type != S_IFIFO && type != S_IFSOCK && type != S_IFCHR &&
      type != S_IFBLK) {
    return Errno(EINVAL, "mknod: unsupported file type");
  }
  Inode proto;
  proto.mode = type | (mode & 07777);
  proto.nlink = 1;
  proto.inline_data = (type == S_IFREG);
  if (type == S_IFCHR || type == S_IFBLK) proto.rdev = rdev;
  std::unique_lock ns(ns_mu_);
  return CreateNodeLocked(parent, name, proto, caller, attr, nullptr);
}

Errno VolumeImpl::Mkdir(Ino parent, std::string_view name, uint32_t mode, const Caller& caller,
                        Attr* attr) {
  if (!Enter()) return Errno(EIO, "volume closed");
  if (parent == meta::kSnapshotsIno) {
    Errno err = CreateSnapshot(name);
    if (!err.ok()) return err;
    return MetaLookup(parent, name, attr);
  }
  Inode proto;
  proto.mode = S_IFDIR | (mode & 07777);
  proto.nlink = 2;
  std::unique_lock ns(ns_mu_);
  return CreateNodeLocked(parent, name, proto, caller, attr, nullptr);
}

Errno VolumeImpl::Symlink(Ino parent, std::string_view name, std::string_view target,
                          const Caller& caller, Attr* attr) {
  if (!Enter()) return Errno(EIO, "volume closed");
  if (target.size() > kSymlinkMax) return Errno(ENAMETOOLONG);
  if (target.empty()) return Errno(ENOENT);
  Inode proto;
  proto.mode = S_IFLNK | 0777;
  proto.nlink = 1;
  proto.size = target.size();
  proto.data.assign(target);
  std::unique_lock ns(ns_mu_);
  return CreateNodeLocked(parent, name, proto, caller, attr, nullptr);
}

Errno VolumeImpl::Readlink(Ino ino, std::string* target) {
  if (!Enter()) return Errno(EIO, "volume closed");
  if (IsMetaIno(ino)) return MetaReadlink(ino, target);
  std::shared_ptr<InodeState> state = inodes_.Get(ino);
  std::lock_guard lock(state->mu);
  Errno err = LoadLocked(state.get());
  if (!err.ok()) return err;
  if (!state->inode.is_symlink()) return Errno(EINVAL);
  *target = state->inode.data;
  return Errno::OK();
}

Errno VolumeImpl::Link(Ino ino, Ino new_parent, std::string_view new_name, Attr* attr) {
  if (!Enter()) return Errno(EIO, "volume closed");
  Errno err = CheckNewName(new_name);
  if (!err.ok()) return err;
  if (IsMetaIno(ino) || IsMetaIno(new_parent)) return Errno(EROFS);
  if (new_parent == kRootIno && new_name == kMetaDirName) return Errno(EEXIST);
  std::unique_lock ns(ns_mu_);
  InodeTxn txn(this);
  err = txn.Add(new_parent);
  if (!err.ok()) return err;
  if (!txn.Get(new_parent).is_dir()) return Errno(ENOTDIR);
  if (txn.Get(new_parent).trashed) return Errno(EROFS);
  err = txn.Add(ino);
  if (!err.ok()) return err;
  const Inode& target = txn.Get(ino);
  if (target.is_dir()) return Errno(EPERM);
  if (target.nlink == 0) return Errno(ENOENT);
  if (target.nlink >= kLinkMax) return Errno(EMLINK);
  DentryValue existing;
  err = GetDentry(new_parent, new_name, &existing);
  if (err.ok()) return Errno(EEXIST);
  if (err.value() != ENOENT) return err;

  int64_t now = Now();
  txn.batch()->Put(keys::Dentry(new_parent, new_name), EncodeDentry({ino, FileType(target.mode)}));
  Inode& n = txn.Mut(ino);
  ++n.nlink;
  n.ctime_ns = now;
  Inode& p = txn.Mut(new_parent);
  p.mtime_ns = p.ctime_ns = now;
  err = txn.Commit();
  if (!err.ok()) return err;
  if (attr) *attr = ToAttr(txn.State(ino));
  return Errno::OK();
}

Errno VolumeImpl::Unlink(Ino parent, std::string_view name) {
  if (!Enter()) return Errno(EIO, "volume closed");
  Errno err = CheckName(name);
  if (!err.ok()) return err;
  if (name == "." || name == "..") return Errno(EISDIR);
  if (IsMetaIno(parent) || (parent == kRootIno && name == kMetaDirName)) return Errno(EROFS);
  return RemoveName(parent, name, &VolumeImpl::UnlinkLocked);
}

Errno VolumeImpl::RemoveName(Ino parent, std::string_view name, RemoveLockedFn remove) {
  std::unique_lock ns(ns_mu_);
  std::string path;
  Errno err = EntryPath(parent, name, &path);
  if (!err.ok()) return err;
  err = (this->*remove)(parent, name, path, /*to_trash=*/true);
  // A full disk: keeping the file (and committing its buffered data) in the trash may not
  // fit, while freeing it must still work.
  if (err.value() == ENOSPC && trash_enabled()) {
    err = (this->*remove)(parent, name, path, /*to_trash=*/false);
  }
  if (!err.ok()) return err;
  MaybePurgeTrashLocked();
  return Errno::OK();
}

Errno VolumeImpl::AddEntryLocked(InodeTxn* txn, Ino parent, std::string_view name,
                                 DentryValue* entry) {
  Errno err = txn->Add(parent);
  if (!err.ok()) return err;
  if (!txn->Get(parent).is_dir()) return Errno(ENOTDIR);
  if (txn->Get(parent).trashed) return Errno(EROFS);
  err = GetDentry(parent, name, entry);
  if (!err.ok()) return err;
  return txn->Add(entry->ino);
}

Errno VolumeImpl::UnlinkLocked(Ino parent, std::string_view name, const std::string& path,
                               bool to_trash) {
  InodeTxn txn(this);
  if (!to_trash) txn.set_no_trash();
  DentryValue entry;
  Errno err = AddEntryLocked(&txn, parent, name, &entry);
  if (!err.ok()) return err;
  if (txn.Get(entry.ino).is_dir()) return Errno(EISDIR);

  int64_t now = Now();
  txn.batch()->Delete(keys::Dentry(parent, name));
  PlaceRecord place{parent, entry.ino, 0, 0, std::string(name), path};
  place.parent_mtime_ns = txn.Get(parent).mtime_ns;
  Inode& p = txn.Mut(parent);
  p.mtime_ns = p.ctime_ns = now;
  err = txn.DropLink(entry.ino, place, now);
  if (!err.ok()) return err;
  return txn.Commit();
}

Errno VolumeImpl::Rmdir(Ino parent, std::string_view name) {
  if (!Enter()) return Errno(EIO, "volume closed");
  Errno err = CheckName(name);
  if (!err.ok()) return err;
  if (name == ".") return Errno(EINVAL);
  if (name == "..") return Errno(ENOTEMPTY);
  if (parent == meta::kSnapshotsIno) return DeleteSnapshot(name);
  if (IsMetaIno(parent) || (parent == kRootIno && name == kMetaDirName)) return Errno(EROFS);
  return RemoveName(parent, name, &VolumeImpl::RmdirLocked);
}

Errno VolumeImpl::RmdirLocked(Ino parent, std::string_view name, const std::string& path,
                              bool to_trash) {
  InodeTxn txn(this);
  if (!to_trash) txn.set_no_trash();
  DentryValue entry;
  Errno err = AddEntryLocked(&txn, parent, name, &entry);
  if (!err.ok()) return err;
  if (!txn.Get(entry.ino).is_dir()) return Errno(ENOTDIR);
  bool empty = false;
  err = IsEmptyDir(entry.ino, &empty);
  if (!err.ok()) return err;
  if (!empty) return Errno(ENOTEMPTY);

  int64_t now = Now();
  txn.batch()->Delete(keys::Dentry(parent, name));
  PlaceRecord place{parent, entry.ino, 0, 0, std::string(name), path};
  place.parent_mtime_ns = txn.Get(parent).mtime_ns;
  Inode& p = txn.Mut(parent);
  p.mtime_ns = p.ctime_ns = now;
  --p.nlink;
  err = txn.DropLink(entry.ino, place, now);
  if (!err.ok()) return err;
  return txn.Commit();
}

}  // namespace fs

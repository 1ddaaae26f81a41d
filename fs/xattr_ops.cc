// Extended attributes: one X<ino><name> key each, in the inode's shard. POSIX ACLs are
// xattrs with rules (fs/acl.h): an access ACL sets the mode's permission bits in the same
// batch and is not stored when the mode says it all; a default ACL belongs on directories.
#include <sys/stat.h>

#include <cerrno>

#include "fs/acl.h"
#include "fs/inode_txn.h"
#include "fs/keys.h"
#include "fs/volume_impl.h"

namespace fs {
namespace {
constexpr size_t kXattrNameMax = 255;
constexpr size_t kXattrValueMax = 64 << 10;  // XATTR_SIZE_MAX

Errno CheckXattrName(std::string_view name) {
  if (name.empty()) return Errno(EINVAL);
  if (name.size() > kXattrNameMax) return Errno(ERANGE);
  return Errno::OK();
}
}  // namespace

Errno VolumeImpl::CheckXattrAccess(std::string_view name) const {
  Errno err = CheckXattrName(name);
  if (err.ok() && !posix_acl_ && acl::IsAclName(name)) return Errno(EOPNOTSUPP);
  return err;
}

Errno VolumeImpl::StageAclLocked(InodeTxn* txn, Ino ino, std::string_view name,
                                 std::string_view value, bool stored) {
  acl::Acl parsed;
  if (!acl::Parse(value, &parsed)) return Errno(EINVAL);
  Inode& n = txn->Mut(ino);
  if (name == acl::kDefaultName) {
    if (!n.is_dir()) return Errno(EACCES);
    txn->batch()->Put(keys::Xattr(ino, name), acl::Encode(parsed));
    return Errno::OK();
  }
  n.mode = (n.mode & ~0777u) | acl::ModeBits(parsed);
  if (acl::IsMinimal(parsed)) {
    if (stored) txn->batch()->Delete(keys::Xattr(ino, name));
  } else {
    txn->batch()->Put(keys::Xattr(ino, name), acl::Encode(parsed));
  }
  return Errno::OK();
}

Errno VolumeImpl::StageAclChmodLocked(InodeTxn* txn, Ino ino, uint32_t mode) {
  if (!posix_acl_) return Errno::OK();
  std::string value;
  kv::Status s = store_->Get(kv::ReadOptions(), keys::Xattr(ino, acl::kAccessName), &value);
  if (s.IsNotFound()) return Errno::OK();
  if (!s.ok()) return Errno::FromStatus(s);
  acl::Acl parsed;
  if (!acl::Parse(value, &parsed)) return Errno(EIO, "corrupt access ACL");
  acl::Chmod(&parsed, mode);
  txn->batch()->Put(keys::Xattr(ino, acl::kAccessName), acl::Encode(parsed));
  return Errno::OK();
}

Errno VolumeImpl::InheritAclsLocked(Ino parent, const Caller& caller, uint32_t* mode,
                                    std::vector<std::pair<std::string_view, std::string>>* xattrs) {
  if (S_ISLNK(*mode)) return Errno::OK();  // a symlink's mode is always 0777
  std::string value;
  kv::Status s = kv::Status::NotFound({});
  if (posix_acl_)
    s = store_->Get(kv::ReadOptions(), keys::Xattr(parent, acl::kDefaultName), &value);
  if (s.IsNotFound()) {
    *mode &= ~(caller.umask & 0777);
    return Errno::OK();
  }
  if (!s.ok()) return Errno::FromStatus(s);
  acl::Acl access;
  if (!acl::Parse(value, &access)) return Errno(EIO, "corrupt default ACL");
  acl::ApplyCreateMode(&access, mode);
  if (!acl::IsMinimal(access)) xattrs->emplace_back(acl::kAccessName, acl::Encode(access));
  if (S_ISDIR(*mode)) xattrs->emplace_back(acl::kDefaultName, std::move(value));
  return Errno::OK();
}

Errno VolumeImpl::SetXattr(Ino ino, std::string_view name, std::string_view value, int flags) {
  if (!Enter()) return Errno(EIO, "volume closed");
  Errno err = CheckXattrAccess(name);
  if (!err.ok()) return err;
  if (value.size() > kXattrValueMax) return Errno(E2BIG);
  const int kill_sgid = flags & kXattrAclKillSgid;
  flags &= ~kXattrAclKillSgid;
  if ((flags & ~(kXattrCreate | kXattrReplace)) != 0 || flags == (kXattrCreate | kXattrReplace)) {
    return Errno(EINVAL);
  }
  if (IsMetaIno(ino)) return Errno(EROFS);
  InodeTxn txn(this);
  err = txn.Add(ino);
  if (!err.ok()) return err;
  if (txn.Get(ino).trashed) return Errno(EROFS);
  std::string old;
  kv::Status s = store_->Get(kv::ReadOptions(), keys::Xattr(ino, name), &old);
  if (!s.ok() && !s.IsNotFound()) return Errno::FromStatus(s);
  if (s.ok() && (flags & kXattrCreate)) return Errno(EEXIST);
  if (s.IsNotFound() && (flags & kXattrReplace)) return Errno(ENODATA);
  if (acl::IsAclName(name)) {
    err = StageAclLocked(&txn, ino, name, value, /*stored=*/s.ok());
    if (!err.ok()) return err;
    if (kill_sgid && name == acl::kAccessName) txn.Mut(ino).mode &= ~S_ISGID;
  } else {
    txn.batch()->Put(keys::Xattr(ino, name), value);
  }
  txn.Mut(ino).ctime_ns = Now();
  return txn.Commit();
}

Errno VolumeImpl::GetXattr(Ino ino, std::string_view name, std::string* value) {
  if (!Enter()) return Errno(EIO, "volume closed");
  Errno err = CheckXattrAccess(name);
  if (!err.ok()) return err;
  if (IsMetaIno(ino)) return MetaGetXattr(ino, name, value);
  std::shared_ptr<InodeState> state = inodes_.Get(ino);
  std::lock_guard lock(state->mu);
  err = LoadLocked(state.get());
  if (!err.ok()) return err;
  kv::Status s = store_->Get(kv::ReadOptions(), keys::Xattr(ino, name), value);
  if (s.IsNotFound()) return Errno(ENODATA);
  return Errno::FromStatus(s);
}

Errno VolumeImpl::ListXattr(Ino ino, std::vector<std::string>* names) {
  if (!Enter()) return Errno(EIO, "volume closed");
  names->clear();
  if (IsMetaIno(ino)) return MetaListXattr(ino, names);
  std::shared_ptr<InodeState> state = inodes_.Get(ino);
  std::lock_guard lock(state->mu);
  Errno err = LoadLocked(state.get());
  if (!err.ok()) return err;
  const std::string prefix = keys::InoKey(keys::kXattr, ino);
  std::unique_ptr<kv::Iterator> it = store_->NewIterator(kv::ReadOptions(), prefix);
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    names->emplace_back(it->key().substr(prefix.size()));
  }
  return Errno::FromStatus(it->status());
}

Errno VolumeImpl::RemoveXattr(Ino ino, std::string_view name) {
  if (!Enter()) return Errno(EIO, "volume closed");
  Errno err = CheckXattrAccess(name);
  if (!err.ok()) return err;
  if (IsMetaIno(ino)) return Errno(EROFS);
  InodeTxn txn(this);
  err = txn.Add(ino);
  if (!err.ok()) return err;
  if (txn.Get(ino).trashed) return Errno(EROFS);
  std::string old;
  kv::Status s = store_->Get(kv::ReadOptions(), keys::Xattr(ino, name), &old);
  if (s.IsNotFound()) return Errno(ENODATA);
  if (!s.ok()) return Errno::FromStatus(s);
  txn.batch()->Delete(keys::Xattr(ino, name));
  txn.Mut(ino).ctime_ns = Now();
  return txn.Commit();
}

}  // namespace fs

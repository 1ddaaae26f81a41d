// Extended attributes: one X<ino><name> key each, in the inode's shard.
#include <cerrno>

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

Errno VolumeImpl::SetXattr(Ino ino, std::string_view name, std::string_view value, int flags) {
  if (!Enter()) return Errno(EIO, "volume closed");
  Errno err = CheckXattrName(name);
  if (!err.ok()) return err;
  if (value.size() > kXattrValueMax) return Errno(E2BIG);
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
  txn.batch()->Put(keys::Xattr(ino, name), value);
  txn.Mut(ino).ctime_ns = Now();
  return txn.Commit();
}

Errno VolumeImpl::GetXattr(Ino ino, std::string_view name, std::string* value) {
  if (!Enter()) return Errno(EIO, "volume closed");
  Errno err = CheckXattrName(name);
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
  Errno err = CheckXattrName(name);
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

// Directory handles and ReadDir with resumable cookies.
//
// Entries come in name order from a one-shard prefix scan of D<dir>. An entry's offset is a
// cookie derived from its name's hash, so every handle of the directory gives a name the same
// offset: the kernel resumes a cached listing on whichever handle it holds. A handle maps the
// cookies it has handed out back to names; resuming seeks just past that name, so entries
// added or removed meanwhile never make ReadDir skip or repeat an entry that existed
// throughout (a position index would).
#include <sys/stat.h>
#include <xxhash.h>

#include <algorithm>
#include <cerrno>

#include "fs/keys.h"
#include "fs/meta_ino.h"
#include "fs/volume_impl.h"

namespace fs {
namespace {
constexpr uint64_t kDotOffset = 1;     // cookie after "."
constexpr uint64_t kDotDotOffset = 2;  // cookie after ".."
constexpr uint64_t kFirstCookie = 3;
constexpr uint64_t kCookieEnd = uint64_t{1} << 63;  // offsets are a signed off_t

// The cookie of `name` on `dh`: the name's hash, or, when another name on this handle took it,
// the next free value. REQUIRES: dh.mu held.
uint64_t AssignCookie(DirHandle& dh, std::string_view name) {
  uint64_t cookie = std::max(XXH3_64bits(name.data(), name.size()) >> 1, kFirstCookie);
  for (;;) {
    auto [it, inserted] = dh.cookies.try_emplace(cookie, name);
    if (inserted || it->second == name) return cookie;
    cookie = cookie + 1 < kCookieEnd ? cookie + 1 : kFirstCookie;
  }
}
}  // namespace

Errno VolumeImpl::OpenDir(Ino ino, uint64_t* handle) {
  if (!Enter()) return Errno(EIO, "volume closed");
  if (IsMetaIno(ino)) {
    Attr a;
    Errno err = MetaGetAttr(ino, &a);
    if (!err.ok()) return err;
    if (!S_ISDIR(a.mode)) return Errno(ENOTDIR);
  } else {
    std::shared_ptr<InodeState> state = inodes_.Get(ino);
    std::lock_guard lock(state->mu);
    Errno err = LoadHeadLocked(state.get());
    if (!err.ok()) return err;
    if (!state->inode.is_dir()) return Errno(ENOTDIR);
  }
  auto dh = std::make_shared<DirHandle>();
  dh->ino = ino;
  std::lock_guard lock(handles_mu_);
  *handle = next_handle_++;
  dirs_.emplace(*handle, std::move(dh));
  return Errno::OK();
}

Errno VolumeImpl::ReleaseDir(uint64_t handle) {
  std::lock_guard lock(handles_mu_);
  return dirs_.erase(handle) ? Errno::OK() : Errno(EBADF);
}

Errno VolumeImpl::ReadDir(uint64_t handle, uint64_t offset, const DirFiller& filler) {
  if (!Enter()) return Errno(EIO, "volume closed");
  std::shared_ptr<DirHandle> dh;
  {
    std::lock_guard lock(handles_mu_);
    auto it = dirs_.find(handle);
    if (it == dirs_.end()) return Errno(EBADF);
    dh = it->second;
  }
  if (IsMetaIno(dh->ino)) return ReadListed(*dh, offset, filler, meta::kDirIno);
  std::shared_lock ns(ns_mu_);
  Ino dot_dot = 0;
  bool trashed = false;
  {
    std::shared_ptr<InodeState> state = inodes_.Get(dh->ino);
    std::lock_guard lock(state->mu);
    Errno err = LoadHeadLocked(state.get());
    // A directory removed while open lists as empty.
    if (err.value() == ENOENT) return Errno::OK();
    if (!err.ok()) return err;
    dot_dot = state->inode.parent;
    trashed = state->inode.trashed;
  }
  if (trashed) {
    ns.unlock();
    return ReadListed(*dh, offset, filler, meta::kTrashIno);
  }
  std::lock_guard lock(dh->mu);
  if (offset < kDotOffset) {
    if (!filler(DirEntry{".", dh->ino, S_IFDIR, kDotOffset})) return Errno::OK();
    offset = kDotOffset;
  }
  if (offset < kDotDotOffset) {
    if (!filler(DirEntry{"..", dot_dot, S_IFDIR, kDotDotOffset})) return Errno::OK();
    offset = kDotDotOffset;
  }
  const std::string prefix = keys::InoKey(keys::kDentry, dh->ino);
  std::unique_ptr<kv::Iterator> it = store_->NewIterator(kv::ReadOptions(), prefix);
  std::string start = prefix;
  if (offset > kDotDotOffset) {
    auto c = dh->cookies.find(offset);
    if (c == dh->cookies.end()) {
      // An offset another handle gave out: hand out this handle's cookies in listing order
      // until one is `offset`, as a listing from the start would have.
      for (it->Seek(prefix); it->Valid() && c == dh->cookies.end(); it->Next()) {
        if (AssignCookie(*dh, it->key().substr(prefix.size())) == offset) {
          c = dh->cookies.find(offset);
        }
      }
      if (!it->status().ok()) return Errno::FromStatus(it->status());
      if (c == dh->cookies.end()) return Errno(EINVAL, "unknown directory offset");
    }
    start.append(c->second);
    start.push_back('\0');  // the smallest key after the name
  }
  for (it->Seek(start); it->Valid(); it->Next()) {
    DentryValue entry;
    if (!DecodeDentry(it->value(), &entry)) return Errno(EIO, "corrupt directory entry");
    std::string_view name = it->key().substr(prefix.size());
    if (!filler(DirEntry{name, entry.ino, entry.type, AssignCookie(*dh, name)})) {
      return Errno::OK();
    }
  }
  return Errno::FromStatus(it->status());
}

Errno VolumeImpl::ReadListed(DirHandle& dh, uint64_t offset, const DirFiller& filler, Ino dot_dot) {
  bool listed = false;
  {
    std::lock_guard lock(dh.mu);
    listed = dh.is_listed;
  }
  if (offset == 0 || !listed) {
    // rewinddir (offset 0) lists afresh. Listing takes inode locks, so not under dh.mu.
    std::vector<ListedEntry> entries;
    Errno err = MetaList(dh.ino, &entries);
    if (!err.ok()) return err;
    std::lock_guard lock(dh.mu);
    dh.listed = std::move(entries);
    dh.is_listed = true;
  }
  std::lock_guard lock(dh.mu);
  if (offset < kDotOffset) {
    if (!filler(DirEntry{".", dh.ino, S_IFDIR, kDotOffset})) return Errno::OK();
    offset = kDotOffset;
  }
  if (offset < kDotDotOffset) {
    if (!filler(DirEntry{"..", dot_dot, S_IFDIR, kDotDotOffset})) return Errno::OK();
    offset = kDotDotOffset;
  }
  for (uint64_t i = offset - kDotDotOffset; i < dh.listed.size(); ++i) {
    const ListedEntry& e = dh.listed[i];
    if (!filler(DirEntry{e.name, e.ino, e.type, kDotDotOffset + i + 1})) return Errno::OK();
  }
  return Errno::OK();
}

}  // namespace fs

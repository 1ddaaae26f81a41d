// ReadDir with resumable cookies, and no directory handles.
//
// Entries come in name order from a one-shard prefix scan of D<dir>. An entry's offset is a
// cookie derived from its name's hash, so a name has the same offset in every listing: the
// kernel, which opens directories without telling the daemon (FUSE's no-opendir mode) and
// keeps their listings, can resume any of them at any offset. The volume maps the cookies it
// has handed out back to names (DirCookies, per directory); resuming seeks just past that
// name, so entries added or removed meanwhile never make ReadDir skip or repeat an entry that
// existed throughout (a position index would). Views and trashed directories are listed whole
// (MetaList), sorted by name, and resumed the same way.
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
// Directories whose cookies are kept at once, idle ones beyond this being dropped: enough
// for every directory being listed at a time, and a listing that loses its cookies only
// pays for one scan to find them again.
constexpr size_t kMaxDirCookies = 256;

// The cookie of `name`: the name's hash, or, when another name of the directory took it,
// the next free value. REQUIRES: dc.mu held.
uint64_t AssignCookie(DirCookies& dc, std::string_view name) {
  uint64_t cookie = std::max(XXH3_64bits(name.data(), name.size()) >> 1, kFirstCookie);
  for (;;) {
    auto [it, inserted] = dc.names.try_emplace(cookie, name);
    if (inserted || it->second == name) return cookie;
    cookie = cookie + 1 < kCookieEnd ? cookie + 1 : kFirstCookie;
  }
}

// Gives "." and ".." when `*offset` is before them; false when the filler is full.
bool FillDots(Ino dir, Ino dot_dot, uint64_t* offset, const DirFiller& filler) {
  if (*offset < kDotOffset) {
    if (!filler(DirEntry{".", dir, S_IFDIR, kDotOffset})) return false;
    *offset = kDotOffset;
  }
  if (*offset < kDotDotOffset) {
    if (!filler(DirEntry{"..", dot_dot, S_IFDIR, kDotDotOffset})) return false;
    *offset = kDotDotOffset;
  }
  return true;
}
}  // namespace

std::shared_ptr<DirCookies> VolumeImpl::CookiesOf(Ino dir) {
  std::lock_guard lock(handles_mu_);
  auto it = dir_cookies_.find(dir);
  if (it != dir_cookies_.end()) return it->second;
  if (dir_cookies_.size() >= kMaxDirCookies) {
    // use_count 1: no ReadDir is using them.
    std::erase_if(dir_cookies_, [](const auto& entry) { return entry.second.use_count() == 1; });
  }
  return dir_cookies_.emplace(dir, std::make_shared<DirCookies>()).first->second;
}

void VolumeImpl::DropCookies(Ino dir) {
  std::lock_guard lock(handles_mu_);
  dir_cookies_.erase(dir);
}

Errno VolumeImpl::ReadDir(Ino dir, uint64_t offset, const DirFiller& filler) {
  if (!Enter()) return Errno(EIO, "volume closed");
  if (IsMetaIno(dir)) {
    Attr a;
    Errno err = MetaGetAttr(dir, &a);
    if (!err.ok()) return err;
    if (!S_ISDIR(a.mode)) return Errno(ENOTDIR);
    return ReadListed(dir, offset, filler, meta::kDirIno);
  }
  std::shared_lock ns(ns_mu_);
  Ino dot_dot = 0;
  bool trashed = false;
  {
    std::shared_ptr<InodeState> state = inodes_.Get(dir);
    std::lock_guard lock(state->mu);
    Errno err = LoadHeadLocked(state.get());
    // A directory removed while open lists as empty.
    if (err.value() == ENOENT) return Errno::OK();
    if (!err.ok()) return err;
    if (!state->inode.is_dir()) return Errno(ENOTDIR);
    dot_dot = state->inode.parent;
    trashed = state->inode.trashed;
  }
  if (trashed) {
    ns.unlock();
    return ReadListed(dir, offset, filler, meta::kTrashIno);
  }
  if (!FillDots(dir, dot_dot, &offset, filler)) return Errno::OK();
  std::shared_ptr<DirCookies> dc = CookiesOf(dir);
  bool gave = false;
  {
    std::lock_guard lock(dc->mu);
    const std::string prefix = keys::InoKey(keys::kDentry, dir);
    std::unique_ptr<kv::Iterator> it = store_->NewIterator(kv::ReadOptions(), prefix);
    std::string start = prefix;
    if (offset > kDotDotOffset) {
      auto c = dc->names.find(offset);
      if (c == dc->names.end()) {
        // Cookies dropped since this offset was given out: hand them out again in listing
        // order until one is `offset`, as the listing from the start did.
        for (it->Seek(prefix); it->Valid() && c == dc->names.end(); it->Next()) {
          if (AssignCookie(*dc, it->key().substr(prefix.size())) == offset) {
            c = dc->names.find(offset);
          }
        }
        if (!it->status().ok()) return Errno::FromStatus(it->status());
        if (c == dc->names.end()) return Errno(EINVAL, "unknown directory offset");
      }
      start.append(c->second);
      start.push_back('\0');  // the smallest key after the name
    }
    for (it->Seek(start); it->Valid(); it->Next()) {
      DentryValue entry;
      if (!DecodeDentry(it->value(), &entry)) return Errno(EIO, "corrupt directory entry");
      std::string_view name = it->key().substr(prefix.size());
      if (!filler(DirEntry{name, entry.ino, entry.type, AssignCookie(*dc, name)})) {
        return Errno::OK();
      }
      gave = true;
    }
    if (!it->status().ok()) return Errno::FromStatus(it->status());
  }
  // A call with nothing left to give ends a listing (the kernel's last READDIR of it).
  if (!gave) DropCookies(dir);
  return Errno::OK();
}

Errno VolumeImpl::ReadListed(Ino dir, uint64_t offset, const DirFiller& filler, Ino dot_dot) {
  std::shared_ptr<DirCookies> dc = CookiesOf(dir);
  bool listed = false;
  {
    std::lock_guard lock(dc->mu);
    listed = dc->is_listed;
  }
  if (offset == 0 || !listed) {
    // A listing from the start (opendir, rewinddir) lists afresh. Listing takes inode
    // locks, so not under dc->mu.
    std::vector<ListedEntry> entries;
    Errno err = MetaList(dir, &entries);
    if (!err.ok()) return err;
    std::sort(entries.begin(), entries.end(),
              [](const ListedEntry& a, const ListedEntry& b) { return a.name < b.name; });
    std::lock_guard lock(dc->mu);
    dc->listed = std::move(entries);
    dc->is_listed = true;
  }
  bool gave = false;
  {
    std::lock_guard lock(dc->mu);
    if (!FillDots(dir, dot_dot, &offset, filler)) return Errno::OK();
    const std::vector<ListedEntry>& listing = dc->listed;
    auto next = listing.begin();
    if (offset > kDotDotOffset) {
      auto c = dc->names.find(offset);
      for (auto e = listing.begin(); e != listing.end() && c == dc->names.end(); ++e) {
        if (AssignCookie(*dc, e->name) == offset) c = dc->names.find(offset);
      }
      if (c == dc->names.end()) return Errno(EINVAL, "unknown directory offset");
      next = std::upper_bound(
          listing.begin(), listing.end(), c->second,
          [](const std::string& name, const ListedEntry& e) { return name < e.name; });
    }
    for (; next != listing.end(); ++next) {
      if (!filler(DirEntry{next->name, next->ino, next->type, AssignCookie(*dc, next->name)})) {
        return Errno::OK();
      }
      gave = true;
    }
  }
  if (!gave) DropCookies(dir);
  return Errno::OK();
}

}  // namespace fs

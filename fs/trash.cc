// The trash: a file or directory that loses its last name keeps its keys (I with nlink 0 and
// the trashed flag, C, X, V) and gains T<time><ino> (a top-level trash entry) and
// W<parent><name>\0<time><ino> (found by its old directory). Deleting a directory makes the
// newest trashed child of each name a member of its tree (its W key gets the member flag, its
// T key goes), so that `rm -rf` leaves one entry whose restore brings the whole tree back.
// Restoring relinks; purging (after the retention period) deletes every key.
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <map>

#include "fs/inode_txn.h"
#include "fs/keys.h"
#include "fs/names.h"
#include "fs/volume_impl.h"

namespace fs {
namespace {
constexpr int64_t kPurgeIntervalNs = 60LL * 1'000'000'000;
constexpr int kMaxDepth = 1 << 16;

std::string WKeyOf(const PlaceRecord& p) {
  return keys::TrashChild(p.parent, p.name, p.time_ns, p.ino);
}
}  // namespace

Errno VolumeImpl::DirPath(Ino dir, std::string* path) {
  std::vector<std::string> parts;
  Ino cur = dir;
  for (int depth = 0; cur != kRootIno; ++depth) {
    if (depth >= kMaxDepth) return Errno(EIO, "directory parent chain too long");
    std::string name;
    Ino parent = 0;
    {
      std::shared_ptr<InodeState> state = inodes_.Get(cur);
      std::lock_guard lock(state->mu);
      Errno err = LoadLocked(state.get());
      if (!err.ok()) return err;
      name = state->inode.data;
      parent = state->inode.parent;
    }
    if (name.empty()) {
      // A directory made before names were recorded: find it in its parent.
      const std::string prefix = keys::InoKey(keys::kDentry, parent);
      std::unique_ptr<kv::Iterator> it = store_->NewIterator(kv::ReadOptions(), prefix);
      for (it->SeekToFirst(); it->Valid(); it->Next()) {
        DentryValue d;
        if (DecodeDentry(it->value(), &d) && d.ino == cur) {
          name.assign(it->key().substr(prefix.size()));
          break;
        }
      }
      Errno err = Errno::FromStatus(it->status());
      if (!err.ok()) return err;
      if (name.empty()) name = "?" + std::to_string(cur);
    }
    parts.push_back(std::move(name));
    cur = parent;
  }
  path->clear();
  for (size_t i = parts.size(); i-- > 0;) {
    if (!path->empty()) path->push_back('/');
    path->append(parts[i]);
  }
  return Errno::OK();
}

Errno VolumeImpl::EntryPath(Ino parent, std::string_view name, std::string* path) {
  Errno err = DirPath(parent, path);
  if (!err.ok()) return err;
  if (!path->empty()) path->push_back('/');
  path->append(name);
  return Errno::OK();
}

Errno VolumeImpl::StageTrash(kv::WriteBatch* batch, Ino ino, const Inode& value,
                             PlaceRecord place) {
  place.ino = ino;
  place.mode = value.mode;
  place.size = value.size;
  place.time_ns = Now();
  place.flags = 0;
  const std::string encoded = EncodePlace(place);
  batch->Put(keys::Trash(place.time_ns, ino), encoded);
  batch->Put(WKeyOf(place), encoded);
  if (!value.is_dir()) return Errno::OK();
  // The directory takes its trashed children into its tree: the newest of each name.
  const std::string prefix = keys::InoKey(keys::kTrashChild, ino);
  std::unique_ptr<kv::Iterator> it = store_->NewIterator(kv::ReadOptions(), prefix);
  std::string last_key, last_value;
  auto adopt = [&]() -> Errno {
    if (last_key.empty()) return Errno::OK();
    PlaceRecord child;
    if (!DecodePlace(last_value, &child)) return Errno(EIO, "corrupt trash record");
    if (child.flags & PlaceRecord::kMember) return Errno::OK();
    batch->Delete(keys::Trash(child.time_ns, child.ino));
    child.flags |= PlaceRecord::kMember;
    batch->Put(last_key, EncodePlace(child));
    return Errno::OK();
  };
  std::string last_name;
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    std::string_view rest = it->key().substr(prefix.size());
    size_t nul = rest.find('\0');
    if (nul == std::string_view::npos) continue;
    std::string_view name = rest.substr(0, nul);
    if (!last_key.empty() && name != last_name) {
      Errno err = adopt();
      if (!err.ok()) return err;
    }
    last_name.assign(name);
    last_key.assign(it->key());
    last_value.assign(it->value());
  }
  Errno err = Errno::FromStatus(it->status());
  if (!err.ok()) return err;
  return adopt();
}

Errno VolumeImpl::ScanTrash(int64_t from_ns, int64_t window_ns, std::vector<TrashEntry>* entries,
                            std::vector<TrashItem>* items) {
  entries->clear();
  if (items) items->clear();
  const std::string prefix(1, keys::kTrash);
  std::unique_ptr<kv::Iterator> it = store_->NewIterator(kv::ReadOptions(), prefix);
  std::string prev_plain;
  for (it->Seek(keys::Trash(from_ns, 0)); it->Valid(); it->Next()) {
    if (it->key().size() != keys::kTrashKeySize) continue;
    const int64_t time = keys::TrashTime(it->key());
    if (window_ns > 0 && time >= from_ns + window_ns) break;
    PlaceRecord place;
    if (!DecodePlace(it->value(), &place)) return Errno(EIO, "corrupt trash record");
    place.time_ns = time;
    place.ino = keys::TrashIno(it->key());
    TrashEntry e;
    std::string plain = names::TrashName(time, place.path, "");
    // Two entries of one path deleted in the same millisecond: the later ones are told
    // apart by inode number.
    e.name = plain == prev_plain
                 ? names::TrashName(time, place.path, "~" + std::to_string(place.ino))
                 : plain;
    prev_plain = std::move(plain);
    e.path = place.path;
    e.time_ns = time;
    e.ino = place.ino;
    e.mode = place.mode;
    e.size = place.size;
    entries->push_back(std::move(e));
    if (items) items->push_back(TrashItem{std::string(it->key()), WKeyOf(place), place});
  }
  return Errno::FromStatus(it->status());
}

Errno VolumeImpl::TrashMembers(Ino dir, std::vector<TrashItem>* members) {
  members->clear();
  std::unique_ptr<kv::Iterator> it =
      store_->NewIterator(kv::ReadOptions(), keys::InoKey(keys::kTrashChild, dir));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    PlaceRecord place;
    if (!DecodePlace(it->value(), &place)) return Errno(EIO, "corrupt trash record");
    if (!(place.flags & PlaceRecord::kMember)) continue;
    members->push_back(TrashItem{"", std::string(it->key()), std::move(place)});
  }
  return Errno::FromStatus(it->status());
}

Errno VolumeImpl::FindTrashMember(Ino dir, std::string_view name, TrashItem* item) {
  std::unique_ptr<kv::Iterator> it =
      store_->NewIterator(kv::ReadOptions(), keys::TrashChildPrefix(dir, name));
  bool found = false;
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    PlaceRecord place;
    if (!DecodePlace(it->value(), &place)) return Errno(EIO, "corrupt trash record");
    if (!(place.flags & PlaceRecord::kMember)) continue;
    *item = TrashItem{"", std::string(it->key()), std::move(place)};
    found = true;
  }
  Errno err = Errno::FromStatus(it->status());
  if (!err.ok()) return err;
  return found ? Errno::OK() : Errno(ENOENT);
}

Errno VolumeImpl::FindTrashEntry(std::string_view name, TrashItem* item) {
  int64_t ms_start = 0;
  if (!names::ParseTime(name, &ms_start)) return Errno(ENOENT);
  std::vector<TrashEntry> entries;
  std::vector<TrashItem> items;
  Errno err = ScanTrash(ms_start, 1'000'000, &entries, &items);
  if (!err.ok()) return err;
  for (size_t i = 0; i < entries.size(); ++i) {
    if (entries[i].name == name) {
      *item = std::move(items[i]);
      return Errno::OK();
    }
  }
  return Errno(ENOENT);
}

Errno VolumeImpl::IsTrashedDir(Ino ino, bool* trashed) {
  std::shared_ptr<InodeState> state = inodes_.Get(ino);
  std::lock_guard lock(state->mu);
  Errno err = LoadLocked(state.get());
  if (!err.ok()) return err;
  *trashed = state->inode.trashed && state->inode.is_dir();
  return Errno::OK();
}

Errno VolumeImpl::ListTrash(std::vector<TrashEntry>* entries) {
  if (!Enter()) return Errno(EIO, "volume closed");
  std::shared_lock ns(ns_mu_);
  return ScanTrash(0, 0, entries, nullptr);
}

Errno VolumeImpl::CollectTrashTree(const TrashItem& top, std::vector<TrashTreeNode>* nodes) {
  nodes->clear();
  nodes->push_back(TrashTreeNode{top.place.ino, top.place.parent, top.place.name, top.w_key,
                                 S_ISDIR(top.place.mode), top.place.parent_mtime_ns});
  for (size_t i = 0; i < nodes->size(); ++i) {
    if (!(*nodes)[i].is_dir) continue;
    if (nodes->size() > (size_t{1} << 24)) return Errno(EIO, "trashed tree too large");
    const Ino dir = (*nodes)[i].ino;
    std::vector<TrashItem> children;
    Errno err = TrashMembers(dir, &children);
    if (!err.ok()) return err;
    for (TrashItem& c : children) {
      nodes->push_back(TrashTreeNode{c.place.ino, dir, std::move(c.place.name), std::move(c.w_key),
                                     S_ISDIR(c.place.mode), c.place.parent_mtime_ns});
    }
  }
  return Errno::OK();
}

Errno VolumeImpl::RestoreLocked(const TrashItem& item, Ino new_parent, std::string_view new_name,
                                bool replace) {
  Errno err = CheckNewName(new_name);
  if (!err.ok()) return err;
  if (IsMetaIno(new_parent)) return Errno(EROFS);
  if (new_parent == kRootIno && new_name == kMetaDirName) return Errno(EEXIST);
  DentryValue dst;
  bool have_dst = false;
  err = GetDentry(new_parent, new_name, &dst);
  if (err.ok()) {
    if (!replace) return Errno(EEXIST);
    have_dst = true;
  } else if (err.value() != ENOENT) {
    return err;
  }
  std::vector<TrashTreeNode> nodes;
  err = CollectTrashTree(item, &nodes);
  if (!err.ok()) return err;
  std::string dst_path;
  if (have_dst) {
    err = CheckReplace(nodes[0].is_dir, dst, new_parent, new_name, &dst_path);
    if (!err.ok()) return err;
  }

  InodeTxn txn(this);
  err = txn.Add(new_parent);
  if (!err.ok()) return err;
  if (!txn.Get(new_parent).is_dir()) return Errno(ENOTDIR);
  if (txn.Get(new_parent).trashed) return Errno(EROFS);
  for (const TrashTreeNode& n : nodes) {
    err = txn.Add(n.ino);
    if (err.value() == ENOENT) return Errno(EIO, "trash entry without its inode");
    if (!err.ok()) return err;
    if (!txn.Get(n.ino).trashed) return Errno(EIO, "trash entry of a live inode");
  }
  if (have_dst) {
    err = txn.Add(dst.ino);
    if (!err.ok()) return err;
  }
  const int64_t now = Now();
  kv::WriteBatch* batch = txn.batch();
  // Subdirectory counts for the link counts of restored directories, and their mtimes
  // before the first of their entries was deleted.
  std::map<Ino, uint32_t> subdirs;
  std::map<Ino, int64_t> mtimes;
  for (size_t i = 1; i < nodes.size(); ++i) {
    if (nodes[i].is_dir) ++subdirs[nodes[i].parent];
    if (nodes[i].parent_mtime_ns != 0) {
      auto [it, fresh] = mtimes.emplace(nodes[i].parent, nodes[i].parent_mtime_ns);
      if (!fresh) it->second = std::min(it->second, nodes[i].parent_mtime_ns);
    }
  }
  for (size_t i = 0; i < nodes.size(); ++i) {
    const TrashTreeNode& n = nodes[i];
    const Ino parent = i == 0 ? new_parent : n.parent;
    const std::string name = i == 0 ? std::string(new_name) : n.name;
    Inode& v = txn.Mut(n.ino);
    v.trashed = false;
    v.nlink = v.is_dir() ? 2 + subdirs[n.ino] : 1;
    v.ctime_ns = now;
    if (v.is_dir()) {
      v.parent = parent;
      v.data = name;
      auto m = mtimes.find(n.ino);
      if (m != mtimes.end()) v.mtime_ns = m->second;
    }
    batch->Put(keys::Dentry(parent, name), EncodeDentry({n.ino, FileType(v.mode)}));
    batch->Delete(n.w_key);
  }
  if (!item.key.empty()) batch->Delete(item.key);
  Inode& p = txn.Mut(new_parent);
  p.mtime_ns = p.ctime_ns = now;
  if (nodes[0].is_dir) ++p.nlink;
  if (have_dst) {
    if (S_ISDIR(dst.type)) --p.nlink;
    err = txn.DropLink(
        dst.ino, PlaceRecord{new_parent, dst.ino, 0, 0, std::string(new_name), dst_path}, now);
    if (!err.ok()) return err;
  }
  err = txn.Commit();
  // The caller asked about the top of the tree; the rest changed behind its back.
  if (err.ok() && side_effect_observer_) {
    for (size_t i = 1; i < nodes.size(); ++i) side_effect_observer_(nodes[i].ino);
  }
  return err;
}

Errno VolumeImpl::RestoreTrash(std::string_view name, Ino new_parent, std::string_view new_name) {
  if (!Enter()) return Errno(EIO, "volume closed");
  std::unique_lock ns(ns_mu_);
  TrashItem item;
  Errno err = FindTrashEntry(name, &item);
  if (!err.ok()) return err;
  return RestoreLocked(item, new_parent, new_name, /*replace=*/false);
}

Errno VolumeImpl::PurgeTrashLocked(int64_t before_ns) {
  std::vector<TrashEntry> entries;
  std::vector<TrashItem> items;
  Errno err = ScanTrash(0, 0, &entries, &items);
  if (!err.ok()) return err;
  for (const TrashItem& item : items) {
    if (item.place.time_ns >= before_ns) break;
    std::vector<TrashTreeNode> nodes;
    err = CollectTrashTree(item, &nodes);
    if (!err.ok()) return err;
    InodeTxn txn(this);
    bool busy = false;
    for (const TrashTreeNode& n : nodes) {
      err = txn.Add(n.ino);
      if (err.value() == ENOENT) continue;  // already gone: only its records remain
      if (!err.ok()) return err;
      // Someone is reading it through the trash: try again at the next purge.
      if (txn.State(n.ino).open_handles > 0) busy = true;
    }
    if (busy) continue;
    for (const TrashTreeNode& n : nodes) {
      if (txn.Has(n.ino)) {
        err = txn.Purge(n.ino);
        if (!err.ok()) return err;
      }
      txn.batch()->Delete(n.w_key);
    }
    txn.batch()->Delete(item.key);
    err = txn.Commit();
    if (!err.ok()) return err;
  }
  last_purge_ns_ = Now();
  return Errno::OK();
}

void VolumeImpl::MaybePurgeTrashLocked() {
  const int64_t now = Now();
  if (now - last_purge_ns_ < kPurgeIntervalNs) return;
  // A failure leaves the entries for the next attempt; the operation that triggered the
  // purge has succeeded already.
  PurgeTrashLocked(now - trash_retention_ns_).IgnoreError();
  last_purge_ns_ = now;
}

}  // namespace fs

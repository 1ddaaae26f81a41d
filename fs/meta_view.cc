// The .kvfs views (fs/README.md, "The .kvfs views"): a read-only tree served from inode
// numbers with bit 63 set (fs/meta_ino.h), reached by name from the root and listed nowhere.
//
//   .kvfs/history/<path>/   a directory of the file's versions ("0007_<time>"), or for a
//                           directory the mirror of its entries
//   .kvfs/trash/            deleted files and trees ("<time>__<path>"), as their real inodes
//   .kvfs/snapshots/<name>/ the tree as of a snapshot
//   .kvfs/stats             counters, as text
#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>

#include "fs/acl.h"
#include "fs/keys.h"
#include "fs/meta_ino.h"
#include "fs/names.h"
#include "fs/volume_impl.h"

namespace fs {
namespace {
static_assert(meta::kStatsIno == kMetaStatsIno);

constexpr uint32_t kReadBits = 0444;
constexpr uint32_t kReadExecBits = 0555;

// A directory view's mode for a file with `mode`: whoever may read the file may list and
// enter its history (r -> r-x).
uint32_t HistoryDirMode(uint32_t mode) {
  const uint32_t r = mode & kReadBits;
  return S_IFDIR | r | (r >> 2);
}

uint64_t HighestVersion(const std::vector<FileVersion>& versions) {
  uint64_t highest = 0;
  for (const FileVersion& v : versions) highest = std::max(highest, v.number);
  return highest;
}
}  // namespace

Errno VolumeImpl::HistoryViewAttr(Ino real, Attr* attr) {
  Attr a;
  {
    std::shared_ptr<InodeState> state = inodes_.Get(real);
    std::lock_guard lock(state->mu);
    Errno err = LoadLocked(state.get());
    if (!err.ok()) return err;
    if (state->inode.trashed || state->inode.nlink == 0) return Errno(ENOENT);
    a = ToAttr(*state);
  }
  if (S_ISDIR(a.mode)) {
    a.mode = S_IFDIR | (a.mode & kReadExecBits);
  } else if (S_ISREG(a.mode)) {
    a.mode = HistoryDirMode(a.mode);
    a.size = 0;
    a.blocks = 0;
  } else {
    return Errno(ENOENT);  // only files and directories have a history view
  }
  a.ino = meta::HistoryIno(real);
  a.nlink = 2;
  *attr = a;
  return Errno::OK();
}

Errno VolumeImpl::MetaGetAttr(Ino ino, Attr* attr) {
  Attr a;
  a.ino = ino;
  a.blksize = chunk_size_;
  switch (meta::KindOf(ino)) {
    case meta::Kind::kFixed: {
      Attr root;
      Errno err = GetAttr(kRootIno, &root);
      if (!err.ok()) return err;
      a.uid = root.uid;
      a.gid = root.gid;
      a.atime_ns = a.mtime_ns = a.ctime_ns = super_.created_ns;
      a.nlink = 2;
      if (ino == meta::kDirIno) {
        a.mode = S_IFDIR | kReadExecBits;
      } else if (ino == meta::kTrashIno) {
        // Like /tmp: anyone may move their own files out (the kernel checks ownership).
        a.mode = S_IFDIR | S_ISVTX | 0777;
      } else if (ino == meta::kSnapshotsIno) {
        a.mode = S_IFDIR | 0755;  // the root directory's owner takes snapshots
      } else if (ino == meta::kStatsIno) {
        a.mode = S_IFREG | kReadBits;
        a.nlink = 1;
        a.size = StatsText().size();
        a.atime_ns = a.mtime_ns = a.ctime_ns = Now();
      } else {
        return Errno(ENOENT);
      }
      *attr = a;
      return Errno::OK();
    }
    case meta::Kind::kHistory:
      return HistoryViewAttr(meta::PayloadOf(ino), attr);
    case meta::Kind::kVersion: {
      FileVersion v;
      Errno err = FindLocalVersion(meta::VersionDataIno(ino), meta::VersionLocalLow(ino), &v);
      if (!err.ok()) return err;
      Inode n;
      err = InodeAt(v.data_ino, v.sequence, &n);
      if (err.value() == ENOENT) return Errno(EIO, "version without its inode");
      if (!err.ok()) return err;
      // The file's permissions then, minus every write bit (and set-id bits).
      Attr version = InodeAttr(ino, n);
      version.mode = S_IFREG | (n.mode & kReadExecBits);
      version.nlink = 1;
      version.rdev = 0;
      version.atime_ns = n.mtime_ns;
      version.ctime_ns = v.time_ns;
      version.version = v.local;
      *attr = version;
      return Errno::OK();
    }
    case meta::Kind::kSnapshot: {
      kv::SequenceNumber seq = 0;
      Errno err = SnapshotSequence(meta::SnapshotIdOf(ino), &seq);
      if (!err.ok()) return err;
      Inode n;
      err = InodeAt(meta::SnapshotRealIno(ino), seq, &n);
      if (!err.ok()) return err;
      *attr = InodeAttr(ino, n);
      return Errno::OK();
    }
  }
  return Errno(ENOENT);
}

Errno VolumeImpl::MetaLookup(Ino parent, std::string_view name, Attr* attr) {
  if (name == ".") return MetaGetAttr(parent, attr);
  if (name == "..") {
    // Views have no parent pointers; the kernel resolves ".." itself.
    return parent == meta::kDirIno ? GetAttr(kRootIno, attr) : MetaGetAttr(meta::kDirIno, attr);
  }
  switch (meta::KindOf(parent)) {
    case meta::Kind::kFixed:
      if (parent == meta::kDirIno) {
        if (name == "history") return HistoryViewAttr(kRootIno, attr);
        if (name == "trash") return MetaGetAttr(meta::kTrashIno, attr);
        if (name == "snapshots") return MetaGetAttr(meta::kSnapshotsIno, attr);
        if (name == "stats") return MetaGetAttr(meta::kStatsIno, attr);
        return Errno(ENOENT);
      }
      if (parent == meta::kTrashIno) {
        TrashItem item;
        {
          std::shared_lock ns(ns_mu_);
          Errno err = FindTrashEntry(name, &item);
          if (!err.ok()) return err;
        }
        return GetAttr(item.place.ino, attr);
      }
      if (parent == meta::kSnapshotsIno) {
        uint32_t id = 0;
        {
          std::lock_guard lock(snapshots_mu_);
          auto it = snapshots_.find(std::string(name));
          if (it == snapshots_.end()) return Errno(ENOENT);
          id = it->second.id;
        }
        return MetaGetAttr(meta::SnapshotIno(id, kRootIno), attr);
      }
      return Errno(ENOTDIR);
    case meta::Kind::kHistory: {
      const Ino real = meta::PayloadOf(parent);
      Attr view;
      Errno err = HistoryViewAttr(real, &view);
      if (!err.ok()) return err;
      Attr real_attr;
      err = GetAttr(real, &real_attr);
      if (!err.ok()) return err;
      if (S_ISDIR(real_attr.mode)) {
        DentryValue entry;
        err = GetDentry(real, name, &entry);
        if (!err.ok()) return err;
        return HistoryViewAttr(entry.ino, attr);
      }
      uint64_t number = 0;
      if (!names::ParseVersionNumber(name, &number)) return Errno(ENOENT);
      std::vector<FileVersion> versions;
      err = LoadHistory(real, &versions, nullptr);
      if (!err.ok()) return err;
      const int width = names::VersionNumberWidth(HighestVersion(versions));
      for (const FileVersion& v : versions) {
        if (v.number != number || names::VersionName(v.number, v.time_ns, width) != name) continue;
        if (v.data_ino >= meta::kVersionInoLimit) return Errno(EOVERFLOW);
        return MetaGetAttr(meta::VersionIno(v.data_ino, v.local), attr);
      }
      return Errno(ENOENT);
    }
    case meta::Kind::kVersion:
      return Errno(ENOTDIR);
    case meta::Kind::kSnapshot: {
      const uint32_t id = meta::SnapshotIdOf(parent);
      kv::SequenceNumber seq = 0;
      Errno err = SnapshotSequence(id, &seq);
      if (!err.ok()) return err;
      kv::ReadOptions at;
      at.sequence = seq;
      std::string value;
      kv::Status s = store_->Get(at, keys::Dentry(meta::SnapshotRealIno(parent), name), &value);
      if (!s.ok()) return Errno::FromStatus(s);
      DentryValue entry;
      if (!DecodeDentry(value, &entry)) return Errno(EIO, "corrupt directory entry");
      if (entry.ino >= meta::kSnapshotInoLimit) return Errno(EOVERFLOW);
      return MetaGetAttr(meta::SnapshotIno(id, entry.ino), attr);
    }
  }
  return Errno(ENOENT);
}

Errno VolumeImpl::MetaList(Ino ino, std::vector<ListedEntry>* entries) {
  entries->clear();
  if (!IsMetaIno(ino)) {
    // A trashed directory: the members of its tree.
    std::vector<TrashItem> members;
    Errno err = TrashMembers(ino, &members);
    if (!err.ok()) return err;
    for (TrashItem& m : members) {
      entries->push_back(ListedEntry{std::move(m.place.name), m.place.ino, m.place.mode & S_IFMT});
    }
    return Errno::OK();
  }
  switch (meta::KindOf(ino)) {
    case meta::Kind::kFixed:
      if (ino == meta::kDirIno) {
        entries->push_back(ListedEntry{"history", meta::HistoryIno(kRootIno), S_IFDIR});
        entries->push_back(ListedEntry{"snapshots", meta::kSnapshotsIno, S_IFDIR});
        entries->push_back(ListedEntry{"stats", meta::kStatsIno, S_IFREG});
        entries->push_back(ListedEntry{"trash", meta::kTrashIno, S_IFDIR});
        return Errno::OK();
      }
      if (ino == meta::kTrashIno) {
        std::vector<TrashEntry> trash;
        {
          std::shared_lock ns(ns_mu_);
          Errno err = ScanTrash(0, 0, &trash, nullptr);
          if (!err.ok()) return err;
        }
        for (TrashEntry& e : trash) {
          entries->push_back(ListedEntry{std::move(e.name), e.ino, e.mode & S_IFMT});
        }
        return Errno::OK();
      }
      if (ino == meta::kSnapshotsIno) {
        std::lock_guard lock(snapshots_mu_);
        for (const auto& [name, record] : snapshots_) {
          entries->push_back(ListedEntry{name, meta::SnapshotIno(record.id, kRootIno), S_IFDIR});
        }
        return Errno::OK();
      }
      return Errno(ENOTDIR);
    case meta::Kind::kHistory: {
      const Ino real = meta::PayloadOf(ino);
      Attr real_attr;
      Errno err = GetAttr(real, &real_attr);
      if (!err.ok()) return err;
      if (S_ISDIR(real_attr.mode)) {
        const std::string prefix = keys::InoKey(keys::kDentry, real);
        std::unique_ptr<kv::Iterator> it = store_->NewIterator(kv::ReadOptions(), prefix);
        for (it->SeekToFirst(); it->Valid(); it->Next()) {
          DentryValue d;
          if (!DecodeDentry(it->value(), &d)) return Errno(EIO, "corrupt directory entry");
          if (d.type != S_IFDIR && d.type != S_IFREG) continue;
          entries->push_back(ListedEntry{std::string(it->key().substr(prefix.size())),
                                         meta::HistoryIno(d.ino), S_IFDIR});
        }
        return Errno::FromStatus(it->status());
      }
      std::vector<FileVersion> versions;
      err = LoadHistory(real, &versions, nullptr);
      if (!err.ok()) return err;
      const int width = names::VersionNumberWidth(HighestVersion(versions));
      for (const FileVersion& v : versions) {
        if (v.data_ino >= meta::kVersionInoLimit) continue;
        entries->push_back(ListedEntry{names::VersionName(v.number, v.time_ns, width),
                                       meta::VersionIno(v.data_ino, v.local), S_IFREG});
      }
      return Errno::OK();
    }
    case meta::Kind::kVersion:
      return Errno(ENOTDIR);
    case meta::Kind::kSnapshot: {
      const uint32_t id = meta::SnapshotIdOf(ino);
      kv::ReadOptions at;
      Errno err = SnapshotSequence(id, &at.sequence);
      if (!err.ok()) return err;
      const std::string prefix = keys::InoKey(keys::kDentry, meta::SnapshotRealIno(ino));
      std::unique_ptr<kv::Iterator> it = store_->NewIterator(at, prefix);
      for (it->SeekToFirst(); it->Valid(); it->Next()) {
        DentryValue d;
        if (!DecodeDentry(it->value(), &d)) return Errno(EIO, "corrupt directory entry");
        if (d.ino >= meta::kSnapshotInoLimit) continue;
        entries->push_back(ListedEntry{std::string(it->key().substr(prefix.size())),
                                       meta::SnapshotIno(id, d.ino), d.type});
      }
      return Errno::FromStatus(it->status());
    }
  }
  return Errno(ENOTDIR);
}

Errno VolumeImpl::MetaOpen(Ino ino, int flags, uint64_t* handle) {
  if ((flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC)) return Errno(EROFS);
  auto file = std::make_shared<MetaFile>();
  switch (meta::KindOf(ino)) {
    case meta::Kind::kFixed:
      if (ino != meta::kStatsIno) return Errno(EISDIR);
      file->is_text = true;
      file->text = StatsText();
      break;
    case meta::Kind::kHistory:
      return Errno(EISDIR);
    case meta::Kind::kVersion: {
      FileVersion v;
      Errno err = FindLocalVersion(meta::VersionDataIno(ino), meta::VersionLocalLow(ino), &v);
      if (!err.ok()) return err;
      file->data_ino = v.data_ino;
      file->sequence = v.sequence;
      err = InodeAt(v.data_ino, v.sequence, &file->inode);
      if (err.value() == ENOENT) return Errno(EIO, "version without its inode");
      if (!err.ok()) return err;
      break;
    }
    case meta::Kind::kSnapshot: {
      Errno err = SnapshotSequence(meta::SnapshotIdOf(ino), &file->sequence);
      if (!err.ok()) return err;
      file->data_ino = meta::SnapshotRealIno(ino);
      err = InodeAt(file->data_ino, file->sequence, &file->inode);
      if (!err.ok()) return err;
      if (file->inode.is_dir()) return Errno(EISDIR);
      break;
    }
  }
  auto h = std::make_shared<FileHandle>();
  h->meta = std::move(file);
  h->flags = flags;
  *handle = AddHandle(std::move(h));
  return Errno::OK();
}

Errno VolumeImpl::MetaRead(const MetaFile& file, uint64_t offset, size_t size, std::string* data) {
  data->clear();
  if (file.is_text) {
    if (offset < file.text.size()) data->assign(file.text, offset, size);
    return Errno::OK();
  }
  if (!file.inode.is_reg()) return Errno(EINVAL);
  return ReadAt(file.data_ino, file.sequence, file.inode, offset, size, data);
}

Errno VolumeImpl::MetaReadlink(Ino ino, std::string* target) {
  if (meta::KindOf(ino) != meta::Kind::kSnapshot) return Errno(EINVAL);
  kv::SequenceNumber seq = 0;
  Errno err = SnapshotSequence(meta::SnapshotIdOf(ino), &seq);
  if (!err.ok()) return err;
  Inode n;
  err = InodeAt(meta::SnapshotRealIno(ino), seq, &n);
  if (!err.ok()) return err;
  if (!n.is_symlink()) return Errno(EINVAL);
  *target = n.data;
  return Errno::OK();
}

Errno VolumeImpl::MetaXattrSource(Ino ino, ViewXattrs* source) {
  *source = ViewXattrs();
  switch (meta::KindOf(ino)) {
    case meta::Kind::kSnapshot:
      source->real = meta::SnapshotRealIno(ino);
      return SnapshotSequence(meta::SnapshotIdOf(ino), &source->at.sequence);
    case meta::Kind::kVersion: {
      // A version keeps the xattrs it had, POSIX ACLs included: its mode is the mode of
      // then, whose group bits an ACL's mask set, and without the ACL they would let the
      // owning group read what its own entry denied.
      FileVersion v;
      Errno err = FindLocalVersion(meta::VersionDataIno(ino), meta::VersionLocalLow(ino), &v);
      if (!err.ok()) return err;
      source->real = v.data_ino;
      source->at.sequence = v.sequence;
      source->acl_perm = [](uint16_t perm) -> uint16_t { return perm & ~acl::kWrite; };
      return Errno::OK();
    }
    case meta::Kind::kHistory: {
      // A history directory admits whoever may read the file (or list the directory) now:
      // its mode says so for the classes, its access ACL for the named users and groups.
      Attr a;
      Errno err = GetAttr(meta::PayloadOf(ino), &a);
      if (!err.ok()) return err;
      source->real = a.ino;
      source->acl_only = true;
      if (S_ISDIR(a.mode)) {
        source->acl_perm = [](uint16_t perm) -> uint16_t { return perm & ~acl::kWrite; };
      } else {
        source->acl_perm = [](uint16_t perm) -> uint16_t {
          return (perm & acl::kRead) ? acl::kRead | acl::kExecute : 0;
        };
      }
      return Errno::OK();
    }
    default:
      return Errno::OK();  // the fixed views have none
  }
}

Errno VolumeImpl::MetaGetXattr(Ino ino, std::string_view name, std::string* value) {
  ViewXattrs source;
  Errno err = MetaXattrSource(ino, &source);
  if (!err.ok()) return err;
  if (source.real == 0 || (source.acl_only && name != acl::kAccessName)) return Errno(ENODATA);
  kv::Status s = store_->Get(source.at, keys::Xattr(source.real, name), value);
  if (s.IsNotFound()) return Errno(ENODATA);
  if (!s.ok()) return Errno::FromStatus(s);
  acl::Acl parsed;
  if (source.acl_perm != nullptr && name == acl::kAccessName && acl::Parse(*value, &parsed)) {
    for (acl::Entry& e : parsed) e.perm = source.acl_perm(e.perm);
    *value = acl::Encode(parsed);
  }
  return Errno::OK();
}

Errno VolumeImpl::MetaListXattr(Ino ino, std::vector<std::string>* names) {
  names->clear();
  ViewXattrs source;
  Errno err = MetaXattrSource(ino, &source);
  if (!err.ok() || source.real == 0) return err;
  const std::string prefix = keys::InoKey(keys::kXattr, source.real);
  std::unique_ptr<kv::Iterator> it = store_->NewIterator(source.at, prefix);
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    std::string_view name = it->key().substr(prefix.size());
    if (!source.acl_only || name == acl::kAccessName) names->emplace_back(name);
  }
  return Errno::FromStatus(it->status());
}

std::string VolumeImpl::StatsText() {
  const kv::StoreStats store_stats = store_->Stats();
  const kv::ShardStats total = store_stats.Total();
  const uint64_t hits = cache_.hits();
  const uint64_t misses = cache_.misses();
  // Counted by scanning the keys: a few microseconds per version, trash entry or snapshot.
  uint64_t versions = 0, trash = 0;
  for (char tag : {keys::kVersion, keys::kTrash}) {
    std::unique_ptr<kv::Iterator> it = store_->NewIterator(kv::ReadOptions(), std::string(1, tag));
    uint64_t n = 0;
    for (it->SeekToFirst(); it->Valid(); it->Next()) ++n;
    (tag == keys::kVersion ? versions : trash) = n;
  }
  size_t snapshots = 0;
  {
    std::lock_guard lock(snapshots_mu_);
    snapshots = snapshots_.size();
  }
  char buf[2048];
  auto ratio = [](uint64_t a, uint64_t b) { return b == 0 ? 0.0 : static_cast<double>(a) / b; };
  snprintf(buf, sizeof(buf),
           "operations %" PRIu64
           "\n"
           "bytes_read %" PRIu64
           "\n"
           "bytes_written %" PRIu64
           "\n"
           "bytes_buffered %zu\n"
           "cache_hits %" PRIu64
           "\n"
           "cache_misses %" PRIu64
           "\n"
           "cache_hit_rate %.4f\n"
           "stored_value_bytes_raw %" PRIu64
           "\n"
           "stored_value_bytes_compressed %" PRIu64
           "\n"
           "compression_ratio %.4f\n"
           "store_file_bytes %" PRIu64
           "\n"
           "store_live_bytes %" PRIu64
           "\n"
           "store_garbage_bytes %" PRIu64
           "\n"
           "store_live_keys %" PRIu64
           "\n"
           "store_compactions %" PRIu64
           "\n"
           "store_sequence %" PRIu64
           "\n"
           "versions_kept %" PRIu64
           "\n"
           "versions_sealed %" PRIu64
           "\n"
           "trash_entries %" PRIu64
           "\n"
           "snapshots %zu\n"
           "version_retention %u\n"
           "version_min_age_seconds %" PRId64
           "\n"
           "trash_retention_seconds %" PRId64 "\n",
           ops_.load(), bytes_read_.load(), bytes_written_.load(), dirty_bytes_.load(), hits,
           misses, ratio(hits, hits + misses), total.raw_value_bytes, total.stored_value_bytes,
           ratio(total.raw_value_bytes, total.stored_value_bytes), total.file_bytes,
           total.live_bytes, total.garbage_bytes, total.live_keys, total.compactions,
           store_stats.last_sequence, versions, versions_sealed_.load(), trash, snapshots,
           version_retention_, version_min_age_ns_ / 1'000'000'000,
           trash_retention_ns_ / 1'000'000'000);
  return buf;
}

}  // namespace fs

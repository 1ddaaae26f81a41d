// Named snapshots: N<name> records a store sequence; the tree as of that sequence is read
// through .kvfs/snapshots/<name>, and HistoryRetention keeps what it sees until the record
// is deleted. Taking one costs one small write.
#include <cerrno>

#include "fs/keys.h"
#include "fs/meta_ino.h"
#include "fs/volume_impl.h"

namespace fs {

Errno VolumeImpl::LoadSnapshots() {
  std::map<std::string, SnapshotRecord> loaded;
  const std::string prefix(1, keys::kSnapshot);
  std::unique_ptr<kv::Iterator> it = store_->NewIterator(kv::ReadOptions(), prefix);
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    SnapshotRecord record;
    if (!DecodeSnapshot(it->value(), &record)) return Errno(EIO, "corrupt snapshot record");
    loaded.emplace(std::string(it->key().substr(1)), record);
  }
  Errno err = Errno::FromStatus(it->status());
  if (!err.ok()) return err;
  std::lock_guard lock(snapshots_mu_);
  snapshots_ = std::move(loaded);
  return Errno::OK();
}

Errno VolumeImpl::SnapshotSequence(uint32_t id, kv::SequenceNumber* sequence) {
  std::lock_guard lock(snapshots_mu_);
  for (const auto& [name, record] : snapshots_) {
    if (record.id == id) {
      *sequence = record.sequence;
      return Errno::OK();
    }
  }
  return Errno(ENOENT);
}

Errno VolumeImpl::CreateSnapshot(std::string_view name) {
  if (!Enter()) return Errno(EIO, "volume closed");
  Errno err = CheckNewName(name);
  if (!err.ok()) return err;
  // No name changes while the snapshot is taken.
  std::unique_lock ns(ns_mu_);
  SnapshotRecord record;
  {
    std::lock_guard lock(snapshots_mu_);
    if (snapshots_.count(std::string(name))) return Errno(EEXIST);
    // The smallest id no live snapshot has (ids are part of inode numbers: meta_ino.h).
    std::vector<bool> used(meta::kSnapshotIdLimit, false);
    for (const auto& [n, r] : snapshots_) {
      if (r.id < used.size()) used[r.id] = true;
    }
    record.id = 1;
    while (record.id < meta::kSnapshotIdLimit && used[record.id]) ++record.id;
    if (record.id >= meta::kSnapshotIdLimit) return Errno(ENOSPC, "too many snapshots");
  }
  // Buffered writes belong in the snapshot: commit them first.
  err = FlushAll();
  if (!err.ok()) return err;
  // The in-memory snapshot pins the state until the N key (which compaction honours) is
  // written: a compaction between the two cannot drop what the snapshot sees.
  std::shared_ptr<const kv::Snapshot> pin = store_->GetSnapshot();
  record.sequence = pin->sequence();
  record.time_ns = Now();
  kv::WriteBatch batch;
  batch.Put(keys::Snapshot(name), EncodeSnapshot(record));
  err = Commit(batch, /*sync=*/true);
  if (!err.ok()) return err;
  VersionsChanged();
  std::lock_guard lock(snapshots_mu_);
  snapshots_.emplace(std::string(name), record);
  return Errno::OK();
}

Errno VolumeImpl::DeleteSnapshot(std::string_view name) {
  if (!Enter()) return Errno(EIO, "volume closed");
  if (name.size() > kNameMax) return Errno(ENAMETOOLONG);
  std::unique_lock ns(ns_mu_);
  {
    std::lock_guard lock(snapshots_mu_);
    if (!snapshots_.count(std::string(name))) return Errno(ENOENT);
  }
  kv::WriteBatch batch;
  batch.Delete(keys::Snapshot(name));
  Errno err = Commit(batch, /*sync=*/true);
  if (!err.ok()) return err;
  std::lock_guard lock(snapshots_mu_);
  snapshots_.erase(std::string(name));
  return Errno::OK();
}

Errno VolumeImpl::ListSnapshots(std::vector<SnapshotInfo>* snapshots) {
  if (!Enter()) return Errno(EIO, "volume closed");
  snapshots->clear();
  std::lock_guard lock(snapshots_mu_);
  for (const auto& [name, record] : snapshots_) {
    snapshots->push_back(SnapshotInfo{name, record.sequence, record.time_ns});
  }
  return Errno::OK();
}

}  // namespace fs

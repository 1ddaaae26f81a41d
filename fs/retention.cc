// HistoryRetention: see fs/retention.h.
#include "fs/retention.h"

#include "fs/keys.h"
#include "fs/records.h"

namespace fs {
namespace {
// Inodes whose pins are cached at most; compaction visits keys in order, so a small cache
// serves all the chunks of one file.
constexpr size_t kMaxCachedInodes = 4096;
}  // namespace

void HistoryRetention::Bind(kv::Store* store) {
  std::lock_guard lock(mu_);
  store_ = store;
  cached_generation_ = ~uint64_t{0};
}

void HistoryRetention::Unbind() {
  std::lock_guard lock(mu_);
  store_ = nullptr;
  version_pins_.clear();
  snapshot_pins_.clear();
  snapshots_loaded_ = false;
}

kv::Status HistoryRetention::LoadVersionPins(uint64_t ino,
                                             std::vector<kv::SequenceNumber>* pins) const {
  pins->clear();
  std::unique_ptr<kv::Iterator> it =
      store_->NewIterator(kv::ReadOptions(), keys::InoKey(keys::kVersion, ino));
  for (it->SeekToFirst(); it->Valid(); it->Next()) pins->push_back(it->sequence());
  return it->status();
}

kv::Status HistoryRetention::LoadSnapshotPins() const {
  snapshot_pins_.clear();
  std::unique_ptr<kv::Iterator> it =
      store_->NewIterator(kv::ReadOptions(), std::string(1, keys::kSnapshot));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    SnapshotRecord snapshot;
    if (DecodeSnapshot(it->value(), &snapshot)) snapshot_pins_.push_back(snapshot.sequence);
  }
  return it->status();
}

void HistoryRetention::Select(std::string_view key, std::span<const kv::VersionInfo> versions,
                              std::vector<bool>* keep) const {
  auto keep_all = [&] { keep->assign(versions.size(), true); };
  std::lock_guard lock(mu_);
  if (store_ == nullptr) return keep_all();
  // Read the generation before the store: a V key committed after this read bumps it again,
  // so the next call reloads.
  const uint64_t generation = generation_.load();
  if (generation != cached_generation_ || version_pins_.size() > kMaxCachedInodes) {
    version_pins_.clear();
    snapshots_loaded_ = false;
    cached_generation_ = generation;
  }
  if (!snapshots_loaded_) {
    if (!LoadSnapshotPins().ok()) return keep_all();
    snapshots_loaded_ = true;
  }
  auto keep_visible_at = [&](kv::SequenceNumber pin) {
    for (size_t i = 0; i < versions.size(); ++i) {
      if (versions[i].sequence <= pin) {
        (*keep)[i] = true;  // a tombstone too: reading at `pin` must find the key absent
        return;
      }
    }
  };
  for (kv::SequenceNumber pin : snapshot_pins_) keep_visible_at(pin);
  // A version view shows the file's attributes, data and xattrs as they were (an xattr can
  // be a POSIX ACL, which its mode of then depends on).
  const bool file_version =
      (!key.empty() && key[0] == keys::kInode && key.size() == keys::kInoEnd) ||
      (!key.empty() && key[0] == keys::kChunk && key.size() == keys::kChunkKeySize) ||
      (!key.empty() && key[0] == keys::kXattr && key.size() > keys::kInoEnd);
  if (!file_version) return;
  const uint64_t ino = keys::KeyIno(key);
  auto cached = version_pins_.find(ino);
  if (cached == version_pins_.end()) {
    std::vector<kv::SequenceNumber> pins;
    if (!LoadVersionPins(ino, &pins).ok()) return keep_all();
    cached = version_pins_.emplace(ino, std::move(pins)).first;
  }
  for (kv::SequenceNumber pin : cached->second) keep_visible_at(pin);
}

}  // namespace fs

// HistoryRetention: the kv::RetentionPolicy of a kvfs store (fs/README.md, "Retention").
//
// Compaction asks it, key by key, which versions to keep. It keeps, for the I, C and X keys
// of inode X, the version visible at the seal sequence of every V<X> key still stored (pruning
// the V keys is the volume's job, at seal time and in Volume::Compact), and for every key the
// version visible at each named snapshot's sequence (N keys). The store adds the newest live
// version of every key and what its in-memory snapshots see. Trashed files need nothing: their
// keys stay live until the trash is purged.
//
// The answers come from the store itself, read while compaction runs, so they are never older
// than the records compaction looks at. Pins are cached per inode until the volume reports a
// new V or N key (Invalidate); a stale cache could only miss a pin, never invent one, so the
// volume calls Invalidate after every such commit.
//
// Thread safety: all methods may be called concurrently. Select holds mu_ while it reads the
// store, so Unbind waits for running calls.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "kv/store.h"

namespace fs {

class HistoryRetention final : public kv::RetentionPolicy {
 public:
  HistoryRetention() = default;
  HistoryRetention(const HistoryRetention&) = delete;
  HistoryRetention& operator=(const HistoryRetention&) = delete;

  // Starts answering from `store`'s keys. Until then, and after Unbind, every version of
  // every key is kept (the safe answer for a store no volume has opened).
  void Bind(kv::Store* store);
  void Unbind();
  // A V or N key was written: cached pins may be missing the new one.
  void Invalidate() { generation_.fetch_add(1); }

  void Select(std::string_view key, std::span<const kv::VersionInfo> versions,
              std::vector<bool>* keep) const override;

 private:
  // Fills *pins with the seal sequences of `ino`'s V keys. REQUIRES: mu_ held.
  kv::Status LoadVersionPins(uint64_t ino, std::vector<kv::SequenceNumber>* pins) const;
  kv::Status LoadSnapshotPins() const;

  std::atomic<uint64_t> generation_{0};
  mutable std::mutex mu_;
  kv::Store* store_ = nullptr;                             // GUARDED_BY(mu_)
  mutable uint64_t cached_generation_ = ~uint64_t{0};      // GUARDED_BY(mu_)
  mutable bool snapshots_loaded_ = false;                  // GUARDED_BY(mu_)
  mutable std::vector<kv::SequenceNumber> snapshot_pins_;  // GUARDED_BY(mu_)
  mutable std::unordered_map<uint64_t, std::vector<kv::SequenceNumber>>
      version_pins_;  // GUARDED_BY(mu_)
};

}  // namespace fs

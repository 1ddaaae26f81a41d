// Inode numbers of the `.kvfs` views (fs/README.md, "The .kvfs views"). Real inode numbers
// count up from 1 and never reach bit 63; a number with bit 63 set is a view, encoded (no
// table, so nothing to forget) as:
//
//   bit 63      1
//   bits 60-62  kind
//   bits 0-59   payload, by kind:
//     kFixed      1 .kvfs, 2 .kvfs/trash, 3 .kvfs/snapshots, 4 .kvfs/stats
//     kHistory    a real inode X: .kvfs/history/<path of X> (a directory: the history of a
//                 file, or the mirror of a directory); X = root is .kvfs/history itself
//     kVersion    data inode (38 bits) and the low 22 bits of its own version number: one
//                 sealed version, a read-only file
//     kSnapshot   snapshot id (16 bits) and a real inode (44 bits): that inode as of the
//                 snapshot
#pragma once

#include <cstdint>

namespace fs::meta {

enum class Kind : uint8_t { kFixed = 0, kHistory = 1, kVersion = 2, kSnapshot = 3 };

inline constexpr uint64_t kBit = uint64_t{1} << 63;
inline constexpr uint64_t kPayloadMask = (uint64_t{1} << 60) - 1;

inline constexpr uint64_t kVersionLocalBits = 22;
inline constexpr uint64_t kVersionLocalMask = (uint64_t{1} << kVersionLocalBits) - 1;
inline constexpr uint64_t kVersionInoLimit = uint64_t{1} << 38;
inline constexpr uint64_t kSnapshotInoBits = 44;
inline constexpr uint64_t kSnapshotInoLimit = uint64_t{1} << kSnapshotInoBits;
inline constexpr uint32_t kSnapshotIdLimit = 1u << 16;

inline constexpr uint64_t Make(Kind kind, uint64_t payload) {
  return kBit | (static_cast<uint64_t>(kind) << 60) | (payload & kPayloadMask);
}
inline constexpr bool IsMeta(uint64_t ino) { return (ino & kBit) != 0; }
inline constexpr Kind KindOf(uint64_t ino) { return static_cast<Kind>((ino >> 60) & 7); }
inline constexpr uint64_t PayloadOf(uint64_t ino) { return ino & kPayloadMask; }

inline constexpr uint64_t kDirIno = Make(Kind::kFixed, 1);        // .kvfs
inline constexpr uint64_t kTrashIno = Make(Kind::kFixed, 2);      // .kvfs/trash
inline constexpr uint64_t kSnapshotsIno = Make(Kind::kFixed, 3);  // .kvfs/snapshots
inline constexpr uint64_t kStatsIno = Make(Kind::kFixed, 4);      // .kvfs/stats

inline constexpr uint64_t HistoryIno(uint64_t real) { return Make(Kind::kHistory, real); }
inline constexpr uint64_t VersionIno(uint64_t data_ino, uint64_t local) {
  return Make(Kind::kVersion, (data_ino << kVersionLocalBits) | (local & kVersionLocalMask));
}
inline constexpr uint64_t VersionDataIno(uint64_t ino) {
  return PayloadOf(ino) >> kVersionLocalBits;
}
inline constexpr uint64_t VersionLocalLow(uint64_t ino) {
  return PayloadOf(ino) & kVersionLocalMask;
}
inline constexpr uint64_t SnapshotIno(uint32_t id, uint64_t real) {
  return Make(Kind::kSnapshot, (static_cast<uint64_t>(id) << kSnapshotInoBits) | real);
}
inline constexpr uint32_t SnapshotIdOf(uint64_t ino) {
  return static_cast<uint32_t>(PayloadOf(ino) >> kSnapshotInoBits);
}
inline constexpr uint64_t SnapshotRealIno(uint64_t ino) {
  return PayloadOf(ino) & (kSnapshotInoLimit - 1);
}

}  // namespace fs::meta

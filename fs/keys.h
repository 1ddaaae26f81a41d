// The fs/ key schema (fs/README.md, "Keys"): one tag byte, then big-endian integers, so that
// byte order is numeric order and one inode's keys of one kind are contiguous.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "fs/coding.h"

namespace fs::keys {

inline constexpr char kSuper = 'S';       // S                        superblock
inline constexpr char kInode = 'I';       // I<ino>                   attributes
inline constexpr char kDentry = 'D';      // D<parent><name>          directory entry
inline constexpr char kChunk = 'C';       // C<ino><stripe><slot>     file data
inline constexpr char kXattr = 'X';       // X<ino><name>             extended attribute
inline constexpr char kVersion = 'V';     // V<ino><version>          sealed file version
inline constexpr char kOrphan = 'O';      // O<ino>                   open but unlinked
inline constexpr char kTrash = 'T';       // T<time><ino>             trash entry (top level)
inline constexpr char kTrashChild = 'W';  // W<parent><name>\0<t><ino> trashed child of parent
inline constexpr char kHistory = 'H';     // H<ino>                   history link (rename)
inline constexpr char kSnapshot = 'N';    // N<name>                  named snapshot

// Chunks per stripe. A chunk index i is written as (i / kStripeChunks) in 8 bytes followed
// by (i % kStripeChunks) in one byte: the same order as i itself, and the stripe becomes a
// contiguous byte range that the sharder can return as the shard part.
inline constexpr uint64_t kStripeChunks = 16;

// Length of the tag plus inode number: the shard part of I, D, X, V, O, H and W keys is [1, 9).
inline constexpr size_t kInoEnd = 9;
// The shard part of a C key is [1, 17): inode number and stripe.
inline constexpr size_t kStripeEnd = 17;
inline constexpr size_t kChunkKeySize = 18;

inline std::string Super() { return std::string(1, kSuper); }

// A tag followed by an inode number: the whole I and O keys, and the prefix of an inode's
// D, C, X and V keys.
inline std::string InoKey(char tag, uint64_t ino) {
  std::string k(1, tag);
  PutBE64(&k, ino);
  return k;
}
inline std::string Inode(uint64_t ino) { return InoKey(kInode, ino); }
inline std::string Orphan(uint64_t ino) { return InoKey(kOrphan, ino); }

inline std::string Dentry(uint64_t parent, std::string_view name) {
  std::string k = InoKey(kDentry, parent);
  k.append(name);
  return k;
}
inline std::string Xattr(uint64_t ino, std::string_view name) {
  std::string k = InoKey(kXattr, ino);
  k.append(name);
  return k;
}
inline std::string Version(uint64_t ino, uint64_t version) {
  std::string k = InoKey(kVersion, ino);
  PutBE64(&k, version);
  return k;
}
inline std::string Chunk(uint64_t ino, uint64_t index) {
  std::string k = InoKey(kChunk, ino);
  PutBE64(&k, index / kStripeChunks);
  PutU8(&k, static_cast<uint8_t>(index % kStripeChunks));
  return k;
}
// The prefix of the C keys of one stripe: one shard holds them all.
inline std::string ChunkStripe(uint64_t ino, uint64_t stripe) {
  std::string k = InoKey(kChunk, ino);
  PutBE64(&k, stripe);
  return k;
}
// The chunk index of a C key. REQUIRES: key.size() == kChunkKeySize.
inline uint64_t ChunkIndex(std::string_view key) {
  return DecodeBE64(key.data() + kInoEnd) * kStripeChunks + static_cast<uint8_t>(key[17]);
}
inline std::string Trash(int64_t time_ns, uint64_t ino) {
  std::string k(1, kTrash);
  PutBE64(&k, static_cast<uint64_t>(time_ns));
  PutBE64(&k, ino);
  return k;
}
inline constexpr size_t kTrashKeySize = 17;
// The deletion time and inode of a T key. REQUIRES: key.size() == kTrashKeySize.
inline int64_t TrashTime(std::string_view key) {
  return static_cast<int64_t>(DecodeBE64(key.data() + 1));
}
inline uint64_t TrashIno(std::string_view key) { return DecodeBE64(key.data() + 9); }

// W<parent><name>\0<time><ino>: a trashed child of directory `parent`, found by name (a name
// holds no NUL, so the prefix W<parent><name>\0 selects exactly the entries of that name, in
// deletion order).
inline std::string TrashChildPrefix(uint64_t parent, std::string_view name) {
  std::string k = InoKey(kTrashChild, parent);
  k.append(name);
  k.push_back('\0');
  return k;
}
inline std::string TrashChild(uint64_t parent, std::string_view name, int64_t time_ns,
                              uint64_t ino) {
  std::string k = TrashChildPrefix(parent, name);
  PutBE64(&k, static_cast<uint64_t>(time_ns));
  PutBE64(&k, ino);
  return k;
}

inline std::string History(uint64_t ino) { return InoKey(kHistory, ino); }

inline std::string Snapshot(std::string_view name) {
  std::string k(1, kSnapshot);
  k.append(name);
  return k;
}

// The inode number of an I, D, C, X, V or O key. REQUIRES: key.size() >= kInoEnd.
inline uint64_t KeyIno(std::string_view key) { return DecodeBE64(key.data() + 1); }

}  // namespace fs::keys

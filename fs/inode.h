// Inode: the decoded value of an I<ino> key, and its encoding (fs/README.md, "Values").
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <string>
#include <string_view>

namespace fs {

struct Inode {
  uint32_t mode = 0;  // file type and permission bits, as st_mode
  uint32_t uid = 0;
  uint32_t gid = 0;
  uint32_t nlink = 0;
  uint64_t size = 0;
  int64_t atime_ns = 0;
  int64_t mtime_ns = 0;
  int64_t ctime_ns = 0;
  uint64_t rdev = 0;
  // Sealed versions so far: the newest V<ino><version> key has this number (0: none).
  uint64_t version = 0;
  // Directories only: the parent directory (the root is its own parent). Kept so that ".."
  // and the "is the target inside the source?" check of rename need no reverse lookup.
  uint64_t parent = 0;
  // When true, the file's bytes are `data` (exactly `size` of them) and it has no C keys.
  bool inline_data = false;
  // In the trash: it has no name (nlink 0) and a T or W key says where it was. Read-only.
  bool trashed = false;
  // Inline file data, a symlink's target, or a directory's own name (empty for the root and
  // for directories made before names were recorded), so that a path can be built by walking
  // up the parent pointers.
  std::string data;

  bool is_dir() const { return S_ISDIR(mode); }
  bool is_reg() const { return S_ISREG(mode); }
  bool is_symlink() const { return S_ISLNK(mode); }
};

// Files at most this large keep their data inside the inode value.
inline constexpr uint64_t kInlineMax = 3072;

std::string EncodeInode(const Inode& inode);
// False when `value` is not a valid inode encoding.
[[nodiscard]] bool DecodeInode(std::string_view value, Inode* inode);

// The encoding's fixed head: every field but `data`, which follows it.
inline constexpr size_t kInodeHeadBytes = 74;
// Decodes the head of an encoding (`value` may hold any part of the data after it) and
// leaves `data` empty: what a stat needs, read without the inline data (kv's value_prefix).
[[nodiscard]] bool DecodeInodeHead(std::string_view value, Inode* inode);

}  // namespace fs

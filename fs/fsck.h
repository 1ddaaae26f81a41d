// fs::CheckVolume: the file system's invariants, checked (and repaired) directly over the
// keys of a store, without a Volume (kvfsck check). fs/README.md gives the schema; the
// invariants checked are:
//  - the S key decodes, the root is a directory, and no inode number is at or past
//    S.ino_limit (new files would reuse it);
//  - every I value decodes; an inline file has exactly `size` inline bytes and no chunks; no
//    chunk starts at or runs past the size of its file; only regular files have chunks;
//  - every dentry is in a live directory, has a valid name, names a live (not trashed) inode
//    and carries that inode's file type;
//  - nlink matches: a file's entries; a directory's 2 + its subdirectories, with exactly one
//    entry (in the directory its `parent` names);
//  - every live inode is reachable from the root (or is open-but-unlinked, with an O key);
//    every trashed inode has a T or W key, and every T, W and O key names a suitable inode;
//  - every C and X key belongs to a live inode; every V key to a live inode (at most its
//    version number) or to a file a history (H) link reaches; every version's inode can be
//    read at its seal sequence; H links point to files that have versions, without cycles.
// Repair fixes each problem with its own atomic batch: dangling entries and orphan keys are
// deleted, nlink and sizes corrected, orphan inodes linked into /lost+found as "#<ino>".
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "kv/status.h"
#include "kv/store.h"

namespace fs {

struct FsckProblem {
  std::string path;     // the affected file ("/a/b") or "<inode N>" when it has no path
  std::string message;  // what is wrong, one line
  bool repaired = false;
};

struct FsckOptions {
  bool repair = false;  // REQUIRES for repair: the store is writable and no volume has it open
};

struct FsckReport {
  std::vector<FsckProblem> problems;
  uint64_t inodes = 0;
  uint64_t directories = 0;
  uint64_t files = 0;  // regular files
  uint64_t symlinks = 0;
  uint64_t chunks = 0;
  uint64_t versions = 0;  // V keys
  uint64_t trash_entries = 0;
  uint64_t snapshots = 0;
  uint64_t repaired = 0;
  // The path of every inode reached from the root (for naming a store-level problem's key).
  std::unordered_map<uint64_t, std::string> paths;

  // "/a/b" for a reached inode, else "<inode N>".
  std::string PathOf(uint64_t ino) const;
  // What a raw store key belongs to, for messages: "/a/b (data chunk 3)", "<superblock>".
  std::string DescribeKey(std::string_view key) const;
  // The path of the file or directory a raw store key belongs to ("/a/b", "<inode N>"), or a
  // description in angle brackets for keys of no inode.
  std::string PathOfKey(std::string_view key) const;
};

// Checks the file system held by `store` (read at its latest sequence). Returns an error only
// when the check could not run (store errors); problems found go into *report.
kv::Status CheckVolume(kv::Store* store, const FsckOptions& options, FsckReport* report);

}  // namespace fs

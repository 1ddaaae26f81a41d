// The kv::Sharder every kvfs store is created with (fs/README.md, "Sharding").
#pragma once

#include <memory>
#include <vector>

#include "kv/store.h"

namespace fs {

// Shard part: the inode number for I, D, X, V, O, H and W keys (an inode's metadata,
// entries, xattrs and versions share one shard, so listing a directory reads one shard);
// inode number and stripe for C keys (a large file's chunks spread over the shards, 16 chunks
// at a time); the whole key for S, T, N and anything else.
// Pages: file data (C keys) keeps to the last three quarters of the page files and everything
// else to the first quarter (at least one page each when there are two or more), so that
// metadata lies densely in page files of its own: a cold `ls -l` or `git status` reads
// those, not the chunks between them.
std::shared_ptr<const kv::Sharder> NewInodeSharder();

// The sharder of stores made before metadata had pages of its own: the same shard parts,
// hashed over all pages. Such stores still open; `kvfsck reshard` moves them to
// NewInodeSharder().
std::shared_ptr<const kv::Sharder> NewInodeSharderV1();

}  // namespace fs

// The kv::Sharder every kvfs store is created with (fs/README.md, "Sharding").
#pragma once

#include <memory>

#include "kv/store.h"

namespace fs {

// Shard part: the inode number for I, D, X, V and O keys (an inode's metadata, entries,
// xattrs and versions share one shard, so listing a directory reads one shard); inode number
// and stripe for C keys (a large file's chunks spread over the shards, 16 chunks at a time);
// the whole key for S, T and anything else.
std::shared_ptr<const kv::Sharder> NewInodeSharder();

}  // namespace fs

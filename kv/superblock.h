// The superblock: what a store is (format version, identity, page count, sharder) and the
// durable sequence watermark. Rewritten atomically (temp file, fsync, rename, fsync dir).
#pragma once

#include <cstdint>
#include <string>

#include "kv/env.h"
#include "kv/status.h"

namespace kv {

struct Superblock {
  uint32_t format_version = 0;
  uint32_t page_count = 0;
  uint64_t store_id = 0;
  // Every sequence number <= durable_sequence is either on disk in some page or was
  // deliberately dropped by compaction; recovery checks batches and gaps only above it.
  uint64_t durable_sequence = 0;
  uint64_t created_ns = 0;
  std::string sharder_name;

  std::string Encode() const;
  // Corruption for a damaged file, NotSupported for a newer format version.
  static Status Decode(const std::string& data, Superblock* sb);
};

Status ReadSuperblock(Env* env, const std::string& dir, Superblock* sb);
Status WriteSuperblock(Env* env, const std::string& dir, const Superblock& sb);

}  // namespace kv

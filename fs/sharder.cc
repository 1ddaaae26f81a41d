// InodeSharder: see fs/sharder.h.
#include "fs/sharder.h"

#include "fs/keys.h"

namespace fs {
namespace {

// Where the shard part of keys with tag `tag` ends, or 0 when the whole key is hashed.
size_t ShardPartEnd(char tag) {
  switch (tag) {
    case keys::kInode:
    case keys::kDentry:
    case keys::kXattr:
    case keys::kVersion:
    case keys::kOrphan:
    case keys::kHistory:
    case keys::kTrashChild:
      return keys::kInoEnd;
    case keys::kChunk:
      return keys::kStripeEnd;
    default:
      return 0;
  }
}

class InodeSharder final : public kv::Sharder {
 public:
  std::string_view ShardPart(std::string_view key) const override {
    if (key.empty()) return key;
    size_t end = ShardPartEnd(key[0]);
    // A malformed short key is hashed whole: it still has one well-defined shard.
    if (end == 0 || key.size() < end) return key;
    return key.substr(1, end - 1);
  }

  bool PrefixShardPart(std::string_view prefix, std::string_view* part) const override {
    if (prefix.empty()) return false;
    size_t end = ShardPartEnd(prefix[0]);
    if (end == 0 || prefix.size() < end) return false;
    *part = prefix.substr(1, end - 1);
    return true;
  }

  std::string Name() const override { return "kvfs-inode-v1-stripe16"; }
};

}  // namespace

std::shared_ptr<const kv::Sharder> NewInodeSharder() { return std::make_shared<InodeSharder>(); }

}  // namespace fs

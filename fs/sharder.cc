// InodeSharder: see fs/sharder.h.
#include "fs/sharder.h"

#include <algorithm>

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
  explicit InodeSharder(bool metadata_pages) : metadata_pages_(metadata_pages) {}

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

  kv::PageRange Pages(std::string_view key, uint32_t page_count) const override {
    // The tag decides; the empty prefix (every key) spans all pages.
    if (!metadata_pages_ || page_count < 2 || key.empty()) return {0, page_count};
    const uint32_t metadata = std::max<uint32_t>(1, page_count / 4);
    if (key[0] == keys::kChunk) return {metadata, page_count - metadata};
    return {0, metadata};
  }

  std::string Name() const override {
    return metadata_pages_ ? "kvfs-inode-v2-stripe16-meta1of4" : "kvfs-inode-v1-stripe16";
  }

 private:
  const bool metadata_pages_;
};

}  // namespace

std::shared_ptr<const kv::Sharder> NewInodeSharder() {
  return std::make_shared<InodeSharder>(/*metadata_pages=*/true);
}

std::shared_ptr<const kv::Sharder> NewInodeSharderV1() {
  return std::make_shared<InodeSharder>(/*metadata_pages=*/false);
}

}  // namespace fs

// Tests of the fs key schema, value encodings and the inode sharder.
#include "fs/keys.h"

#include <gtest/gtest.h>

#include "fs/inode.h"
#include "fs/records.h"
#include "fs/sharder.h"

namespace fs {
namespace {

TEST(KeysTest, ChunkKeysSortByIndex) {
  std::string prev;
  for (uint64_t index : {0ull, 1ull, 15ull, 16ull, 17ull, 255ull, 256ull, 1ull << 28}) {
    std::string key = keys::Chunk(7, index);
    ASSERT_EQ(key.size(), keys::kChunkKeySize);
    EXPECT_EQ(keys::ChunkIndex(key), index);
    EXPECT_EQ(keys::KeyIno(key), 7u);
    if (!prev.empty()) {
      EXPECT_LT(prev, key);
    }
    prev = key;
  }
  EXPECT_LT(keys::Chunk(7, ~0ull >> 8), keys::Chunk(8, 0));
}

TEST(KeysTest, InodeNumbersSortNumerically) {
  EXPECT_LT(keys::Inode(255), keys::Inode(256));
  EXPECT_LT(keys::Dentry(1, "zzz"), keys::Dentry(2, "a"));
  EXPECT_LT(keys::Version(3, 9), keys::Version(3, 10));
  EXPECT_LT(keys::Trash(100, 5), keys::Trash(200, 1));
}

TEST(ShardingTest, InodeMetadataSharesOneShard) {
  auto sharder = NewInodeSharder();
  // ShardPart returns a view into the key: keep the keys alive.
  const std::string inode = keys::Inode(42);
  const std::string same[] = {keys::Dentry(42, "name"), keys::Xattr(42, "user.x"),
                              keys::Version(42, 3), keys::Orphan(42)};
  const std::string other = keys::Inode(43);
  for (const std::string& key : same) EXPECT_EQ(sharder->ShardPart(inode), sharder->ShardPart(key));
  EXPECT_NE(sharder->ShardPart(inode), sharder->ShardPart(other));
}

TEST(ShardingTest, ChunksStripe) {
  auto sharder = NewInodeSharder();
  std::string a = keys::Chunk(9, 0), b = keys::Chunk(9, 15), c = keys::Chunk(9, 16);
  EXPECT_EQ(sharder->ShardPart(a), sharder->ShardPart(b));
  EXPECT_NE(sharder->ShardPart(a), sharder->ShardPart(c));
}

TEST(ShardingTest, PrefixShardPart) {
  auto sharder = NewInodeSharder();
  std::string_view part;
  const std::string dir = keys::InoKey(keys::kDentry, 42), entry = keys::Dentry(42, "x");
  ASSERT_TRUE(sharder->PrefixShardPart(dir, &part));
  EXPECT_EQ(part, sharder->ShardPart(entry));
  const std::string xattrs = keys::InoKey(keys::kXattr, 42), xattr = keys::Xattr(42, "x");
  ASSERT_TRUE(sharder->PrefixShardPart(xattrs, &part));
  EXPECT_EQ(part, sharder->ShardPart(xattr));
  const std::string chunks = keys::InoKey(keys::kChunk, 42);
  const std::string stripe = chunks + std::string(8, '\0'), chunk = keys::Chunk(42, 3);
  ASSERT_TRUE(sharder->PrefixShardPart(stripe, &part));
  EXPECT_EQ(part, sharder->ShardPart(chunk));
  // All chunks of a file span several stripes: no single shard.
  EXPECT_FALSE(sharder->PrefixShardPart(chunks, &part));
  EXPECT_FALSE(sharder->PrefixShardPart("O", &part));
  EXPECT_FALSE(sharder->PrefixShardPart("", &part));
  EXPECT_EQ(sharder->ShardPart("S"), "S");
}

// File data keeps to the last three quarters of the pages and everything else to the first
// quarter, for keys and for prefixes (which prefix iteration reads only those pages for).
TEST(ShardingTest, MetadataHasPagesOfItsOwn) {
  auto sharder = NewInodeSharder();
  const std::string metadata[] = {keys::Inode(42),
                                  keys::Dentry(42, "name"),
                                  keys::Xattr(42, "user.x"),
                                  keys::Version(42, 3),
                                  keys::Orphan(42),
                                  keys::InoKey(keys::kDentry, 42),
                                  keys::Trash(5, 42),
                                  keys::Super(),
                                  std::string(1, keys::kOrphan)};
  const std::string data[] = {keys::Chunk(42, 0), keys::Chunk(42, 99),
                              keys::InoKey(keys::kChunk, 42) + std::string(8, '\0'),
                              keys::InoKey(keys::kChunk, 42), std::string(1, keys::kChunk)};
  struct Split {
    uint32_t pages, metadata;
  };
  for (Split split : {Split{16, 4}, Split{64, 16}, Split{7, 1}, Split{2, 1}}) {
    for (const std::string& key : metadata) {
      kv::PageRange r = sharder->Pages(key, split.pages);
      EXPECT_EQ(r.first, 0u) << split.pages;
      EXPECT_EQ(r.count, split.metadata) << split.pages;
    }
    for (const std::string& key : data) {
      kv::PageRange r = sharder->Pages(key, split.pages);
      EXPECT_EQ(r.first, split.metadata) << split.pages;
      EXPECT_EQ(r.count, split.pages - split.metadata) << split.pages;
    }
  }
  // The empty prefix, every key, spans all pages.
  EXPECT_EQ(sharder->Pages("", 16).first, 0u);
  EXPECT_EQ(sharder->Pages("", 16).count, 16u);
  // One page holds everything.
  for (const std::string& key : {keys::Inode(1), keys::Chunk(1, 0)}) {
    kv::PageRange r = sharder->Pages(key, 1);
    EXPECT_EQ(r.first, 0u);
    EXPECT_EQ(r.count, 1u);
  }
  // The sharder of earlier stores spreads everything over all pages, under its own name.
  auto v1 = NewInodeSharderV1();
  EXPECT_NE(v1->Name(), sharder->Name());
  EXPECT_EQ(v1->Pages(keys::Inode(1), 16).count, 16u);
  EXPECT_EQ(v1->Pages(keys::Chunk(1, 0), 16).count, 16u);
  const std::string chunk = keys::Chunk(1, 0);
  EXPECT_EQ(v1->ShardPart(chunk), sharder->ShardPart(chunk));
}

TEST(EncodingTest, InodeRoundTrip) {
  Inode n;
  n.mode = S_IFREG | 0644;
  n.uid = 1000;
  n.gid = 100;
  n.nlink = 3;
  n.size = 5;
  n.atime_ns = -1;
  n.mtime_ns = 1234567890123456789;
  n.ctime_ns = 42;
  n.rdev = 0x0801;
  n.version = 7;
  n.inline_data = true;
  n.data = "hello";
  Inode m;
  ASSERT_TRUE(DecodeInode(EncodeInode(n), &m));
  EXPECT_EQ(m.mode, n.mode);
  EXPECT_EQ(m.uid, n.uid);
  EXPECT_EQ(m.gid, n.gid);
  EXPECT_EQ(m.nlink, n.nlink);
  EXPECT_EQ(m.size, n.size);
  EXPECT_EQ(m.atime_ns, n.atime_ns);
  EXPECT_EQ(m.mtime_ns, n.mtime_ns);
  EXPECT_EQ(m.ctime_ns, n.ctime_ns);
  EXPECT_EQ(m.rdev, n.rdev);
  EXPECT_EQ(m.version, n.version);
  EXPECT_TRUE(m.inline_data);
  EXPECT_EQ(m.data, "hello");
}

TEST(EncodingTest, RejectsTruncatedValues) {
  Inode n;
  n.mode = S_IFDIR | 0755;
  std::string v = EncodeInode(n);
  Inode m;
  for (size_t len = 0; len < v.size(); ++len) EXPECT_FALSE(DecodeInode(v.substr(0, len), &m));
  Superblock sb;
  sb.chunk_size = 65536;
  sb.ino_limit = 2048;
  Superblock sb2;
  ASSERT_TRUE(DecodeSuperblock(EncodeSuperblock(sb), &sb2));
  EXPECT_EQ(sb2.chunk_size, 65536u);
  EXPECT_EQ(sb2.ino_limit, 2048u);
  EXPECT_FALSE(DecodeSuperblock("XXXX", &sb2));
  DentryValue d;
  EXPECT_FALSE(DecodeDentry("short", &d));
  PlaceRecord p{1, 2, 3, 4, "name", "dir/name"}, q;
  ASSERT_TRUE(DecodePlace(EncodePlace(p), &q));
  EXPECT_EQ(q.name, "name");
  EXPECT_EQ(q.size, 4u);
}

TEST(SuperblockTest, FeaturesSelectTheFormat) {
  Superblock sb;
  sb.chunk_size = 65536;
  sb.version_retention = 32;
  sb.ino_limit = 4096;
  sb.created_ns = 1'700'000'000'000'000'000;
  sb.version_min_age_ns = 5;
  sb.trash_retention_ns = 7;
  auto same_fields = [&sb](const Superblock& d) {
    EXPECT_EQ(d.chunk_size, sb.chunk_size);
    EXPECT_EQ(d.version_retention, sb.version_retention);
    EXPECT_EQ(d.ino_limit, sb.ino_limit);
    EXPECT_EQ(d.created_ns, sb.created_ns);
    EXPECT_EQ(d.version_min_age_ns, sb.version_min_age_ns);
    EXPECT_EQ(d.trash_retention_ns, sb.trash_retention_ns);
  };

  sb.format = 0;
  const std::string v2 = EncodeSuperblock(sb);
  EXPECT_EQ(sb.format, 2u);
  EXPECT_EQ(v2.substr(4, 4), std::string("\0\0\0\2", 4));  // big-endian format word
  Superblock d;
  d.features = Superblock::kPosixAcl;  // a format-2 value gives features 0
  ASSERT_TRUE(DecodeSuperblock(v2, &d));
  EXPECT_EQ(d.format, 2u);
  EXPECT_EQ(d.features, 0u);
  same_fields(d);

  sb.features = Superblock::kPosixAcl;
  const std::string v3 = EncodeSuperblock(sb);
  EXPECT_EQ(sb.format, 3u);
  EXPECT_EQ(v3.size(), v2.size() + 4);
  EXPECT_EQ(v3.substr(4, 4), std::string("\0\0\0\3", 4));
  d = Superblock();
  ASSERT_TRUE(DecodeSuperblock(v3, &d));
  EXPECT_EQ(d.format, 3u);
  EXPECT_EQ(d.features, Superblock::kPosixAcl);
  same_fields(d);
  // A format-3 value without its features word is truncated.
  EXPECT_FALSE(DecodeSuperblock(v3.substr(0, v3.size() - 4), &d));
}

}  // namespace
}  // namespace fs

// Unit tests of fs::Volume operations and their errnos, on a real store in a temp directory.
#include "fs/volume.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "fs/inode.h"
#include "fs/keys.h"
#include "fs/sharder.h"
#include "kv/maintenance.h"
#include "tests/fs/listing.h"
#include "tests/fs/volume_fixture.h"
#include "tests/support/page_file.h"

namespace fs {
namespace {

class VolumeTest : public VolumeFixture {
 protected:
  // These tests check that deletion reclaims at once; the trash (which keeps deleted
  // files) is tested in history_test.cc.
  void Configure(VolumeOptions* options) override { options->trash_retention_ns = 0; }

  Ino MakeFile(Ino parent, const std::string& name, const std::string& data = "") {
    Attr a;
    uint64_t fh;
    Errno err = vol_->Create(parent, name, 0644, O_RDWR, caller_, &a, &fh);
    EXPECT_TRUE(err.ok()) << err.ToString();
    if (!data.empty()) Put(fh, 0, data);
    EXPECT_TRUE(vol_->Release(fh).ok());
    return a.ino;
  }
  Ino MakeDir(Ino parent, const std::string& name) {
    Attr a;
    Errno err = vol_->Mkdir(parent, name, 0755, caller_, &a);
    EXPECT_TRUE(err.ok()) << err.ToString();
    return a.ino;
  }
  void Put(uint64_t fh, uint64_t offset, const std::string& data) {
    size_t written = 0;
    Errno err = vol_->Write(fh, offset, data, &written);
    ASSERT_TRUE(err.ok()) << err.ToString();
    ASSERT_EQ(written, data.size());
  }
  std::string ReadAll(Ino ino) {
    uint64_t fh;
    EXPECT_TRUE(vol_->Open(ino, O_RDONLY, &fh).ok());
    std::string data;
    EXPECT_TRUE(vol_->Read(fh, 0, 1 << 24, &data).ok());
    EXPECT_TRUE(vol_->Release(fh).ok());
    return data;
  }
  int ErrOf(Errno e) { return e.value(); }
  Attr Stat(Ino ino) {
    Attr a;
    Errno err = vol_->GetAttr(ino, &a);
    EXPECT_TRUE(err.ok()) << err.ToString();
    return a;
  }
  std::vector<std::string> List(Ino dir) {
    std::vector<std::string> names;
    EXPECT_TRUE(vol_->ReadDir(dir, 0,
                              [&](const DirEntry& e) {
                                names.emplace_back(e.name);
                                return true;
                              })
                    .ok());
    return names;
  }
};

// A store made before metadata had page files of its own still mounts and takes writes;
// kv::ReshardStore with the volume's sharders (kvfsck reshard) moves it to the current layout:
// the same files, chunks only in the last three quarters of the page files, nothing else there.
TEST_F(VolumeTest, EarlierLayoutOpensAndReshardsToTheCurrentOne) {
  ASSERT_TRUE(vol_->Close().ok());
  vol_.reset();
  ASSERT_TRUE(kv::DestroyPageStore(dir_).ok());
  kv::Options v1 = Volume::StoreOptions();
  v1.sharder = NewInodeSharderV1();
  v1.earlier_sharders.clear();
  {
    std::unique_ptr<kv::Store> store;
    ASSERT_TRUE(kv::OpenPageStore(v1, dir_, &store).ok());
    VolumeOptions with = options_;
    with.store_retention = v1.retention;
    ASSERT_TRUE(Volume::Open(std::move(store), with, &vol_).ok());
  }
  std::string big(300 * 1024, '\0');  // 75 chunks of 4 KiB: five stripes
  std::mt19937_64 rng(7);
  for (char& c : big) c = static_cast<char>(rng());
  Ino d = MakeDir(kRootIno, "dir");
  Ino small = MakeFile(d, "small", "inline bytes");
  Ino large = MakeFile(d, "large", big);
  ASSERT_TRUE(vol_->SetXattr(small, "user.k", "v", 0).ok());
  Reopen();  // the current sharders open the v1 store
  EXPECT_EQ(vol_->store()->Stats().sharder_name, NewInodeSharderV1()->Name());
  ASSERT_EQ(ReadAll(large), big);
  Ino later = MakeFile(d, "later", big.substr(0, 50'000));
  ASSERT_TRUE(vol_->Close().ok());
  vol_.reset();

  kv::ReshardOptions ro;
  ro.sharder = Volume::Sharder();
  ro.earlier_sharders = Volume::EarlierSharders();
  ASSERT_TRUE(kv::ReshardStore(dir_, 0, ro).ok());
  Reopen();
  std::vector<std::string> names = List(d);
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{".", "..", "large", "later", "small"}));
  EXPECT_EQ(ReadAll(small), "inline bytes");
  EXPECT_EQ(ReadAll(large), big);
  EXPECT_EQ(ReadAll(later), big.substr(0, 50'000));
  std::string x;
  ASSERT_TRUE(vol_->GetXattr(small, "user.k", &x).ok());
  EXPECT_EQ(x, "v");
  EXPECT_EQ(vol_->store()->ShardCount(), 16u);
  EXPECT_EQ(vol_->store()->Stats().sharder_name, Volume::Sharder()->Name());
  ASSERT_TRUE(vol_->Close().ok());
  vol_.reset();
  size_t chunks = 0, metadata = 0;
  for (uint32_t page = 0; page < 16; ++page) {
    char name[32];
    snprintf(name, sizeof(name), "/page-%04u.kv", page);
    for (const kvtest::ParsedRecord& r : kvtest::ParsePage(dir_ + name)) {
      const bool chunk = r.key[0] == keys::kChunk;
      EXPECT_EQ(chunk, page >= 4) << "page " << page << " holds key tag " << r.key[0];
      ++(chunk ? chunks : metadata);
    }
  }
  EXPECT_GE(chunks, 75u + 13u);
  EXPECT_GT(metadata, 5u);
  Reopen();
}

TEST_F(VolumeTest, RootExists) {
  Attr a = Stat(kRootIno);
  EXPECT_TRUE(S_ISDIR(a.mode));
  EXPECT_EQ(a.nlink, 2u);
  EXPECT_EQ(List(kRootIno), (std::vector<std::string>{".", ".."}));
}

TEST_F(VolumeTest, CreateLookupAndErrors) {
  Ino f = MakeFile(kRootIno, "a", "hello");
  Attr a;
  ASSERT_TRUE(vol_->Lookup(kRootIno, "a", &a).ok());
  EXPECT_EQ(a.ino, f);
  EXPECT_EQ(a.size, 5u);
  EXPECT_EQ(a.uid, 1000u);
  EXPECT_TRUE(S_ISREG(a.mode));
  EXPECT_EQ(ErrOf(vol_->Lookup(kRootIno, "missing", &a)), ENOENT);
  EXPECT_EQ(ErrOf(vol_->Lookup(f, "x", &a)), ENOTDIR);
  EXPECT_EQ(ErrOf(vol_->Lookup(kRootIno, std::string(256, 'n'), &a)), ENAMETOOLONG);
  EXPECT_EQ(ErrOf(vol_->Mkdir(kRootIno, "a", 0755, caller_, &a)), EEXIST);
  EXPECT_EQ(ErrOf(vol_->Mkdir(kRootIno, std::string(256, 'n'), 0755, caller_, &a)), ENAMETOOLONG);
  EXPECT_TRUE(vol_->Mkdir(kRootIno, std::string(255, 'n'), 0755, caller_, &a).ok());
  EXPECT_EQ(ErrOf(vol_->Mknod(f, "x", S_IFREG | 0644, 0, caller_, &a)), ENOTDIR);
  EXPECT_EQ(ErrOf(vol_->Mknod(12345, "x", S_IFREG | 0644, 0, caller_, &a)), ENOENT);
  EXPECT_EQ(ErrOf(vol_->GetAttr(12345, &a)), ENOENT);
}

TEST_F(VolumeTest, MknodTypes) {
  Attr a;
  ASSERT_TRUE(vol_->Mknod(kRootIno, "fifo", S_IFIFO | 0600, 0, caller_, &a).ok());
  EXPECT_TRUE(S_ISFIFO(a.mode));
  ASSERT_TRUE(vol_->Mknod(kRootIno, "dev", S_IFCHR | 0600, 0x0103, caller_, &a).ok());
  EXPECT_TRUE(S_ISCHR(a.mode));
  EXPECT_EQ(a.rdev, 0x0103u);
  Reopen();
  ASSERT_TRUE(vol_->Lookup(kRootIno, "dev", &a).ok());
  EXPECT_EQ(a.rdev, 0x0103u);
  EXPECT_EQ(ErrOf(vol_->Mknod(kRootIno, "d", S_IFDIR | 0600, 0, caller_, &a)), EINVAL);
}

TEST_F(VolumeTest, MkdirRmdirAndLinkCounts) {
  Ino d = MakeDir(kRootIno, "d");
  EXPECT_EQ(Stat(kRootIno).nlink, 3u);
  EXPECT_EQ(Stat(d).nlink, 2u);
  Ino sub = MakeDir(d, "sub");
  MakeFile(d, "f");
  EXPECT_EQ(Stat(d).nlink, 3u);
  Attr a;
  ASSERT_TRUE(vol_->Lookup(sub, "..", &a).ok());
  EXPECT_EQ(a.ino, d);
  EXPECT_EQ(ErrOf(vol_->Rmdir(kRootIno, "d")), ENOTEMPTY);
  EXPECT_EQ(ErrOf(vol_->Rmdir(d, "f")), ENOTDIR);
  EXPECT_EQ(ErrOf(vol_->Unlink(d, "sub")), EISDIR);
  EXPECT_EQ(ErrOf(vol_->Rmdir(d, "nope")), ENOENT);
  ASSERT_TRUE(vol_->Rmdir(d, "sub").ok());
  ASSERT_TRUE(vol_->Unlink(d, "f").ok());
  EXPECT_EQ(Stat(d).nlink, 2u);
  ASSERT_TRUE(vol_->Rmdir(kRootIno, "d").ok());
  EXPECT_EQ(Stat(kRootIno).nlink, 2u);
  EXPECT_EQ(ErrOf(vol_->GetAttr(d, &a)), ENOENT);
}

TEST_F(VolumeTest, SetgidDirectoryInheritance) {
  Ino d = MakeDir(kRootIno, "shared");
  SetAttrRequest r;
  r.valid = SetAttrRequest::kMode | SetAttrRequest::kGid;
  r.mode = 02775;
  r.gid = 4242;
  ASSERT_TRUE(vol_->SetAttr(d, r, nullptr).ok());
  Attr a;
  ASSERT_TRUE(vol_->Mkdir(d, "sub", 0755, caller_, &a).ok());
  EXPECT_EQ(a.gid, 4242u);
  EXPECT_TRUE(a.mode & S_ISGID);
  ASSERT_TRUE(vol_->Mknod(d, "f", S_IFREG | 0644, 0, caller_, &a).ok());
  EXPECT_EQ(a.gid, 4242u);
  EXPECT_FALSE(a.mode & S_ISGID);
}

TEST_F(VolumeTest, SymlinkReadlink) {
  Attr a;
  ASSERT_TRUE(vol_->Symlink(kRootIno, "l", "../target/x", caller_, &a).ok());
  EXPECT_TRUE(S_ISLNK(a.mode));
  EXPECT_EQ(a.size, 11u);
  Reopen();
  std::string t;
  ASSERT_TRUE(vol_->Readlink(a.ino, &t).ok());
  EXPECT_EQ(t, "../target/x");
  EXPECT_EQ(ErrOf(vol_->Readlink(kRootIno, &t)), EINVAL);
  EXPECT_EQ(ErrOf(vol_->Symlink(kRootIno, "l2", std::string(5000, 'x'), caller_, &a)),
            ENAMETOOLONG);
}

TEST_F(VolumeTest, HardLinks) {
  Ino f = MakeFile(kRootIno, "a", "data");
  Ino d = MakeDir(kRootIno, "d");
  Attr a;
  ASSERT_TRUE(vol_->Link(f, d, "b", &a).ok());
  EXPECT_EQ(a.nlink, 2u);
  EXPECT_EQ(ErrOf(vol_->Link(f, d, "b", &a)), EEXIST);
  EXPECT_EQ(ErrOf(vol_->Link(d, kRootIno, "dlink", &a)), EPERM);
  ASSERT_TRUE(vol_->Unlink(kRootIno, "a").ok());
  EXPECT_EQ(Stat(f).nlink, 1u);
  EXPECT_EQ(ReadAll(f), "data");
  ASSERT_TRUE(vol_->Unlink(d, "b").ok());
  EXPECT_EQ(ErrOf(vol_->GetAttr(f, &a)), ENOENT);
}

TEST_F(VolumeTest, ReadWriteSparseAndInlineToChunks) {
  Attr a;
  uint64_t fh;
  ASSERT_TRUE(vol_->Create(kRootIno, "f", 0644, O_RDWR, caller_, &a, &fh).ok());
  Put(fh, 0, "abc");
  std::string got;
  ASSERT_TRUE(vol_->Read(fh, 0, 100, &got).ok());
  EXPECT_EQ(got, "abc");
  // Past the inline limit and across chunk boundaries, leaving a hole.
  Put(fh, 10000, std::string(5000, 'z'));
  EXPECT_EQ(Stat(a.ino).size, 15000u);
  ASSERT_TRUE(vol_->Read(fh, 0, 20000, &got).ok());
  ASSERT_EQ(got.size(), 15000u);
  EXPECT_EQ(got.substr(0, 3), "abc");
  EXPECT_EQ(got.substr(3, 9997), std::string(9997, '\0'));
  EXPECT_EQ(got.substr(10000), std::string(5000, 'z'));
  ASSERT_TRUE(vol_->Read(fh, 20000, 10, &got).ok());
  EXPECT_EQ(got, "");
  ASSERT_TRUE(vol_->Release(fh).ok());
  Reopen();
  std::string all = ReadAll(a.ino);
  ASSERT_EQ(all.size(), 15000u);
  EXPECT_EQ(all.substr(10000), std::string(5000, 'z'));
  EXPECT_EQ(all.substr(0, 3), "abc");
}

TEST_F(VolumeTest, SmallWritesCoalesceAndSurviveClose) {
  Attr a;
  uint64_t fh;
  ASSERT_TRUE(vol_->Create(kRootIno, "f", 0644, O_WRONLY, caller_, &a, &fh).ok());
  std::string expect;
  for (int i = 0; i < 3000; ++i) {
    std::string piece = std::to_string(i) + ",";
    Put(fh, expect.size(), piece);
    expect += piece;
  }
  EXPECT_EQ(Stat(a.ino).size, expect.size());
  // Close with the handle still open: the data is committed and the handle released.
  Reopen();
  EXPECT_EQ(ReadAll(a.ino), expect);
  EXPECT_EQ(Stat(a.ino).version, 1u);
}

// Files written at random and kept open hold buffered chunks only up to the volume's limit:
// past it, each write commits its own file's buffer (instead of 32 files holding ~450 KiB).
TEST_F(VolumeTest, BufferedWritesOfAllFilesStayWithinTheVolumeLimit) {
  options_.max_dirty_bytes = 64 << 10;
  Reopen();
  auto buffered = [&] {
    const std::string text = vol_->StatsText();
    const std::string key = "\nbytes_buffered ";
    const size_t at = text.find(key);
    EXPECT_NE(at, std::string::npos) << text;
    return at == std::string::npos ? 0 : std::stoull(text.substr(at + key.size()));
  };
  struct File {
    Ino ino;
    uint64_t fh;
    std::string expect;
  };
  std::vector<File> files(32);
  for (size_t i = 0; i < files.size(); ++i) {
    Attr a;
    ASSERT_TRUE(
        vol_->Create(kRootIno, "f" + std::to_string(i), 0644, O_RDWR, caller_, &a, &files[i].fh)
            .ok());
    files[i].ino = a.ino;
  }
  for (int round = 0; round < 4; ++round) {
    for (size_t i = 0; i < files.size(); ++i) {
      // Never ends on a chunk boundary, so nothing but a limit commits it.
      const uint64_t offset = round * 10'000 + 1;
      const std::string piece(3'000 + i, static_cast<char>('a' + round));
      Put(files[i].fh, offset, piece);
      std::string& e = files[i].expect;
      if (e.size() < offset + piece.size()) e.resize(offset + piece.size(), '\0');
      e.replace(offset, piece.size(), piece);
      // One write adds at most two chunks before its own commit takes the buffer back.
      ASSERT_LE(buffered(), options_.max_dirty_bytes + 2 * options_.chunk_size);
    }
  }
  EXPECT_GT(buffered(), 0u);  // small writes still coalesce below the limit
  for (const File& f : files) {
    ASSERT_TRUE(vol_->Release(f.fh).ok());
    EXPECT_EQ(ReadAll(f.ino), f.expect);
  }
  EXPECT_EQ(buffered(), 0u);
}

// Buffered data of a file still open reaches the store within the commit interval, with no
// flush, fsync or close: sync(2) does not reach a FUSE daemon, so nothing else would commit it.
TEST_F(VolumeTest, BuffersOfOpenFilesAreCommittedWithinTheInterval) {
  options_.commit_interval_ns = 10'000'000;
  Reopen();
  Attr a;
  uint64_t fh;
  ASSERT_TRUE(vol_->Create(kRootIno, "f", 0644, O_RDWR, caller_, &a, &fh).ok());
  const std::string data(10'000, 'q');  // from offset 1: two chunks and part of a third
  Put(fh, 1, data);
  Inode stored;
  for (int i = 0; i < 1000; ++i) {  // 10 s at most; the committer takes 10 ms
    std::string value;
    ASSERT_TRUE(vol_->store()->Get(kv::ReadOptions(), keys::Inode(a.ino), &value).ok());
    ASSERT_TRUE(DecodeInode(value, &stored));
    if (stored.size == data.size() + 1) break;
    usleep(10'000);
  }
  ASSERT_EQ(stored.size, data.size() + 1) << "not committed while the file stayed open";
  std::string chunk;
  ASSERT_TRUE(vol_->store()->Get(kv::ReadOptions(), keys::Chunk(a.ino, 0), &chunk).ok());
  EXPECT_EQ(chunk, std::string(1, '\0') + data.substr(0, 4095));
  ASSERT_TRUE(vol_->store()->Get(kv::ReadOptions(), keys::Chunk(a.ino, 2), &chunk).ok());
  EXPECT_EQ(chunk, data.substr(8191));
  EXPECT_EQ(Stat(a.ino).version, 0u);  // a commit, not a close: no version sealed
  ASSERT_TRUE(vol_->Release(fh).ok());
  EXPECT_EQ(ReadAll(a.ino), std::string(1, '\0') + data);
}

TEST_F(VolumeTest, TimesWrittenBackToAnOpenFileAreKeptWithItsClose) {
  // The kernel's writeback cache sends a file's times just before the close's flush; they
  // are held with the file's buffered changes and committed by that flush.
  Attr a;
  uint64_t fh;
  ASSERT_TRUE(vol_->Create(kRootIno, "f", 0644, O_WRONLY, caller_, &a, &fh).ok());
  Put(fh, 0, "data");
  SetAttrRequest times;
  times.valid = SetAttrRequest::kMtime | SetAttrRequest::kCtime;
  times.mtime_ns = 1'000'000'000'000'000'123;
  times.ctime_ns = 1'000'000'000'000'000'456;
  Attr after;
  ASSERT_TRUE(vol_->SetAttr(a.ino, times, &after).ok());
  EXPECT_EQ(after.mtime_ns, times.mtime_ns);
  EXPECT_EQ(Stat(a.ino).ctime_ns, times.ctime_ns);
  ASSERT_TRUE(vol_->Flush(fh).ok());
  ASSERT_TRUE(vol_->Release(fh).ok());
  Reopen();
  EXPECT_EQ(Stat(a.ino).mtime_ns, times.mtime_ns);
  EXPECT_EQ(Stat(a.ino).ctime_ns, times.ctime_ns);
  EXPECT_EQ(ReadAll(a.ino), "data");
  // On a closed file they are committed at once.
  times.mtime_ns += 1000;
  ASSERT_TRUE(vol_->SetAttr(a.ino, times, &after).ok());
  Reopen();
  EXPECT_EQ(Stat(a.ino).mtime_ns, times.mtime_ns);
}

// Counts the stored chunk keys of `ino`.
size_t ChunkKeys(kv::Store* store, Ino ino) {
  std::string prefix = "C";
  for (int shift = 56; shift >= 0; shift -= 8) prefix.push_back(static_cast<char>(ino >> shift));
  std::unique_ptr<kv::Iterator> it = store->NewIterator(kv::ReadOptions(), prefix);
  size_t n = 0;
  for (it->SeekToFirst(); it->Valid(); it->Next()) ++n;
  return n;
}

TEST_F(VolumeTest, FullChunksAreCommittedAsWholeChunkPuts) {
  Attr a;
  uint64_t fh;
  ASSERT_TRUE(vol_->Create(kRootIno, "f", 0644, O_RDWR, caller_, &a, &fh).ok());
  // 4 KiB chunks written in 512-byte pieces: nothing is committed until a chunk fills.
  for (int i = 0; i < 7; ++i) Put(fh, i * 512, std::string(512, 'x'));
  EXPECT_EQ(ChunkKeys(vol_->store(), a.ino), 0u);
  Put(fh, 7 * 512, std::string(512, 'x'));
  EXPECT_EQ(ChunkKeys(vol_->store(), a.ino), 1u);
  // A sparse write far away stores only the chunk it touches.
  Put(fh, 100 * 4096 + 10, "y");
  ASSERT_TRUE(vol_->Release(fh).ok());
  EXPECT_EQ(ChunkKeys(vol_->store(), a.ino), 2u);
  EXPECT_EQ(Stat(a.ino).size, 100u * 4096 + 11);
  SetAttrRequest r;
  r.valid = SetAttrRequest::kSize;
  r.size = 4000;
  ASSERT_TRUE(vol_->SetAttr(a.ino, r, nullptr).ok());
  EXPECT_EQ(ChunkKeys(vol_->store(), a.ino), 1u);
  ASSERT_TRUE(vol_->Unlink(kRootIno, "f").ok());
  EXPECT_EQ(ChunkKeys(vol_->store(), a.ino), 0u);
}

TEST_F(VolumeTest, AppendMode) {
  Ino f = MakeFile(kRootIno, "f", "12345");
  uint64_t fh;
  ASSERT_TRUE(vol_->Open(f, O_WRONLY | O_APPEND, &fh).ok());
  Put(fh, 0, "678");
  ASSERT_TRUE(vol_->Release(fh).ok());
  EXPECT_EQ(ReadAll(f), "12345678");
  std::string got;
  ASSERT_TRUE(vol_->Open(f, O_RDONLY, &fh).ok());
  size_t n;
  EXPECT_EQ(ErrOf(vol_->Write(fh, 0, "x", &n)), EBADF);
  ASSERT_TRUE(vol_->Release(fh).ok());
  ASSERT_TRUE(vol_->Open(f, O_WRONLY | O_TRUNC, &fh).ok());
  ASSERT_TRUE(vol_->Release(fh).ok());
  EXPECT_EQ(Stat(f).size, 0u);
}

TEST_F(VolumeTest, TruncateDownAndUp) {
  std::string data(20000, 'q');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>('a' + i % 26);
  Ino f = MakeFile(kRootIno, "f", data);
  SetAttrRequest r;
  r.valid = SetAttrRequest::kSize;
  r.size = 5000;
  Attr a;
  ASSERT_TRUE(vol_->SetAttr(f, r, &a).ok());
  EXPECT_EQ(a.size, 5000u);
  r.size = 12000;
  ASSERT_TRUE(vol_->SetAttr(f, r, &a).ok());
  std::string got = ReadAll(f);
  ASSERT_EQ(got.size(), 12000u);
  EXPECT_EQ(got.substr(0, 5000), data.substr(0, 5000));
  EXPECT_EQ(got.substr(5000), std::string(7000, '\0'));
  Reopen();
  EXPECT_EQ(ReadAll(f), got);
  r.size = 0;
  ASSERT_TRUE(vol_->SetAttr(f, r, &a).ok());
  EXPECT_EQ(ReadAll(f), "");
  r.size = kMaxFileSize + 1;
  EXPECT_EQ(ErrOf(vol_->SetAttr(f, r, &a)), EFBIG);
  EXPECT_EQ(ErrOf(vol_->SetAttr(kRootIno, SetAttrRequest{SetAttrRequest::kSize}, &a)), EISDIR);
}

// st_blocks counts the stored chunks: key by key for a file of a few chunks, stripe by stripe
// for a file of a few stripes, with one scan of every data page for a larger one; truncation
// drops the chunks past the new size.
TEST_F(VolumeTest, BlocksCountStoredChunksAcrossStripes) {
  const uint64_t chunk = options_.chunk_size, stripe = chunk * keys::kStripeChunks;
  Attr a;
  uint64_t fh;
  ASSERT_TRUE(vol_->Create(kRootIno, "sparse", 0644, O_RDWR, caller_, &a, &fh).ok());
  const std::string bytes(chunk, 'b');
  // Chunks 0, 17 (stripe 1) and 40 (stripe 2), then one far out, 1,000 stripes in.
  for (uint64_t index : {0ull, 17ull, 40ull}) Put(fh, index * chunk, bytes);
  ASSERT_TRUE(vol_->Release(fh).ok());
  Reopen();  // nothing counted or buffered in memory
  EXPECT_EQ(Stat(a.ino).blocks, 3 * chunk / 512);
  ASSERT_TRUE(vol_->Open(a.ino, O_RDWR, &fh).ok());
  Put(fh, 1000 * stripe + 5 * chunk, bytes);
  ASSERT_TRUE(vol_->Release(fh).ok());
  Reopen();
  EXPECT_EQ(Stat(a.ino).blocks, 4 * chunk / 512);
  SetAttrRequest r;
  r.valid = SetAttrRequest::kSize;
  r.size = 17 * chunk + 100;  // keeps chunk 17's first 100 bytes
  ASSERT_TRUE(vol_->SetAttr(a.ino, r, &a).ok());
  Reopen();
  EXPECT_EQ(Stat(a.ino).blocks, 2 * chunk / 512);
  std::string got = ReadAll(a.ino);
  ASSERT_EQ(got.size(), r.size);
  EXPECT_EQ(got.substr(17 * chunk), bytes.substr(0, 100));

  // A file of a few chunks has each chunk's key probed: chunks 0 and 2 of 4.
  ASSERT_TRUE(vol_->Create(kRootIno, "few", 0644, O_RDWR, caller_, &a, &fh).ok());
  Put(fh, 0, bytes);
  Put(fh, 2 * chunk, bytes);
  ASSERT_TRUE(vol_->Release(fh).ok());
  r.size = 4 * chunk;
  ASSERT_TRUE(vol_->SetAttr(a.ino, r, &a).ok());
  Reopen();
  EXPECT_EQ(Stat(a.ino).blocks, 2 * chunk / 512);
}

TEST_F(VolumeTest, MaxFileSize) {
  Attr a;
  uint64_t fh;
  ASSERT_TRUE(vol_->Create(kRootIno, "f", 0644, O_RDWR, caller_, &a, &fh).ok());
  size_t n;
  EXPECT_EQ(ErrOf(vol_->Write(fh, kMaxFileSize - 1, "xy", &n)), EFBIG);
  ASSERT_TRUE(vol_->Write(fh, kMaxFileSize - 1, "x", &n).ok());
  EXPECT_EQ(Stat(a.ino).size, kMaxFileSize);
  std::string got;
  ASSERT_TRUE(vol_->Read(fh, kMaxFileSize - 2, 10, &got).ok());
  EXPECT_EQ(got, std::string("\0x", 2));
  ASSERT_TRUE(vol_->Release(fh).ok());
  ASSERT_TRUE(vol_->Unlink(kRootIno, "f").ok());
}

TEST_F(VolumeTest, SetAttrFields) {
  Ino f = MakeFile(kRootIno, "f");
  SetAttrRequest r;
  r.valid = SetAttrRequest::kMode | SetAttrRequest::kUid | SetAttrRequest::kGid |
            SetAttrRequest::kAtime | SetAttrRequest::kMtime;
  r.mode = 0600;
  r.uid = 7;
  r.gid = 8;
  r.atime_ns = 111;
  r.mtime_ns = 222;
  now_ += 5;
  Attr a;
  ASSERT_TRUE(vol_->SetAttr(f, r, &a).ok());
  Reopen();
  a = Stat(f);
  EXPECT_EQ(a.mode, static_cast<uint32_t>(S_IFREG | 0600));
  EXPECT_EQ(a.uid, 7u);
  EXPECT_EQ(a.gid, 8u);
  EXPECT_EQ(a.atime_ns, 111);
  EXPECT_EQ(a.mtime_ns, 222);
  EXPECT_EQ(a.ctime_ns, now_);
}

// A stat reads an inode without its data (the head of its I value); whatever then changes
// the inode must still write the data back: an inline file's bytes, a symlink's target, a
// directory's name.
TEST_F(VolumeTest, InodesStattedFirstKeepTheirData) {
  std::string text;
  for (int i = 0; text.size() < 2500; ++i)
    text += "line " + std::to_string(i) + " of a small file\n";
  Ino f = MakeFile(kRootIno, "f", text);
  Ino d = MakeDir(kRootIno, "d");
  Attr a;
  ASSERT_TRUE(vol_->Symlink(kRootIno, "l", "d/f", caller_, &a).ok());
  const Ino l = a.ino;
  Ino l_parent = kRootIno;
  std::string l_name = "l";
  auto stat_all = [&] {
    Reopen();
    ASSERT_TRUE(vol_->Lookup(kRootIno, "f", &a).ok());
    ASSERT_TRUE(vol_->Lookup(kRootIno, "d", &a).ok());
    ASSERT_TRUE(vol_->Lookup(l_parent, l_name, &a).ok());
    EXPECT_EQ(Stat(f).size, text.size());
    EXPECT_EQ(Stat(l).size, 3u);
  };
  auto stored_data = [&](Ino ino) {
    std::string value;
    EXPECT_TRUE(vol_->store()->Get(kv::ReadOptions(), keys::Inode(ino), &value).ok());
    Inode n;
    EXPECT_TRUE(DecodeInode(value, &n));
    return n.data;
  };

  ASSERT_NO_FATAL_FAILURE(stat_all());
  SetAttrRequest chmod;
  chmod.valid = SetAttrRequest::kMode;
  chmod.mode = 0600;
  for (Ino ino : {f, d, l}) ASSERT_TRUE(vol_->SetAttr(ino, chmod, &a).ok());
  EXPECT_EQ(stored_data(f), text);
  EXPECT_EQ(stored_data(d), "d");
  EXPECT_EQ(stored_data(l), "d/f");

  ASSERT_NO_FATAL_FAILURE(stat_all());
  uint64_t fh;
  ASSERT_TRUE(vol_->Open(f, O_RDWR, &fh).ok());
  Put(fh, 5, "XY");
  ASSERT_TRUE(vol_->Release(fh).ok());
  text.replace(5, 2, "XY");
  MakeFile(d, "child");  // rewrites d's inode (times)
  ASSERT_TRUE(vol_->Rename(kRootIno, "l", d, "l2", 0).ok());
  l_parent = d;
  l_name = "l2";
  Reopen();
  EXPECT_EQ(ReadAll(f), text);
  EXPECT_EQ(stored_data(d), "d");
  std::string target;
  ASSERT_TRUE(vol_->Readlink(l, &target).ok());
  EXPECT_EQ(target, "d/f");

  ASSERT_NO_FATAL_FAILURE(stat_all());
  EXPECT_EQ(ReadAll(f), text);
  ASSERT_TRUE(vol_->Readlink(l, &target).ok());
  EXPECT_EQ(target, "d/f");
}

TEST_F(VolumeTest, CreateUpdatesParentTimes) {
  now_ += 1000;
  MakeFile(kRootIno, "f");
  EXPECT_EQ(Stat(kRootIno).mtime_ns, now_);
  EXPECT_EQ(Stat(kRootIno).ctime_ns, now_);
}

TEST_F(VolumeTest, Relatime) {
  Ino f = MakeFile(kRootIno, "f", "abc");
  int64_t written_at = now_;
  now_ += 10;
  std::string s = ReadAll(f);
  EXPECT_EQ(Stat(f).atime_ns, now_);  // atime was not newer than mtime
  now_ += 10;
  s = ReadAll(f);
  EXPECT_EQ(Stat(f).atime_ns, written_at + 10);  // now newer: unchanged
  now_ += 25LL * 3600 * 1'000'000'000;
  s = ReadAll(f);
  EXPECT_EQ(Stat(f).atime_ns, now_);  // older than 24 h
  Reopen();
  EXPECT_EQ(Stat(f).atime_ns, now_);  // committed lazily
}

TEST_F(VolumeTest, UnlinkOpenFile) {
  Attr a;
  uint64_t fh;
  ASSERT_TRUE(vol_->Create(kRootIno, "f", 0644, O_RDWR, caller_, &a, &fh).ok());
  Put(fh, 0, std::string(10000, 'x'));
  ASSERT_TRUE(vol_->Unlink(kRootIno, "f").ok());
  Attr b;
  EXPECT_EQ(ErrOf(vol_->Lookup(kRootIno, "f", &b)), ENOENT);
  EXPECT_EQ(Stat(a.ino).nlink, 0u);
  Put(fh, 10000, "y");
  std::string got;
  ASSERT_TRUE(vol_->Read(fh, 9999, 10, &got).ok());
  EXPECT_EQ(got, "xy");
  ASSERT_TRUE(vol_->Release(fh).ok());
  EXPECT_EQ(ErrOf(vol_->GetAttr(a.ino, &b)), ENOENT);
}

TEST_F(VolumeTest, OrphanReclaimedAfterCrash) {
  Attr a;
  uint64_t fh;
  ASSERT_TRUE(vol_->Create(kRootIno, "f", 0644, O_RDWR, caller_, &a, &fh).ok());
  Put(fh, 0, std::string(10000, 'x'));
  ASSERT_TRUE(vol_->Flush(fh).ok());
  ASSERT_TRUE(vol_->Unlink(kRootIno, "f").ok());
  // Save the store's keys as a process that died now would leave them.
  std::vector<std::pair<std::string, std::string>> saved;
  for (const char* prefix : {"I", "C", "O"}) {
    std::unique_ptr<kv::Iterator> it = vol_->store()->NewIterator(kv::ReadOptions(), prefix);
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      saved.emplace_back(std::string(it->key()), std::string(it->value()));
    }
  }
  bool has_orphan = false;
  for (auto& [k, v] : saved) has_orphan |= k[0] == 'O';
  ASSERT_TRUE(has_orphan);
  ASSERT_TRUE(vol_->Close().ok());  // reclaims the file (its last handle goes)
  vol_.reset();
  {
    std::unique_ptr<kv::Store> store;
    ASSERT_TRUE(kv::OpenPageStore(Volume::StoreOptions(), dir_, &store).ok());
    kv::WriteBatch batch;
    for (auto& [k, v] : saved) batch.Put(k, v);
    ASSERT_TRUE(store->Write(kv::WriteOptions(), batch).ok());
  }
  Reopen();  // finds the orphan and reclaims it
  Attr b;
  EXPECT_EQ(ErrOf(vol_->GetAttr(a.ino, &b)), ENOENT);
  for (const char* prefix : {"O", "C"}) {
    std::unique_ptr<kv::Iterator> it = vol_->store()->NewIterator(kv::ReadOptions(), prefix);
    it->SeekToFirst();
    EXPECT_FALSE(it->Valid()) << prefix;
  }
  // The trash is off here: nothing is kept (history_test.cc covers orphans going to the
  // trash).
  std::unique_ptr<kv::Iterator> it = vol_->store()->NewIterator(kv::ReadOptions(), "T");
  it->SeekToFirst();
  EXPECT_FALSE(it->Valid());
}

TEST_F(VolumeTest, RenameBasics) {
  Ino d1 = MakeDir(kRootIno, "d1");
  Ino d2 = MakeDir(kRootIno, "d2");
  Ino f = MakeFile(d1, "f", "one");
  Ino g = MakeFile(d2, "g", "two");
  ASSERT_TRUE(vol_->Rename(d1, "f", d2, "g", 0).ok());  // replaces g
  Attr a;
  ASSERT_TRUE(vol_->Lookup(d2, "g", &a).ok());
  EXPECT_EQ(a.ino, f);
  EXPECT_EQ(ErrOf(vol_->Lookup(d1, "f", &a)), ENOENT);
  EXPECT_EQ(ErrOf(vol_->GetAttr(g, &a)), ENOENT);
  EXPECT_EQ(ErrOf(vol_->Rename(d1, "f", d2, "x", 0)), ENOENT);
  // A directory moves with its link counts.
  Ino sub = MakeDir(d1, "sub");
  EXPECT_EQ(Stat(d1).nlink, 3u);
  ASSERT_TRUE(vol_->Rename(d1, "sub", d2, "sub", 0).ok());
  EXPECT_EQ(Stat(d1).nlink, 2u);
  EXPECT_EQ(Stat(d2).nlink, 3u);
  ASSERT_TRUE(vol_->Lookup(sub, "..", &a).ok());
  EXPECT_EQ(a.ino, d2);
  // Into its own subtree.
  EXPECT_EQ(ErrOf(vol_->Rename(kRootIno, "d2", sub, "x", 0)), EINVAL);
  EXPECT_EQ(ErrOf(vol_->Rename(kRootIno, "d2", d2, "x", 0)), EINVAL);
  // Type mismatches and non-empty targets.
  MakeFile(kRootIno, "file");
  EXPECT_EQ(ErrOf(vol_->Rename(kRootIno, "file", kRootIno, "d1", 0)), EISDIR);
  EXPECT_EQ(ErrOf(vol_->Rename(kRootIno, "d1", kRootIno, "file", 0)), ENOTDIR);
  EXPECT_EQ(ErrOf(vol_->Rename(kRootIno, "d1", kRootIno, "d2", 0)), ENOTEMPTY);
  // Replacing an empty directory.
  ASSERT_TRUE(vol_->Rename(kRootIno, "d2", kRootIno, "d1", 0).ok());
  EXPECT_EQ(Stat(kRootIno).nlink, 3u);
  EXPECT_EQ(ErrOf(vol_->GetAttr(d1, &a)), ENOENT);
  EXPECT_EQ(ErrOf(vol_->Rename(kRootIno, "file", kRootIno, std::string(256, 'x'), 0)),
            ENAMETOOLONG);
}

TEST_F(VolumeTest, RenameNoReplaceAndExchange) {
  Ino a_ino = MakeFile(kRootIno, "a", "A");
  Ino d = MakeDir(kRootIno, "d");
  Ino b_ino = MakeFile(d, "b", "B");
  EXPECT_EQ(ErrOf(vol_->Rename(kRootIno, "a", d, "b", kRenameNoReplace)), EEXIST);
  EXPECT_EQ(ErrOf(vol_->Rename(kRootIno, "a", d, "c", kRenameExchange)), ENOENT);
  EXPECT_EQ(ErrOf(vol_->Rename(kRootIno, "a", d, "c", kRenameExchange | kRenameNoReplace)), EINVAL);
  ASSERT_TRUE(vol_->Rename(kRootIno, "a", d, "b", kRenameExchange).ok());
  Attr x;
  ASSERT_TRUE(vol_->Lookup(kRootIno, "a", &x).ok());
  EXPECT_EQ(x.ino, b_ino);
  ASSERT_TRUE(vol_->Lookup(d, "b", &x).ok());
  EXPECT_EQ(x.ino, a_ino);
  // Exchange a directory and a file across parents.
  Ino sub = MakeDir(d, "sub");
  ASSERT_TRUE(vol_->Rename(d, "sub", kRootIno, "a", kRenameExchange).ok());
  EXPECT_EQ(Stat(kRootIno).nlink, 4u);  // d and sub
  EXPECT_EQ(Stat(d).nlink, 2u);
  ASSERT_TRUE(vol_->Lookup(sub, "..", &x).ok());
  EXPECT_EQ(x.ino, kRootIno);
  // A directory cannot be exchanged with its own descendant.
  Ino deep = MakeDir(sub, "deep");
  (void)deep;
  EXPECT_EQ(ErrOf(vol_->Rename(kRootIno, "a", sub, "deep", kRenameExchange)), EINVAL);
  ASSERT_TRUE(vol_->Rename(kRootIno, "a", kRootIno, "a2", kRenameNoReplace).ok());
}

TEST_F(VolumeTest, RenameOverOpenFile) {
  MakeFile(kRootIno, "a", "new");
  Ino old = MakeFile(kRootIno, "b", "old");
  uint64_t fh;
  ASSERT_TRUE(vol_->Open(old, O_RDONLY, &fh).ok());
  ASSERT_TRUE(vol_->Rename(kRootIno, "a", kRootIno, "b", 0).ok());
  std::string got;
  ASSERT_TRUE(vol_->Read(fh, 0, 10, &got).ok());
  EXPECT_EQ(got, "old");
  ASSERT_TRUE(vol_->Release(fh).ok());
  Attr x;
  EXPECT_EQ(ErrOf(vol_->GetAttr(old, &x)), ENOENT);
}

TEST_F(VolumeTest, ReadDirCursorSurvivesChanges) {
  for (int i = 0; i < 50; ++i) MakeFile(kRootIno, "f" + std::to_string(100 + i));
  // Churn after the second call: remove an entry already listed and one not yet listed,
  // add one.
  std::vector<std::string> seen = ListInPieces(vol_.get(), kRootIno, 7, [&](int call) {
    if (call != 1) return;
    EXPECT_TRUE(vol_->Unlink(kRootIno, "f100").ok());
    EXPECT_TRUE(vol_->Unlink(kRootIno, "f149").ok());
    MakeFile(kRootIno, "f1200");
  });
  std::map<std::string, int> count;
  for (auto& n : seen) ++count[n];
  for (int i = 101; i < 149; ++i) EXPECT_EQ(count["f" + std::to_string(i)], 1) << i;
  EXPECT_EQ(count.count("f149"), 0u);
  EXPECT_EQ(count["."], 1);
  EXPECT_EQ(count[".."], 1);
  for (auto& [n, c] : count) EXPECT_EQ(c, 1) << n;
  const Ino file = MakeFile(kRootIno, "not-a-dir");
  EXPECT_EQ(ErrOf(vol_->ReadDir(file, 0, [](const DirEntry&) { return true; })), ENOTDIR);
}

// The kernel opens directories without telling the volume and resumes the listings it keeps
// at any offset, at any time: a name has the same offset in every listing, and an offset
// still resumes after the volume has dropped the cookies behind it (at the end of a listing,
// or when more directories are being listed than it keeps cookies for).
TEST_F(VolumeTest, ReadDirOffsetsResumeAfterTheListingEnded) {
  for (int i = 0; i < 40; ++i) MakeFile(kRootIno, "f" + std::to_string(i));
  const Ino many = MakeDir(kRootIno, "many");
  auto list = [&](Ino dir, uint64_t offset, size_t limit) {
    std::vector<std::pair<std::string, uint64_t>> got;
    EXPECT_TRUE(vol_->ReadDir(dir, offset,
                              [&](const DirEntry& e) {
                                if (got.size() == limit) return false;
                                got.emplace_back(e.name, e.next_offset);
                                return true;
                              })
                    .ok());
    return got;
  };
  auto whole = list(kRootIno, 0, 1000);
  ASSERT_EQ(whole.size(), 43u);
  EXPECT_TRUE(list(kRootIno, whole.back().second, 1000).empty());  // the end: cookies dropped
  EXPECT_EQ(list(kRootIno, 0, 1000), whole);
  for (size_t i = 0; i < whole.size(); ++i) {
    auto rest = list(kRootIno, whole[i].second, 1000);
    EXPECT_EQ(rest, decltype(rest)(whole.begin() + i + 1, whole.end())) << whole[i].first;
  }

  // A listing halfway while 300 others stop halfway too, more than the volume keeps.
  auto head = list(kRootIno, 0, 10);
  for (int d = 0; d < 300; ++d) {
    const Ino dir = MakeDir(many, "d" + std::to_string(d));
    MakeFile(dir, "x");
    ASSERT_EQ(list(dir, 0, 3).size(), 3u);  // ".", "..", "x": not at its end yet
  }
  auto rest = list(kRootIno, head.back().second, 1000);
  head.insert(head.end(), rest.begin(), rest.end());
  EXPECT_EQ(head, whole);
}

// A read given a destination (a FUSE ring's reply buffer) reads whole uncached chunks straight
// into it and must return the same bytes as one without: holes, a short last chunk, raw and
// compressed chunks, cached chunks and unflushed writes.
TEST_F(VolumeTest, ReadIntoDestinationMatchesRead) {
  const uint64_t cs = 4096;
  std::string model;
  for (int i = 0; model.size() < 5 * cs; ++i) model += "line " + std::to_string(i) + "\n";
  model.resize(5 * cs);
  std::mt19937_64 rng(3);
  for (size_t i = 0; i < 2 * cs; ++i) model.push_back(static_cast<char>(rng()));
  model.append(2 * cs, '\0');  // a hole: chunks 7 and 8 are never written
  std::string tail;
  for (size_t i = 0; i < cs + 1000; ++i) tail.push_back(static_cast<char>(rng()));
  Ino f = MakeFile(kRootIno, "f", model.substr(0, 7 * cs));
  uint64_t fh;
  ASSERT_TRUE(vol_->Open(f, O_RDWR, &fh).ok());
  Put(fh, 9 * cs, tail);
  model += tail;
  ASSERT_TRUE(vol_->Release(fh).ok());
  Reopen();  // nothing cached

  auto read = [&](uint64_t fh, uint64_t offset, size_t size, size_t* direct) {
    std::string destination(size, '#');
    ReadBuffer buffer{std::span<char>(destination)};
    EXPECT_TRUE(vol_->Read(fh, offset, size, &buffer).ok());
    *direct = 0;
    for (const ReadBuffer::Slice& slice : buffer.slices()) {
      if (slice.owner) continue;
      ++*direct;
      EXPECT_GE(slice.data, destination.data());
      EXPECT_LE(slice.data + slice.size, destination.data() + destination.size());
    }
    return buffer.ToString();
  };
  ASSERT_TRUE(vol_->Open(f, O_RDWR, &fh).ok());
  size_t direct = 0;
  EXPECT_EQ(read(fh, 0, model.size() + 5000, &direct), model);
  EXPECT_EQ(direct, 8u);  // chunks 0-6 and 9: not the holes, not the short last one
  const std::vector<std::pair<uint64_t, size_t>> ranges = {
      {0, cs},      {1, cs}, {cs - 1, 2 * cs + 2}, {3 * cs, 7 * cs}, {6 * cs + 5, 4 * cs},
      {10 * cs, cs}};
  for (int pass = 0; pass < 2; ++pass) {
    // The second pass reads through the chunk cache the first pass filled.
    for (const auto& [offset, size] : ranges) {
      EXPECT_EQ(read(fh, offset, size, &direct), model.substr(offset, size)) << offset;
    }
    ASSERT_TRUE(vol_->Read(fh, 0, model.size(), &tail).ok());
  }
  // Unflushed bytes in chunks 2 and 4 win over the store's.
  Put(fh, 2 * cs + 10, "dirty");
  model.replace(2 * cs + 10, 5, "dirty");
  Put(fh, 4 * cs, std::string(cs, 'd'));
  model.replace(4 * cs, cs, std::string(cs, 'd'));
  EXPECT_EQ(read(fh, 0, model.size(), &direct), model);
  ASSERT_TRUE(vol_->Release(fh).ok());
}

TEST_F(VolumeTest, Xattrs) {
  Ino f = MakeFile(kRootIno, "f");
  std::string v;
  EXPECT_EQ(ErrOf(vol_->GetXattr(f, "user.a", &v)), ENODATA);
  EXPECT_EQ(ErrOf(vol_->SetXattr(f, "user.a", "1", kXattrReplace)), ENODATA);
  ASSERT_TRUE(vol_->SetXattr(f, "user.a", "1", kXattrCreate).ok());
  EXPECT_EQ(ErrOf(vol_->SetXattr(f, "user.a", "2", kXattrCreate)), EEXIST);
  ASSERT_TRUE(vol_->SetXattr(f, "user.a", "2", kXattrReplace).ok());
  ASSERT_TRUE(vol_->SetXattr(f, "user.b", std::string(1000, 'b'), 0).ok());
  EXPECT_EQ(ErrOf(vol_->SetXattr(f, std::string(256, 'n'), "x", 0)), ERANGE);
  EXPECT_EQ(ErrOf(vol_->SetXattr(f, "user.big", std::string(65537, 'x'), 0)), E2BIG);
  Reopen();
  ASSERT_TRUE(vol_->GetXattr(f, "user.a", &v).ok());
  EXPECT_EQ(v, "2");
  std::vector<std::string> names;
  ASSERT_TRUE(vol_->ListXattr(f, &names).ok());
  EXPECT_EQ(names, (std::vector<std::string>{"user.a", "user.b"}));
  ASSERT_TRUE(vol_->RemoveXattr(f, "user.a").ok());
  EXPECT_EQ(ErrOf(vol_->RemoveXattr(f, "user.a")), ENODATA);
  ASSERT_TRUE(vol_->ListXattr(f, &names).ok());
  EXPECT_EQ(names, (std::vector<std::string>{"user.b"}));
  ASSERT_TRUE(vol_->Unlink(kRootIno, "f").ok());
  // The xattr keys went with the file.
  std::unique_ptr<kv::Iterator> it = vol_->store()->NewIterator(kv::ReadOptions(), "X");
  it->SeekToFirst();
  EXPECT_FALSE(it->Valid());
}

TEST_F(VolumeTest, FallocateAndPunchHole) {
  Attr a;
  uint64_t fh;
  ASSERT_TRUE(vol_->Create(kRootIno, "f", 0644, O_RDWR, caller_, &a, &fh).ok());
  ASSERT_TRUE(vol_->Fallocate(fh, kFallocKeepSize, 0, 100000).ok());
  EXPECT_EQ(Stat(a.ino).size, 0u);
  ASSERT_TRUE(vol_->Fallocate(fh, 0, 0, 3000).ok());
  EXPECT_EQ(Stat(a.ino).size, 3000u);
  std::string data(20000, 'w');
  Put(fh, 0, data);
  ASSERT_TRUE(vol_->Fallocate(fh, kFallocKeepSize | kFallocPunchHole, 1000, 10000).ok());
  std::string got;
  ASSERT_TRUE(vol_->Read(fh, 0, 30000, &got).ok());
  ASSERT_EQ(got.size(), 20000u);
  EXPECT_EQ(got.substr(0, 1000), std::string(1000, 'w'));
  EXPECT_EQ(got.substr(1000, 10000), std::string(10000, '\0'));
  EXPECT_EQ(got.substr(11000), std::string(9000, 'w'));
  EXPECT_EQ(ErrOf(vol_->Fallocate(fh, kFallocPunchHole, 0, 10)), EOPNOTSUPP);
  EXPECT_EQ(ErrOf(vol_->Fallocate(fh, 0, kMaxFileSize, 10)), EFBIG);
  ASSERT_TRUE(vol_->Release(fh).ok());
  Reopen();
  EXPECT_EQ(ReadAll(a.ino), got);
}

TEST_F(VolumeTest, VersionsAreSealed) {
  Attr a;
  uint64_t fh;
  ASSERT_TRUE(vol_->Create(kRootIno, "f", 0644, O_RDWR, caller_, &a, &fh).ok());
  Put(fh, 0, "v1");
  ASSERT_TRUE(vol_->Fsync(fh, false).ok());
  EXPECT_EQ(Stat(a.ino).version, 1u);
  Put(fh, 0, "v2");
  ASSERT_TRUE(vol_->Fsync(fh, false).ok());
  EXPECT_EQ(Stat(a.ino).version, 1u);  // rapid re-seal collapses
  now_ += 10'000'000'000;
  Put(fh, 0, "v3");
  ASSERT_TRUE(vol_->Release(fh).ok());
  EXPECT_EQ(Stat(a.ino).version, 2u);
  // A handle that only reads seals nothing.
  std::string s = ReadAll(a.ino);
  EXPECT_EQ(Stat(a.ino).version, 2u);
  // Version 1 is readable as of its sealing sequence: it holds "v2".
  std::string vkey = std::string("V") + std::string(7, '\0') + static_cast<char>(a.ino) +
                     std::string(7, '\0') + '\1';
  std::vector<kv::VersionInfo> versions;
  ASSERT_TRUE(vol_->store()->Versions(vkey, &versions).ok());
  ASSERT_FALSE(versions.empty());
  kv::ReadOptions at;
  at.sequence = versions[0].sequence;
  std::string inode;
  ASSERT_TRUE(
      vol_->store()
          ->Get(at, std::string("I") + std::string(7, '\0') + static_cast<char>(a.ino), &inode)
          .ok());
  EXPECT_NE(inode.find("v2"), std::string::npos);
}

TEST_F(VolumeTest, Statfs) {
  FsStats st;
  ASSERT_TRUE(vol_->Statfs(&st).ok());
  EXPECT_EQ(st.name_max, 255u);
  EXPECT_GT(st.block_size, 0u);
  EXPECT_GE(st.blocks, st.blocks_free);
}

TEST_F(VolumeTest, InodeNumbersSurviveReopen) {
  Ino a = MakeFile(kRootIno, "a");
  Reopen();
  Ino b = MakeFile(kRootIno, "b");
  EXPECT_NE(a, b);
  Reopen();
  Ino c = MakeFile(kRootIno, "c");
  EXPECT_NE(b, c);
  EXPECT_NE(a, c);
}

TEST_F(VolumeTest, ClosedVolumeRefuses) {
  ASSERT_TRUE(vol_->Close().ok());
  Attr a;
  EXPECT_EQ(ErrOf(vol_->GetAttr(kRootIno, &a)), EIO);
}

}  // namespace
}  // namespace fs

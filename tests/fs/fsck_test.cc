// Unit tests of fs::CheckVolume: a clean volume checks clean; each kind of damage to the
// file system's keys is reported with the affected path, repaired, and the repaired store
// checks clean, opens as a volume and still holds every intact file.
#include "fs/fsck.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <functional>
#include <memory>
#include <random>
#include <string>

#include "fs/inode.h"
#include "fs/keys.h"
#include "fs/records.h"
#include "fs/volume.h"

namespace fs {
namespace {

constexpr int64_t kSecond = 1'000'000'000;

class FsckTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/kvfs-fsck-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    options_.chunk_size = 4096;
    options_.clock = [this] { return now_ += kSecond; };
    ASSERT_TRUE(Volume::OpenAt(dir_, options_, &vol_).ok());
    BuildTree();
    ASSERT_TRUE(vol_->Close().ok());
    vol_.reset();
  }
  void TearDown() override {
    store_.reset();
    vol_.reset();
    ASSERT_TRUE(kv::DestroyPageStore(dir_).ok());
    rmdir(dir_.c_str());
  }

  // /a/f1 (chunked, also linked as /h), /a/b/small (inline), /sym, /v (three versions),
  // and a file in the trash.
  void BuildTree() {
    Attr a;
    ASSERT_TRUE(vol_->Mkdir(kRootIno, "a", 0755, caller_, &a).ok());
    a_ = a.ino;
    ASSERT_TRUE(vol_->Mkdir(a_, "b", 0755, caller_, &a).ok());
    b_ = a.ino;
    std::mt19937_64 rng(7);
    big_.resize(20000);
    for (char& c : big_) c = static_cast<char>(rng());
    f1_ = Save(a_, "f1", big_);
    ASSERT_TRUE(vol_->Link(f1_, kRootIno, "h", &a).ok());
    small_ino_ = Save(b_, "small", "small file");
    ASSERT_TRUE(vol_->Symlink(kRootIno, "sym", "a/f1", caller_, &a).ok());
    for (int i = 1; i <= 3; ++i) v_ = Save(kRootIno, "v", "version " + std::to_string(i));
    Save(kRootIno, "gone", "deleted");
    ASSERT_TRUE(vol_->Unlink(kRootIno, "gone").ok());
  }
  Ino Save(Ino parent, const std::string& name, const std::string& data) {
    now_ += 10 * kSecond;
    Attr a;
    uint64_t fh = 0;
    if (vol_->Lookup(parent, name, &a).ok()) {
      EXPECT_TRUE(vol_->Open(a.ino, O_RDWR | O_TRUNC, &fh).ok());
    } else {
      EXPECT_TRUE(vol_->Create(parent, name, 0644, O_RDWR, caller_, &a, &fh).ok());
    }
    size_t written = 0;
    EXPECT_TRUE(vol_->Write(fh, 0, data, &written).ok());
    EXPECT_TRUE(vol_->Release(fh).ok());
    return a.ino;
  }
  std::string ReadAll(Ino ino) {
    uint64_t fh = 0;
    std::string data;
    Errno err = vol_->Open(ino, O_RDONLY, &fh);
    EXPECT_TRUE(err.ok()) << err.ToString();
    if (!err.ok()) return data;
    EXPECT_TRUE(vol_->Read(fh, 0, 1 << 24, &data).ok());
    EXPECT_TRUE(vol_->Release(fh).ok());
    return data;
  }

  kv::Store* Store() {
    if (!store_) {
      kv::Options o = Volume::StoreOptions();
      o.create_if_missing = false;
      EXPECT_TRUE(kv::OpenPageStore(o, dir_, &store_).ok());
    }
    return store_.get();
  }
  void Put(const std::string& key, const std::string& value) {
    ASSERT_TRUE(Store()->Put(kv::WriteOptions(), key, value).ok());
  }
  void Delete(const std::string& key) {
    ASSERT_TRUE(Store()->Delete(kv::WriteOptions(), key).ok());
  }
  Inode GetInode(Ino ino) {
    std::string value;
    Inode inode;
    EXPECT_TRUE(Store()->Get(kv::ReadOptions(), keys::Inode(ino), &value).ok());
    EXPECT_TRUE(DecodeInode(value, &inode));
    return inode;
  }
  FsckReport Check(bool repair) {
    FsckOptions options;
    options.repair = repair;
    FsckReport report;
    kv::Status s = CheckVolume(Store(), options, &report);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return report;
  }
  static std::string Describe(const FsckReport& r) {
    std::string out;
    for (const FsckProblem& p : r.problems) out += p.path + ": " + p.message + "\n";
    return out;
  }

  // Checks that exactly the damage made by `damage` is found (one problem whose path and
  // message contain the given strings), repairs it, checks clean again, and opens the volume.
  void ExpectFoundAndRepaired(const std::string& path, const std::string& message) {
    FsckReport found = Check(false);
    ASSERT_FALSE(found.problems.empty()) << "damage not found";
    bool matched = false;
    for (const FsckProblem& p : found.problems) {
      if (p.path.find(path) != std::string::npos && p.message.find(message) != std::string::npos) {
        matched = true;
      }
    }
    EXPECT_TRUE(matched) << "wanted '" << path << ": " << message << "', got\n" << Describe(found);
    FsckReport repaired = Check(true);
    EXPECT_EQ(repaired.problems.size(), found.problems.size()) << Describe(repaired);
    EXPECT_EQ(repaired.repaired, repaired.problems.size()) << Describe(repaired);
    FsckReport again = Check(false);
    EXPECT_TRUE(again.problems.empty()) << Describe(again);
    store_.reset();
    ASSERT_TRUE(Volume::OpenAt(dir_, options_, &vol_).ok());
  }

  std::string dir_;
  VolumeOptions options_;
  int64_t now_ = 1'700'000'000 * kSecond;
  Caller caller_;
  std::unique_ptr<Volume> vol_;
  std::unique_ptr<kv::Store> store_;
  std::string big_;
  Ino a_ = 0, b_ = 0, f1_ = 0, small_ino_ = 0, v_ = 0;
};

TEST_F(FsckTest, CleanVolumeChecksClean) {
  FsckReport r = Check(false);
  EXPECT_TRUE(r.problems.empty()) << Describe(r);
  EXPECT_EQ(r.directories, 3u);  // /, a, b
  EXPECT_EQ(r.files, 4u);        // f1, small, v, gone (trashed)
  EXPECT_EQ(r.symlinks, 1u);
  EXPECT_EQ(r.versions, 6u);  // f1, small, v x3, and gone's (kept in the trash)
  EXPECT_EQ(r.trash_entries, 1u);
  EXPECT_EQ(r.PathOf(small_ino_), "/a/b/small");
  EXPECT_EQ(r.DescribeKey(keys::Chunk(f1_, 2)).find(" (data chunk 2)") != std::string::npos, true);
}

// History across editor saves (archived inodes reached by H links), a trashed tree, a
// snapshot and a compaction are all healthy states.
TEST_F(FsckTest, HistoryTrashAndSnapshotsCheckClean) {
  ASSERT_TRUE(Volume::OpenAt(dir_, options_, &vol_).ok());
  for (int i = 0; i < 3; ++i) {
    Save(kRootIno, ".v.swp", "saved " + std::to_string(i));
    ASSERT_TRUE(vol_->Rename(kRootIno, ".v.swp", kRootIno, "v", 0).ok());
  }
  ASSERT_TRUE(vol_->CreateSnapshot("snap").ok());
  ASSERT_TRUE(vol_->Unlink(b_, "small").ok());
  ASSERT_TRUE(vol_->Rmdir(a_, "b").ok());
  ASSERT_TRUE(vol_->Compact().ok());
  ASSERT_TRUE(vol_->Close().ok());
  vol_.reset();
  FsckReport r = Check(false);
  EXPECT_TRUE(r.problems.empty()) << Describe(r);
  EXPECT_EQ(r.snapshots, 1u);
  EXPECT_EQ(r.trash_entries, 2u);  // gone, and b with small inside
}

TEST_F(FsckTest, DanglingEntryIsRemoved) {
  Put(keys::Dentry(a_, "ghost"), EncodeDentry({987654, S_IFREG}));
  ExpectFoundAndRepaired("/a/ghost", "names an inode that does not exist");
  Attr attr;
  EXPECT_EQ(vol_->Lookup(a_, "ghost", &attr).value(), ENOENT);
  EXPECT_EQ(ReadAll(f1_), big_);
}

TEST_F(FsckTest, WrongLinkCountIsFixed) {
  Inode f1 = GetInode(f1_);
  f1.nlink = 5;
  Put(keys::Inode(f1_), EncodeInode(f1));
  ExpectFoundAndRepaired("/", "link count 5, expected 2");
  Attr attr;
  ASSERT_TRUE(vol_->GetAttr(f1_, &attr).ok());
  EXPECT_EQ(attr.nlink, 2u);
}

TEST_F(FsckTest, DirectoryLinkCountIsFixed) {
  Inode a = GetInode(a_);
  a.nlink = 7;
  Put(keys::Inode(a_), EncodeInode(a));
  ExpectFoundAndRepaired("/a", "link count 7, expected 3");
}

TEST_F(FsckTest, OrphanInodeGoesToLostFound) {
  Delete(keys::Dentry(a_, "f1"));
  Delete(keys::Dentry(kRootIno, "h"));
  ExpectFoundAndRepaired("<inode " + std::to_string(f1_) + ">", "orphan inode");
  Attr lf, moved;
  ASSERT_TRUE(vol_->Lookup(kRootIno, "lost+found", &lf).ok());
  ASSERT_TRUE(vol_->Lookup(lf.ino, "#" + std::to_string(f1_), &moved).ok());
  EXPECT_EQ(moved.ino, f1_);
  EXPECT_EQ(moved.nlink, 1u);
  EXPECT_EQ(ReadAll(f1_), big_);
  // The new directory's inode number is past every number in use, and new files too.
  EXPECT_GT(lf.ino, v_);
  Attr fresh;
  uint64_t fh;
  ASSERT_TRUE(vol_->Create(kRootIno, "new", 0644, O_RDWR, caller_, &fresh, &fh).ok());
  EXPECT_NE(fresh.ino, lf.ino);
  ASSERT_TRUE(vol_->Release(fh).ok());
}

TEST_F(FsckTest, OrphanDirectoryTreeGoesToLostFound) {
  Delete(keys::Dentry(a_, "b"));
  ExpectFoundAndRepaired("<inode " + std::to_string(b_) + ">", "orphan directory");
  Attr lf, moved, small;
  ASSERT_TRUE(vol_->Lookup(kRootIno, "lost+found", &lf).ok());
  ASSERT_TRUE(vol_->Lookup(lf.ino, "#" + std::to_string(b_), &moved).ok());
  ASSERT_TRUE(vol_->Lookup(moved.ino, "small", &small).ok());
  EXPECT_EQ(ReadAll(small.ino), "small file");
  EXPECT_EQ(lf.nlink, 3u);
}

TEST_F(FsckTest, DirectoryCycleIsCut) {
  // b loses its name in a and gets one inside itself: unreachable, in a cycle.
  Delete(keys::Dentry(a_, "b"));
  Put(keys::Dentry(b_, "loop"), EncodeDentry({b_, S_IFDIR}));
  ExpectFoundAndRepaired("", "cycle");
  Attr lf, moved;
  ASSERT_TRUE(vol_->Lookup(kRootIno, "lost+found", &lf).ok());
  ASSERT_TRUE(vol_->Lookup(lf.ino, "#" + std::to_string(b_), &moved).ok());
}

TEST_F(FsckTest, SecondDirectoryNameIsRemoved) {
  Put(keys::Dentry(kRootIno, "a-again"), EncodeDentry({a_, S_IFDIR}));
  ExpectFoundAndRepaired("/a", "second name");
  Attr attr;
  EXPECT_EQ(vol_->Lookup(kRootIno, "a-again", &attr).value(), ENOENT);
  ASSERT_TRUE(vol_->Lookup(kRootIno, "a", &attr).ok());
}

TEST_F(FsckTest, OrphanChunkAndXattrAreRemoved) {
  Put(keys::Chunk(55555, 3), std::string(100, 'x'));
  Put(keys::Xattr(55555, "user.x"), "y");
  ExpectFoundAndRepaired("<inode 55555>", "orphan data chunk");
  std::string value;
  EXPECT_TRUE(vol_->store()->Get(kv::ReadOptions(), keys::Chunk(55555, 3), &value).IsNotFound());
}

TEST_F(FsckTest, ChunksPastTheSizeAreDropped) {
  Put(keys::Chunk(f1_, 100), std::string(4096, 'z'));
  // The last chunk (20000 bytes = 4 full chunks + 3616) made too long.
  Put(keys::Chunk(f1_, 4), std::string(4096, 'q'));
  ExpectFoundAndRepaired("/", "past the file size");
  std::string data = ReadAll(f1_);
  ASSERT_EQ(data.size(), big_.size());
  EXPECT_EQ(data.substr(0, 16384), big_.substr(0, 16384));
  EXPECT_EQ(data.substr(16384), std::string(3616, 'q'));
}

TEST_F(FsckTest, BrokenHistoryLinkIsRemoved) {
  Put(keys::History(v_), EncodeHistoryLink({424242, 0}));
  ExpectFoundAndRepaired("/v", "history link points to a file without versions");
  std::vector<FileVersion> versions;
  ASSERT_TRUE(vol_->ListVersions(v_, &versions).ok());
  EXPECT_EQ(versions.size(), 3u);
}

// Editor saves chain inodes by H links; one inode of the chain losing its versions must
// not cost the versions before it.
TEST_F(FsckTest, HistoryChainIsRelinkedPastALostFile) {
  ASSERT_TRUE(Volume::OpenAt(dir_, options_, &vol_).ok());
  for (int i = 0; i < 4; ++i) {
    Save(kRootIno, ".w.swp", "save " + std::to_string(i));
    ASSERT_TRUE(vol_->Rename(kRootIno, ".w.swp", kRootIno, "w", 0).ok());
  }
  Attr w;
  ASSERT_TRUE(vol_->Lookup(kRootIno, "w", &w).ok());
  std::vector<FileVersion> before;
  ASSERT_TRUE(vol_->ListVersions(w.ino, &before).ok());
  ASSERT_EQ(before.size(), 4u);
  ASSERT_TRUE(vol_->Close().ok());
  vol_.reset();
  // The second newest file of the chain loses its version record.
  const FileVersion& lost = before[2];
  Delete(keys::Version(lost.data_ino, lost.local));
  ExpectFoundAndRepaired("/w", "relinked");
  std::vector<FileVersion> after;
  ASSERT_TRUE(vol_->ListVersions(w.ino, &after).ok());
  ASSERT_EQ(after.size(), 3u);
  for (int i : {0, 1}) {
    std::string data;
    ASSERT_TRUE(vol_->ReadVersion(w.ino, after[i].number, 0, 100, &data).ok());
    EXPECT_EQ(data, "save " + std::to_string(i));
  }
}

TEST_F(FsckTest, VersionBeyondTheFileIsRemoved) {
  Put(keys::Version(v_, 9), EncodeVersion({now_, 3}));
  ExpectFoundAndRepaired("/v", "broken version history");
  std::vector<FileVersion> versions;
  ASSERT_TRUE(vol_->ListVersions(v_, &versions).ok());
  ASSERT_EQ(versions.size(), 3u);
  std::string data;
  ASSERT_TRUE(vol_->ReadVersion(v_, 2, 0, 100, &data).ok());
  EXPECT_EQ(data, "version 2");
}

TEST_F(FsckTest, VersionsOfNoFileAreRemoved) {
  Put(keys::Version(31337, 1), EncodeVersion({now_, 3}));
  ExpectFoundAndRepaired("<inode 31337>", "no history reaches");
}

TEST_F(FsckTest, DanglingTrashRecordIsRemoved) {
  PlaceRecord place;
  place.parent = kRootIno;
  place.ino = 4444;
  place.name = "lost";
  place.path = "lost";
  place.time_ns = now_;
  Put(keys::Trash(now_, 4444), EncodePlace(place));
  ExpectFoundAndRepaired("<inode 4444>", "trash record names an inode that does not exist");
  std::vector<TrashEntry> trash;
  ASSERT_TRUE(vol_->ListTrash(&trash).ok());
  EXPECT_EQ(trash.size(), 1u);  // the real one
}

TEST_F(FsckTest, EntryInTrashedInodeOrWithWrongTypeIsFixed) {
  Put(keys::Dentry(kRootIno, "sym2"), EncodeDentry({f1_, S_IFLNK}));
  ExpectFoundAndRepaired("/sym2", "file type");
  Attr attr;
  ASSERT_TRUE(vol_->Lookup(kRootIno, "sym2", &attr).ok());
  EXPECT_TRUE(S_ISREG(attr.mode));
  EXPECT_EQ(attr.nlink, 3u);
}

TEST_F(FsckTest, InodeLimitBehindInodesIsRaised) {
  std::string value;
  ASSERT_TRUE(Store()->Get(kv::ReadOptions(), keys::Super(), &value).ok());
  Superblock super;
  ASSERT_TRUE(DecodeSuperblock(value, &super));
  super.ino_limit = 2;
  Put(keys::Super(), EncodeSuperblock(super));
  ExpectFoundAndRepaired("/", "next inode number 2 is already in use");
}

TEST_F(FsckTest, UndecodableInodeIsDroppedWithItsEntries) {
  Put(keys::Inode(small_ino_), "garbage");
  ExpectFoundAndRepaired("", "does not decode");
  Attr attr;
  EXPECT_EQ(vol_->Lookup(b_, "small", &attr).value(), ENOENT);
  EXPECT_EQ(ReadAll(f1_), big_);
}

}  // namespace
}  // namespace fs

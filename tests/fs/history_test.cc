// Unit tests of file history, trash and snapshots at the fs::Volume level: the programmatic
// API (ListVersions, ReadVersion, ListTrash, RestoreTrash, snapshots, Compact) and the same
// things through the .kvfs views (Lookup, ReadDir, Open, Read on view inode numbers).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "fs/volume.h"
#include "tests/fs/listing.h"
#include "tests/fs/volume_fixture.h"

namespace fs {
namespace {

constexpr int64_t kSecond = 1'000'000'000;

class HistoryTest : public VolumeFixture {
 protected:
  // Writes `data` as the whole content of `name` (created if needed) through one handle,
  // then closes it: one version. The clock moves past the re-seal window first.
  Ino Save(Ino parent, const std::string& name, const std::string& data) {
    now_ += 10 * kSecond;
    Attr a;
    uint64_t fh = 0;
    Errno err = vol_->Lookup(parent, name, &a);
    if (err.ok()) {
      EXPECT_TRUE(vol_->Open(a.ino, O_RDWR | O_TRUNC, &fh).ok());
    } else {
      EXPECT_TRUE(vol_->Create(parent, name, 0644, O_RDWR, caller_, &a, &fh).ok());
    }
    Write(fh, 0, data);
    EXPECT_TRUE(vol_->Flush(fh).ok());
    EXPECT_TRUE(vol_->Release(fh).ok());
    return a.ino;
  }
  // Overwrites part of a file through one handle: one version.
  void Patch(Ino ino, uint64_t offset, const std::string& data) {
    now_ += 10 * kSecond;
    uint64_t fh = 0;
    ASSERT_TRUE(vol_->Open(ino, O_RDWR, &fh).ok());
    Write(fh, offset, data);
    ASSERT_TRUE(vol_->Release(fh).ok());
  }
  void Write(uint64_t fh, uint64_t offset, const std::string& data) {
    size_t written = 0;
    Errno err = vol_->Write(fh, offset, data, &written);
    ASSERT_TRUE(err.ok()) << err.ToString();
    ASSERT_EQ(written, data.size());
  }
  std::string ReadAll(Ino ino) {
    uint64_t fh = 0;
    Errno err = vol_->Open(ino, O_RDONLY, &fh);
    EXPECT_TRUE(err.ok()) << err.ToString();
    std::string data;
    EXPECT_TRUE(vol_->Read(fh, 0, 1 << 24, &data).ok());
    EXPECT_TRUE(vol_->Release(fh).ok());
    return data;
  }
  std::vector<FileVersion> Versions(Ino ino) {
    std::vector<FileVersion> v;
    Errno err = vol_->ListVersions(ino, &v);
    EXPECT_TRUE(err.ok()) << err.ToString();
    return v;
  }
  std::string ReadVersion(Ino ino, uint64_t number) {
    std::string data;
    Errno err = vol_->ReadVersion(ino, number, 0, 1 << 24, &data);
    EXPECT_TRUE(err.ok()) << err.ToString();
    return data;
  }
  // The names in directory `dir` (without "." and ".."), with their inode numbers.
  std::map<std::string, Ino> List(Ino dir) {
    std::map<std::string, Ino> out;
    Errno err = vol_->ReadDir(dir, 0, [&](const DirEntry& e) {
      if (e.name != "." && e.name != "..") out.emplace(std::string(e.name), e.ino);
      return true;
    });
    EXPECT_TRUE(err.ok()) << err.ToString();
    return out;
  }
  Ino LookupPath(Ino dir, const std::vector<std::string>& path) {
    for (const std::string& name : path) {
      Attr a;
      Errno err = vol_->Lookup(dir, name, &a);
      EXPECT_TRUE(err.ok()) << name << ": " << err.ToString();
      if (!err.ok()) return 0;
      dir = a.ino;
    }
    return dir;
  }
  uint64_t StoreBytes() { return vol_->store()->Stats().Total().file_bytes; }
};

// Incompressible bytes (the store deflates values).
std::string Random(size_t size, uint32_t seed) {
  std::mt19937 gen(seed);
  std::string s(size, '\0');
  for (char& c : s) c = static_cast<char>(gen());
  return s;
}

std::string Pattern(size_t size, char seed) {
  std::string s(size, '\0');
  for (size_t i = 0; i < size; ++i) s[i] = static_cast<char>(seed + i * 7 + i / 4096);
  return s;
}

TEST_F(HistoryTest, EveryCloseIsAVersionReadableByteExact) {
  std::vector<std::string> contents = {"one", Pattern(10000, 'a'), "", Pattern(3000, 'b'),
                                       Pattern(20000, 'c')};
  Ino f = 0;
  for (const std::string& c : contents) f = Save(kRootIno, "f", c);
  auto check = [&] {
    std::vector<FileVersion> v = Versions(f);
    ASSERT_EQ(v.size(), contents.size());
    for (size_t i = 0; i < v.size(); ++i) {
      EXPECT_EQ(v[i].number, i + 1);
      EXPECT_EQ(v[i].size, contents[i].size());
      EXPECT_EQ(v[i].data_ino, f);
      if (i > 0) {
        EXPECT_GT(v[i].time_ns, v[i - 1].time_ns);
      }
      EXPECT_EQ(ReadVersion(f, v[i].number), contents[i]) << "version " << i + 1;
    }
  };
  check();
  Reopen();
  check();
  // Compaction with the volume's retention keeps every retained version, whether the
  // volume runs it or the store does on its own (background compaction uses the policy the
  // store was opened with, which the volume bound).
  ASSERT_TRUE(vol_->Compact().ok());
  check();
  ASSERT_TRUE(vol_->store()->Compact(kv::CompactOptions()).ok());
  check();
  std::string data;
  EXPECT_EQ(vol_->ReadVersion(f, 99, 0, 10, &data).value(), ENOENT);
}

TEST_F(HistoryTest, ChangedChunksOnlyAndPartialReads) {
  const std::string base = Pattern(64 * 4096, 'x');
  Ino f = Save(kRootIno, "f", base);
  const uint64_t before = StoreBytes();
  std::string expect = base;
  std::vector<std::string> states = {base};
  for (int i = 1; i <= 10; ++i) {
    std::string patch(100, static_cast<char>('A' + i));
    Patch(f, i * 20000, patch);
    expect.replace(i * 20000, patch.size(), patch);
    states.push_back(expect);
  }
  // Ten versions of a 256 KiB file cost about ten chunks, not ten copies.
  EXPECT_LT(StoreBytes() - before, 10u * 3 * 4096 + 64 * 1024);
  std::vector<FileVersion> v = Versions(f);
  ASSERT_EQ(v.size(), states.size());
  for (size_t i = 0; i < v.size(); ++i) {
    EXPECT_EQ(ReadVersion(f, v[i].number), states[i]);
    std::string part;
    ASSERT_TRUE(vol_->ReadVersion(f, v[i].number, 19990, 200, &part).ok());
    EXPECT_EQ(part, states[i].substr(19990, 200));
  }
}

TEST_F(HistoryTest, TruncateAndExtendAreVersions) {
  Ino f = Save(kRootIno, "f", Pattern(9000, 'q'));
  SetAttrRequest r;
  r.valid = SetAttrRequest::kSize;
  r.size = 5000;
  now_ += 10 * kSecond;
  ASSERT_TRUE(vol_->SetAttr(f, r, nullptr).ok());
  r.size = 12000;
  now_ += 10 * kSecond;
  ASSERT_TRUE(vol_->SetAttr(f, r, nullptr).ok());
  // O_TRUNC with nothing written: the handle's close seals the empty file once.
  uint64_t fh = 0;
  ASSERT_TRUE(vol_->Open(f, O_WRONLY | O_TRUNC, &fh).ok());
  ASSERT_TRUE(vol_->Release(fh).ok());
  std::vector<FileVersion> v = Versions(f);
  ASSERT_EQ(v.size(), 4u);
  EXPECT_EQ(ReadVersion(f, 1), Pattern(9000, 'q'));
  EXPECT_EQ(ReadVersion(f, 2), Pattern(9000, 'q').substr(0, 5000));
  EXPECT_EQ(ReadVersion(f, 3), Pattern(9000, 'q').substr(0, 5000) + std::string(7000, '\0'));
  EXPECT_EQ(ReadVersion(f, 4), "");
  // A chmod is no version.
  SetAttrRequest chmod;
  chmod.valid = SetAttrRequest::kMode;
  chmod.mode = 0600;
  ASSERT_TRUE(vol_->SetAttr(f, chmod, nullptr).ok());
  EXPECT_EQ(Versions(f).size(), 4u);
}

TEST_F(HistoryTest, RenameOverKeepsHistoryUnderThePath) {
  Ino f = Save(kRootIno, "notes", "first");
  Save(kRootIno, "notes", "second");
  // An editor's save: write a temporary file, rename it over the original.
  Ino tmp = Save(kRootIno, ".notes.swp", "third");
  ASSERT_TRUE(vol_->Rename(kRootIno, ".notes.swp", kRootIno, "notes", 0).ok());
  std::vector<FileVersion> v = Versions(tmp);
  ASSERT_EQ(v.size(), 3u);
  EXPECT_EQ(v[0].number, 1u);
  EXPECT_EQ(v[0].data_ino, f);
  EXPECT_EQ(v[2].number, 3u);
  EXPECT_EQ(v[2].data_ino, tmp);
  EXPECT_EQ(ReadVersion(tmp, 1), "first");
  EXPECT_EQ(ReadVersion(tmp, 2), "second");
  EXPECT_EQ(ReadVersion(tmp, 3), "third");
  // The replaced file is not in the trash (its versions live on), and its data went.
  std::vector<TrashEntry> trash;
  ASSERT_TRUE(vol_->ListTrash(&trash).ok());
  EXPECT_TRUE(trash.empty());
  Attr a;
  EXPECT_EQ(vol_->GetAttr(f, &a).value(), ENOENT);
  // The next save of the new file continues the numbering, also across another rename and
  // a compaction.
  Save(kRootIno, "notes", "fourth");
  Ino tmp2 = Save(kRootIno, "notes~", "fifth");
  ASSERT_TRUE(vol_->Rename(kRootIno, "notes~", kRootIno, "notes", 0).ok());
  Reopen();
  ASSERT_TRUE(vol_->Compact().ok());
  v = Versions(tmp2);
  ASSERT_EQ(v.size(), 5u);
  const char* want[] = {"first", "second", "third", "fourth", "fifth"};
  for (size_t i = 0; i < 5; ++i) {
    EXPECT_EQ(v[i].number, i + 1);
    EXPECT_EQ(ReadVersion(tmp2, i + 1), want[i]);
  }
}

TEST_F(HistoryTest, RetentionKeepsTheNewestAndCompactionReclaims) {
  // Chosen when the volume was created; changed on this open.
  options_.version_retention = 3;
  options_.update_retention = true;
  Reopen();
  Ino f = 0;
  std::vector<std::string> contents;
  for (int i = 0; i < 8; ++i) {
    contents.push_back(Random(40 * 4096, static_cast<uint32_t>(i)));
    f = Save(kRootIno, "f", contents.back());
  }
  std::vector<FileVersion> v = Versions(f);
  ASSERT_EQ(v.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(v[i].number, 6 + i);
    EXPECT_EQ(ReadVersion(f, v[i].number), contents[5 + i]);
  }
  const uint64_t before = StoreBytes();
  ASSERT_TRUE(vol_->Compact().ok());
  const uint64_t after = StoreBytes();
  // Five dropped versions of 160 KiB each are gone; three remain.
  EXPECT_LT(after + 4 * 160 * 1024, before) << before << " -> " << after;
  EXPECT_GT(after, 3u * 160 * 1024);
  v = Versions(f);
  ASSERT_EQ(v.size(), 3u);
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(ReadVersion(f, v[i].number), contents[5 + i]);

  // A minimum age keeps younger versions beyond the count; they go once old enough.
  options_.version_min_age_ns = 3600 * kSecond;
  Reopen();
  for (int i = 0; i < 4; ++i) Save(kRootIno, "f", "young" + std::to_string(i));
  EXPECT_EQ(Versions(f).size(), 3u + 4u);
  now_ += 2 * 3600 * kSecond;
  ASSERT_TRUE(vol_->Compact().ok());
  v = Versions(f);
  ASSERT_EQ(v.size(), 3u);
  EXPECT_EQ(ReadVersion(f, v[2].number), "young3");
}

// Editor saves make a new inode per save; the retention still holds right after each save,
// not only after a compaction (regression: the chain grew without bound until compaction).
TEST_F(HistoryTest, RetentionHoldsAcrossEditorSaves) {
  options_.version_retention = 3;
  options_.update_retention = true;
  Reopen();
  Ino head = 0;
  for (int i = 0; i < 8; ++i) {
    head = Save(kRootIno, ".f.swp", "save " + std::to_string(i));
    ASSERT_TRUE(vol_->Rename(kRootIno, ".f.swp", kRootIno, "f", 0).ok());
  }
  std::vector<FileVersion> v = Versions(head);
  ASSERT_EQ(v.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(v[i].number, 6 + i);
    EXPECT_EQ(ReadVersion(head, v[i].number), "save " + std::to_string(5 + i));
  }
}

TEST_F(HistoryTest, VersioningOff) {
  options_.version_retention = 0;
  options_.update_retention = true;
  Reopen();
  Ino f = Save(kRootIno, "f", "a");
  Save(kRootIno, "f", "b");
  EXPECT_TRUE(Versions(f).empty());
  Attr a;
  ASSERT_TRUE(vol_->GetAttr(f, &a).ok());
  EXPECT_EQ(a.version, 0u);
  EXPECT_EQ(ReadAll(f), "b");
}

TEST_F(HistoryTest, HistoryView) {
  Ino d = 0;
  {
    Attr a;
    ASSERT_TRUE(vol_->Mkdir(kRootIno, "d", 0750, caller_, &a).ok());
    d = a.ino;
  }
  Ino f = Save(d, "f", "v1");
  Save(d, "f", "v2");
  SetAttrRequest chmod;
  chmod.valid = SetAttrRequest::kMode;
  chmod.mode = 0640;
  ASSERT_TRUE(vol_->SetAttr(f, chmod, nullptr).ok());

  // .kvfs is reachable by name, listed nowhere, and not creatable.
  Attr meta;
  ASSERT_TRUE(vol_->Lookup(kRootIno, ".kvfs", &meta).ok());
  EXPECT_TRUE(IsMetaIno(meta.ino));
  EXPECT_TRUE(S_ISDIR(meta.mode));
  EXPECT_EQ(List(kRootIno).count(".kvfs"), 0u);
  EXPECT_EQ(vol_->Mkdir(kRootIno, ".kvfs", 0755, caller_, &meta).value(), EEXIST);
  auto top = List(meta.ino);
  EXPECT_EQ(top.size(), 4u);
  EXPECT_TRUE(top.count("history") && top.count("trash") && top.count("snapshots") &&
              top.count("stats"));

  Ino hist_dir = LookupPath(kRootIno, {".kvfs", "history", "d"});
  Attr a;
  ASSERT_TRUE(vol_->GetAttr(hist_dir, &a).ok());
  EXPECT_EQ(a.mode, static_cast<uint32_t>(S_IFDIR | 0550));  // the directory's, minus w
  Ino hist_f = LookupPath(hist_dir, {"f"});
  ASSERT_TRUE(vol_->GetAttr(hist_f, &a).ok());
  EXPECT_EQ(a.mode, static_cast<uint32_t>(S_IFDIR | 0550));  // r -> r-x of the file's mode
  auto versions = List(hist_f);
  ASSERT_EQ(versions.size(), 2u);
  std::vector<std::string> names;
  for (auto& [name, ino] : versions) names.push_back(name);
  EXPECT_EQ(names[0].substr(0, 5), "0001_");
  EXPECT_EQ(names[1].substr(0, 5), "0002_");
  Ino v1 = LookupPath(hist_f, {names[0]});
  EXPECT_EQ(v1, versions[names[0]]);
  ASSERT_TRUE(vol_->GetAttr(v1, &a).ok());
  EXPECT_TRUE(S_ISREG(a.mode));
  EXPECT_EQ(a.mode & 07777, 0444u);  // 0644 when sealed, minus write bits
  EXPECT_EQ(a.uid, caller_.uid);
  EXPECT_EQ(a.size, 2u);
  EXPECT_EQ(ReadAll(v1), "v1");
  EXPECT_EQ(ReadAll(versions[names[1]]), "v2");

  // Read-only everywhere.
  uint64_t fh = 0;
  EXPECT_EQ(vol_->Open(v1, O_RDWR, &fh).value(), EROFS);
  EXPECT_EQ(vol_->Create(hist_f, "x", 0644, O_RDWR, caller_, &a, &fh).value(), EROFS);
  EXPECT_EQ(vol_->Mkdir(meta.ino, "x", 0755, caller_, &a).value(), EROFS);
  EXPECT_EQ(vol_->Unlink(hist_f, names[0]).value(), EROFS);
  EXPECT_EQ(vol_->Rename(hist_f, names[0], kRootIno, "restored", 0).value(), EROFS);
  EXPECT_EQ(vol_->Rename(kRootIno, "d", meta.ino, "d", 0).value(), EROFS);
  SetAttrRequest trunc;
  trunc.valid = SetAttrRequest::kSize;
  EXPECT_EQ(vol_->SetAttr(v1, trunc, nullptr).value(), EROFS);
  EXPECT_EQ(vol_->SetXattr(v1, "user.x", "1", 0).value(), EROFS);
  EXPECT_EQ(vol_->Lookup(hist_f, "0001_garbage", &a).value(), ENOENT);

  // The stats file.
  Ino stats = LookupPath(meta.ino, {"stats"});
  EXPECT_EQ(stats, kMetaStatsIno);
  std::string text = ReadAll(stats);
  EXPECT_NE(text.find("versions_kept 2"), std::string::npos) << text;
  EXPECT_NE(text.find("compression_ratio"), std::string::npos);
  EXPECT_NE(text.find("cache_hit_rate"), std::string::npos);
}

// A view is listed whole from offset 0 and resumed by name like any directory: a listing
// read a few entries at a time, while a version is added, gives every version that existed
// throughout exactly once (POSIX leaves it open whether an entry added meanwhile shows), and
// one from the start shows the new one.
TEST_F(HistoryTest, HistoryViewListingResumesByName) {
  for (int i = 0; i < 6; ++i) Save(kRootIno, "f", "v" + std::to_string(i));
  const Ino view = LookupPath(kRootIno, {".kvfs", "history", "f"});
  // A seventh version after the second call.
  std::vector<std::string> seen = ListInPieces(vol_.get(), view, 2, [&](int call) {
    if (call == 1) Save(kRootIno, "f", "new");
  });
  std::map<std::string, int> count;
  for (const std::string& name : seen) ++count[name];
  EXPECT_EQ(count["."], 1);
  EXPECT_EQ(count[".."], 1);
  std::set<std::string> versions;
  for (const auto& [name, n] : count) {
    EXPECT_EQ(n, 1) << name;
    if (name != "." && name != "..") versions.insert(name.substr(0, 5));
  }
  for (int v = 1; v <= 6; ++v) EXPECT_EQ(versions.count("000" + std::to_string(v) + "_"), 1u) << v;
  auto now = List(view);
  ASSERT_EQ(now.size(), 7u);
  EXPECT_EQ(now.rbegin()->first.substr(0, 5), "0007_");
}

// Past version 9999 every name of the file gets five digits, so that `ls` (which sorts by
// name) still lists the versions oldest first.
TEST_F(HistoryTest, VersionNamesSortOldestFirstPastVersion9999) {
  Ino f = 0;
  for (int i = 1; i <= 10'002; ++i) f = Save(kRootIno, "f", "v" + std::to_string(i));
  ASSERT_EQ(Versions(f).back().number, 10'002u);
  const Ino view = LookupPath(kRootIno, {".kvfs", "history", "f"});
  std::vector<std::string> names;
  for (auto& [name, ino] : List(view)) names.push_back(name);  // in name order
  ASSERT_EQ(names.size(), Versions(f).size());
  ASSERT_GE(names.size(), 4u);
  EXPECT_EQ(names.back().substr(0, 6), "10002_");
  EXPECT_EQ(names[names.size() - 4].substr(0, 6), "09999_");
  for (size_t i = 0; i < names.size(); ++i) {
    Attr a;
    ASSERT_TRUE(vol_->Lookup(view, names[i], &a).ok()) << names[i];
    if (i + 1 == names.size()) {
      EXPECT_EQ(ReadAll(a.ino), "v10002");
    }
  }
  Attr a;
  EXPECT_EQ(vol_->Lookup(view, names[names.size() - 4].substr(1), &a).value(), ENOENT)
      << "only the listed name of a version resolves";
}

TEST_F(HistoryTest, VersionViewsShowTheXattrsOfTheirTime) {
  const Ino f = Save(kRootIno, "f", "one");
  ASSERT_TRUE(vol_->SetXattr(f, "user.tag", "first", 0).ok());
  Save(kRootIno, "f", "two");
  ASSERT_TRUE(vol_->SetXattr(f, "user.tag", "second", 0).ok());
  ASSERT_TRUE(vol_->SetXattr(f, "user.extra", "x", 0).ok());
  Save(kRootIno, "f", "three");
  ASSERT_TRUE(vol_->RemoveXattr(f, "user.tag").ok());
  const Ino history = LookupPath(kRootIno, {".kvfs", "history", "f"});
  auto check = [&] {
    std::vector<Ino> views;
    for (const auto& [name, ino] : List(history)) views.push_back(ino);
    ASSERT_EQ(views.size(), 3u);
    const char* tags[] = {nullptr, "first", "second"};
    const std::vector<std::vector<std::string>> names = {
        {}, {"user.tag"}, {"user.extra", "user.tag"}};
    for (size_t i = 0; i < views.size(); ++i) {
      std::string value;
      Errno err = vol_->GetXattr(views[i], "user.tag", &value);
      if (tags[i] == nullptr) {
        EXPECT_EQ(err.value(), ENODATA) << "version " << i + 1;
      } else {
        EXPECT_TRUE(err.ok()) << "version " << i + 1 << ": " << err.ToString();
        EXPECT_EQ(value, tags[i]) << "version " << i + 1;
      }
      std::vector<std::string> listed;
      ASSERT_TRUE(vol_->ListXattr(views[i], &listed).ok());
      EXPECT_EQ(listed, names[i]) << "version " << i + 1;
    }
    std::vector<std::string> none;
    ASSERT_TRUE(vol_->ListXattr(history, &none).ok());
    EXPECT_TRUE(none.empty());
  };
  check();
  // Compaction keeps the xattr versions the kept file versions show.
  ASSERT_TRUE(vol_->Compact().ok());
  check();
  Reopen();
  check();
}

TEST_F(HistoryTest, TrashFileRestore) {
  Ino d = 0;
  {
    Attr a;
    ASSERT_TRUE(vol_->Mkdir(kRootIno, "docs", 0755, caller_, &a).ok());
    d = a.ino;
  }
  Ino f = Save(d, "a.txt", Pattern(10000, 'z'));
  ASSERT_TRUE(vol_->SetXattr(f, "user.tag", "t", 0).ok());
  now_ += kSecond;
  ASSERT_TRUE(vol_->Unlink(d, "a.txt").ok());
  std::vector<TrashEntry> trash;
  ASSERT_TRUE(vol_->ListTrash(&trash).ok());
  ASSERT_EQ(trash.size(), 1u);
  EXPECT_EQ(trash[0].path, "docs/a.txt");
  EXPECT_EQ(trash[0].ino, f);
  EXPECT_EQ(trash[0].name.substr(24), "__docs__a.txt");
  EXPECT_EQ(trash[0].time_ns, now_);
  // Through the view: the real inode, readable, read-only.
  Ino trash_dir = LookupPath(kRootIno, {".kvfs", "trash"});
  auto listed = List(trash_dir);
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed.begin()->first, trash[0].name);
  EXPECT_EQ(listed.begin()->second, f);
  EXPECT_EQ(LookupPath(trash_dir, {trash[0].name}), f);
  EXPECT_EQ(ReadAll(f), Pattern(10000, 'z'));
  uint64_t fh = 0;
  EXPECT_EQ(vol_->Open(f, O_RDWR, &fh).value(), EROFS);
  EXPECT_EQ(vol_->SetXattr(f, "user.x", "1", 0).value(), EROFS);
  {
    // The kernel's writeback of the times of a file closed before its deletion is taken;
    // any other change is refused (regression: syncfs after `tar x` failed with EROFS).
    SetAttrRequest times;
    times.valid = SetAttrRequest::kMtime | SetAttrRequest::kCtime;
    times.mtime_ns = times.ctime_ns = now_ - 5 * kSecond;
    Attr after;
    ASSERT_TRUE(vol_->SetAttr(f, times, &after).ok());
    EXPECT_EQ(after.mtime_ns, now_ - 5 * kSecond);
    SetAttrRequest mode;
    mode.valid = SetAttrRequest::kMode;
    mode.mode = 0600;
    EXPECT_EQ(vol_->SetAttr(f, mode, &after).value(), EROFS);
  }
  Attr a;
  EXPECT_EQ(vol_->Create(trash_dir, "x", 0644, O_RDWR, caller_, &a, &fh).value(), EROFS);
  // The history stays with it.
  EXPECT_EQ(Versions(f).size(), 1u);
  Reopen();
  // mv out of the trash.
  ASSERT_TRUE(vol_->Rename(trash_dir, trash[0].name, kRootIno, "back.txt", 0).ok());
  ASSERT_TRUE(vol_->Lookup(kRootIno, "back.txt", &a).ok());
  EXPECT_EQ(a.ino, f);
  EXPECT_EQ(a.nlink, 1u);
  EXPECT_EQ(ReadAll(f), Pattern(10000, 'z'));
  std::string tag;
  ASSERT_TRUE(vol_->GetXattr(f, "user.tag", &tag).ok());
  EXPECT_EQ(tag, "t");
  ASSERT_TRUE(vol_->ListTrash(&trash).ok());
  EXPECT_TRUE(trash.empty());
  // Writable again.
  Save(kRootIno, "back.txt", "new");
  EXPECT_EQ(Versions(f).size(), 2u);
}

TEST_F(HistoryTest, TrashTreeRestoreAndPurge) {
  // rm -rf of a tree: children first, then the directories.
  Attr a;
  ASSERT_TRUE(vol_->Mkdir(kRootIno, "top", 0755, caller_, &a).ok());
  Ino top = a.ino;
  ASSERT_TRUE(vol_->Mkdir(top, "sub", 0700, caller_, &a).ok());
  Ino sub = a.ino;
  Save(top, "x", "xx");
  Save(sub, "y", "yy");
  ASSERT_TRUE(vol_->Symlink(top, "link", "x", caller_, &a).ok());
  // A file deleted from sub earlier, and another "y" deleted before the last one.
  Save(sub, "old", "old");
  ASSERT_TRUE(vol_->Unlink(sub, "old").ok());
  now_ += kSecond;
  ASSERT_TRUE(vol_->Unlink(sub, "y").ok());
  ASSERT_TRUE(vol_->Rmdir(top, "sub").ok());
  ASSERT_TRUE(vol_->Unlink(top, "x").ok());
  ASSERT_TRUE(vol_->Unlink(top, "link").ok());
  ASSERT_TRUE(vol_->Rmdir(kRootIno, "top").ok());
  std::vector<TrashEntry> trash;
  ASSERT_TRUE(vol_->ListTrash(&trash).ok());
  ASSERT_EQ(trash.size(), 1u);  // the whole tree is one entry
  EXPECT_EQ(trash[0].path, "top");
  EXPECT_TRUE(S_ISDIR(trash[0].mode));
  // Browsable as the tree it was.
  auto members = List(top);
  ASSERT_EQ(members.size(), 3u);
  EXPECT_TRUE(members.count("x") && members.count("link") && members.count("sub"));
  auto sub_members = List(sub);
  ASSERT_EQ(sub_members.size(), 2u);
  EXPECT_EQ(ReadAll(LookupPath(top, {"sub", "y"})), "yy");
  std::string target;
  ASSERT_TRUE(vol_->Readlink(LookupPath(top, {"link"}), &target).ok());
  EXPECT_EQ(target, "x");

  Reopen();
  // Everything restored but the top (which the caller named) is a side effect.
  std::set<Ino> side_effects;
  vol_->SetSideEffectObserver([&](Ino ino) { side_effects.insert(ino); });
  ASSERT_TRUE(vol_->RestoreTrash(trash[0].name, kRootIno, "again").ok());
  Ino again = LookupPath(kRootIno, {"again"});
  EXPECT_EQ(again, top);
  std::set<Ino> restored;
  for (const auto& [name, ino] : List(again)) restored.insert(ino);
  for (const auto& [name, ino] : List(sub)) restored.insert(ino);
  EXPECT_EQ(side_effects, restored);
  EXPECT_EQ(restored.size(), 3u + 2u);
  ASSERT_TRUE(vol_->GetAttr(again, &a).ok());
  EXPECT_EQ(a.nlink, 3u);  // ".", "again" and sub's ".."
  EXPECT_EQ(ReadAll(LookupPath(kRootIno, {"again", "x"})), "xx");
  EXPECT_EQ(ReadAll(LookupPath(kRootIno, {"again", "sub", "y"})), "yy");
  EXPECT_EQ(ReadAll(LookupPath(kRootIno, {"again", "sub", "old"})), "old");
  ASSERT_TRUE(vol_->GetAttr(LookupPath(kRootIno, {"again", "sub"}), &a).ok());
  EXPECT_EQ(a.mode & 07777, 0700u);
  EXPECT_EQ(a.nlink, 2u);
  ASSERT_TRUE(vol_->ListTrash(&trash).ok());
  EXPECT_TRUE(trash.empty());

  // Purge: deleted again, then expired.
  Ino y = LookupPath(kRootIno, {"again", "sub", "y"});
  ASSERT_TRUE(vol_->Unlink(LookupPath(kRootIno, {"again", "sub"}), "y").ok());
  now_ += 25 * 3600 * kSecond;
  ASSERT_TRUE(vol_->Compact().ok());
  ASSERT_TRUE(vol_->ListTrash(&trash).ok());
  EXPECT_TRUE(trash.empty());
  EXPECT_EQ(vol_->GetAttr(y, &a).value(), ENOENT);
  std::vector<FileVersion> v;
  EXPECT_EQ(vol_->ListVersions(y, &v).value(), ENOENT);
}

// Moving a trash entry onto a name that exists replaces it as rename(2) does, and the file
// replaced goes to the trash in its turn; RENAME_NOREPLACE and RestoreTrash (kvfsck
// undelete) refuse instead. The rename(2) type rules hold.
TEST_F(HistoryTest, RestoringOverAnExistingNameReplacesIt) {
  const Ino trash_dir = LookupPath(kRootIno, {".kvfs", "trash"});
  auto trash_names = [&] {
    std::vector<TrashEntry> entries;
    EXPECT_TRUE(vol_->ListTrash(&entries).ok());
    std::vector<std::string> names;
    for (const TrashEntry& e : entries) names.push_back(e.name);
    return names;
  };
  Save(kRootIno, "f", "old");
  ASSERT_TRUE(vol_->Unlink(kRootIno, "f").ok());
  const std::string old_entry = trash_names().at(0);
  now_ += kSecond;
  Ino live = Save(kRootIno, "f", "new");

  EXPECT_EQ(vol_->RestoreTrash(old_entry, kRootIno, "f").value(), EEXIST);
  EXPECT_EQ(vol_->Rename(trash_dir, old_entry, kRootIno, "f", kRenameNoReplace).value(), EEXIST);
  EXPECT_EQ(ReadAll(LookupPath(kRootIno, {"f"})), "new");

  ASSERT_TRUE(vol_->Rename(trash_dir, old_entry, kRootIno, "f", 0).ok());
  EXPECT_EQ(ReadAll(LookupPath(kRootIno, {"f"})), "old");
  std::vector<std::string> names = trash_names();
  ASSERT_EQ(names.size(), 1u);
  EXPECT_NE(names[0], old_entry);
  EXPECT_EQ(ReadAll(LookupPath(trash_dir, {names[0]})), "new");
  Attr a;
  ASSERT_TRUE(vol_->GetAttr(live, &a).ok());
  EXPECT_EQ(a.nlink, 1u);  // shown in the trash as linked once

  // A directory over a file, a file over a directory, a directory over a non-empty one.
  ASSERT_TRUE(vol_->Mkdir(kRootIno, "d", 0755, caller_, &a).ok());
  ASSERT_TRUE(vol_->Rmdir(kRootIno, "d").ok());
  ASSERT_TRUE(vol_->Mkdir(kRootIno, "full", 0755, caller_, &a).ok());
  Save(a.ino, "inside", "x");
  std::string dir_entry, file_entry = names[0];
  for (const std::string& n : trash_names()) {
    if (n != file_entry) dir_entry = n;
  }
  ASSERT_FALSE(dir_entry.empty());
  EXPECT_EQ(vol_->Rename(trash_dir, dir_entry, kRootIno, "f", 0).value(), ENOTDIR);
  EXPECT_EQ(vol_->Rename(trash_dir, file_entry, kRootIno, "full", 0).value(), EISDIR);
  EXPECT_EQ(vol_->Rename(trash_dir, dir_entry, kRootIno, "full", 0).value(), ENOTEMPTY);
  // Over an empty directory: that one goes to the trash, the root's link count stays.
  ASSERT_TRUE(vol_->Mkdir(kRootIno, "empty", 0755, caller_, &a).ok());
  Attr root_before;
  ASSERT_TRUE(vol_->GetAttr(kRootIno, &root_before).ok());
  ASSERT_TRUE(vol_->Rename(trash_dir, dir_entry, kRootIno, "empty", 0).ok());
  Attr root_after;
  ASSERT_TRUE(vol_->GetAttr(kRootIno, &root_after).ok());
  EXPECT_EQ(root_after.nlink, root_before.nlink);
  EXPECT_EQ(trash_names().size(), 2u);  // "new" and the replaced empty directory
  Reopen();
  EXPECT_EQ(ReadAll(LookupPath(kRootIno, {"f"})), "old");
  EXPECT_EQ(trash_names().size(), 2u);
}

TEST_F(HistoryTest, OpenUnlinkedFileGoesToTrashOnLastClose) {
  Ino f = Save(kRootIno, "f", "data");
  uint64_t fh = 0;
  ASSERT_TRUE(vol_->Open(f, O_RDONLY, &fh).ok());
  ASSERT_TRUE(vol_->Unlink(kRootIno, "f").ok());
  std::vector<TrashEntry> trash;
  ASSERT_TRUE(vol_->ListTrash(&trash).ok());
  EXPECT_TRUE(trash.empty());
  ASSERT_TRUE(vol_->Release(fh).ok());
  ASSERT_TRUE(vol_->ListTrash(&trash).ok());
  ASSERT_EQ(trash.size(), 1u);
  EXPECT_EQ(trash[0].path, "f");
  EXPECT_EQ(ReadAll(f), "data");
  // Reading it from the trash does not trash it again.
  ASSERT_TRUE(vol_->ListTrash(&trash).ok());
  EXPECT_EQ(trash.size(), 1u);
}

TEST_F(HistoryTest, SnapshotsReadTheTreeAsItWas) {
  Attr a;
  ASSERT_TRUE(vol_->Mkdir(kRootIno, "t", 0755, caller_, &a).ok());
  Ino t = a.ino;
  Ino f = Save(t, "f", Pattern(30000, 's'));
  ASSERT_TRUE(vol_->SetXattr(f, "user.k", "v", 0).ok());
  ASSERT_TRUE(vol_->Symlink(t, "l", "f", caller_, &a).ok());
  // Unflushed buffered data belongs to the snapshot too.
  uint64_t fh = 0;
  ASSERT_TRUE(vol_->Create(t, "open", 0600, O_RDWR, caller_, &a, &fh).ok());
  Write(fh, 0, "buffered");

  Ino snaps = LookupPath(kRootIno, {".kvfs", "snapshots"});
  ASSERT_TRUE(vol_->Mkdir(snaps, "before", 0755, caller_, &a).ok());
  Ino snap_root = a.ino;
  EXPECT_TRUE(IsMetaIno(snap_root));
  EXPECT_EQ(vol_->Mkdir(snaps, "before", 0755, caller_, &a).value(), EEXIST);
  ASSERT_TRUE(vol_->Release(fh).ok());
  std::vector<SnapshotInfo> infos;
  ASSERT_TRUE(vol_->ListSnapshots(&infos).ok());
  ASSERT_EQ(infos.size(), 1u);
  EXPECT_EQ(infos[0].name, "before");

  // Change everything, delete the tree, compact.
  Save(t, "f", "changed");
  Save(t, "new", "new");
  for (const char* n : {"f", "l", "open", "new"}) ASSERT_TRUE(vol_->Unlink(t, n).ok());
  ASSERT_TRUE(vol_->Rmdir(kRootIno, "t").ok());
  now_ += 25 * 3600 * kSecond;  // the trash expires too
  Reopen();
  ASSERT_TRUE(vol_->Compact().ok());

  snaps = LookupPath(kRootIno, {".kvfs", "snapshots"});
  auto roots = List(snaps);
  ASSERT_EQ(roots.size(), 1u);
  auto entries = List(LookupPath(snaps, {"before"}));
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_TRUE(entries.count("t"));
  Ino st = LookupPath(snaps, {"before", "t"});
  auto files = List(st);
  EXPECT_EQ(files.size(), 3u);
  Ino sf = LookupPath(st, {"f"});
  EXPECT_EQ(ReadAll(sf), Pattern(30000, 's'));
  EXPECT_EQ(ReadAll(LookupPath(st, {"open"})), "buffered");
  ASSERT_TRUE(vol_->GetAttr(sf, &a).ok());
  EXPECT_EQ(a.size, 30000u);
  EXPECT_EQ(a.mode, static_cast<uint32_t>(S_IFREG | 0644));
  std::string value;
  ASSERT_TRUE(vol_->GetXattr(sf, "user.k", &value).ok());
  EXPECT_EQ(value, "v");
  std::string target;
  ASSERT_TRUE(vol_->Readlink(LookupPath(st, {"l"}), &target).ok());
  EXPECT_EQ(target, "f");
  EXPECT_EQ(vol_->Open(sf, O_WRONLY, &fh).value(), EROFS);
  EXPECT_EQ(vol_->Unlink(st, "f").value(), EROFS);
  // The live tree has none of it.
  EXPECT_EQ(vol_->Lookup(kRootIno, "t", &a).value(), ENOENT);

  ASSERT_TRUE(vol_->Rmdir(snaps, "before").ok());
  EXPECT_TRUE(List(snaps).empty());
  EXPECT_EQ(vol_->Lookup(snaps, "before", &a).value(), ENOENT);
  EXPECT_EQ(vol_->Rmdir(snaps, "before").value(), ENOENT);
}

TEST_F(HistoryTest, UnboundPolicyKeepsEverything) {
  Ino f = Save(kRootIno, "f", "a");
  Save(kRootIno, "f", "b");
  ASSERT_TRUE(vol_->Close().ok());
  vol_.reset();
  {
    // A store opened without a volume (a tool): its compaction must not erase history.
    kv::Options options = Volume::StoreOptions();
    std::unique_ptr<kv::Store> store;
    ASSERT_TRUE(kv::OpenPageStore(options, dir_, &store).ok());
    ASSERT_TRUE(store->Compact(kv::CompactOptions()).ok());
  }
  Reopen();
  ASSERT_EQ(Versions(f).size(), 2u);
  EXPECT_EQ(ReadVersion(f, 1), "a");
  EXPECT_EQ(ReadVersion(f, 2), "b");
}

}  // namespace
}  // namespace fs

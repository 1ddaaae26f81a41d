// Randomized model test: random operations on an fs::Volume and on an in-memory reference
// file system must give identical answers (errno, contents, names, link counts, xattrs),
// also across closing and reopening the volume and its store at random points.
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

namespace fs {
namespace {

// The reference: nodes by the inode number the volume gave them.
struct Node {
  enum Kind { kFile, kDir, kSymlink } kind = kFile;
  std::string data;                 // file bytes or symlink target
  std::map<std::string, Ino> kids;  // directories
  Ino parent = 0;                   // directories
  uint32_t links = 1;               // non-directories
  int open = 0;                     // handles
  std::map<std::string, std::string> xattrs;
};

struct OpenFile {
  uint64_t fh;
  Ino ino;
};

class ModelTest : public ::testing::TestWithParam<uint32_t> {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/kvfs-model-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    options_.chunk_size = 4096;
    options_.chunk_cache_bytes = 64 << 10;  // small: exercise eviction
    options_.inode_cache_entries = 16;
    options_.max_dirty_bytes_per_inode = 16 << 10;
    ASSERT_TRUE(Volume::OpenAt(dir_, options_, &vol_).ok());
    nodes_[kRootIno].kind = Node::kDir;
    nodes_[kRootIno].parent = kRootIno;
    rng_.seed(GetParam());
  }
  void TearDown() override {
    if (vol_) {
      EXPECT_TRUE(vol_->Close().ok());
    }
    vol_.reset();
    EXPECT_TRUE(kv::DestroyPageStore(dir_).ok());
    rmdir(dir_.c_str());
  }

  uint64_t Rand(uint64_t n) { return std::uniform_int_distribution<uint64_t>(0, n - 1)(rng_); }
  std::string Name() {
    static const char* const kNames[] = {"a", "b", "c", "d", "e", "f", "g", "long-name-h"};
    return kNames[Rand(8)];
  }
  std::string Bytes(size_t n) {
    std::string s(n, '\0');
    char base = static_cast<char>('A' + Rand(26));
    for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>(base + i % 7);
    return s;
  }
  Ino RandomDir() {
    std::vector<Ino> dirs;
    for (auto& [ino, n] : nodes_) {
      if (n.kind == Node::kDir) dirs.push_back(ino);
    }
    return dirs[Rand(dirs.size())];
  }
  Ino Find(Ino dir, const std::string& name) {
    auto& kids = nodes_[dir].kids;
    auto it = kids.find(name);
    return it == kids.end() ? 0 : it->second;
  }
  bool InSubtree(Ino ino, Ino ancestor) {
    for (;;) {
      if (ino == ancestor) return true;
      if (ino == kRootIno) return false;
      ino = nodes_[ino].parent;
    }
  }
  // The reference drops one link of `ino`.
  void DropLink(Ino ino) {
    Node& n = nodes_[ino];
    if (n.kind == Node::kDir) {
      nodes_.erase(ino);
      return;
    }
    if (--n.links == 0 && n.open == 0) nodes_.erase(ino);
  }
  void CloseHandle(size_t i) {
    OpenFile h = handles_[i];
    handles_.erase(handles_.begin() + i);
    ASSERT_TRUE(vol_->Release(h.fh).ok());
    Node& n = nodes_[h.ino];
    if (--n.open == 0 && n.links == 0) nodes_.erase(h.ino);
  }
  void Reopen() {
    ASSERT_TRUE(vol_->Close().ok());
    vol_.reset();
    for (auto& h : handles_) {
      Node& n = nodes_[h.ino];
      if (--n.open == 0 && n.links == 0) nodes_.erase(h.ino);
    }
    handles_.clear();
    ASSERT_TRUE(Volume::OpenAt(dir_, options_, &vol_).ok());
  }

  void Step();
  void CheckAll();
  void CheckDir(Ino dir);
  std::string ReadFile(Ino ino);

  std::string dir_;
  VolumeOptions options_;
  std::unique_ptr<Volume> vol_;
  std::map<Ino, Node> nodes_;
  std::vector<OpenFile> handles_;
  std::mt19937_64 rng_;
  Caller caller_{1000, 1000};
  std::string trace_;
};

std::string ModelTest::ReadFile(Ino ino) {
  uint64_t fh;
  EXPECT_TRUE(vol_->Open(ino, O_RDONLY, &fh).ok());
  std::string data;
  EXPECT_TRUE(vol_->Read(fh, 0, 1 << 20, &data).ok());
  EXPECT_TRUE(vol_->Release(fh).ok());
  return data;
}

void ModelTest::CheckDir(Ino dir) {
  const Node& d = nodes_.at(dir);
  std::map<std::string, Ino> listed;
  ASSERT_TRUE(vol_->ReadDir(dir, 0,
                            [&](const DirEntry& e) {
                              if (e.name != "." && e.name != "..")
                                listed[std::string(e.name)] = e.ino;
                              return true;
                            })
                  .ok());
  ASSERT_EQ(listed, d.kids) << "dir " << dir;
  uint32_t subdirs = 0;
  for (auto& [name, ino] : d.kids) {
    const Node& n = nodes_.at(ino);
    Attr a;
    ASSERT_TRUE(vol_->Lookup(dir, name, &a).ok());
    ASSERT_EQ(a.ino, ino);
    switch (n.kind) {
      case Node::kDir: {
        ++subdirs;
        ASSERT_TRUE(S_ISDIR(a.mode));
        Attr up;
        ASSERT_TRUE(vol_->Lookup(ino, "..", &up).ok());
        ASSERT_EQ(up.ino, dir);
        CheckDir(ino);
        break;
      }
      case Node::kSymlink: {
        ASSERT_TRUE(S_ISLNK(a.mode));
        std::string target;
        ASSERT_TRUE(vol_->Readlink(ino, &target).ok());
        ASSERT_EQ(target, n.data);
        ASSERT_EQ(a.nlink, n.links);
        break;
      }
      case Node::kFile:
        ASSERT_TRUE(S_ISREG(a.mode));
        ASSERT_EQ(a.size, n.data.size()) << "ino " << ino;
        ASSERT_EQ(a.nlink, n.links);
        ASSERT_TRUE(ReadFile(ino) == n.data) << "contents of ino " << ino;
        break;
    }
    std::vector<std::string> names;
    ASSERT_TRUE(vol_->ListXattr(ino, &names).ok());
    std::vector<std::string> want;
    for (auto& [k, v] : n.xattrs) want.push_back(k);
    ASSERT_EQ(names, want);
  }
  Attr self;
  ASSERT_TRUE(vol_->GetAttr(dir, &self).ok());
  ASSERT_EQ(self.nlink, 2 + subdirs) << "dir " << dir;
}

void ModelTest::CheckAll() {
  CheckDir(kRootIno);
  for (auto& h : handles_) {
    std::string data;
    ASSERT_TRUE(vol_->Read(h.fh, 0, 1 << 20, &data).ok());
    ASSERT_TRUE(data == nodes_.at(h.ino).data) << "open ino " << h.ino;
  }
}

#define EXPECT_ERRNO(expected, call)                                        \
  do {                                                                      \
    Errno _e = (call);                                                      \
    ASSERT_EQ(_e.value(), (expected)) << trace_ << " -> " << _e.ToString(); \
  } while (0)

void ModelTest::Step() {
  const Ino dir = RandomDir();
  const std::string name = Name();
  const Ino existing = Find(dir, name);
  trace_ = "dir " + std::to_string(dir) + " name " + name;
  Attr a;
  switch (Rand(17)) {
    case 0:
    case 1: {  // create (and keep it open sometimes)
      trace_ += " create";
      uint64_t fh;
      EXPECT_ERRNO(existing ? EEXIST : 0, vol_->Create(dir, name, 0644, O_RDWR, caller_, &a, &fh));
      if (existing) break;
      nodes_[dir].kids[name] = a.ino;
      nodes_[a.ino] = Node();
      nodes_[a.ino].open = 1;
      handles_.push_back({fh, a.ino});
      break;
    }
    case 2: {  // mkdir
      trace_ += " mkdir";
      EXPECT_ERRNO(existing ? EEXIST : 0, vol_->Mkdir(dir, name, 0755, caller_, &a));
      if (existing) break;
      nodes_[dir].kids[name] = a.ino;
      Node n;
      n.kind = Node::kDir;
      n.parent = dir;
      nodes_[a.ino] = n;
      break;
    }
    case 3: {  // symlink
      trace_ += " symlink";
      std::string target = "t/" + Name();
      EXPECT_ERRNO(existing ? EEXIST : 0, vol_->Symlink(dir, name, target, caller_, &a));
      if (existing) break;
      nodes_[dir].kids[name] = a.ino;
      Node n;
      n.kind = Node::kSymlink;
      n.data = target;
      nodes_[a.ino] = n;
      break;
    }
    case 4: {  // open an existing file
      trace_ += " open";
      if (!existing || nodes_[existing].kind != Node::kFile || handles_.size() > 6) break;
      uint64_t fh;
      EXPECT_ERRNO(0, vol_->Open(existing, O_RDWR, &fh));
      ++nodes_[existing].open;
      handles_.push_back({fh, existing});
      break;
    }
    case 5:
    case 6:
    case 7: {  // write through a handle
      if (handles_.empty()) break;
      OpenFile h = handles_[Rand(handles_.size())];
      std::string& data = nodes_[h.ino].data;
      uint64_t offset = Rand(data.size() + 6000);
      size_t len = 1 + Rand(Rand(4) == 0 ? 20000 : 300);
      std::string bytes = Bytes(len);
      trace_ = "write ino " + std::to_string(h.ino) + " at " + std::to_string(offset);
      size_t written;
      EXPECT_ERRNO(0, vol_->Write(h.fh, offset, bytes, &written));
      if (data.size() < offset + len) data.resize(offset + len, '\0');
      data.replace(offset, len, bytes);
      break;
    }
    case 8: {  // read through a handle
      if (handles_.empty()) break;
      OpenFile h = handles_[Rand(handles_.size())];
      const std::string& data = nodes_[h.ino].data;
      uint64_t offset = Rand(data.size() + 100);
      size_t len = Rand(10000);
      std::string got;
      trace_ = "read ino " + std::to_string(h.ino);
      EXPECT_ERRNO(0, vol_->Read(h.fh, offset, len, &got));
      std::string want = offset < data.size() ? data.substr(offset, len) : "";
      ASSERT_TRUE(got == want) << trace_ << " at " << offset << " len " << len;
      break;
    }
    case 9: {  // truncate
      trace_ += " truncate";
      if (!existing) {
        EXPECT_ERRNO(ENOENT, vol_->Lookup(dir, name, &a));
        break;
      }
      Node& n = nodes_[existing];
      SetAttrRequest r;
      r.valid = SetAttrRequest::kSize;
      r.size = Rand(Rand(2) ? 3500 : 30000);
      int want = n.kind == Node::kDir ? EISDIR : n.kind == Node::kSymlink ? EINVAL : 0;
      EXPECT_ERRNO(want, vol_->SetAttr(existing, r, &a));
      if (want == 0) n.data.resize(r.size, '\0');
      break;
    }
    case 10:
    case 11: {  // rename, with flags
      const Ino to_dir = RandomDir();
      const std::string to_name = Name();
      const uint32_t flags = Rand(3) == 0 ? kRenameExchange : Rand(3) == 0 ? kRenameNoReplace : 0;
      trace_ += " rename to " + std::to_string(to_dir) + "/" + to_name + " flags " +
                std::to_string(flags);
      const Ino src = existing, dst = Find(to_dir, to_name);
      int want = 0;
      bool exchange = flags == kRenameExchange;
      if (!src) {
        want = ENOENT;
      } else if (exchange && !dst) {
        want = ENOENT;
      } else if (flags == kRenameNoReplace && dst) {
        want = EEXIST;
      } else if (dst == src) {
        want = -1;  // no-op success
      } else {
        bool src_dir = nodes_[src].kind == Node::kDir;
        bool dst_dir = dst && nodes_[dst].kind == Node::kDir;
        if (src_dir && dir != to_dir && InSubtree(to_dir, src)) {
          want = EINVAL;
        } else if (exchange && dst_dir && dir != to_dir && InSubtree(dir, dst)) {
          want = EINVAL;
        } else if (dst && !exchange) {
          if (src_dir && !dst_dir)
            want = ENOTDIR;
          else if (!src_dir && dst_dir)
            want = EISDIR;
          else if (dst_dir && !nodes_[dst].kids.empty())
            want = ENOTEMPTY;
        }
      }
      EXPECT_ERRNO(want < 0 ? 0 : want, vol_->Rename(dir, name, to_dir, to_name, flags));
      if (want != 0) break;
      if (exchange) {
        nodes_[dir].kids[name] = dst;
        nodes_[to_dir].kids[to_name] = src;
        if (nodes_[src].kind == Node::kDir) nodes_[src].parent = to_dir;
        if (nodes_[dst].kind == Node::kDir) nodes_[dst].parent = dir;
      } else {
        nodes_[dir].kids.erase(name);
        if (dst) DropLink(dst);
        nodes_[to_dir].kids[to_name] = src;
        if (nodes_[src].kind == Node::kDir) nodes_[src].parent = to_dir;
      }
      break;
    }
    case 12: {  // link
      const Ino to_dir = RandomDir();
      const std::string to_name = Name();
      trace_ += " link to " + std::to_string(to_dir) + "/" + to_name;
      if (!existing) break;
      int want = nodes_[existing].kind == Node::kDir ? EPERM : Find(to_dir, to_name) ? EEXIST : 0;
      EXPECT_ERRNO(want, vol_->Link(existing, to_dir, to_name, &a));
      if (want) break;
      nodes_[to_dir].kids[to_name] = existing;
      ++nodes_[existing].links;
      break;
    }
    case 13: {  // unlink or rmdir
      bool rmdir = Rand(2) == 0;
      trace_ += rmdir ? " rmdir" : " unlink";
      int want = 0;
      bool is_dir = existing && nodes_[existing].kind == Node::kDir;
      if (!existing) {
        want = ENOENT;
      } else if (rmdir) {
        want = !is_dir ? ENOTDIR : !nodes_[existing].kids.empty() ? ENOTEMPTY : 0;
      } else {
        want = is_dir ? EISDIR : 0;
      }
      EXPECT_ERRNO(want, rmdir ? vol_->Rmdir(dir, name) : vol_->Unlink(dir, name));
      if (want) break;
      nodes_[dir].kids.erase(name);
      DropLink(existing);
      break;
    }
    case 14: {  // xattrs
      if (!existing) break;
      auto& xattrs = nodes_[existing].xattrs;
      std::string key = "user." + Name();
      bool present = xattrs.count(key) > 0;
      std::string value;
      switch (Rand(3)) {
        case 0: {
          int flags = static_cast<int>(Rand(3));  // 0, create, replace
          trace_ += " setxattr " + key;
          int want = (flags == kXattrCreate && present)     ? EEXIST
                     : (flags == kXattrReplace && !present) ? ENODATA
                                                            : 0;
          std::string v = Bytes(Rand(100));
          EXPECT_ERRNO(want, vol_->SetXattr(existing, key, v, flags));
          if (!want) xattrs[key] = v;
          break;
        }
        case 1:
          trace_ += " getxattr " + key;
          EXPECT_ERRNO(present ? 0 : ENODATA, vol_->GetXattr(existing, key, &value));
          if (present) {
            ASSERT_EQ(value, xattrs[key]);
          }
          break;
        case 2:
          trace_ += " removexattr " + key;
          EXPECT_ERRNO(present ? 0 : ENODATA, vol_->RemoveXattr(existing, key));
          xattrs.erase(key);
          break;
      }
      break;
    }
    case 15: {  // close a handle, sometimes fsync first; rarely reopen the volume
      if (Rand(40) == 0) {
        trace_ = "reopen";
        Reopen();
        break;
      }
      if (handles_.empty()) break;
      size_t i = Rand(handles_.size());
      if (Rand(3) == 0) {
        EXPECT_ERRNO(0, vol_->Fsync(handles_[i].fh, false));
      }
      CloseHandle(i);
      break;
    }
    case 16: {  // fallocate: extend, or punch a hole
      if (handles_.empty()) break;
      OpenFile h = handles_[Rand(handles_.size())];
      std::string& data = nodes_[h.ino].data;
      uint64_t offset = Rand(data.size() + 5000);
      uint64_t len = 1 + Rand(12000);
      bool punch = Rand(2) == 0;
      trace_ = "fallocate ino " + std::to_string(h.ino) + (punch ? " punch" : " extend");
      EXPECT_ERRNO(
          0, vol_->Fallocate(h.fh, punch ? kFallocKeepSize | kFallocPunchHole : 0, offset, len));
      if (punch) {
        for (uint64_t i = offset; i < offset + len && i < data.size(); ++i) data[i] = '\0';
      } else if (data.size() < offset + len) {
        data.resize(offset + len, '\0');
      }
      break;
    }
  }
}

TEST_P(ModelTest, RandomOperationsMatchReference) {
  const int kSteps = 2500;
  for (int step = 0; step < kSteps; ++step) {
    ASSERT_NO_FATAL_FAILURE(Step()) << "step " << step;
    if (step % 250 == 249) {
      ASSERT_NO_FATAL_FAILURE(CheckAll()) << "step " << step;
    }
  }
  ASSERT_NO_FATAL_FAILURE(Reopen());
  ASSERT_NO_FATAL_FAILURE(CheckAll());
}

INSTANTIATE_TEST_SUITE_P(Seeds, ModelTest, ::testing::Values(1u, 2u, 3u, 4u, 5u, 6u));

}  // namespace
}  // namespace fs

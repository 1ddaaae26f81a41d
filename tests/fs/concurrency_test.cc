// Concurrency smoke test: threads create, write, read, rename and unlink in one directory
// while another lists it; afterwards every file holds exactly what its writer wrote. Meant
// to run under ThreadSanitizer too.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "fs/volume.h"

namespace fs {
namespace {

TEST(ConcurrencyTest, ParallelFileAndNameOperations) {
  char tmpl[] = "/tmp/kvfs-concurrency-test-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  VolumeOptions options;
  options.chunk_size = 4096;
  options.chunk_cache_bytes = 32 << 10;
  std::unique_ptr<Volume> vol;
  ASSERT_TRUE(Volume::OpenAt(dir, options, &vol).ok());
  Attr shared;
  ASSERT_TRUE(vol->Mkdir(kRootIno, "shared", 0755, Caller{}, &shared).ok());

  constexpr int kThreads = 4;
  constexpr int kFiles = 30;
  std::atomic<bool> failed{false};
  std::atomic<bool> done{false};
  auto writer = [&](int t) {
    for (int i = 0; i < kFiles; ++i) {
      std::string name = "t" + std::to_string(t) + "-" + std::to_string(i);
      Attr a;
      uint64_t fh;
      if (!vol->Create(shared.ino, name, 0644, O_RDWR, Caller{}, &a, &fh).ok()) failed = true;
      std::string data(5000 + i * 100, static_cast<char>('a' + t));
      for (size_t off = 0; off < data.size(); off += 700) {
        size_t n;
        std::string piece = data.substr(off, 700);
        if (!vol->Write(fh, off, piece, &n).ok()) failed = true;
      }
      std::string got;
      if (!vol->Read(fh, 0, data.size(), &got).ok() || got != data) failed = true;
      if (!vol->Release(fh).ok()) failed = true;
      if (i % 3 == 0 && !vol->Rename(shared.ino, name, shared.ino, name + "r", 0).ok()) {
        failed = true;
      }
      if (i % 5 == 0) {
        std::string current = i % 3 == 0 ? name + "r" : name;
        if (!vol->Unlink(shared.ino, current).ok()) failed = true;
      }
    }
  };
  std::thread lister([&] {
    while (!done) {
      uint64_t dh;
      if (!vol->OpenDir(shared.ino, &dh).ok()) failed = true;
      if (!vol->ReadDir(dh, 0, [](const DirEntry&) { return true; }).ok()) failed = true;
      if (!vol->ReleaseDir(dh).ok()) failed = true;
      FsStats st;
      if (!vol->Statfs(&st).ok()) failed = true;
    }
  });
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) threads.emplace_back(writer, t);
  for (auto& th : threads) th.join();
  done = true;
  lister.join();
  ASSERT_FALSE(failed);

  ASSERT_TRUE(vol->Close().ok());
  vol.reset();
  ASSERT_TRUE(Volume::OpenAt(dir, options, &vol).ok());
  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < kFiles; ++i) {
      std::string name = "t" + std::to_string(t) + "-" + std::to_string(i) + (i % 3 ? "" : "r");
      Attr a;
      Errno err = vol->Lookup(shared.ino, name, &a);
      if (i % 5 == 0) {
        EXPECT_EQ(err.value(), ENOENT) << name;
        continue;
      }
      ASSERT_TRUE(err.ok()) << name;
      EXPECT_EQ(a.size, 5000u + i * 100);
    }
  }
  Attr d;
  ASSERT_TRUE(vol->GetAttr(shared.ino, &d).ok());
  ASSERT_TRUE(vol->Close().ok());
  vol.reset();
  ASSERT_TRUE(kv::DestroyPageStore(dir).ok());
  rmdir(dir.c_str());
}

}  // namespace
}  // namespace fs

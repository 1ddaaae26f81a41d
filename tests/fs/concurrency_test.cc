// Concurrency smoke test: threads create, write, read, rename and unlink in one directory
// while another lists it; afterwards every file holds exactly what its writer wrote. Meant
// to run under ThreadSanitizer too.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "fs/volume.h"

namespace fs {
namespace {

// Opens a volume over a new store in a fresh temporary directory *dir.
void OpenTempVolume(const VolumeOptions& options, std::string* dir, std::unique_ptr<Volume>* vol) {
  char tmpl[] = "/tmp/kvfs-concurrency-test-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  *dir = tmpl;
  ASSERT_TRUE(Volume::OpenAt(*dir, options, vol).ok());
}

// Closes the volume and removes its store and directory.
void DestroyTempVolume(const std::string& dir, std::unique_ptr<Volume>* vol) {
  ASSERT_TRUE((*vol)->Close().ok());
  vol->reset();
  ASSERT_TRUE(kv::DestroyPageStore(dir).ok());
  rmdir(dir.c_str());
}

TEST(ConcurrencyTest, ParallelFileAndNameOperations) {
  VolumeOptions options;
  options.chunk_size = 4096;
  options.chunk_cache_bytes = 32 << 10;
  options.commit_interval_ns = 1'000'000;  // the committer races the writers
  options.max_dirty_bytes = 16 << 10;      // and so does the volume's buffer limit
  std::string dir;
  std::unique_ptr<Volume> vol;
  ASSERT_NO_FATAL_FAILURE(OpenTempVolume(options, &dir, &vol));
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
      if (!vol->ReadDir(shared.ino, 0, [](const DirEntry&) { return true; }).ok()) failed = true;
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
  DestroyTempVolume(dir, &vol);
}

// Reads fetch uncached chunks without the inode lock. Whatever a writer commits meanwhile,
// a read returns the file as it was at one moment (each round rewrites the whole file in one
// Write), and no chunk fetched before a commit lingers in the cache after it.
TEST(ConcurrencyTest, ReadsRacingCommitsSeeOneVersionAndNoStaleCache) {
  VolumeOptions options;
  options.chunk_size = 4096;
  options.chunk_cache_bytes = 3 * 4096;  // smaller than the file: reads keep missing
  options.version_retention = 0;
  std::string dir;
  std::unique_ptr<Volume> vol;
  ASSERT_NO_FATAL_FAILURE(OpenTempVolume(options, &dir, &vol));
  constexpr size_t kSize = 8 * 4096;
  constexpr uint32_t kRounds = 1000;
  Attr a;
  uint64_t wfh;
  ASSERT_TRUE(vol->Create(kRootIno, "f", 0644, O_RDWR, Caller{}, &a, &wfh).ok());
  // Round r fills the file with the 32-bit word r.
  auto contents = [](uint32_t round) {
    std::string data(kSize, '\0');
    for (size_t i = 0; i < kSize; i += 4) std::memcpy(&data[i], &round, 4);
    return data;
  };
  auto round_of = [&](const std::string& got) {
    uint32_t round = 0;
    if (got.size() == kSize) std::memcpy(&round, got.data(), 4);
    return got == contents(round) ? round : 0;
  };
  std::atomic<bool> failed{false};
  std::atomic<bool> done{false};
  auto reader = [&] {
    uint64_t fh;
    if (!vol->Open(a.ino, O_RDONLY, &fh).ok()) failed = true;
    uint32_t last = 0;
    while (!done && !failed) {
      std::string got;
      if (!vol->Read(fh, 0, kSize, &got).ok()) failed = true;
      if (got.empty()) continue;  // before the first round
      const uint32_t round = round_of(got);
      if (round == 0 || round < last) failed = true;
      last = round;
    }
    if (!vol->Release(fh).ok()) failed = true;
  };
  std::vector<std::thread> readers;
  for (int t = 0; t < 3; ++t) readers.emplace_back(reader);
  for (uint32_t round = 1; round <= kRounds && !failed; ++round) {
    size_t n;
    if (!vol->Write(wfh, 0, contents(round), &n).ok()) failed = true;
    if (!vol->Flush(wfh).ok()) failed = true;
  }
  done = true;
  for (auto& th : readers) th.join();
  ASSERT_FALSE(failed);
  // Every chunk, cached or not, now reads as the last round.
  std::string got;
  ASSERT_TRUE(vol->Read(wfh, 0, kSize, &got).ok());
  EXPECT_EQ(round_of(got), kRounds);
  ASSERT_TRUE(vol->Release(wfh).ok());
  DestroyTempVolume(dir, &vol);
}

}  // namespace
}  // namespace fs

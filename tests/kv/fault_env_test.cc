// Tests of the test harness itself: kvtest::FaultInjectionEnv must model durability and
// inject faults exactly as the crash and fault tests assume.
#include "tests/support/fault_env.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <random>
#include <string>

#include "tests/support/test_util.h"

namespace kvtest {
namespace {

uint64_t FileSize(const std::string& path) { return std::filesystem::file_size(path); }

TEST(FaultEnvTest, DropsWhatWasNotSynced) {
  ScopedTempDir dir("kv-faultenv");
  FaultInjectionEnv env;
  const std::string a = dir.Sub("a");
  std::unique_ptr<kv::File> f;
  ASSERT_OK(env.OpenFile(a, kv::Env::OpenMode::kCreate, &f));
  ASSERT_OK(f->Append("0123456789", 10));
  ASSERT_OK(f->Sync());
  ASSERT_OK(f->Append("abcdef", 6));
  EXPECT_EQ(env.SyncedLength(a), 10);
  f.reset();
  // Reopened and renamed, the file keeps its durable length.
  ASSERT_OK(env.OpenFile(a, kv::Env::OpenMode::kAppend, &f));
  ASSERT_OK(f->Append("XYZ", 3));
  f.reset();
  ASSERT_OK(env.Rename(a, dir.Sub("b")));
  EXPECT_EQ(env.SyncedLength(dir.Sub("b")), 10);
  EXPECT_EQ(env.SyncedLength(a), -1);
  EXPECT_EQ(FileSize(dir.Sub("b")), 19u);
  ASSERT_OK(env.DropUnsyncedData());
  EXPECT_EQ(FileSize(dir.Sub("b")), 10u);
}

TEST(FaultEnvTest, RandomDropStaysBetweenSyncedAndCurrent) {
  ScopedTempDir dir("kv-faultenv");
  std::mt19937_64 rng(1);
  for (int i = 0; i < 20; i++) {
    FaultInjectionEnv env;
    const std::string p = dir.Sub("f" + std::to_string(i));
    std::unique_ptr<kv::File> f;
    ASSERT_OK(env.OpenFile(p, kv::Env::OpenMode::kCreate, &f));
    ASSERT_OK(f->Append(std::string(100, 'a').data(), 100));
    ASSERT_OK(f->Sync());
    ASSERT_OK(f->Append(std::string(100, 'b').data(), 100));
    f.reset();
    ASSERT_OK(env.DropUnsyncedDataRandomly(rng));
    EXPECT_GE(FileSize(p), 100u);
    EXPECT_LE(FileSize(p), 200u);
  }
}

TEST(FaultEnvTest, PreexistingFilesCountAsDurable) {
  ScopedTempDir dir("kv-faultenv");
  {
    FaultInjectionEnv env;
    std::unique_ptr<kv::File> f;
    ASSERT_OK(env.OpenFile(dir.Sub("x"), kv::Env::OpenMode::kCreate, &f));
    ASSERT_OK(f->Append("hello", 5));
  }
  FaultInjectionEnv fresh;
  std::unique_ptr<kv::File> f;
  ASSERT_OK(fresh.OpenFile(dir.Sub("x"), kv::Env::OpenMode::kAppend, &f));
  ASSERT_OK(f->Append(" world", 6));
  f.reset();
  ASSERT_OK(fresh.DropUnsyncedData());
  EXPECT_EQ(FileSize(dir.Sub("x")), 5u);
}

TEST(FaultEnvTest, InjectedFaults) {
  ScopedTempDir dir("kv-faultenv");
  FaultInjectionEnv env;
  std::unique_ptr<kv::File> f;
  ASSERT_OK(env.OpenFile(dir.Sub("f"), kv::Env::OpenMode::kCreate, &f));
  env.FailAppendsAfter(2, kv::Status::Code::kNoSpace);
  ASSERT_OK(f->Append("1", 1));
  ASSERT_OK(f->Append("2", 1));
  EXPECT_TRUE(f->Append("3", 1).IsNoSpace());
  EXPECT_TRUE(f->Append("4", 1).IsNoSpace());
  EXPECT_EQ(f->Size(), 2u);
  env.ClearFaults();
  env.ShortWriteNext(kv::Status::Code::kIOError);
  EXPECT_TRUE(f->Append("abcd", 4).IsIOError());
  EXPECT_EQ(f->Size(), 4u);  // half of it landed
  env.FailSyncsAfter(0, kv::Status::Code::kIOError);
  EXPECT_TRUE(f->Sync().IsIOError());
  env.FailReservesAfter(0, kv::Status::Code::kNoSpace);
  EXPECT_TRUE(f->Reserve(0, 4096).IsNoSpace());
  env.FailRenamesAfter(0, kv::Status::Code::kIOError);
  EXPECT_TRUE(env.Rename(dir.Sub("f"), dir.Sub("g")).IsIOError());
  env.FailDirSyncsAfter(0, kv::Status::Code::kNoSpace);
  EXPECT_TRUE(env.SyncDir(dir.path()).IsNoSpace());
  env.ClearFaults();
  ASSERT_OK(f->Sync());
  ASSERT_OK(env.Rename(dir.Sub("f"), dir.Sub("g")));
  EXPECT_GE(env.counters().injected_failures, 7u);
}

TEST(FaultEnvTest, InactiveFilesystemChangesNothing) {
  ScopedTempDir dir("kv-faultenv");
  FaultInjectionEnv env;
  std::unique_ptr<kv::File> f;
  ASSERT_OK(env.OpenFile(dir.Sub("f"), kv::Env::OpenMode::kCreate, &f));
  env.DeactivateAfter(2);
  ASSERT_OK(f->Append("a", 1));
  ASSERT_OK(f->Sync());
  EXPECT_FALSE(env.IsFilesystemActive() && f->Append("b", 1).ok());
  EXPECT_FALSE(env.IsFilesystemActive());
  EXPECT_FALSE(f->Truncate(0).ok());
  EXPECT_FALSE(env.RemoveFile(dir.Sub("f")).ok());
  std::unique_ptr<kv::File> g;
  EXPECT_FALSE(env.OpenFile(dir.Sub("new"), kv::Env::OpenMode::kCreate, &g).ok());
  EXPECT_FALSE(env.FileExists(dir.Sub("new")));
  // Reading still works.
  ASSERT_OK(env.OpenFile(dir.Sub("f"), kv::Env::OpenMode::kRead, &g));
  char c = 0;
  size_t got = 0;
  ASSERT_OK(g->Read(0, 1, &c, &got));
  EXPECT_EQ(c, 'a');
  env.SetFilesystemActive(true);
  ASSERT_OK(f->Append("b", 1));
}

TEST(FaultEnvTest, UnsyncedDirectoryEntriesVanish) {
  ScopedTempDir dir("kv-faultenv");
  FaultInjectionEnv env;
  std::unique_ptr<kv::File> f;
  ASSERT_OK(env.OpenFile(dir.Sub("kept"), kv::Env::OpenMode::kCreate, &f));
  ASSERT_OK(f->Sync());
  ASSERT_OK(env.SyncDir(dir.path()));
  ASSERT_OK(env.OpenFile(dir.Sub("lost"), kv::Env::OpenMode::kCreate, &f));
  ASSERT_OK(f->Sync());
  f.reset();
  EXPECT_EQ(env.FilesCreatedSinceDirSync(), std::vector<std::string>{dir.Sub("lost")});
  ASSERT_OK(env.RemoveFilesCreatedSinceDirSync());
  EXPECT_TRUE(env.FileExists(dir.Sub("kept")));
  EXPECT_FALSE(env.FileExists(dir.Sub("lost")));
}

}  // namespace
}  // namespace kvtest

// Backup and restore of a page store (kv/backup.h): full and incremental archives, backups
// of a store that is being written and compacted meanwhile, damaged archives, and the
// guarantees about the target directory.
#include "kv/backup.h"

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "kv/coding.h"
#include "kv/crc32c.h"
#include "kv/format.h"
#include "kv/store.h"
#include "tests/support/fault_env.h"
#include "tests/support/test_util.h"

namespace kv {
namespace {

namespace fs = std::filesystem;
using kvtest::CompressibleBytes;
using kvtest::RandomBytes;
using State = std::map<std::string, std::string>;

std::string ReadFileBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteFileBytes(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
}

// Every regular file under `dir` (recursively) with its content; "<missing>" if no dir.
std::map<std::string, std::string> DirContents(const std::string& dir) {
  std::map<std::string, std::string> out;
  if (!fs::exists(dir)) {
    out["<missing>"] = "";
    return out;
  }
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    out[fs::relative(e.path(), dir).string()] = e.is_regular_file() ? ReadFileBytes(e.path()) : "";
  }
  return out;
}

State ReadAll(Store* store) {
  State out;
  auto it = store->NewIterator(ReadOptions(), "");
  for (it->SeekToFirst(); it->Valid(); it->Next()) out[std::string(it->key())] = it->value();
  EXPECT_TRUE(it->status().ok()) << it->status().ToString();
  return out;
}

void Apply(const WriteBatch& b, State* state) {
  for (const auto& op : b.ops()) {
    if (op.is_delete) {
      state->erase(op.key);
    } else {
      (*state)[op.key] = op.value;
    }
  }
}

std::string Describe(const std::vector<VersionInfo>& v) {
  std::string s;
  for (const VersionInfo& i : v) {
    s += std::to_string(i.sequence) + "/" + std::to_string(i.time_ns) + "/" +
         std::to_string(i.value_size) + (i.deleted ? "D " : " ");
  }
  return s;
}

// Expects `got` to hold exactly what `want` holds: values, versions, last sequence.
void ExpectSameStore(Store* want, Store* got, const std::set<std::string>& keys) {
  EXPECT_EQ(want->LastSequence(), got->LastSequence());
  EXPECT_EQ(ReadAll(want), ReadAll(got));
  for (const std::string& key : keys) {
    std::string a, b;
    Status sa = want->Get(ReadOptions(), key, &a);
    Status sb = got->Get(ReadOptions(), key, &b);
    ASSERT_EQ(sa.code(), sb.code()) << key;
    EXPECT_EQ(a, b) << key;
    std::vector<VersionInfo> va, vb;
    ASSERT_OK(want->Versions(key, &va));
    ASSERT_OK(got->Versions(key, &vb));
    ASSERT_EQ(Describe(va), Describe(vb)) << key;
  }
}

class BackupTest : public ::testing::Test {
 protected:
  BackupTest() {
    options_.page_count = 4;
    options_.background_compaction = false;
    options_.sharder = std::make_shared<kvtest::DirSharder>();
  }

  std::string Path(const std::string& name) const { return root_.Sub(name); }

  void OpenSource() {
    source_.reset();
    ASSERT_OK(OpenPageStore(options_, store_dir_, &source_));
  }

  std::unique_ptr<Store> OpenRestored(const std::string& dir) {
    Options o = options_;
    o.create_if_missing = false;
    std::unique_ptr<Store> store;
    Status s = OpenPageStore(o, dir, &store);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return store;
  }

  // Batches of puts and deletes across pages: small, compressible and large values,
  // overwrites (versions) and deletes.
  void Fill(int batches, size_t big_value = 0) {
    for (int b = 0; b < batches; ++b) {
      WriteBatch batch;
      const int ops = 1 + static_cast<int>(rng_() % 12);
      for (int i = 0; i < ops; ++i) {
        const std::string key =
            "d" + std::to_string(rng_() % 9) + "/k" + std::to_string(rng_() % 300);
        keys_.insert(key);
        const uint64_t kind = rng_() % 10;
        if (kind == 0) {
          batch.Delete(key);
        } else if (kind < 4) {
          batch.Put(key, CompressibleBytes(200 + rng_() % 5000));
        } else if (kind == 4 && big_value > 0) {
          batch.Put(key, RandomBytes(rng_, big_value));
        } else {
          batch.Put(key, RandomBytes(rng_, rng_() % 300));
        }
      }
      ASSERT_OK(source_->Write(WriteOptions(), batch));
    }
  }

  BackupStats BackupOk(const std::string& archive, const std::string& base = "") {
    BackupOptions bo;
    bo.base_archive = base;
    BackupStats stats;
    Status s = Backup(store_dir_, archive, bo, &stats);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return stats;
  }

  Status RestoreTo(const std::string& archive, const std::string& target, bool force = false,
                   std::vector<std::string> base_paths = {}) {
    RestoreOptions ro;
    ro.force = force;
    ro.base_paths = std::move(base_paths);
    return Restore(archive, target, ro, &restore_stats_);
  }

  kvtest::ScopedTempDir root_{"kv-backup"};
  const std::string store_dir_ = root_.Sub("store");
  Options options_;
  std::unique_ptr<Store> source_;
  std::mt19937_64 rng_{42};
  std::set<std::string> keys_;
  RestoreStats restore_stats_;
};

TEST_F(BackupTest, FullBackupOfOpenStoreRestoresIdentically) {
  OpenSource();
  Fill(400, 300 << 10);  // several MiB: pages span more than one 1 MiB block
  ASSERT_OK(source_->Sync());

  std::vector<std::pair<uint64_t, uint64_t>> progress;
  BackupOptions bo;
  bo.progress = [&](uint64_t done, uint64_t total) { progress.emplace_back(done, total); };
  BackupStats stats;
  ASSERT_OK(Backup(store_dir_, Path("full.kvb"), bo, &stats));
  EXPECT_EQ(stats.pages, 4u);
  EXPECT_EQ(stats.blocks_referenced, 0u);
  EXPECT_GT(stats.blocks, 4u);
  EXPECT_EQ(stats.bytes_written, fs::file_size(Path("full.kvb")));
  EXPECT_FALSE(fs::exists(Path("full.kvb.tmp")));
  ASSERT_FALSE(progress.empty());
  EXPECT_EQ(progress.back().first, progress.back().second);

  ArchiveSummary summary;
  ASSERT_OK(ReadArchiveSummary(Path("full.kvb"), &summary));
  EXPECT_EQ(summary.archive_id, stats.archive_id);
  EXPECT_FALSE(summary.incremental);
  EXPECT_EQ(summary.page_count, 4u);
  EXPECT_EQ(summary.sharder_name, "test-dir-sharder");
  EXPECT_EQ(summary.blocks, stats.blocks);
  EXPECT_EQ(summary.archive_bytes, stats.bytes_written);
  EXPECT_EQ(summary.durable_sequence, stats.durable_sequence);
  std::vector<ArchiveSummary> chain;
  ASSERT_OK(VerifyArchive(Path("full.kvb"), ArchiveVerifyOptions(), &chain));
  ASSERT_EQ(chain.size(), 1u);
  EXPECT_EQ(chain[0].page_bytes, summary.page_bytes);

  const std::string target = Path("restored");
  ASSERT_OK(RestoreTo(Path("full.kvb"), target));
  EXPECT_FALSE(fs::exists(target + ".restore-tmp"));
  EXPECT_EQ(restore_stats_.pages, 4u);
  EXPECT_EQ(restore_stats_.archives, 1u);
  EXPECT_EQ(restore_stats_.last_sequence, source_->LastSequence());
  {
    auto restored = OpenRestored(target);
    ASSERT_TRUE(restored);
    ExpectSameStore(source_.get(), restored.get(), keys_);
    // The restored store is a working store.
    ASSERT_OK(restored->Put(WriteOptions(), "d1/new", "value"));
    EXPECT_EQ(restored->LastSequence(), source_->LastSequence() + 1);
  }
  auto again = OpenRestored(target);
  ASSERT_TRUE(again);
  std::string v;
  ASSERT_OK(again->Get(ReadOptions(), "d1/new", &v));
  EXPECT_EQ(v, "value");
}

TEST_F(BackupTest, SharderIsCheckedAndOptional) {
  OpenSource();
  Fill(50);
  ASSERT_OK(source_->Sync());
  BackupOk(Path("a.kvb"));
  // Without a sharder the archived name is accepted; with another one nothing is written.
  ASSERT_OK(Restore(Path("a.kvb"), Path("r1"), RestoreOptions()));
  RestoreOptions ro;
  ro.sharder = std::shared_ptr<const Sharder>(WholeKeySharder(), [](const Sharder*) {});
  Status s = Restore(Path("a.kvb"), Path("r2"), ro);
  EXPECT_TRUE(s.IsInvalidArgument()) << s.ToString();
  EXPECT_NE(s.message().find("test-dir-sharder"), std::string::npos) << s.ToString();
  EXPECT_FALSE(fs::exists(Path("r2")));
  EXPECT_FALSE(fs::exists(Path("r2.restore-tmp")));
  ro.sharder = options_.sharder;
  ASSERT_OK(Restore(Path("a.kvb"), Path("r3"), ro));
  auto restored = OpenRestored(Path("r3"));
  ASSERT_TRUE(restored);
  ExpectSameStore(source_.get(), restored.get(), keys_);
  // A newer sharder accepts an archive of a store its earlier_sharders name; the restored
  // store keeps the archived sharder.
  ro.sharder = std::make_shared<kvtest::GroupedDirSharder>();
  s = Restore(Path("a.kvb"), Path("r4"), ro);
  EXPECT_TRUE(s.IsInvalidArgument()) << s.ToString();
  ro.earlier_sharders = {options_.sharder};
  ASSERT_OK(Restore(Path("a.kvb"), Path("r4"), ro));
  restored = OpenRestored(Path("r4"));
  ASSERT_TRUE(restored);
  ExpectSameStore(source_.get(), restored.get(), keys_);
}

TEST_F(BackupTest, BackupOfClosedStoreAndRefusals) {
  OpenSource();
  Fill(100);
  source_.reset();  // clean close: hint files, empty journal
  BackupOk(Path("closed.kvb"));
  ASSERT_OK(RestoreTo(Path("closed.kvb"), Path("r")));
  OpenSource();
  auto restored = OpenRestored(Path("r"));
  ASSERT_TRUE(restored);
  ExpectSameStore(source_.get(), restored.get(), keys_);

  // The archive may not go into the store directory, nor replace its own base.
  Status s = Backup(store_dir_, store_dir_ + "/x.kvb", BackupOptions());
  EXPECT_TRUE(s.IsInvalidArgument()) << s.ToString();
  EXPECT_FALSE(fs::exists(store_dir_ + "/x.kvb"));
  BackupOptions bo;
  bo.base_archive = Path("closed.kvb");
  s = Backup(store_dir_, Path("closed.kvb"), bo);
  EXPECT_TRUE(s.IsInvalidArgument()) << s.ToString();
  ASSERT_OK(VerifyArchive(Path("closed.kvb"), ArchiveVerifyOptions()));
  // Not a store.
  fs::create_directories(Path("empty"));
  s = Backup(Path("empty"), Path("e.kvb"), BackupOptions());
  EXPECT_TRUE(s.IsNotFound()) << s.ToString();
  EXPECT_FALSE(fs::exists(Path("e.kvb")));
}

// A writer keeps writing (and compacting) while backups are taken of the open store, as of
// a mounted file system. Each restored store must hold exactly the batches up to its last
// sequence number.
TEST_F(BackupTest, BackupWhileWriting) {
  options_.background_compaction = true;
  options_.compaction_min_garbage_bytes = 64 << 10;
  options_.compaction_garbage_ratio = 0.3;
  OpenSource();
  std::mutex mu;
  std::map<SequenceNumber, WriteBatch> log;
  std::atomic<bool> stop{false};
  Status writer_status;
  std::thread writer([&] {
    std::mt19937_64 rng(7);
    for (uint64_t n = 0; !stop.load(); ++n) {
      WriteBatch batch;
      const int ops = 1 + static_cast<int>(rng() % 8);
      for (int i = 0; i < ops; ++i) {
        const std::string key =
            "d" + std::to_string(rng() % 13) + "/k" + std::to_string(rng() % 200);
        if (rng() % 8 == 0) {
          batch.Delete(key);
        } else if (rng() % 3 == 0) {
          batch.Put(key, CompressibleBytes(100 + rng() % 3000));
        } else {
          batch.Put(key, RandomBytes(rng, rng() % 2000));
        }
      }
      SequenceNumber seq = 0;
      WriteOptions wo;
      wo.sync = n % 97 == 0;
      Status s = source_->Write(wo, batch, &seq);
      if (s.ok() && n % 300 == 0) {
        CompactOptions co;
        co.shard = static_cast<int>(rng() % 4);
        s = source_->Compact(co);
      }
      if (!s.ok()) {
        writer_status = s;
        return;
      }
      std::lock_guard lock(mu);
      log[seq] = std::move(batch);
    }
  });

  std::vector<BackupStats> stats;
  for (int i = 0; i < 5; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
    stats.push_back(BackupOk(Path("live" + std::to_string(i) + ".kvb")));
  }
  stop = true;
  writer.join();
  ASSERT_OK(writer_status);
  const SequenceNumber written = source_->LastSequence();
  ASSERT_EQ(log.size(), written);

  for (int i = 0; i < 5; ++i) {
    SCOPED_TRACE("backup " + std::to_string(i));
    const std::string target = Path("live-restored" + std::to_string(i));
    ASSERT_OK(RestoreTo(Path("live" + std::to_string(i) + ".kvb"), target));
    auto restored = OpenRestored(target);
    ASSERT_TRUE(restored);
    const SequenceNumber last = restored->LastSequence();
    EXPECT_GE(last, stats[i].durable_sequence);
    EXPECT_LE(last, written);
    if (i > 0) {
      EXPECT_GE(last, stats[i - 1].durable_sequence);
    }
    State want;
    for (SequenceNumber seq = 1; seq <= last; ++seq) Apply(log.at(seq), &want);
    EXPECT_EQ(ReadAll(restored.get()), want) << "restored at sequence " << last;
  }
}

// Forwards to the default Env, calling a hook before each file is opened.
class HookEnv final : public Env {
 public:
  std::function<void(const std::string&)> on_open;

  Status OpenFile(const std::string& path, OpenMode mode, std::unique_ptr<File>* file) override {
    if (on_open) on_open(path);
    return base_->OpenFile(path, mode, file);
  }
  Status Rename(const std::string& from, const std::string& to) override {
    return base_->Rename(from, to);
  }
  Status RemoveFile(const std::string& path) override { return base_->RemoveFile(path); }
  Status CreateDir(const std::string& path) override { return base_->CreateDir(path); }
  Status SyncDir(const std::string& path) override { return base_->SyncDir(path); }
  Status ListDir(const std::string& dir, std::vector<std::string>* names) override {
    return base_->ListDir(dir, names);
  }
  bool FileExists(const std::string& path) override { return base_->FileExists(path); }
  Status LockFile(const std::string& path, std::unique_ptr<FileLock>* lock) override {
    return base_->LockFile(path, lock);
  }
  Status FreeSpace(const std::string& path, uint64_t* bytes) override {
    return base_->FreeSpace(path, bytes);
  }

 private:
  Env* const base_ = Env::Default();
};

// A compaction between the backup's read of the superblock and its opening of a page file
// rewrites records above the watermark the backup read (framing and dropped versions):
// the backup must notice the superblock change and start over.
TEST_F(BackupTest, CompactionDuringBackupIsDetected) {
  OpenSource();  // a fresh store: its watermark stays 0 until something persists it
  Fill(300);
  ASSERT_OK(source_->Flush());
  int superblock_reads = 0;
  bool compacted = false;
  HookEnv env;
  env.on_open = [&](const std::string& path) {
    if (path.ends_with(format::kSuperblockFile)) ++superblock_reads;
    if (!compacted && path.ends_with("page-0000.kv")) {
      compacted = true;
      Fill(100);
      CompactOptions co;
      co.shard = 0;
      ASSERT_OK(source_->Compact(co));  // persists the watermark, then replaces the page
    }
  };
  BackupOptions bo;
  bo.env = &env;
  ASSERT_OK(Backup(store_dir_, Path("a.kvb"), bo));
  EXPECT_TRUE(compacted);
  EXPECT_GE(superblock_reads, 4);  // read twice, changed, read twice again
  ASSERT_OK(RestoreTo(Path("a.kvb"), Path("r")));
  auto restored = OpenRestored(Path("r"));
  ASSERT_TRUE(restored);
  EXPECT_EQ(restored->LastSequence(), source_->LastSequence());
  EXPECT_EQ(ReadAll(restored.get()), ReadAll(source_.get()));
}

TEST_F(BackupTest, IncrementalBackups) {
  options_.page_count = 2;
  options_.compression_level = 0;
  OpenSource();
  // About 12 MiB per page.
  for (int i = 0; i < 96; ++i) {
    const std::string key = "big" + std::to_string(i) + "/v";
    keys_.insert(key);
    ASSERT_OK(source_->Put(WriteOptions(), key, RandomBytes(rng_, 256 << 10)));
  }
  Fill(100);
  ASSERT_OK(source_->Sync());
  const BackupStats full = BackupOk(Path("full.kvb"));

  Fill(50);
  ASSERT_OK(source_->Sync());
  const BackupStats inc1 = BackupOk(Path("inc1.kvb"), Path("full.kvb"));
  EXPECT_GT(inc1.blocks_referenced, 0u);
  EXPECT_LT(inc1.bytes_written * 4, full.bytes_written)
      << "full " << full.bytes_written << ", incremental " << inc1.bytes_written;

  // An incremental over an incremental; one page compacted in between changes wholly.
  Fill(50);
  ASSERT_OK(source_->Put(WriteOptions(), "big0/v", "small now"));
  CompactOptions co;
  co.shard = 0;
  ASSERT_OK(source_->Compact(co));
  ASSERT_OK(source_->Sync());
  const BackupStats inc2 = BackupOk(Path("inc2.kvb"), Path("inc1.kvb"));
  EXPECT_GT(inc2.blocks_referenced, 0u);
  EXPECT_LT(inc2.blocks_referenced, inc2.blocks);

  ArchiveSummary summary;
  ASSERT_OK(ReadArchiveSummary(Path("inc2.kvb"), &summary));
  EXPECT_TRUE(summary.incremental);
  EXPECT_EQ(summary.base_id, inc1.archive_id);
  EXPECT_EQ(summary.base_path, Path("inc1.kvb"));
  std::vector<ArchiveSummary> chain;
  ASSERT_OK(VerifyArchive(Path("inc2.kvb"), ArchiveVerifyOptions(), &chain));
  ASSERT_EQ(chain.size(), 3u);
  EXPECT_EQ(chain[2].archive_id, full.archive_id);

  ASSERT_OK(RestoreTo(Path("inc2.kvb"), Path("r2")));
  EXPECT_EQ(restore_stats_.archives, 3u);
  EXPECT_GT(restore_stats_.blocks_from_base, 0u);
  {
    auto restored = OpenRestored(Path("r2"));
    ASSERT_TRUE(restored);
    ExpectSameStore(source_.get(), restored.get(), keys_);
  }

  // The chain moved elsewhere together: found next to the archive.
  fs::create_directories(Path("moved"));
  for (const char* name : {"full.kvb", "inc1.kvb", "inc2.kvb"}) {
    fs::rename(Path(name), Path("moved/") + name);
  }
  ASSERT_OK(RestoreTo(Path("moved/inc2.kvb"), Path("r3")));

  // A missing base: a clear error, nothing written; an explicit path fixes it.
  fs::rename(Path("moved/full.kvb"), Path("elsewhere.kvb"));
  Status s = RestoreTo(Path("moved/inc2.kvb"), Path("r4"));
  EXPECT_TRUE(s.IsNotFound()) << s.ToString();
  EXPECT_NE(s.message().find("full.kvb"), std::string::npos) << s.ToString();
  EXPECT_FALSE(fs::exists(Path("r4")));
  EXPECT_FALSE(fs::exists(Path("r4.restore-tmp")));
  ASSERT_OK(RestoreTo(Path("moved/inc2.kvb"), Path("r4"), false, {"", Path("elsewhere.kvb")}));
  {
    auto restored = OpenRestored(Path("r4"));
    ASSERT_TRUE(restored);
    ExpectSameStore(source_.get(), restored.get(), keys_);
  }

  // The wrong base: another archive of the same store.
  s = RestoreTo(Path("moved/inc2.kvb"), Path("r5"), false, {Path("elsewhere.kvb")});
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("was made over archive"), std::string::npos) << s.ToString();
  EXPECT_FALSE(fs::exists(Path("r5")));

  // A damaged base: one flipped bit in a block.
  std::string bytes = ReadFileBytes(Path("elsewhere.kvb"));
  bytes[bytes.size() / 2] ^= 0x10;
  WriteFileBytes(Path("elsewhere.kvb"), bytes);
  s = RestoreTo(Path("moved/inc2.kvb"), Path("r5"), false, {"", Path("elsewhere.kvb")});
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
  EXPECT_NE(s.message().find("elsewhere.kvb"), std::string::npos) << s.ToString();
  EXPECT_FALSE(fs::exists(Path("r5")));
  EXPECT_FALSE(fs::exists(Path("r5.restore-tmp")));
  // And an incremental backup over a damaged base is refused.
  BackupOptions bo;
  bo.base_archive = Path("moved/inc2.kvb");
  ArchiveVerifyOptions vo;
  vo.base_paths = {"", Path("elsewhere.kvb")};
  EXPECT_FALSE(VerifyArchive(Path("moved/inc2.kvb"), vo).ok());
  vo.verify_bases = false;
  EXPECT_OK(VerifyArchive(Path("moved/inc2.kvb"), vo));
  fs::rename(Path("moved/inc1.kvb"), Path("inc1-gone.kvb"));
  s = Backup(store_dir_, Path("inc3.kvb"), bo);
  EXPECT_TRUE(s.IsNotFound()) << s.ToString();
  EXPECT_FALSE(fs::exists(Path("inc3.kvb")));
  EXPECT_FALSE(fs::exists(Path("inc3.kvb.tmp")));
}

class BadArchiveTest : public BackupTest {
 protected:
  void SetUp() override {
    OpenSource();
    Fill(120, 200 << 10);  // an archive of a few MiB, pages of more than one block
    ASSERT_OK(source_->Sync());
    BackupOk(Path("good.kvb"));
    good_ = ReadFileBytes(Path("good.kvb"));
    ASSERT_GT(good_.size(), 2u << 20);
    fs::create_directories(Path("existing"));
    WriteFileBytes(Path("existing/keep.txt"), "precious");
  }

  // Restoring `bytes` fails with a one-line message (returned) and touches nothing.
  std::string ExpectRestoreFails(const std::string& bytes) {
    WriteFileBytes(Path("bad.kvb"), bytes);
    const auto before = DirContents(Path("existing"));
    std::string message;
    for (bool force : {false, true}) {
      for (const std::string& target : {Path("existing"), Path("absent")}) {
        Status s = RestoreTo(Path("bad.kvb"), target, force);
        EXPECT_FALSE(s.ok()) << target;
        EXPECT_TRUE(s.IsCorruption() || s.IsNotSupported()) << s.ToString();
        EXPECT_EQ(s.ToString().find('\n'), std::string::npos) << s.ToString();
        EXPECT_NE(s.message().find("bad.kvb"), std::string::npos) << s.ToString();
        EXPECT_FALSE(fs::exists(target + ".restore-tmp"));
        message = s.message();
      }
    }
    EXPECT_EQ(DirContents(Path("existing")), before);
    EXPECT_FALSE(fs::exists(Path("absent")));
    EXPECT_FALSE(VerifyArchive(Path("bad.kvb"), ArchiveVerifyOptions()).ok());
    return message;
  }

  std::string good_;
};

TEST_F(BadArchiveTest, Truncated) {
  std::mt19937_64 rng(1);
  std::vector<size_t> cuts = {
      0, 1, 7, 8, 15, 16, 40, good_.size() - 1, good_.size() - 4, good_.size() - 80};
  for (int i = 0; i < 40; ++i) cuts.push_back(rng() % good_.size());
  for (size_t cut : cuts) {
    SCOPED_TRACE("cut at " + std::to_string(cut));
    const std::string m = ExpectRestoreFails(good_.substr(0, cut));
    EXPECT_NE(m.find("truncated"), std::string::npos) << m;
    ArchiveSummary summary;
    EXPECT_FALSE(ReadArchiveSummary(Path("bad.kvb"), &summary).ok());
  }
}

TEST_F(BadArchiveTest, BitFlips) {
  std::mt19937_64 rng(2);
  std::vector<size_t> offsets = {0, 8, 9, 12, 20, 70, good_.size() - 1, good_.size() - 30};
  for (int i = 0; i < 60; ++i) offsets.push_back(rng() % good_.size());
  for (size_t off : offsets) {
    SCOPED_TRACE("flip at " + std::to_string(off));
    std::string bad = good_;
    bad[off] = static_cast<char>(bad[off] ^ (1 << (rng() % 8)));
    ExpectRestoreFails(bad);
  }
  // Trailing garbage.
  ExpectRestoreFails(good_ + "x");
}

TEST_F(BadArchiveTest, ForeignAndNewer) {
  std::string bad = good_;
  bad.replace(0, 8, "NOTKVFS!");
  std::string m = ExpectRestoreFails(bad);
  EXPECT_NE(m.find("not a kvfs backup archive"), std::string::npos) << m;
  m = ExpectRestoreFails(ReadFileBytes(store_dir_ + "/" + format::kSuperblockFile));
  EXPECT_NE(m.find("not a kvfs backup archive"), std::string::npos) << m;

  // A newer archive format, header checksum and all.
  bad = good_;
  EncodeFixed32(bad.data() + 8, kArchiveFormatVersion + 1);
  const uint32_t header_size = DecodeFixed32(bad.data() + 12);
  EncodeFixed32(bad.data() + header_size - 4, Crc32c(bad.data(), header_size - 4));
  m = ExpectRestoreFails(bad);
  EXPECT_NE(m.find("archive format version " + std::to_string(kArchiveFormatVersion + 1) +
                   " is newer than this kvfs supports"),
            std::string::npos)
      << m;
  EXPECT_TRUE(VerifyArchive(Path("bad.kvb"), ArchiveVerifyOptions()).IsNotSupported());

  // The good archive still restores over the existing directory with force.
  ASSERT_OK(RestoreTo(Path("good.kvb"), Path("existing"), true));
}

TEST_F(BackupTest, TargetDirectory) {
  OpenSource();
  Fill(80);
  ASSERT_OK(source_->Sync());
  BackupOk(Path("a.kvb"));

  // Non-empty without force: refused, untouched.
  fs::create_directories(Path("t"));
  WriteFileBytes(Path("t/old.txt"), "old");
  Status s = RestoreTo(Path("a.kvb"), Path("t"));
  EXPECT_TRUE(s.IsInvalidArgument()) << s.ToString();
  EXPECT_EQ(s.message(), Path("t") + " is not empty (use --force to replace it)");
  EXPECT_EQ(ReadFileBytes(Path("t/old.txt")), "old");
  EXPECT_FALSE(fs::exists(Path("t.restore-tmp")));

  // With force: replaced entirely.
  ASSERT_OK(RestoreTo(Path("a.kvb"), Path("t/"), true));
  EXPECT_FALSE(fs::exists(Path("t/old.txt")));
  EXPECT_FALSE(fs::exists(Path("t.restore-tmp")));
  {
    auto restored = OpenRestored(Path("t"));
    ASSERT_TRUE(restored);
    ExpectSameStore(source_.get(), restored.get(), keys_);
  }

  // Never over a store that is open.
  {
    Options o = options_;
    std::unique_ptr<Store> open_store;
    ASSERT_OK(OpenPageStore(o, Path("t"), &open_store));
    const auto before = DirContents(Path("t"));
    s = RestoreTo(Path("a.kvb"), Path("t"), true);
    EXPECT_TRUE(s.IsBusy()) << s.ToString();
    EXPECT_EQ(DirContents(Path("t")), before);
    EXPECT_FALSE(fs::exists(Path("t.restore-tmp")));
  }

  // An empty directory needs no force; a file is never replaced; a leftover temporary
  // directory of an interrupted restore is cleared.
  fs::create_directories(Path("e"));
  fs::create_directories(Path("e.restore-tmp"));
  WriteFileBytes(Path("e.restore-tmp/junk"), "junk");
  ASSERT_OK(RestoreTo(Path("a.kvb"), Path("e")));
  EXPECT_FALSE(fs::exists(Path("e.restore-tmp")));
  EXPECT_TRUE(fs::exists(Path("e/") + format::kSuperblockFile));
  WriteFileBytes(Path("f"), "file");
  s = RestoreTo(Path("a.kvb"), Path("f"), true);
  EXPECT_TRUE(s.IsInvalidArgument()) << s.ToString();
  EXPECT_EQ(ReadFileBytes(Path("f")), "file");
  // A missing parent directory.
  s = RestoreTo(Path("a.kvb"), Path("no/such/dir"));
  EXPECT_FALSE(s.ok());
  EXPECT_FALSE(fs::exists(Path("no")));
}

}  // namespace
}  // namespace kv

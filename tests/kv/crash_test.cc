// Randomized crash tests: write batches spanning several pages through FaultInjectionEnv,
// "crash" at a random point (the filesystem stops taking changes, then the store is torn
// down and unsynced data is dropped, wholly or in part), reopen and check that
//   - every batch is all-or-nothing,
//   - the surviving batches are exactly a prefix, by sequence number, of those written,
//   - every batch acknowledged as durable (sync=true, or followed by Store::Sync) survived.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "kv/page_store.h"
#include "kv/store.h"
#include "tests/support/fault_env.h"
#include "tests/support/test_util.h"

namespace kv {
namespace {

using State = std::map<std::string, std::string>;

void Apply(const WriteBatch& b, State* state) {
  for (const auto& op : b.ops()) {
    if (op.is_delete) {
      state->erase(op.key);
    } else {
      (*state)[op.key] = op.value;
    }
  }
}

State ReadAll(Store* store) {
  State out;
  auto it = store->NewIterator(ReadOptions(), "");
  for (it->SeekToFirst(); it->Valid(); it->Next()) out[std::string(it->key())] = it->value();
  EXPECT_TRUE(it->status().ok()) << it->status().ToString();
  return out;
}

std::string DescribeDiff(const State& got, const State& want) {
  std::string d;
  for (const auto& [k, v] : want) {
    auto it = got.find(k);
    if (it == got.end()) {
      d += " missing " + k + ";";
    } else if (it->second != v) {
      d += " wrong " + k + ";";
    }
    if (d.size() > 300) return d;
  }
  for (const auto& [k, v] : got) {
    if (!want.count(k)) d += " extra " + k + ";";
    if (d.size() > 300) return d;
  }
  return d;
}

class CrashTest : public ::testing::TestWithParam<int> {
 protected:
  void SetUp() override {
    seed_ = static_cast<uint64_t>(GetParam());
    rng_.seed(seed_ * 104729 + 3);
    options_.page_count = 4 + static_cast<uint32_t>(seed_ % 3);
    options_.background_compaction = seed_ % 4 == 3;
    options_.compaction_min_garbage_bytes = 64 << 10;
    options_.compaction_garbage_ratio = 0.3;
  }

  uint64_t Rand(uint64_t n) { return rng_() % n; }
  bool OneIn(uint64_t n) { return Rand(n) == 0; }

  WriteBatch RandomBatch(uint64_t id) {
    WriteBatch b;
    const size_t n = 1 + Rand(12);
    std::set<std::string> keys;
    while (keys.size() < n) keys.insert("key" + std::to_string(Rand(150)));
    for (const std::string& k : keys) {
      if (OneIn(6)) {
        b.Delete(k);
      } else {
        // The batch id is in every value, so a torn batch cannot pass for a whole one.
        std::string v = "b" + std::to_string(id) + ":" + k + ":";
        const size_t len = OneIn(8) ? 2000 + Rand(20000) : Rand(300);
        while (v.size() < len) v += static_cast<char>('a' + Rand(26));
        b.Put(k, v);
      }
    }
    return b;
  }

  kvtest::ScopedTempDir dir_{"kv-crash"};
  uint64_t seed_ = 0;
  std::mt19937_64 rng_;
  Options options_;
};

// One writer; the crash point is a count of filesystem mutations, so it can fall between
// the pages of one batch, between an append and its sync, inside a compaction or a close.
TEST_P(CrashTest, SingleWriterRandomCrashPoints) {
  State state;              // what the store held after the last recovery
  SequenceNumber last = 0;  // its LastSequence
  constexpr int kCycles = 12;
  for (int cycle = 0; cycle < kCycles; cycle++) {
    SCOPED_TRACE("seed " + std::to_string(seed_) + " cycle " + std::to_string(cycle));
    kvtest::FaultInjectionEnv env;
    env.SkipRealSyncs(true);  // the "power cut" is simulated; real fsyncs only cost time
    options_.env = &env;
    std::unique_ptr<Store> store;
    ASSERT_OK(OpenPageStore(options_, dir_.path(), &store));
    ASSERT_EQ(store->LastSequence(), last);
    {
      State got = ReadAll(store.get());
      ASSERT_TRUE(got == state) << "after reopen:" << DescribeDiff(got, state);
    }

    // Batches attempted this cycle, by the sequence they took (or would have taken).
    std::vector<WriteBatch> batches;
    SequenceNumber durable = last;  // everything up to here must survive
    const int mode = static_cast<int>(Rand(4));
    const int count = 10 + static_cast<int>(Rand(60));
    if (mode <= 1) env.DeactivateAfter(Rand(mode == 0 ? 60 : 400));
    for (int i = 0; i < count; i++) {
      if (mode == 2 && OneIn(40)) env.SetFilesystemActive(false);
      if (OneIn(25)) {
        CompactOptions co;
        co.retention = KeepLatestPolicy();
        co.shard = OneIn(2) ? -1 : static_cast<int>(Rand(options_.page_count));
        if (!store->Compact(co).ok()) break;
      }
      if (OneIn(30)) {
        if (!store->Sync().ok()) break;
        durable = last + batches.size();
      }
      WriteBatch b = RandomBatch(last + batches.size() + 1);
      WriteOptions wo;
      wo.sync = OneIn(4);
      wo.flush = OneIn(4);  // reaches the OS, so a crash can tear it
      SequenceNumber seq = 0;
      batches.push_back(b);
      Status s = store->Write(wo, b, &seq);
      if (!s.ok()) {
        ASSERT_TRUE(s.IsIOError()) << s.ToString();
        break;
      }
      ASSERT_EQ(seq, last + batches.size());
      if (wo.sync) durable = seq;
      // Hand buffered writes to the "OS" now and then, so that a crash finds unsynced bytes
      // in the page files for DropUnsyncedData(Randomly) to tear.
      if (OneIn(3) && !store->Flush().ok()) break;
    }
    const bool clean = mode == 3;
    if (!clean && env.IsFilesystemActive()) env.SetFilesystemActive(false);
    store.reset();
    if (clean) {
      durable = last + batches.size();
      ASSERT_OK(env.DropUnsyncedData());
    } else {
      env.SetFilesystemActive(true);
      if (OneIn(2)) {
        ASSERT_OK(env.DropUnsyncedData());
      } else {
        ASSERT_OK(env.DropUnsyncedDataRandomly(rng_));
      }
    }
    options_.env = nullptr;

    // Recover with a fresh view of the disk.
    kvtest::FaultInjectionEnv env2;
    env2.SkipRealSyncs(true);
    options_.env = &env2;
    ASSERT_OK(OpenPageStore(options_, dir_.path(), &store));
    const SequenceNumber recovered = store->LastSequence();
    ASSERT_GE(recovered, durable) << "a durable batch was lost (mode " << mode << ")";
    ASSERT_LE(recovered, last + batches.size());
    State want = state;
    for (SequenceNumber s = last + 1; s <= recovered; s++) Apply(batches[s - last - 1], &want);
    State got = ReadAll(store.get());
    ASSERT_TRUE(got == want) << "recovered " << recovered << " of " << last + batches.size()
                             << " (durable " << durable << ", mode " << mode
                             << "):" << DescribeDiff(got, want);
    // The recovered store takes writes again, numbered on from where it ends.
    WriteBatch b = RandomBatch(recovered + 1);
    SequenceNumber seq = 0;
    ASSERT_OK(store->Write(WriteOptions(), b, &seq));
    ASSERT_EQ(seq, recovered + 1);
    Apply(b, &want);
    store.reset();
    options_.env = nullptr;
    state = want;
    last = seq;
  }
}

INSTANTIATE_TEST_SUITE_P(Seeds, CrashTest, ::testing::Range(0, 16));

// Several writers at once; the crash lands wherever the mutation count runs out. Batch
// sequences are learnt back from the store: every batch writes fresh keys only, so a
// surviving key's single version names its batch's sequence.
TEST(CrashConcurrentTest, SurvivorsAreAPrefix) {
  constexpr int kIterations = 10, kThreads = 3, kBatchesPerThread = 40;
  for (int iter = 0; iter < kIterations; iter++) {
    SCOPED_TRACE("iteration " + std::to_string(iter));
    kvtest::ScopedTempDir dir("kv-crash-mt");
    std::mt19937_64 rng(iter + 1000);
    kvtest::FaultInjectionEnv env;
    env.SkipRealSyncs(true);
    Options options;
    options.env = &env;
    options.page_count = 5;
    options.background_compaction = false;
    std::unique_ptr<Store> store;
    ASSERT_OK(OpenPageStore(options, dir.path(), &store));
    env.DeactivateAfter(20 + rng() % 300);

    struct Attempt {
      std::vector<std::string> keys;
      bool acked = false;
      bool synced = false;
      SequenceNumber seq = 0;
    };
    std::vector<std::vector<Attempt>> attempts(kThreads);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; t++) {
      threads.emplace_back([&, t] {
        std::mt19937_64 trng(iter * 100 + t);
        for (int i = 0; i < kBatchesPerThread; i++) {
          Attempt a;
          WriteBatch b;
          const int n = 1 + static_cast<int>(trng() % 8);
          for (int j = 0; j < n; j++) {
            a.keys.push_back("t" + std::to_string(t) + "/b" + std::to_string(i) + "/" +
                             std::to_string(j));
            b.Put(a.keys.back(), std::string(trng() % 500, 'v'));
          }
          b.Put("t" + std::to_string(t) + "/last", std::to_string(i));
          WriteOptions wo;
          wo.sync = trng() % 3 == 0;
          attempts[t].push_back(a);
          Status s = store->Write(wo, b, &attempts[t].back().seq);
          if (!s.ok()) break;
          attempts[t].back().acked = true;
          attempts[t].back().synced = wo.sync;
          if (trng() % 3 == 0 && !store->Flush().ok()) break;
        }
      });
    }
    for (auto& th : threads) th.join();
    env.SetFilesystemActive(false);
    store.reset();
    env.SetFilesystemActive(true);
    if (iter % 2 == 0) {
      ASSERT_OK(env.DropUnsyncedData());
    } else {
      ASSERT_OK(env.DropUnsyncedDataRandomly(rng));
    }

    kvtest::FaultInjectionEnv env2;
    env2.SkipRealSyncs(true);
    options.env = &env2;
    ASSERT_OK(OpenPageStore(options, dir.path(), &store));
    const SequenceNumber recovered = store->LastSequence();
    std::set<SequenceNumber> surviving;
    for (int t = 0; t < kThreads; t++) {
      int survivors = 0;
      bool gap = false;
      for (size_t i = 0; i < attempts[t].size(); i++) {
        const Attempt& a = attempts[t][i];
        int present = 0;
        std::set<SequenceNumber> seqs;
        for (const std::string& k : a.keys) {
          std::vector<VersionInfo> v;
          ASSERT_OK(store->Versions(k, &v));
          if (v.empty()) continue;
          ASSERT_EQ(v.size(), 1u) << k;
          present++;
          seqs.insert(v[0].sequence);
        }
        ASSERT_TRUE(present == 0 || present == static_cast<int>(a.keys.size()))
            << "thread " << t << " batch " << i << " torn: " << present << " of " << a.keys.size()
            << " keys";
        if (a.synced) {
          ASSERT_GT(present, 0) << "synced batch " << t << "/" << i << " lost";
        }
        if (present == 0) {
          gap = true;
          if (a.acked) {
            ASSERT_GT(a.seq, recovered) << "batch below LastSequence lost";
          }
          continue;
        }
        ASSERT_FALSE(gap) << "thread " << t << " batch " << i << " survived a lost one";
        ASSERT_EQ(seqs.size(), 1u);
        if (a.acked) {
          ASSERT_EQ(*seqs.begin(), a.seq);
        }
        ASSERT_TRUE(surviving.insert(*seqs.begin()).second) << "sequence reused";
        survivors++;
      }
      std::string last_value;
      Status s = store->Get(ReadOptions(), "t" + std::to_string(t) + "/last", &last_value);
      if (survivors == 0) {
        ASSERT_TRUE(s.IsNotFound()) << s.ToString();
      } else {
        ASSERT_OK(s);
        ASSERT_EQ(last_value, std::to_string(survivors - 1));
      }
    }
    // Survivors are exactly the sequences 1..LastSequence.
    ASSERT_EQ(surviving.size(), recovered);
    if (!surviving.empty()) {
      ASSERT_EQ(*surviving.rbegin(), recovered);
    }
    store.reset();
  }
}

// A synced write survives even when the directory entries that were never synced vanish.
TEST(CrashDirTest, SyncedWriteSurvivesLostDirectoryEntries) {
  kvtest::ScopedTempDir dir("kv-crash-dir");
  kvtest::FaultInjectionEnv env;
  Options options;
  options.env = &env;
  options.page_count = 3;
  options.background_compaction = false;
  std::unique_ptr<Store> store;
  ASSERT_OK(OpenPageStore(options, dir.path(), &store));
  WriteOptions sync;
  sync.sync = true;
  ASSERT_OK(store->Put(sync, "a", "1"));
  for (int i = 0; i < 50; i++) ASSERT_OK(store->Put(WriteOptions(), "b", std::to_string(i)));
  ASSERT_OK(store->Compact(CompactOptions{KeepLatestPolicy(), -1}));
  ASSERT_OK(store->Put(sync, "c", "3"));
  EXPECT_TRUE(env.FilesCreatedSinceDirSync().empty())
      << "not durable: " << env.FilesCreatedSinceDirSync().front();
  env.SetFilesystemActive(false);
  store.reset();
  env.SetFilesystemActive(true);
  ASSERT_OK(env.RemoveFilesCreatedSinceDirSync());
  ASSERT_OK(env.DropUnsyncedData());
  options.env = nullptr;
  ASSERT_OK(OpenPageStore(options, dir.path(), &store));
  std::string v;
  ASSERT_OK(store->Get(ReadOptions(), "a", &v));
  EXPECT_EQ(v, "1");
  ASSERT_OK(store->Get(ReadOptions(), "b", &v));
  EXPECT_EQ(v, "49");
  ASSERT_OK(store->Get(ReadOptions(), "c", &v));
  EXPECT_EQ(v, "3");
}

// A crash anywhere inside a compaction loses nothing that was durable before it.
TEST(CrashCompactionTest, CrashDuringCompactionLosesNothing) {
  kvtest::ScopedTempDir dir("kv-crash-compact");
  Options options;
  options.page_count = 3;
  options.background_compaction = false;
  State want;
  {
    std::unique_ptr<Store> store;
    ASSERT_OK(OpenPageStore(options, dir.Sub("base"), &store));
    std::mt19937_64 rng(5);
    for (int i = 0; i < 600; i++) {
      std::string k = "k" + std::to_string(rng() % 60);
      if (rng() % 5 == 0) {
        ASSERT_OK(store->Delete(WriteOptions(), k));
        want.erase(k);
      } else {
        std::string v(rng() % 400, static_cast<char>('a' + i % 26));
        ASSERT_OK(store->Put(WriteOptions(), k, v));
        want[k] = v;
      }
    }
  }
  // How many mutations does a whole compaction make?
  uint64_t total = 0;
  {
    std::filesystem::copy(dir.Sub("base"), dir.Sub("probe"));
    kvtest::FaultInjectionEnv env;
    options.env = &env;
    std::unique_ptr<Store> store;
    ASSERT_OK(OpenPageStore(options, dir.Sub("probe"), &store));
    // Count mutations by arming a deactivation far away and reading how far it got.
    const auto before = env.counters();
    ASSERT_OK(store->Compact(CompactOptions{KeepLatestPolicy(), -1}));
    const auto after = env.counters();
    total = (after.appends - before.appends) + (after.syncs - before.syncs) +
            (after.renames - before.renames) + (after.dir_syncs - before.dir_syncs) + 6;
    store.reset();
    options.env = nullptr;
  }
  std::mt19937_64 rng(17);
  for (uint64_t point = 0; point <= total; point += 1 + total / 25) {
    SCOPED_TRACE("crash after " + std::to_string(point) + " of ~" + std::to_string(total));
    const std::string trial = dir.Sub("trial" + std::to_string(point));
    std::filesystem::copy(dir.Sub("base"), trial);
    kvtest::FaultInjectionEnv env;
    options.env = &env;
    std::unique_ptr<Store> store;
    ASSERT_OK(OpenPageStore(options, trial, &store));
    env.DeactivateAfter(point);
    store->Compact(CompactOptions{KeepLatestPolicy(), -1}).IgnoreError();
    env.SetFilesystemActive(false);
    store.reset();
    env.SetFilesystemActive(true);
    ASSERT_OK(point % 2 ? env.DropUnsyncedData() : env.DropUnsyncedDataRandomly(rng));
    options.env = nullptr;
    ASSERT_OK(OpenPageStore(options, trial, &store));
    EXPECT_EQ(store->LastSequence(), 600u);
    State got = ReadAll(store.get());
    ASSERT_TRUE(got == want) << DescribeDiff(got, want);
    store.reset();
    std::filesystem::remove_all(trial);
  }
}

// Compaction drops tombstones nobody needs. If it dropped every record a page held of the
// batch at the durable watermark W while a newer batch existed (written just after W moved),
// a crash losing that newer batch would leave W's batch as the newest, found in fewer pages
// than it spans, and recovery would cut it as torn: durable data lost. Compaction keeps W's
// batch whole (regression test).
TEST(CrashCompactionTest, WatermarkBatchSurvivesCompactionAndALostNewerBatch) {
  // Writes one batch from inside the next superblock rename: between the watermark's move
  // and the compaction that follows it.
  class WriteOnWatermarkEnv : public kvtest::FaultInjectionEnv {
   public:
    Status Rename(const std::string& from, const std::string& to) override {
      Status s = FaultInjectionEnv::Rename(from, to);
      if (s.ok() && to.ends_with("/SUPERBLOCK") && store != nullptr) {
        Store* target = std::exchange(store, nullptr);
        s = target->Put(WriteOptions(), key, "newer");
      }
      return s;
    }
    Store* store = nullptr;
    std::string key;
  };
  kvtest::ScopedTempDir dir("kv-crash-watermark-batch");
  WriteOnWatermarkEnv env;
  Options options;
  options.env = &env;
  options.page_count = 4;
  options.background_compaction = false;
  // a on page A; b and c on page B; d on a third page.
  auto page = [](const std::string& k) { return PageForKey(*WholeKeySharder(), k, 4); };
  std::string a = "key0", b, c, d;
  for (int i = 1; b.empty() || c.empty() || d.empty(); ++i) {
    std::string k = "key" + std::to_string(i);
    if (b.empty() && page(k) != page(a)) {
      b = k;
    } else if (!b.empty() && c.empty() && page(k) == page(b)) {
      c = k;
    } else if (!b.empty() && d.empty() && page(k) != page(a) && page(k) != page(b)) {
      d = k;
    }
  }
  std::unique_ptr<Store> store;
  ASSERT_OK(OpenPageStore(options, dir.path(), &store));
  WriteBatch first, both;
  first.Put(b, "b");
  first.Put(c, "c");
  ASSERT_OK(store->Write(WriteOptions(), first));
  both.Put(a, "a");  // spans pages A and B; on B only a tombstone
  both.Delete(b);
  ASSERT_OK(store->Write(WriteOptions(), both));
  ASSERT_OK(store->Delete(WriteOptions(), c));  // W's batch: a tombstone on B
  ASSERT_OK(store->Sync());
  env.store = store.get();
  env.key = d;
  ASSERT_OK(store->Compact(CompactOptions{KeepLatestPolicy(), static_cast<int>(page(b))}));
  ASSERT_EQ(env.store, nullptr) << "the newer batch was not written";
  // Crash: the newer batch was never synced.
  env.SetFilesystemActive(false);
  store.reset();
  env.SetFilesystemActive(true);
  ASSERT_OK(env.DropUnsyncedData());

  ASSERT_OK(OpenPageStore(options, dir.path(), &store));
  EXPECT_EQ(store->LastSequence(), 3u);
  std::string v;
  ASSERT_OK(store->Get(ReadOptions(), a, &v));
  EXPECT_EQ(v, "a");
  EXPECT_TRUE(store->Get(ReadOptions(), b, &v).IsNotFound());
  EXPECT_TRUE(store->Get(ReadOptions(), c, &v).IsNotFound());
  EXPECT_TRUE(store->Get(ReadOptions(), d, &v).IsNotFound());
}

}  // namespace
}  // namespace kv

// Compaction: each retention policy keeps what it promises (and live snapshots keep what they
// see), dead bytes are reclaimed on disk and in Stats, reads and writes from other threads
// stay correct meanwhile, and everything survives a reopen.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "kv/store.h"
#include "tests/support/fault_env.h"
#include "tests/support/test_util.h"

namespace kv {
namespace {

using kvtest::RandomBytes;

class CompactionTest : public ::testing::Test {
 protected:
  CompactionTest() {
    options_.page_count = 4;
    options_.background_compaction = false;
  }
  void Open() {
    store_.reset();
    ASSERT_OK(OpenPageStore(options_, dir_.path(), &store_));
  }
  SequenceNumber Put(std::string_view k, std::string_view v) {
    SequenceNumber seq = 0;
    WriteBatch b;
    b.Put(k, v);
    EXPECT_OK(store_->Write(WriteOptions(), b, &seq));
    return seq;
  }
  SequenceNumber Del(std::string_view k) {
    SequenceNumber seq = 0;
    WriteBatch b;
    b.Delete(k);
    EXPECT_OK(store_->Write(WriteOptions(), b, &seq));
    return seq;
  }
  std::string Get(std::string_view k, SequenceNumber at = kMaxSequence,
                  const Snapshot* snap = nullptr) {
    ReadOptions ro;
    ro.sequence = at;
    ro.snapshot = snap;
    std::string v;
    Status s = store_->Get(ro, k, &v);
    if (s.IsNotFound()) return "NOT_FOUND";
    if (!s.ok()) return "ERROR: " + s.ToString();
    return v;
  }
  std::vector<SequenceNumber> VersionSeqs(std::string_view k) {
    std::vector<VersionInfo> v;
    EXPECT_OK(store_->Versions(k, &v));
    std::vector<SequenceNumber> out;
    for (const auto& x : v) out.push_back(x.sequence);
    return out;
  }
  void Compact(std::shared_ptr<const RetentionPolicy> policy, int shard = -1) {
    ASSERT_OK(store_->Compact(CompactOptions{std::move(policy), shard}));
  }
  uint64_t PageFileBytes() {
    uint64_t total = 0;
    for (const auto& e : std::filesystem::directory_iterator(dir_.path())) {
      const std::string name = e.path().filename().string();
      if (name.starts_with("page-") && name.ends_with(".kv")) total += e.file_size();
    }
    return total;
  }

  kvtest::ScopedTempDir dir_{"kv-compact"};
  Options options_;
  std::unique_ptr<Store> store_;
};

TEST_F(CompactionTest, KeepLatestDropsHistoryAndDeletedKeys) {
  ASSERT_NO_FATAL_FAILURE(Open());
  std::vector<SequenceNumber> a;
  for (int i = 0; i < 5; i++) a.push_back(Put("a", "a" + std::to_string(i)));
  Put("gone", "x");
  const SequenceNumber del = Del("gone");
  Put("b", "b0");
  Compact(KeepLatestPolicy());
  EXPECT_EQ(VersionSeqs("a"), std::vector<SequenceNumber>{a[4]});
  EXPECT_TRUE(VersionSeqs("gone").empty());
  EXPECT_EQ(Get("a"), "a4");
  EXPECT_EQ(Get("a", a[2]), "NOT_FOUND");
  EXPECT_EQ(Get("gone"), "NOT_FOUND");
  EXPECT_EQ(Get("gone", del - 1), "NOT_FOUND");
  EXPECT_EQ(Get("b"), "b0");
  const ShardStats t = store_->Stats().Total();
  EXPECT_EQ(t.records, 2u);
  EXPECT_EQ(t.live_keys, 2u);
  EXPECT_EQ(t.tombstones, 0u);
  EXPECT_EQ(t.garbage_bytes, 0u);
  EXPECT_GE(t.compactions, 1u);
  // The sequence numbers go on: no reuse of the dropped ones.
  const SequenceNumber last = store_->LastSequence();
  EXPECT_EQ(Put("c", "c"), last + 1);
}

TEST_F(CompactionTest, KeepLastN) {
  ASSERT_NO_FATAL_FAILURE(Open());
  std::vector<SequenceNumber> k;
  k.push_back(Put("k", "v1"));
  k.push_back(Put("k", "v2"));
  k.push_back(Del("k"));
  k.push_back(Put("k", "v4"));
  k.push_back(Put("k", "v5"));
  const SequenceNumber two1 = Put("two", "t1");
  const SequenceNumber two2 = Put("two", "t2");
  Compact(KeepLastNPolicy(3));
  EXPECT_EQ(VersionSeqs("k"), (std::vector<SequenceNumber>{k[4], k[3], k[2]}));
  EXPECT_EQ(VersionSeqs("two"), (std::vector<SequenceNumber>{two2, two1}));
  EXPECT_EQ(Get("k"), "v5");
  EXPECT_EQ(Get("k", k[3]), "v4");
  EXPECT_EQ(Get("k", k[2]), "NOT_FOUND");
  EXPECT_EQ(Get("k", k[1]), "NOT_FOUND");  // dropped
  EXPECT_EQ(Get("two", two1), "t1");
  std::vector<VersionInfo> v;
  ASSERT_OK(store_->Versions("k", &v));
  ASSERT_EQ(v.size(), 3u);
  EXPECT_TRUE(v[2].deleted);
  EXPECT_EQ(v[0].value_size, 2u);

  Compact(KeepLastNPolicy(1));
  EXPECT_EQ(VersionSeqs("k"), std::vector<SequenceNumber>{k[4]});
  EXPECT_EQ(VersionSeqs("two"), std::vector<SequenceNumber>{two2});
  ASSERT_NO_FATAL_FAILURE(Open());
  EXPECT_EQ(VersionSeqs("k"), std::vector<SequenceNumber>{k[4]});
  EXPECT_EQ(Get("k"), "v5");
}

TEST_F(CompactionTest, KeepVisibleAt) {
  ASSERT_NO_FATAL_FAILURE(Open());
  const SequenceNumber s1 = Put("k", "v1");
  const SequenceNumber s2 = Put("k", "v2");
  const SequenceNumber old = Put("old", "o1");
  const SequenceNumber pin = Put("filler", "f");  // a reader at `pin` sees v2 and o1
  const SequenceNumber s3 = Put("k", "v3");
  const SequenceNumber s4 = Put("k", "v4");
  Compact(KeepVisibleAtPolicy(pin));
  EXPECT_EQ(VersionSeqs("k"), (std::vector<SequenceNumber>{s4, s3, s2}));
  EXPECT_EQ(VersionSeqs("old"), std::vector<SequenceNumber>{old});
  EXPECT_EQ(Get("k", pin), "v2");
  EXPECT_EQ(Get("k", s3), "v3");
  EXPECT_EQ(Get("k", s1), "NOT_FOUND");
  EXPECT_EQ(Get("old", pin), "o1");
  EXPECT_EQ(Get("k"), "v4");
  ASSERT_NO_FATAL_FAILURE(Open());
  EXPECT_EQ(Get("k", pin), "v2");
  EXPECT_EQ(VersionSeqs("k"), (std::vector<SequenceNumber>{s4, s3, s2}));
}

TEST_F(CompactionTest, LiveSnapshotsAreHonoured) {
  ASSERT_NO_FATAL_FAILURE(Open());
  Put("k", "v1");
  Put("dead", "alive once");
  auto snap = store_->GetSnapshot();
  Put("k", "v2");
  Del("dead");
  Put("k", "v3");
  auto snap2 = store_->GetSnapshot();
  Put("k", "v4");
  Compact(KeepLatestPolicy());
  EXPECT_EQ(Get("k", kMaxSequence, snap.get()), "v1");
  EXPECT_EQ(Get("k", kMaxSequence, snap2.get()), "v3");
  EXPECT_EQ(Get("k"), "v4");
  EXPECT_EQ(Get("dead", kMaxSequence, snap.get()), "alive once");
  // Keeping what a snapshot sees must not resurrect a deleted key.
  EXPECT_EQ(Get("dead"), "NOT_FOUND");
  {
    auto it = store_->NewIterator(ReadOptions(), "");
    int n = 0;
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      EXPECT_NE(it->key(), "dead");
      n++;
    }
    EXPECT_EQ(n, 1);
    ReadOptions ro;
    ro.snapshot = snap.get();
    auto it2 = store_->NewIterator(ro, "");
    std::map<std::string, std::string> seen;
    for (it2->SeekToFirst(); it2->Valid(); it2->Next())
      seen[std::string(it2->key())] = it2->value();
    EXPECT_EQ(seen, (std::map<std::string, std::string>{{"dead", "alive once"}, {"k", "v1"}}));
  }
  EXPECT_EQ(VersionSeqs("k").size(), 3u);  // v4, and what snap2 and snap see

  snap.reset();
  Compact(KeepLatestPolicy());
  EXPECT_EQ(Get("k", kMaxSequence, snap2.get()), "v3");
  EXPECT_EQ(VersionSeqs("k").size(), 2u);
  EXPECT_TRUE(VersionSeqs("dead").empty() || Get("dead") == "NOT_FOUND");
  EXPECT_EQ(Get("dead"), "NOT_FOUND");
  snap2.reset();
  Compact(KeepLatestPolicy());
  EXPECT_EQ(VersionSeqs("k").size(), 1u);
  EXPECT_LE(VersionSeqs("dead").size(), 1u);  // at most the tombstone (see the test above)
  ASSERT_NO_FATAL_FAILURE(Open());
  EXPECT_EQ(Get("k"), "v4");
  EXPECT_EQ(Get("dead"), "NOT_FOUND");
}

TEST_F(CompactionTest, DeadBytesAreReclaimed) {
  ASSERT_NO_FATAL_FAILURE(Open());
  std::mt19937_64 rng(1);
  std::map<std::string, std::string> want;
  for (int round = 0; round < 5; round++) {
    for (int i = 0; i < 150; i++) {
      std::string k = "key" + std::to_string(i);
      want[k] = RandomBytes(rng, 3000);  // incompressible
      Put(k, want[k]);
    }
  }
  for (int i = 0; i < 30; i++) {
    Del("key" + std::to_string(i));
    want.erase("key" + std::to_string(i));
  }
  ASSERT_OK(store_->Sync());  // so that the page files hold every byte
  const StoreStats before = store_->Stats();
  const ShardStats tb = before.Total();
  EXPECT_GT(tb.garbage_bytes, tb.live_bytes * 3);
  EXPECT_EQ(tb.live_keys, 120u);
  const uint64_t disk_before = PageFileBytes();
  EXPECT_GE(disk_before, 150u * 5 * 3000);

  // One shard first: only it shrinks.
  Compact(KeepLatestPolicy(), 1);
  const StoreStats mid = store_->Stats();
  for (size_t s = 0; s < mid.shards.size(); s++) {
    if (s == 1) {
      EXPECT_LT(mid.shards[s].file_bytes, before.shards[s].file_bytes / 3);
      // Whether tombstones stay is KeepLatestDropsHistoryAndDeletedKeys' business.
      EXPECT_LT(mid.shards[s].garbage_bytes, 30u * 100);
      EXPECT_EQ(mid.shards[s].compactions, before.shards[s].compactions + 1);
    } else {
      EXPECT_EQ(mid.shards[s].file_bytes, before.shards[s].file_bytes);
      EXPECT_EQ(mid.shards[s].compactions, before.shards[s].compactions);
    }
  }

  Compact(KeepLatestPolicy());
  const ShardStats ta = store_->Stats().Total();
  EXPECT_LT(ta.garbage_bytes, 30u * 100);  // at most the 30 tombstones
  EXPECT_EQ(ta.live_keys, 120u);
  EXPECT_GE(ta.records, 120u);
  EXPECT_LE(ta.records, 150u);
  EXPECT_EQ(ta.live_bytes, tb.live_bytes);
  EXPECT_LT(ta.file_bytes, tb.file_bytes / 4);
  const uint64_t disk_after = PageFileBytes();
  EXPECT_LT(disk_after, disk_before / 4);
  EXPECT_GE(disk_after, 120u * 3000);
  for (const auto& [k, v] : want) EXPECT_TRUE(Get(k) == v) << k;
  ASSERT_NO_FATAL_FAILURE(Open());
  EXPECT_EQ(store_->Stats().Total().records, ta.records);
  EXPECT_LT(PageFileBytes(), disk_before / 4);
  for (const auto& [k, v] : want) EXPECT_TRUE(Get(k) == v) << k;
}

TEST_F(CompactionTest, LastSequenceSurvivesDroppedNewestRecord) {
  ASSERT_NO_FATAL_FAILURE(Open());
  Put("a", "1");
  Put("b", "2");
  const SequenceNumber last = Del("b");  // the newest record is a tombstone ...
  Compact(KeepLatestPolicy());           // ... which compaction drops
  EXPECT_EQ(store_->LastSequence(), last);
  ASSERT_NO_FATAL_FAILURE(Open());
  EXPECT_EQ(store_->LastSequence(), last);
  EXPECT_EQ(Put("c", "3"), last + 1);
  // The same without the hint files that a clean close writes.
  store_.reset();
  for (const auto& e : std::filesystem::directory_iterator(dir_.path())) {
    if (e.path().extension() == ".hint") std::filesystem::remove(e.path());
  }
  ASSERT_NO_FATAL_FAILURE(Open());
  EXPECT_EQ(store_->LastSequence(), last + 1);
  Del("c");
  Compact(KeepLatestPolicy());
  store_.reset();
  for (const auto& e : std::filesystem::directory_iterator(dir_.path())) {
    if (e.path().extension() == ".hint") std::filesystem::remove(e.path());
  }
  ASSERT_NO_FATAL_FAILURE(Open());
  EXPECT_EQ(store_->LastSequence(), last + 2);
}

// A compacted page must recover by replaying its records when no index hint is current
// (a crash after compaction, before the clean close that writes hints).
TEST_F(CompactionTest, CompactedPageReplaysWithoutHints) {
  options_.page_count = 1;
  ASSERT_NO_FATAL_FAILURE(Open());
  WriteBatch b;
  for (int i = 0; i < 5; i++) b.Put("batch" + std::to_string(i), "v" + std::to_string(i));
  ASSERT_OK(store_->Write(WriteOptions(), b));
  Put("batch0", "newer");  // leaves garbage, so that compaction rewrites the page
  Put("other", "x");
  Compact(KeepLatestPolicy());
  store_.reset();
  for (const auto& e : std::filesystem::directory_iterator(dir_.path())) {
    if (e.path().extension() == ".hint") std::filesystem::remove(e.path());
  }
  ASSERT_NO_FATAL_FAILURE(Open());
  EXPECT_EQ(Get("batch0"), "newer");
  for (int i = 1; i < 5; i++) EXPECT_EQ(Get("batch" + std::to_string(i)), "v" + std::to_string(i));
  EXPECT_EQ(Get("other"), "x");
  EXPECT_EQ(store_->LastSequence(), 3u);
}

TEST_F(CompactionTest, EmptyAndRepeatedCompactions) {
  ASSERT_NO_FATAL_FAILURE(Open());
  Compact(KeepLatestPolicy());
  Put("k", "v");
  Compact(KeepLatestPolicy());
  const uint64_t bytes = store_->Stats().Total().file_bytes;
  Compact(KeepLatestPolicy());
  Compact(nullptr);  // Options::retention, itself KeepLatest by default
  EXPECT_EQ(store_->Stats().Total().file_bytes, bytes);
  EXPECT_EQ(Get("k"), "v");
  EXPECT_FALSE(store_->Compact(CompactOptions{KeepLatestPolicy(), 99}).ok());
}

TEST_F(CompactionTest, OptionsRetentionIsTheDefault) {
  options_.retention = KeepLastNPolicy(2);
  ASSERT_NO_FATAL_FAILURE(Open());
  for (int i = 0; i < 5; i++) Put("k", std::to_string(i));
  Compact(nullptr);
  EXPECT_EQ(VersionSeqs("k").size(), 2u);
}

// Readers and writers on other threads see a consistent store while compactions run.
TEST_F(CompactionTest, ConcurrentReadsAndWrites) {
  options_.page_count = 3;
  ASSERT_NO_FATAL_FAILURE(Open());
  constexpr int kWriters = 2, kKeys = 40, kRounds = 300;
  for (int w = 0; w < kWriters; w++) {
    for (int k = 0; k < kKeys; k++) {
      Put("w" + std::to_string(w) + "/" + std::to_string(k), std::string(200, 'x') + "0");
    }
  }
  std::atomic<bool> done{false};
  std::atomic<int> compactions{0};
  std::vector<std::thread> threads;
  std::vector<std::map<std::string, std::string>> finals(kWriters);
  for (int w = 0; w < kWriters; w++) {
    threads.emplace_back([&, w] {
      std::mt19937_64 rng(w);
      auto& mine = finals[w];
      for (int k = 0; k < kKeys; k++) {
        mine["w" + std::to_string(w) + "/" + std::to_string(k)] = std::string(200, 'x') + "0";
      }
      for (int r = 1; r <= kRounds; r++) {
        const std::string key = "w" + std::to_string(w) + "/" + std::to_string(rng() % kKeys);
        const std::string value = std::string(200 + rng() % 300, 'x') + std::to_string(r);
        WriteBatch b;
        b.Put(key, value);
        Status s = store_->Write(WriteOptions(), b);
        EXPECT_TRUE(s.ok()) << s.ToString();
        mine[key] = value;
        std::string got;
        s = store_->Get(ReadOptions(), key, &got);
        EXPECT_TRUE(s.ok() && got == value) << key << ": " << s.ToString();
        // Another of my keys, unchanged by anyone else.
        const std::string other = "w" + std::to_string(w) + "/" + std::to_string(rng() % kKeys);
        s = store_->Get(ReadOptions(), other, &got);
        EXPECT_TRUE(s.ok() && got == mine[other]) << other << ": " << s.ToString();
      }
    });
  }
  threads.emplace_back([&] {  // scans: every key present, values well formed
    while (!done.load()) {
      auto snap = store_->GetSnapshot();
      ReadOptions ro;
      ro.snapshot = snap.get();
      auto it = store_->NewIterator(ro, "w");
      int n = 0;
      std::string prev;
      for (it->SeekToFirst(); it->Valid(); it->Next(), n++) {
        EXPECT_LT(prev, it->key());
        prev = std::string(it->key());
        EXPECT_TRUE(it->value().starts_with(std::string(200, 'x')));
      }
      EXPECT_TRUE(it->status().ok()) << it->status().ToString();
      EXPECT_EQ(n, kWriters * kKeys);
      // A snapshot read agrees with itself after compactions ran.
      std::string v1, v2;
      EXPECT_OK(store_->Get(ro, "w0/0", &v1));
      EXPECT_OK(store_->Get(ro, "w0/0", &v2));
      EXPECT_EQ(v1, v2);
    }
  });
  threads.emplace_back([&] {  // compactions with every policy
    int i = 0;
    while (!done.load()) {
      std::shared_ptr<const RetentionPolicy> p = i % 3 == 0 ? KeepLatestPolicy()
                                                 : i % 3 == 1
                                                     ? KeepLastNPolicy(2)
                                                     : KeepVisibleAtPolicy(store_->LastSequence());
      Status s = store_->Compact(CompactOptions{p, i % 4 == 3 ? -1 : i % 3});
      EXPECT_TRUE(s.ok()) << s.ToString();
      compactions++;
      i++;
    }
  });
  for (int w = 0; w < kWriters; w++) threads[w].join();
  // Let at least a few compactions overlap the writes, then stop.
  while (compactions.load() < 3) std::this_thread::yield();
  done = true;
  for (size_t t = kWriters; t < threads.size(); t++) threads[t].join();

  auto check = [&] {
    for (const auto& mine : finals) {
      for (const auto& [k, v] : mine) EXPECT_EQ(Get(k), v) << k;
    }
  };
  check();
  Compact(KeepLatestPolicy());
  check();
  EXPECT_EQ(store_->Stats().Total().garbage_bytes, 0u);
  ASSERT_NO_FATAL_FAILURE(Open());
  check();
  EXPECT_EQ(store_->Stats().Total().records, static_cast<uint64_t>(kWriters * kKeys));
}

// Background compaction copies a page only when that reclaims something: with a retention
// that keeps every version (a file system's history) it leaves the page alone instead of
// rewriting it for nothing; with one that keeps only the newest it reclaims the garbage.
TEST_F(CompactionTest, BackgroundCompactionCopiesOnlyWhatShrinks) {
  std::mt19937_64 rng(3);
  options_.page_count = 1;
  options_.background_compaction = true;
  options_.compaction_min_garbage_bytes = 64 << 10;
  options_.retention = KeepLastNPolicy(1000);
  Open();
  auto overwrite_all = [&] {
    for (int round = 0; round < 6; ++round) {
      for (int k = 0; k < 64; ++k) Put("key" + std::to_string(k), RandomBytes(rng, 4096));
    }
  };
  auto wait_for_checks = [] { std::this_thread::sleep_for(std::chrono::milliseconds(2600)); };
  overwrite_all();
  wait_for_checks();
  EXPECT_EQ(store_->Stats().shards[0].compactions, 0u);
  std::vector<VersionInfo> versions;
  ASSERT_OK(store_->Versions("key7", &versions));
  EXPECT_EQ(versions.size(), 6u);

  options_.retention = KeepLatestPolicy();
  Open();
  const uint64_t before = store_->Stats().shards[0].file_bytes;
  overwrite_all();
  for (int i = 0; i < 3 && store_->Stats().shards[0].compactions == 0; ++i) wait_for_checks();
  ShardStats after = store_->Stats().shards[0];
  EXPECT_GE(after.compactions, 1u);
  EXPECT_LT(after.file_bytes, before);
  ASSERT_OK(store_->Versions("key7", &versions));
  EXPECT_LT(versions.size(), 12u);
}

// Keeps only the newest version, like KeepLatestPolicy, and runs `during` on its first call:
// a write that lands while a compaction is under way.
class WritesDuringCompaction final : public RetentionPolicy {
 public:
  explicit WritesDuringCompaction(std::function<void()> during) : during_(std::move(during)) {}
  void Select(std::string_view, std::span<const VersionInfo>, std::vector<bool>*) const override {
    if (during_) std::exchange(during_, nullptr)();
  }

 private:
  mutable std::function<void()> during_;
};

// The versions a compaction keeps because newer ones were written while it ran are garbage
// once it is done: background compaction reclaims them without waiting for more writes,
// rather than leaving the page at its bloated size until the next burst or a reopen.
TEST_F(CompactionTest, BackgroundCompactionReclaimsWhatWritesDuringACompactionReplaced) {
  std::mt19937_64 rng(5);
  options_.page_count = 1;
  options_.background_compaction = true;
  options_.compaction_min_garbage_bytes = 64 << 10;
  Open();
  auto write_all = [&] {
    for (int k = 0; k < 64; ++k) Put("key" + std::to_string(k), RandomBytes(rng, 4096));
  };
  write_all();
  write_all();
  Compact(std::make_shared<WritesDuringCompaction>([&] {
    write_all();
    write_all();
  }));
  // The second round, kept, then the third and the fourth.
  const uint64_t bloated = store_->Stats().shards[0].file_bytes;
  EXPECT_GT(bloated, 3 * 64 * 4096u);
  for (int i = 0; i < 5 && store_->Stats().shards[0].file_bytes >= bloated; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1300));
  }
  const ShardStats after = store_->Stats().shards[0];
  EXPECT_LT(after.file_bytes, 64 * 4100u + (16 << 10)) << "was " << bloated;
  EXPECT_EQ(after.garbage_bytes, 0u);
}

}  // namespace
}  // namespace kv

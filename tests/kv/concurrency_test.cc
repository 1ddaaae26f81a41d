// Concurrency: eight threads share one store. Owners write, delete and read back keys only
// they touch; counter writers put one value into keys on several pages in one batch, and
// snapshot readers must never see such a batch torn; a maintenance thread compacts, syncs,
// flushes and reads stats meanwhile. Scripts run this binary under ThreadSanitizer
// (ctest label `concurrency`).
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "kv/store.h"
#include "tests/support/fault_env.h"
#include "tests/support/test_util.h"

namespace kv {
namespace {

constexpr int kOwners = 4;
constexpr int kCounterWriters = 2;
constexpr int kOwnerOps = 1000;
constexpr int kCounterBatches = 500;
constexpr int kOwnerKeys = 30;
constexpr int kCounterKeys = 8;

std::string OwnerKey(int t, int j) { return "own" + std::to_string(t) + "/" + std::to_string(j); }
std::string CounterKey(int i) { return "ctr/" + std::to_string(i); }

class ConcurrencyTest : public ::testing::Test {
 protected:
  ConcurrencyTest() {
    options_.page_count = 6;
    options_.background_compaction = true;  // the background thread joins in too
    options_.compaction_min_garbage_bytes = 32 << 10;
    options_.compaction_garbage_ratio = 0.3;
  }

  void RecordSequence(SequenceNumber s) {
    std::lock_guard<std::mutex> l(seq_mu_);
    sequences_.push_back(s);
  }

  // Reads the counter keys through `ro`; they must all hold one value (or all be absent).
  // Point reads are compared only at a pinned sequence (a snapshot or ReadOptions::sequence):
  // at the latest state each Get may see a newer batch. An iterator is always one view.
  void CheckCounters(const ReadOptions& ro, std::string* value_out) {
    const bool pinned = ro.snapshot != nullptr || ro.sequence != kMaxSequence;
    std::string first;
    bool first_found = false;
    auto it = store_->NewIterator(ro, "ctr/");
    int n = 0;
    for (it->SeekToFirst(); it->Valid(); it->Next(), n++) {
      if (n == 0) {
        first = std::string(it->value());
        first_found = true;
      }
      ASSERT_EQ(it->value(), first) << "torn batch seen by iterator at " << it->key();
    }
    ASSERT_TRUE(it->status().ok()) << it->status().ToString();
    ASSERT_EQ(n, first_found ? kCounterKeys : 0);
    if (pinned) {
      for (int i = 0; i < kCounterKeys; i++) {
        std::string v;
        Status s = store_->Get(ro, CounterKey(i), &v);
        ASSERT_TRUE(s.ok() || s.IsNotFound()) << s.ToString();
        ASSERT_EQ(s.ok(), first_found) << "torn batch: " << CounterKey(i);
        if (s.ok()) {
          ASSERT_EQ(v, first) << "torn batch: " << CounterKey(i);
        }
      }
    }
    if (value_out != nullptr) *value_out = first_found ? first : "";
  }

  void Owner(int t) {
    std::mt19937_64 rng(1000 + t);
    std::map<std::string, std::string> mine;
    for (int op = 0; op < kOwnerOps && !HasFatalFailure(); op++) {
      const std::string key = OwnerKey(t, static_cast<int>(rng() % kOwnerKeys));
      const int kind = static_cast<int>(rng() % 10);
      SequenceNumber seq = 0;
      WriteOptions wo;
      wo.sync = rng() % 10 == 0;
      if (kind < 4) {
        const std::string value =
            "t" + std::to_string(t) + "-" + std::to_string(op) + std::string(rng() % 2000, 'p');
        WriteBatch b;
        b.Put(key, value);
        ASSERT_OK(store_->Write(wo, b, &seq));
        mine[key] = value;
      } else if (kind < 5) {
        WriteBatch b;
        b.Delete(key);
        ASSERT_OK(store_->Write(wo, b, &seq));
        mine.erase(key);
      } else if (kind < 7) {
        // A batch over several of my keys (and so several pages).
        WriteBatch b;
        std::set<int> js;
        while (js.size() < 5) js.insert(static_cast<int>(rng() % kOwnerKeys));
        for (int j : js) {
          const std::string value = "t" + std::to_string(t) + "-b" + std::to_string(op);
          b.Put(OwnerKey(t, j), value);
          mine[OwnerKey(t, j)] = value;
        }
        ASSERT_OK(store_->Write(wo, b, &seq));
      } else if (kind < 9) {
        std::string v;
        Status s = store_->Get(ReadOptions(), key, &v);
        auto it = mine.find(key);
        if (it == mine.end()) {
          ASSERT_TRUE(s.IsNotFound()) << key << ": " << s.ToString();
        } else {
          ASSERT_TRUE(s.ok()) << key << ": " << s.ToString();
          ASSERT_EQ(v, it->second) << key;
        }
        continue;
      } else {
        // My whole prefix, in order, exactly as I left it.
        auto it = store_->NewIterator(ReadOptions(), "own" + std::to_string(t) + "/");
        auto want = mine.begin();
        for (it->SeekToFirst(); it->Valid(); it->Next(), ++want) {
          ASSERT_NE(want, mine.end()) << "extra key " << it->key();
          ASSERT_EQ(it->key(), want->first);
          ASSERT_EQ(it->value(), want->second);
        }
        ASSERT_TRUE(it->status().ok()) << it->status().ToString();
        ASSERT_EQ(want, mine.end());
        continue;
      }
      RecordSequence(seq);
      // Read my own write, and its version is the newest.
      std::vector<VersionInfo> versions;
      ASSERT_OK(store_->Versions(key, &versions));
      for (size_t i = 0; i + 1 < versions.size(); i++) {
        ASSERT_GT(versions[i].sequence, versions[i + 1].sequence);
      }
      if (kind < 4) {
        ASSERT_FALSE(versions.empty());
        ASSERT_EQ(versions[0].sequence, seq);
        ASSERT_FALSE(versions[0].deleted);
      } else if (kind == 4 && !versions.empty()) {
        // Compaction may drop a deleted key entirely; if not, the tombstone is newest.
        ASSERT_EQ(versions[0].sequence, seq);
        ASSERT_TRUE(versions[0].deleted);
      }
    }
    std::lock_guard<std::mutex> l(final_mu_);
    finals_.insert(mine.begin(), mine.end());
  }

  void CounterWriter(int t) {
    std::mt19937_64 rng(2000 + t);
    for (int i = 0; i < kCounterBatches && !HasFatalFailure(); i++) {
      const std::string value =
          std::to_string(next_counter_.fetch_add(1)) + "/" + std::string(rng() % 300, 'c');
      WriteBatch b;
      for (int k = 0; k < kCounterKeys; k++) b.Put(CounterKey(k), value);
      b.Put("shared", value);
      WriteOptions wo;
      wo.sync = i % 5 == 0;
      SequenceNumber seq = 0;
      ASSERT_OK(store_->Write(wo, b, &seq));
      RecordSequence(seq);
    }
  }

  void SnapshotReader() {
    std::shared_ptr<const Snapshot> held;
    std::string held_value;
    int rounds = 0;
    do {
      auto snap = store_->GetSnapshot();
      ReadOptions ro;
      ro.snapshot = snap.get();
      ASSERT_NO_FATAL_FAILURE(CheckCounters(ro, nullptr));
      ASSERT_NO_FATAL_FAILURE(CheckCounters(ReadOptions(), nullptr));
      ReadOptions at;
      at.sequence = store_->LastSequence();
      ASSERT_NO_FATAL_FAILURE(CheckCounters(at, nullptr));
      // A snapshot held across compactions reads the same as when it was taken.
      if (held != nullptr) {
        ReadOptions hro;
        hro.snapshot = held.get();
        std::string again;
        ASSERT_NO_FATAL_FAILURE(CheckCounters(hro, &again));
        ASSERT_EQ(again, held_value);
      }
      if (rounds % 10 == 0) {
        held = snap;
        ReadOptions hro;
        hro.snapshot = held.get();
        ASSERT_NO_FATAL_FAILURE(CheckCounters(hro, &held_value));
      }
      rounds++;
    } while (!writers_done_.load() || rounds < 20);
  }

  void Maintenance() {
    std::mt19937_64 rng(3000);
    int rounds = 0;
    do {
      const int kind = static_cast<int>(rng() % 6);
      if (kind == 0) {
        std::shared_ptr<const RetentionPolicy> p =
            rng() % 2 ? KeepLatestPolicy() : KeepLastNPolicy(2);
        const int shard = rng() % 3 == 0 ? -1 : static_cast<int>(rng() % options_.page_count);
        ASSERT_OK(store_->Compact(CompactOptions{p, shard}));
      } else if (kind == 1) {
        ASSERT_OK(store_->Sync());
      } else if (kind == 2) {
        ASSERT_OK(store_->Flush());
      } else if (kind == 3) {
        StoreStats st = store_->Stats();
        ASSERT_EQ(st.shards.size(), options_.page_count);
        ASSERT_LE(st.last_sequence, store_->LastSequence());
      } else {
        // Everything scanned in order, every value readable.
        auto it = store_->NewIterator(ReadOptions(), "");
        std::string prev;
        for (it->SeekToFirst(); it->Valid(); it->Next()) {
          ASSERT_LT(prev, it->key());
          prev = std::string(it->key());
        }
        ASSERT_TRUE(it->status().ok()) << it->status().ToString();
      }
      rounds++;
    } while (!writers_done_.load() || rounds < 10);
  }

  kvtest::ScopedTempDir dir_{"kv-concurrency"};
  Options options_;
  std::unique_ptr<Store> store_;
  std::atomic<bool> writers_done_{false};
  std::atomic<uint64_t> next_counter_{1};
  std::mutex seq_mu_;
  std::vector<SequenceNumber> sequences_;  // GUARDED_BY(seq_mu_)
  std::mutex final_mu_;
  std::map<std::string, std::string> finals_;  // GUARDED_BY(final_mu_)
};

TEST_F(ConcurrencyTest, EightThreads) {
  ASSERT_OK(OpenPageStore(options_, dir_.path(), &store_));
  std::vector<std::thread> writers, others;
  for (int t = 0; t < kOwners; t++) writers.emplace_back([this, t] { Owner(t); });
  for (int t = 0; t < kCounterWriters; t++) writers.emplace_back([this, t] { CounterWriter(t); });
  others.emplace_back([this] { SnapshotReader(); });
  others.emplace_back([this] { Maintenance(); });
  for (auto& th : writers) th.join();
  writers_done_ = true;
  for (auto& th : others) th.join();
  ASSERT_FALSE(HasFatalFailure());

  // Every write took its own sequence number, and together they are 1..LastSequence.
  std::sort(sequences_.begin(), sequences_.end());
  ASSERT_EQ(sequences_.size(), store_->LastSequence());
  for (size_t i = 0; i < sequences_.size(); i++) ASSERT_EQ(sequences_[i], i + 1);

  auto verify = [&] {
    for (int t = 0; t < kOwners; t++) {
      for (int j = 0; j < kOwnerKeys; j++) {
        const std::string key = OwnerKey(t, j);
        std::string v;
        Status s = store_->Get(ReadOptions(), key, &v);
        auto it = finals_.find(key);
        if (it == finals_.end()) {
          EXPECT_TRUE(s.IsNotFound()) << key << ": " << s.ToString();
        } else {
          EXPECT_TRUE(s.ok() && v == it->second) << key << ": " << s.ToString();
        }
      }
    }
    std::string last;
    ASSERT_NO_FATAL_FAILURE(CheckCounters(ReadOptions(), &last));
    std::string shared;
    ASSERT_OK(store_->Get(ReadOptions(), "shared", &shared));
    EXPECT_EQ(shared, last);
  };
  verify();
  const SequenceNumber last = store_->LastSequence();
  store_.reset();
  ASSERT_OK(OpenPageStore(options_, dir_.path(), &store_));
  EXPECT_EQ(store_->LastSequence(), last);
  verify();
}

// Many threads hammering the same few keys with single puts and reading them back: every
// value read is one some thread wrote, and the final value is the one with the highest
// sequence number.
TEST_F(ConcurrencyTest, SameKeysManyWriters) {
  options_.page_count = 2;
  options_.background_compaction = false;  // reads at past sequences below
  ASSERT_OK(OpenPageStore(options_, dir_.path(), &store_));
  constexpr int kThreads = 8, kOps = 300, kKeys = 4;
  std::mutex mu;
  std::map<std::string, std::pair<SequenceNumber, std::string>> newest;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; t++) {
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(t);
      for (int i = 0; i < kOps; i++) {
        const std::string key = "hot" + std::to_string(rng() % kKeys);
        const std::string value = "t" + std::to_string(t) + "#" + std::to_string(i);
        SequenceNumber seq = 0;
        WriteBatch b;
        b.Put(key, value);
        WriteOptions wo;
        wo.sync = i % 50 == 0;
        Status s = store_->Write(wo, b, &seq);
        ASSERT_TRUE(s.ok()) << s.ToString();
        {
          std::lock_guard<std::mutex> l(mu);
          auto& n = newest[key];
          if (seq > n.first) n = {seq, value};
        }
        std::string got;
        s = store_->Get(ReadOptions(), key, &got);
        ASSERT_TRUE(s.ok()) << s.ToString();
        ASSERT_EQ(got[0], 't');
        // Reading as of my own write's sequence gives my value.
        ReadOptions ro;
        ro.sequence = seq;
        s = store_->Get(ro, key, &got);
        ASSERT_TRUE(s.ok() && got == value) << s.ToString() << " " << got << " vs " << value;
      }
    });
  }
  for (auto& th : threads) th.join();
  for (const auto& [key, n] : newest) {
    std::string v;
    ASSERT_OK(store_->Get(ReadOptions(), key, &v));
    EXPECT_EQ(v, n.second) << key;
  }
  EXPECT_EQ(store_->LastSequence(), static_cast<SequenceNumber>(kThreads * kOps));
}

}  // namespace
}  // namespace kv

// Randomized model test: a seeded mix of puts, deletes, batches, reads at past sequences,
// snapshots, prefix iteration, reopen and compaction, checked after every step against a
// simple in-memory model that keeps every key's full history.
//
// Compaction drops history, so a read at a past sequence S is compared only when the model
// can predict it: S at or above the "floor" (no compaction since S could have dropped the
// version visible at S) or S pinned by a live snapshot.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "kv/store.h"
#include "tests/support/fault_env.h"
#include "tests/support/test_util.h"

namespace kv {
namespace {

using kvtest::DirSharder;

struct ModelVersion {
  SequenceNumber seq;
  bool deleted;
  std::string value;
};

// Every version of every key ever written, oldest first.
class Model {
 public:
  void Apply(SequenceNumber seq, const WriteBatch& batch) {
    for (const auto& op : batch.ops()) {
      auto& h = history_[op.key];
      ModelVersion v{seq, op.is_delete, op.is_delete ? "" : op.value};
      if (!h.empty() && h.back().seq == seq) {
        h.back() = v;  // a later op of the same batch wins
      } else {
        h.push_back(v);
      }
    }
    last_ = seq;
  }

  std::optional<std::string> Get(const std::string& key, SequenceNumber at) const {
    auto it = history_.find(key);
    if (it == history_.end()) return std::nullopt;
    const ModelVersion* v = Visible(it->second, at);
    if (v == nullptr || v->deleted) return std::nullopt;
    return v->value;
  }

  // (key, value, sequence) of the live keys under `prefix` as of `at`.
  struct Item {
    std::string key, value;
    SequenceNumber seq;
    bool operator==(const Item&) const = default;
  };
  std::vector<Item> Scan(const std::string& prefix, SequenceNumber at) const {
    std::vector<Item> out;
    for (auto it = history_.lower_bound(prefix); it != history_.end(); ++it) {
      if (!it->first.starts_with(prefix)) break;
      const ModelVersion* v = Visible(it->second, at);
      if (v != nullptr && !v->deleted) out.push_back({it->first, v->value, v->seq});
    }
    return out;
  }

  uint64_t LiveKeys() const {
    uint64_t n = 0;
    for (const auto& [k, h] : history_) n += !h.back().deleted;
    return n;
  }

  const std::vector<ModelVersion>* History(const std::string& key) const {
    auto it = history_.find(key);
    return it == history_.end() ? nullptr : &it->second;
  }
  const std::map<std::string, std::vector<ModelVersion>>& all() const { return history_; }
  SequenceNumber last() const { return last_; }

 private:
  static const ModelVersion* Visible(const std::vector<ModelVersion>& h, SequenceNumber at) {
    for (auto it = h.rbegin(); it != h.rend(); ++it) {
      if (it->seq <= at) return &*it;
    }
    return nullptr;
  }

  std::map<std::string, std::vector<ModelVersion>> history_;
  SequenceNumber last_ = 0;
};

std::string Describe(const std::optional<std::string>& v) {
  return v ? "\"" + v->substr(0, 40) + "\"(" + std::to_string(v->size()) + ")" : "NOT_FOUND";
}

class ModelTest : public ::testing::TestWithParam<int> {
 protected:
  void SetUp() override {
    seed_ = static_cast<uint64_t>(GetParam());
    if (const char* s = std::getenv("KV_MODEL_SEED_BASE")) seed_ += std::strtoull(s, nullptr, 10);
    rng_.seed(seed_ * 7919 + 17);
    options_.page_count = 1 + static_cast<uint32_t>(seed_ % 5);
    options_.background_compaction = false;
    if (seed_ % 2 == 1) options_.sharder = std::make_shared<DirSharder>();
    options_.compression_min_size = 64;
    Reopen();
  }

  void Reopen() {
    snapshots_.clear();  // snapshots do not outlive their store
    store_.reset();
    Status s = OpenPageStore(options_, dir_.path(), &store_);
    ASSERT_TRUE(s.ok()) << s.ToString();
  }

  uint64_t Rand(uint64_t n) { return rng_() % n; }
  bool OneIn(uint64_t n) { return Rand(n) == 0; }

  std::string RandomKey() {
    // A small key space, so that keys are overwritten and deleted often.
    std::string key = "d" + std::to_string(Rand(6)) + "/" + std::to_string(Rand(40));
    if (OneIn(4)) key += "/x";
    return key;
  }
  std::string RandomPrefix() {
    switch (Rand(5)) {
      case 0:
        return "";
      case 1:
        return "d";
      case 2:
        return "d" + std::to_string(Rand(6)) + "/";
      case 3:
        return "d" + std::to_string(Rand(6)) + "/" + std::to_string(Rand(4));
      default:
        return RandomKey();
    }
  }
  std::string RandomValue() {
    const uint64_t kind = Rand(20);
    if (kind == 0) return "";
    if (kind == 1) {  // large and compressible
      std::string v;
      const size_t n = 1000 + Rand(8000);
      while (v.size() < n) v += "chunk-" + std::to_string(Rand(10));
      return v;
    }
    std::string v(Rand(120), '\0');
    for (char& c : v) c = static_cast<char>(Rand(256));
    return v;
  }

  ReadOptions AtSequence(SequenceNumber s) {
    ReadOptions ro;
    ro.sequence = s;
    return ro;
  }

  // A past sequence whose reads the model can predict, with a snapshot to read through
  // when it is a snapshot's.
  SequenceNumber PredictableSequence(const Snapshot** snapshot) {
    *snapshot = nullptr;
    if (!snapshots_.empty() && OneIn(2)) {
      auto& snap = snapshots_[Rand(snapshots_.size())];
      if (OneIn(2)) *snapshot = snap.get();
      return snap->sequence();
    }
    const SequenceNumber last = model_.last();
    return floor_ + Rand(last - floor_ + 1);
  }

  void CheckGet(const std::string& key, const ReadOptions& ro, SequenceNumber at) {
    std::string value;
    Status s = store_->Get(ro, key, &value);
    std::optional<std::string> got;
    if (s.ok()) {
      got = value;
    } else {
      ASSERT_TRUE(s.IsNotFound()) << s.ToString();
    }
    const auto want = model_.Get(key, at);
    ASSERT_TRUE(got == want) << "Get(" << key << ") at " << at << ": store " << Describe(got)
                             << ", model " << Describe(want) << " (floor " << floor_ << ")";
  }

  void CheckScan(const std::string& prefix, const ReadOptions& ro, SequenceNumber at) {
    const auto want = model_.Scan(prefix, at);
    std::vector<Model::Item> got;
    auto it = store_->NewIterator(ro, prefix);
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      got.push_back({std::string(it->key()), std::string(it->value()), it->sequence()});
    }
    ASSERT_TRUE(it->status().ok()) << it->status().ToString();
    if (got != want) {
      std::string diff;
      for (size_t i = 0; i < std::max(got.size(), want.size()) && diff.size() < 400; i++) {
        const std::string g = i < got.size() ? got[i].key + "@" + std::to_string(got[i].seq) : "-";
        const std::string w =
            i < want.size() ? want[i].key + "@" + std::to_string(want[i].seq) : "-";
        if (g != w || (i < got.size() && i < want.size() && got[i].value != want[i].value)) {
          diff += " [" + std::to_string(i) + "] store " + g + " model " + w + ";";
        }
      }
      FAIL() << "Scan(" << prefix << ") at " << at << ": store " << got.size() << " items, model "
             << want.size() << ":" << diff;
    }
    // Seek to a random target and step a few times.
    const std::string target = OneIn(3) ? "" : RandomKey();
    it->Seek(target);
    auto lo =
        std::lower_bound(want.begin(), want.end(), std::max(target, prefix),
                         [](const Model::Item& a, const std::string& b) { return a.key < b; });
    for (int i = 0; i < 3; i++, ++lo) {
      if (lo == want.end()) {
        ASSERT_FALSE(it->Valid()) << "Seek(" << target << ") in " << prefix << " found "
                                  << it->key();
        break;
      }
      ASSERT_TRUE(it->Valid()) << "Seek(" << target << ") in " << prefix << " expected " << lo->key;
      ASSERT_EQ(it->key(), lo->key);
      ASSERT_EQ(it->value(), lo->value);
      it->Next();
    }
  }

  void CheckVersions(const std::string& key) {
    std::vector<VersionInfo> got;
    Status s = store_->Versions(key, &got);
    ASSERT_TRUE(s.ok()) << s.ToString();
    const auto* hist = model_.History(key);
    for (size_t i = 0; i + 1 < got.size(); i++) ASSERT_GT(got[i].sequence, got[i + 1].sequence);
    // Versions newer than the floor are all there; older ones the store still has are real.
    std::vector<const ModelVersion*> want_new;
    if (hist != nullptr) {
      for (auto it = hist->rbegin(); it != hist->rend() && it->seq > floor_; ++it) {
        want_new.push_back(&*it);
      }
    }
    ASSERT_GE(got.size(), want_new.size()) << key;
    for (size_t i = 0; i < got.size(); i++) {
      const VersionInfo& v = got[i];
      const ModelVersion* m = nullptr;
      if (i < want_new.size()) {
        m = want_new[i];
        ASSERT_EQ(v.sequence, m->seq) << key << " version " << i;
      } else {
        ASSERT_NE(hist, nullptr);
        for (const auto& mv : *hist) {
          if (mv.seq == v.sequence) m = &mv;
        }
        ASSERT_NE(m, nullptr) << key << " has unknown version " << v.sequence;
        ASSERT_LE(v.sequence, floor_) << key;
      }
      ASSERT_EQ(v.deleted, m->deleted) << key << "@" << v.sequence;
      ASSERT_EQ(v.value_size, m->value.size()) << key << "@" << v.sequence;
    }
  }

  void CheckEverything() {
    ASSERT_EQ(store_->LastSequence(), model_.last());
    ASSERT_NO_FATAL_FAILURE(CheckScan("", ReadOptions(), kMaxSequence));
    for (const auto& [key, hist] : model_.all()) {
      ASSERT_NO_FATAL_FAILURE(CheckGet(key, ReadOptions(), kMaxSequence));
    }
    ASSERT_EQ(store_->Stats().Total().live_keys, model_.LiveKeys());
  }

  void DoWrite(const WriteBatch& batch) {
    WriteOptions wo;
    wo.sync = OneIn(20);
    SequenceNumber seq = 0;
    Status s = store_->Write(wo, batch, &seq);
    ASSERT_TRUE(s.ok()) << s.ToString();
    ASSERT_EQ(seq, model_.last() + 1);
    model_.Apply(seq, batch);
  }

  void DoCompact() {
    CompactOptions co;
    co.shard = OneIn(3) ? static_cast<int>(Rand(store_->ShardCount())) : -1;
    SequenceNumber new_floor = model_.last();
    switch (Rand(3)) {
      case 0:
        co.retention = KeepLatestPolicy();
        break;
      case 1: {
        const uint32_t n = 1 + static_cast<uint32_t>(Rand(4));
        co.retention = KeepLastNPolicy(n);
        new_floor = 0;
        for (const auto& [key, h] : model_.all()) {
          if (h.size() >= n) new_floor = std::max(new_floor, h[h.size() - n].seq);
        }
        break;
      }
      default: {
        const SequenceNumber at = floor_ + Rand(model_.last() - floor_ + 1);
        co.retention = KeepVisibleAtPolicy(at);
        new_floor = at;
        break;
      }
    }
    Status s = store_->Compact(co);
    ASSERT_TRUE(s.ok()) << s.ToString();
    floor_ = std::max(floor_, new_floor);
  }

  void Step(int step) {
    const uint64_t r = Rand(1000);
    if (r < 250) {
      WriteBatch b;
      b.Put(RandomKey(), RandomValue());
      op_ = "put";
      DoWrite(b);
    } else if (r < 330) {
      WriteBatch b;
      b.Delete(RandomKey());
      op_ = "delete";
      DoWrite(b);
    } else if (r < 430) {
      WriteBatch b;
      std::vector<std::string> keys;
      const size_t n = 2 + Rand(8);
      while (keys.size() < n) {
        std::string k = RandomKey();
        if (std::find(keys.begin(), keys.end(), k) == keys.end()) keys.push_back(k);
      }
      for (const auto& k : keys) {
        if (OneIn(4)) {
          b.Delete(k);
        } else {
          b.Put(k, RandomValue());
        }
      }
      op_ = "batch";
      DoWrite(b);
    } else if (r < 630) {
      op_ = "get";
      CheckGet(RandomKey(), ReadOptions(), kMaxSequence);
    } else if (r < 730) {
      const Snapshot* snap = nullptr;
      const SequenceNumber at = PredictableSequence(&snap);
      ReadOptions ro = AtSequence(at);
      ro.snapshot = snap;
      op_ = "get at " + std::to_string(at);
      CheckGet(RandomKey(), ro, at);
    } else if (r < 830) {
      const std::string prefix = RandomPrefix();
      op_ = "scan " + prefix;
      if (OneIn(2)) {
        CheckScan(prefix, ReadOptions(), kMaxSequence);
      } else {
        const Snapshot* snap = nullptr;
        const SequenceNumber at = PredictableSequence(&snap);
        ReadOptions ro = AtSequence(at);
        ro.snapshot = snap;
        CheckScan(prefix, ro, at);
      }
    } else if (r < 880) {
      op_ = "versions";
      CheckVersions(RandomKey());
    } else if (r < 910) {
      op_ = "snapshot";
      if (snapshots_.size() < 4) {
        snapshots_.push_back(store_->GetSnapshot());
        ASSERT_EQ(snapshots_.back()->sequence(), model_.last());
      }
    } else if (r < 935) {
      op_ = "release snapshot";
      if (!snapshots_.empty()) snapshots_.erase(snapshots_.begin() + Rand(snapshots_.size()));
    } else if (r < 945) {
      op_ = "stats";
      ASSERT_EQ(store_->Stats().Total().live_keys, model_.LiveKeys());
      ASSERT_EQ(store_->LastSequence(), model_.last());
    } else if (r < 952) {
      op_ = "compact";
      DoCompact();
      if (OneIn(2)) CheckEverything();
    } else if (r < 957) {
      op_ = "reopen";
      Reopen();
      CheckEverything();
    } else {
      op_ = "sync";
      ASSERT_TRUE(store_->Sync().ok());
    }
    (void)step;
  }

  kvtest::ScopedTempDir dir_{"kv-model"};
  uint64_t seed_ = 0;
  std::mt19937_64 rng_;
  Options options_;
  std::unique_ptr<Store> store_;
  Model model_;
  SequenceNumber floor_ = 0;
  std::vector<std::shared_ptr<const Snapshot>> snapshots_;
  std::string op_;
};

TEST_P(ModelTest, RandomOperationsMatchModel) {
  constexpr int kSteps = 2500;
  for (int step = 0; step < kSteps; step++) {
    Step(step);
    if (HasFailure()) {
      FAIL() << "seed " << seed_ << " (page_count " << options_.page_count
             << (options_.sharder ? ", dir sharder" : "") << ") failed at step " << step << " op "
             << op_;
    }
  }
  CheckEverything();
  Reopen();
  CheckEverything();
  DoCompact();
  CheckEverything();
  if (HasFailure()) FAIL() << "seed " << seed_ << " failed in the final checks";
}

INSTANTIATE_TEST_SUITE_P(Seeds, ModelTest, ::testing::Range(0, 20));

}  // namespace
}  // namespace kv

// I/O faults: ENOSPC and EIO injected into appends, reservations, syncs, renames and
// directory syncs, during writes, compaction and open. The failing call returns NoSpace or
// IOError, nothing crashes or hangs, and after a reopen the store is consistent: every write
// acknowledged as durable is there, no batch is partial, and the survivors are a prefix.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <ostream>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "kv/store.h"
#include "tests/support/fault_env.h"
#include "tests/support/test_util.h"

namespace kv {
namespace {

using State = std::map<std::string, std::string>;
using Code = Status::Code;

std::string Diff(const State& got, const State& want) {
  std::string d;
  for (const auto& [k, v] : want) {
    auto it = got.find(k);
    if (it == got.end()) {
      d += " missing " + k + ";";
    } else if (it->second != v) {
      d += " " + k + " is \"" + it->second.substr(0, 12) + "\" not \"" + v.substr(0, 12) + "\";";
    }
  }
  for (const auto& [k, v] : got) {
    if (!want.count(k)) d += " extra " + k + ";";
  }
  return d.substr(0, 600);
}

bool HasCode(const Status& s, Code code) { return s.code() == code; }

const char* CodeName(Code c) { return c == Code::kNoSpace ? "NoSpace" : "IOError"; }

}  // namespace

// Readable test parameters in gtest and ctest output.
void PrintTo(Status::Code c, std::ostream* os) { *os << CodeName(c); }

namespace {

class FaultTest : public ::testing::Test {
 protected:
  FaultTest() {
    env_.SkipRealSyncs(true);  // faults are injected; real fsyncs only cost time
    options_.env = &env_;
    options_.page_count = 4;
    options_.background_compaction = false;
  }

  void Open() {
    store_.reset();
    ASSERT_OK(OpenPageStore(options_, dir_.path(), &store_));
    ASSERT_EQ(store_->LastSequence(), base_seq_);
  }

  WriteBatch RandomBatch(int max_ops, size_t value_len) {
    WriteBatch b;
    const int n = 1 + static_cast<int>(rng_() % max_ops);
    std::map<std::string, bool> keys;
    while (static_cast<int>(keys.size()) < n) keys["key" + std::to_string(rng_() % 80)] = true;
    for (const auto& [k, unused] : keys) {
      if (rng_() % 7 == 0) {
        b.Delete(k);
      } else {
        std::string v = "s" + std::to_string(base_seq_ + log_.size() + 1) + ":";
        const size_t len = value_len + rng_() % 64;
        while (v.size() < len) v.push_back(static_cast<char>('a' + rng_() % 26));
        b.Put(k, v);
      }
    }
    return b;
  }

  // Writes `b`, logging it so that recovery can be checked. Returns the Write status.
  Status LoggedWrite(const WriteBatch& b, bool sync) {
    log_.push_back(b);
    WriteOptions wo;
    wo.sync = sync;
    SequenceNumber seq = 0;
    Status s = store_->Write(wo, b, &seq);
    if (s.ok()) {
      EXPECT_EQ(seq, base_seq_ + log_.size());
      acked_ = base_seq_ + log_.size();
      if (sync) durable_ = acked_;
    }
    return s;
  }

  // Writes healthy batches (some synced) and then a clean close and reopen.
  void Populate(int batches) {
    ASSERT_NO_FATAL_FAILURE(Open());
    for (int i = 0; i < batches; i++) ASSERT_OK(LoggedWrite(RandomBatch(10, 100), i % 5 == 0));
    ASSERT_NO_FATAL_FAILURE(ReopenAndVerify(/*all_acked_survive=*/true));
  }

  // The store as read through a full scan.
  State ReadAll() {
    State out;
    auto it = store_->NewIterator(ReadOptions(), "");
    for (it->SeekToFirst(); it->Valid(); it->Next()) out[std::string(it->key())] = it->value();
    EXPECT_TRUE(it->status().ok()) << it->status().ToString();
    return out;
  }

  // Closes, clears the faults, reopens and checks the recovered state against the log.
  void ReopenAndVerify(bool all_acked_survive) {
    store_.reset();
    env_.ClearFaults();
    env_.SetFilesystemActive(true);
    ASSERT_OK(OpenPageStore(options_, dir_.path(), &store_));
    const SequenceNumber recovered = store_->LastSequence();
    ASSERT_GE(recovered, all_acked_survive ? acked_ : durable_) << "a durable write was lost";
    ASSERT_LE(recovered, base_seq_ + log_.size());
    State want = state_;
    for (SequenceNumber s = base_seq_ + 1; s <= recovered; s++) {
      for (const auto& op : log_[s - base_seq_ - 1].ops()) {
        if (op.is_delete) {
          want.erase(op.key);
        } else {
          want[op.key] = op.value;
        }
      }
    }
    const State got = ReadAll();
    ASSERT_TRUE(got == want) << "recovered state is not the first " << recovered
                             << " writes:" << Diff(got, want);
    state_ = want;
    base_seq_ = acked_ = durable_ = recovered;
    log_.clear();
    // And it takes writes again.
    ASSERT_OK(LoggedWrite(RandomBatch(6, 50), true));
  }

  // The state after state_ and the first n logged writes.
  State Expected(size_t n) const {
    State want = state_;
    for (size_t i = 0; i < n && i < log_.size(); i++) {
      for (const auto& op : log_[i].ops()) {
        if (op.is_delete) {
          want.erase(op.key);
        } else {
          want[op.key] = op.value;
        }
      }
    }
    return want;
  }

  // Reads in the live store after a failed write: they still work, every acknowledged write
  // is visible, and the failed (last logged) batch is visible wholly or not at all.
  void VerifyLiveStoreAfterFailedWrite() {
    const State got = ReadAll();
    const State without = Expected(log_.size() - 1);
    const State with = Expected(log_.size());
    EXPECT_TRUE(got == without || got == with)
        << "live store after a failed write:" << Diff(got, without);
  }

  kvtest::ScopedTempDir dir_{"kv-fault"};
  kvtest::FaultInjectionEnv env_;
  Options options_;
  std::unique_ptr<Store> store_;
  std::mt19937_64 rng_{42};
  State state_;  // state as of base_seq_
  SequenceNumber base_seq_ = 0;
  std::vector<WriteBatch> log_;  // writes attempted after base_seq_, in order
  SequenceNumber acked_ = 0, durable_ = 0;
};

// ---- Faults while writing ----

class WriteFaultTest : public FaultTest,
                       public ::testing::WithParamInterface<std::tuple<Code, int, bool>> {};

// Fails the k-th append from now; the write that hits it (synced, so that its bytes are
// written within the call) must fail with the injected error and stay invisible.
TEST_P(WriteFaultTest, AppendFails) {
  const auto [code, k, multi_page] = GetParam();
  ASSERT_NO_FATAL_FAILURE(Populate(40));
  env_.FailAppendsAfter(static_cast<uint64_t>(k), code);
  Status failure;
  for (int i = 0; i < 50 && failure.ok(); i++) {
    failure = LoggedWrite(RandomBatch(multi_page ? 12 : 1, multi_page ? 300 : 5000), true);
  }
  ASSERT_FALSE(failure.ok()) << "no write failed";
  EXPECT_TRUE(HasCode(failure, code))
      << "want " << CodeName(code) << ", got " << failure.ToString();
  VerifyLiveStoreAfterFailedWrite();
  // Reads keep working; the store may refuse writes until it is reopened.
  ASSERT_NO_FATAL_FAILURE(ReopenAndVerify(/*all_acked_survive=*/true));
  for (int i = 0; i < 10; i++) ASSERT_OK(LoggedWrite(RandomBatch(12, 300), i % 3 == 0));
  ASSERT_NO_FATAL_FAILURE(ReopenAndVerify(true));
}

TEST_P(WriteFaultTest, SyncFails) {
  const auto [code, k, multi_page] = GetParam();
  ASSERT_NO_FATAL_FAILURE(Populate(30));
  env_.FailSyncsAfter(static_cast<uint64_t>(k), code);
  Status failure;
  for (int i = 0; i < 50 && failure.ok(); i++) {
    failure = LoggedWrite(RandomBatch(multi_page ? 12 : 1, 200), true);
  }
  ASSERT_FALSE(failure.ok()) << "no write failed";
  EXPECT_TRUE(HasCode(failure, code))
      << "want " << CodeName(code) << ", got " << failure.ToString();
  // After a failed fsync the written bytes may or may not be on disk: only the writes
  // acknowledged as durable are promised.
  ASSERT_NO_FATAL_FAILURE(ReopenAndVerify(/*all_acked_survive=*/false));
  ASSERT_NO_FATAL_FAILURE(ReopenAndVerify(true));
}

INSTANTIATE_TEST_SUITE_P(All, WriteFaultTest,
                         ::testing::Combine(::testing::Values(Code::kNoSpace, Code::kIOError),
                                            ::testing::Values(0, 1, 3), ::testing::Bool()),
                         [](const auto& info) {
                           return std::string(CodeName(std::get<0>(info.param))) + "After" +
                                  std::to_string(std::get<1>(info.param)) +
                                  (std::get<2>(info.param) ? "MultiPage" : "SinglePage");
                         });

TEST_F(FaultTest, ReserveFailsWithNoSpace) {
  ASSERT_NO_FATAL_FAILURE(Populate(10));
  const uint64_t reserves_before = env_.counters().reserves;
  env_.FailReservesAfter(0, Code::kNoSpace);
  Status failure;
  // Reservations run ahead of the data; keep writing until one is needed.
  for (int i = 0; i < 400 && failure.ok(); i++) failure = LoggedWrite(RandomBatch(8, 20000), false);
  if (failure.ok() && env_.counters().reserves == reserves_before &&
      env_.counters().injected_failures == 0) {
    GTEST_SKIP() << "the engine never reserved space";
  }
  ASSERT_FALSE(failure.ok()) << "a failed reservation was ignored (reserves "
                             << env_.counters().reserves << ", injected failures "
                             << env_.counters().injected_failures << ")";
  EXPECT_TRUE(failure.IsNoSpace()) << failure.ToString();
  VerifyLiveStoreAfterFailedWrite();
  ASSERT_NO_FATAL_FAILURE(ReopenAndVerify(/*all_acked_survive=*/true));
}

TEST_F(FaultTest, ShortWriteIsCutAway) {
  ASSERT_NO_FATAL_FAILURE(Populate(20));
  for (int round = 0; round < 3; round++) {
    env_.ShortWriteNext(round == 1 ? Code::kIOError : Code::kNoSpace);
    Status failure;
    for (int i = 0; i < 20 && failure.ok(); i++) failure = LoggedWrite(RandomBatch(12, 400), true);
    ASSERT_FALSE(failure.ok());
    EXPECT_TRUE(failure.IsNoSpace() || failure.IsIOError()) << failure.ToString();
    VerifyLiveStoreAfterFailedWrite();
    // The half-written bytes must not poison what is appended after the reopen.
    ASSERT_NO_FATAL_FAILURE(ReopenAndVerify(true));
    for (int i = 0; i < 5; i++) ASSERT_OK(LoggedWrite(RandomBatch(12, 400), false));
    ASSERT_NO_FATAL_FAILURE(ReopenAndVerify(true));
  }
}

TEST_F(FaultTest, UnsyncedWritesFailOnExplicitSync) {
  ASSERT_NO_FATAL_FAILURE(Populate(10));
  env_.FailAppendsAfter(0, Code::kIOError);
  Status s;
  for (int i = 0; i < 5; i++) {
    s = LoggedWrite(RandomBatch(4, 100), false);
    if (!s.ok()) break;
  }
  if (s.ok()) s = store_->Sync();
  EXPECT_TRUE(s.IsIOError()) << s.ToString();
  EXPECT_FALSE(store_->Sync().ok());  // the error is not forgotten
  ASSERT_NO_FATAL_FAILURE(ReopenAndVerify(false));
}

TEST_F(FaultTest, FaultsDuringOpenFailCleanly) {
  // Creating a store: every way of failing leaves a directory a retry can use.
  env_.FailSyncsAfter(0, Code::kIOError);
  Status s = OpenPageStore(options_, dir_.path(), &store_);
  EXPECT_TRUE(s.IsIOError()) << s.ToString();
  EXPECT_EQ(store_, nullptr);
  env_.ClearFaults();
  env_.FailRenamesAfter(0, Code::kNoSpace);
  s = OpenPageStore(options_, dir_.path(), &store_);
  EXPECT_TRUE(s.IsNoSpace()) << s.ToString();
  env_.ClearFaults();
  env_.FailAppendsAfter(2, Code::kNoSpace);
  s = OpenPageStore(options_, dir_.path(), &store_);
  EXPECT_TRUE(s.IsNoSpace()) << s.ToString();
  env_.ClearFaults();
  ASSERT_NO_FATAL_FAILURE(Populate(10));
  // Reopening an existing store with a failing disk.
  store_.reset();
  env_.FailSyncsAfter(0, Code::kIOError);
  env_.FailDirSyncsAfter(0, Code::kIOError);
  env_.FailRenamesAfter(0, Code::kIOError);
  s = OpenPageStore(options_, dir_.path(), &store_);
  if (s.ok()) {
    // An open that needs no writes may succeed; reads then work.
    State got = ReadAll();
    EXPECT_TRUE(got == Expected(log_.size())) << Diff(got, Expected(log_.size()));
  } else {
    EXPECT_TRUE(s.IsIOError()) << s.ToString();
  }
  ASSERT_NO_FATAL_FAILURE(ReopenAndVerify(true));
}

// ---- Faults while compacting ----

enum class Op { kAppend, kSync, kRename, kDirSync };
const char* OpName(Op op) {
  switch (op) {
    case Op::kAppend:
      return "Append";
    case Op::kSync:
      return "Sync";
    case Op::kRename:
      return "Rename";
    default:
      return "DirSync";
  }
}

void PrintTo(Op op, std::ostream* os) { *os << OpName(op); }

class CompactionFaultTest : public FaultTest,
                            public ::testing::WithParamInterface<std::tuple<Op, Code, int>> {
 protected:
  void BuildGarbage() {
    ASSERT_NO_FATAL_FAILURE(Open());
    for (int i = 0; i < 300; i++) ASSERT_OK(LoggedWrite(RandomBatch(3, 300), false));
    ASSERT_NO_FATAL_FAILURE(ReopenAndVerify(true));
  }
};

TEST_P(CompactionFaultTest, CompactionFailsAndLosesNothing) {
  const auto [op, code, which] = GetParam();
  ASSERT_NO_FATAL_FAILURE(BuildGarbage());

  // Count what one compaction does, on a copy.
  uint64_t count = 0;
  {
    kvtest::ScopedTempDir probe_dir("kv-fault-probe");
    const std::string probe = probe_dir.Sub("store");
    store_.reset();
    std::filesystem::copy(dir_.path(), probe);
    kvtest::FaultInjectionEnv env;
    Options o = options_;
    o.env = &env;
    std::unique_ptr<Store> s;
    ASSERT_OK(OpenPageStore(o, probe, &s));
    const auto before = env.counters();
    ASSERT_OK(s->Compact(CompactOptions{KeepLatestPolicy(), -1}));
    const auto after = env.counters();
    s.reset();
    switch (op) {
      case Op::kAppend:
        count = after.appends - before.appends;
        break;
      case Op::kSync:
        count = after.syncs - before.syncs;
        break;
      case Op::kRename:
        count = after.renames - before.renames;
        break;
      case Op::kDirSync:
        count = after.dir_syncs - before.dir_syncs;
        break;
    }
    ASSERT_OK(OpenPageStore(options_, dir_.path(), &store_));
  }
  ASSERT_GT(count, 0u) << "compaction made no " << OpName(op) << " call";
  const uint64_t k = which == 0 ? 0 : which == 1 ? count / 2 : count - 1;

  switch (op) {
    case Op::kAppend:
      env_.FailAppendsAfter(k, code);
      break;
    case Op::kSync:
      env_.FailSyncsAfter(k, code);
      break;
    case Op::kRename:
      env_.FailRenamesAfter(k, code);
      break;
    case Op::kDirSync:
      env_.FailDirSyncsAfter(k, code);
      break;
  }
  Status s = store_->Compact(CompactOptions{KeepLatestPolicy(), -1});
  ASSERT_FALSE(s.ok()) << OpName(op) << " " << k << " of " << count << " failed unnoticed";
  EXPECT_TRUE(HasCode(s, code)) << "want " << CodeName(code) << ", got " << s.ToString();
  // Reads are unharmed.
  const State want = Expected(log_.size());
  const State got = ReadAll();
  EXPECT_TRUE(got == want) << "reads changed after a failed compaction:" << Diff(got, want);
  for (const auto& [key, value] : want) {
    std::string v;
    Status gs = store_->Get(ReadOptions(), key, &v);
    ASSERT_TRUE(gs.ok() && v == value) << key << ": " << gs.ToString();
  }
  ASSERT_NO_FATAL_FAILURE(ReopenAndVerify(true));
  const uint64_t garbage = store_->Stats().Total().garbage_bytes;
  ASSERT_OK(store_->Compact(CompactOptions{KeepLatestPolicy(), -1}));
  EXPECT_LT(store_->Stats().Total().garbage_bytes, garbage);
  ASSERT_NO_FATAL_FAILURE(ReopenAndVerify(true));
}

INSTANTIATE_TEST_SUITE_P(All, CompactionFaultTest,
                         ::testing::Combine(::testing::Values(Op::kAppend, Op::kSync, Op::kRename,
                                                              Op::kDirSync),
                                            ::testing::Values(Code::kNoSpace, Code::kIOError),
                                            ::testing::Values(0, 1, 2)),
                         [](const auto& info) {
                           const int which = std::get<2>(info.param);
                           return std::string(OpName(std::get<0>(info.param))) +
                                  CodeName(std::get<1>(info.param)) +
                                  (which == 0   ? "First"
                                   : which == 1 ? "Middle"
                                                : "Last");
                         });

}  // namespace
}  // namespace kv

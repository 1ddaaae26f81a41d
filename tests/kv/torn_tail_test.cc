// Recovery from damaged page files: a record cut off at any byte is a torn tail that costs
// exactly the last write (or its whole batch); a damaged record in the middle of a page is
// reported as corruption naming the file and offset, never silently used.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "kv/format.h"
#include "kv/record.h"
#include "kv/store.h"
#include "tests/support/fault_env.h"
#include "tests/support/page_file.h"
#include "tests/support/test_util.h"

namespace kv {
namespace {

using kvtest::ParsedRecord;
using kvtest::ParsePage;
using kvtest::ReadFile;

namespace fs = std::filesystem;

using Model = std::map<std::string, std::string>;

std::string PageName(int i) {
  char name[32];
  snprintf(name, sizeof(name), "page-%04d.kv", i);
  return name;
}

enum class Hints { kNone, kStale, kFinal };

// Copies the store in `from` to `to`: page files and superblock always, hint files as asked.
void CopyStore(const std::string& from, const std::string& hints_from, const std::string& to) {
  fs::create_directories(to);
  for (const auto& e : fs::directory_iterator(from)) {
    const std::string name = e.path().filename().string();
    if (e.path().extension() == ".hint" || name == format::kLockFile) continue;
    fs::copy_file(e.path(), to + "/" + name, fs::copy_options::overwrite_existing);
  }
  if (hints_from.empty()) return;
  for (const auto& e : fs::directory_iterator(hints_from)) {
    if (e.path().extension() != ".hint") continue;
    fs::copy_file(e.path(), to + "/" + e.path().filename().string(),
                  fs::copy_options::overwrite_existing);
  }
}

class TornTailTest : public ::testing::Test {
 protected:
  TornTailTest() {
    options_.page_count = 4;
    options_.background_compaction = false;
  }

  // Writes a history whose last write is `last`. The hint files of a close before the last
  // 20 writes are kept in stale_hints_dir(). With `crash`, everything before `last` is
  // synced and the process "dies" right after writing `last` (its bytes reach the page files
  // but neither a sync nor the clean close that would advance the durable watermark does);
  // otherwise the store is closed cleanly.
  void Build(const WriteBatch& last, bool crash) {
    kvtest::FaultInjectionEnv env;
    env.SkipRealSyncs(true);  // nothing here loses power
    options_.env = &env;
    std::unique_ptr<Store> store;
    ASSERT_OK(OpenPageStore(options_, dir_.Sub("store"), &store));
    std::mt19937_64 rng(99);
    for (int i = 0; i < 80; i++) {
      if (i == 60) {
        store.reset();
        CopyStore(dir_.Sub("store"), dir_.Sub("store"), stale_hints_dir());
        ASSERT_OK(OpenPageStore(options_, dir_.Sub("store"), &store));
      }
      std::string key = "k" + std::to_string(rng() % 30);
      if (rng() % 6 == 0) {
        ASSERT_OK(store->Delete(WriteOptions(), key));
        model_.erase(key);
      } else {
        std::string value(rng() % 150, static_cast<char>('a' + i % 26));
        ASSERT_OK(store->Put(WriteOptions(), key, value));
        model_[key] = value;
      }
    }
    before_last_ = model_;
    if (crash) {
      ASSERT_OK(store->Sync());
    }
    SequenceNumber seq = 0;
    ASSERT_OK(store->Write(WriteOptions(), last, &seq));
    last_seq_ = seq;
    ASSERT_EQ(last_seq_, 81u);
    for (const auto& op : last.ops()) {
      if (op.is_delete) {
        model_.erase(op.key);
      } else {
        model_[op.key] = op.value;
      }
    }
    if (crash) {
      // Hand the last write to the OS (as a background flush would), then "die".
      ASSERT_OK(store->Flush());
      env.SetFilesystemActive(false);
    }
    store.reset();
    options_.env = nullptr;
    final_hints_ = dir_.Sub("store");
  }

  std::string stale_hints_dir() { return dir_.Sub("stale-hints"); }

  // Checks that `store` holds exactly `model` and LastSequence `seq`.
  void Verify(Store* store, const Model& model, SequenceNumber seq, const std::string& what) {
    EXPECT_EQ(store->LastSequence(), seq) << what;
    Model got;
    auto it = store->NewIterator(ReadOptions(), "");
    for (it->SeekToFirst(); it->Valid(); it->Next()) got[std::string(it->key())] = it->value();
    ASSERT_OK(it->status());
    EXPECT_TRUE(got == model) << what << ": store has " << got.size() << " keys, model "
                              << model.size();
    for (const auto& [k, v] : model) {
      std::string value;
      Status s = store->Get(ReadOptions(), k, &value);
      EXPECT_TRUE(s.ok() && value == v) << what << " key " << k << ": " << s.ToString();
    }
  }

  // For every byte offset inside the last write's records, truncates a copy of the page
  // there and checks that reopening loses exactly the last write.
  void TruncateEverywhere(Hints hints, int stride, bool write_after_some) {
    int trials = 0, pages_touched = 0;
    for (int p = 0; p < static_cast<int>(options_.page_count); p++) {
      const std::string page_path = dir_.Sub("store") + "/" + PageName(p);
      std::vector<ParsedRecord> recs = ParsePage(page_path);
      const uint64_t file_size = fs::file_size(page_path);
      size_t first_last = recs.size();
      for (size_t i = 0; i < recs.size(); i++) {
        if (recs[i].header.sequence == last_seq_) {
          first_last = i;
          break;
        }
      }
      if (first_last == recs.size()) continue;
      pages_touched++;
      // The last write's records are the tail of the page.
      for (size_t i = first_last; i < recs.size(); i++) {
        ASSERT_EQ(recs[i].header.sequence, last_seq_);
      }
      ASSERT_EQ(recs.back().offset + recs.back().header.record_size(), file_size);
      const uint64_t start = recs[first_last].offset;
      for (uint64_t cut = start; cut < file_size; cut += stride) {
        SCOPED_TRACE(PageName(p) + " cut at " + std::to_string(cut));
        // Writing on after the cut costs two more opens; every 8th cut is enough.
        const bool write_after =
            write_after_some && ((cut - start) % 8 == 0 || cut + 1 == file_size);
        const std::string trial = dir_.Sub("trial-" + std::to_string(trials++));
        const std::string hint_source = hints == Hints::kNone    ? ""
                                        : hints == Hints::kStale ? stale_hints_dir()
                                                                 : final_hints_;
        CopyStore(dir_.Sub("store"), hint_source, trial);
        fs::resize_file(trial + "/" + PageName(p), cut);
        kvtest::FaultInjectionEnv fast_env;
        fast_env.SkipRealSyncs(true);  // durability is not under test here
        Options options = options_;
        options.env = &fast_env;
        {
          std::unique_ptr<Store> store;
          Status s = OpenPageStore(options, trial, &store);
          if (hints == Hints::kFinal && s.IsCorruption()) {
            // A hint that covers bytes the page no longer has may be refused, not used.
            fs::remove_all(trial);
            continue;
          }
          ASSERT_OK(s);
          ASSERT_NO_FATAL_FAILURE(Verify(store.get(), before_last_, last_seq_ - 1, "reopened"));
          if (write_after) {
            SequenceNumber seq = 0;
            WriteBatch b;
            b.Put("after", "tail");
            ASSERT_OK(store->Write(WriteOptions(), b, &seq));
            EXPECT_EQ(seq, last_seq_);
          }
        }
        if (write_after) {
          std::unique_ptr<Store> store;
          ASSERT_OK(OpenPageStore(options, trial, &store));
          Model expected = before_last_;
          expected["after"] = "tail";
          ASSERT_NO_FATAL_FAILURE(Verify(store.get(), expected, last_seq_, "written after"));
        }
        fs::remove_all(trial);
        if (::testing::Test::HasFailure()) return;  // one failing cut tells the story
      }
    }
    EXPECT_GT(pages_touched, 0);
    EXPECT_GT(trials, 0);
  }

  WriteBatch MultiPageBatch() {
    WriteBatch b;
    for (int i = 0; i < 6; i++)
      b.Put("new" + std::to_string(i), "batch value " + std::to_string(i));
    b.Put("k1", "overwritten by the batch");
    b.Delete("k2");
    b.Delete("k3");
    return b;
  }

  kvtest::ScopedTempDir dir_{"kv-torn"};
  Options options_;
  Model model_, before_last_;
  SequenceNumber last_seq_ = 0;
  std::string final_hints_;
};

TEST_F(TornTailTest, BatchSpansSeveralPages) {
  ASSERT_NO_FATAL_FAILURE(Build(MultiPageBatch(), false));
  int pages = 0;
  for (int p = 0; p < 4; p++) {
    for (const ParsedRecord& r : ParsePage(dir_.Sub("store") + "/" + PageName(p))) {
      if (r.header.sequence == last_seq_) {
        EXPECT_GT(r.header.batch_pages, 1u);
        pages++;
        break;
      }
    }
  }
  EXPECT_GE(pages, 2) << "the test batch should span pages";
}

// The contract as stated: close, cut the last write anywhere, reopen.
TEST_F(TornTailTest, TruncatedBatchAfterCleanClose) {
  ASSERT_NO_FATAL_FAILURE(Build(MultiPageBatch(), false));
  TruncateEverywhere(Hints::kNone, 1, /*write_after=*/true);
}

TEST_F(TornTailTest, TruncatedBatchAfterCleanCloseWithHints) {
  ASSERT_NO_FATAL_FAILURE(Build(MultiPageBatch(), false));
  TruncateEverywhere(Hints::kFinal, 3, /*write_after=*/false);
}

TEST_F(TornTailTest, TruncatedSinglePutAfterCleanClose) {
  WriteBatch b;
  b.Put("k5", std::string(120, 'z'));
  ASSERT_NO_FATAL_FAILURE(Build(b, false));
  TruncateEverywhere(Hints::kNone, 1, /*write_after=*/true);
}

// The crash a torn tail comes from: the last write never synced.
TEST_F(TornTailTest, TruncatedBatchAfterCrash) {
  ASSERT_NO_FATAL_FAILURE(Build(MultiPageBatch(), true));
  TruncateEverywhere(Hints::kNone, 1, /*write_after=*/true);
}

TEST_F(TornTailTest, TruncatedBatchAfterCrashWithStaleHints) {
  ASSERT_NO_FATAL_FAILURE(Build(MultiPageBatch(), true));
  TruncateEverywhere(Hints::kStale, 1, /*write_after=*/true);
}

TEST_F(TornTailTest, TruncatedSinglePutAfterCrash) {
  WriteBatch b;
  b.Put("k5", std::string(120, 'z'));
  ASSERT_NO_FATAL_FAILURE(Build(b, true));
  TruncateEverywhere(Hints::kStale, 1, /*write_after=*/true);
}

TEST_F(TornTailTest, TruncatedSingleDeleteAfterCrash) {
  WriteBatch b;
  b.Delete("k7");
  ASSERT_NO_FATAL_FAILURE(Build(b, true));
  TruncateEverywhere(Hints::kNone, 1, /*write_after=*/true);
}

TEST_F(TornTailTest, CrashWithoutTruncationKeepsLastWrite) {
  ASSERT_NO_FATAL_FAILURE(Build(MultiPageBatch(), true));
  CopyStore(dir_.Sub("store"), stale_hints_dir(), dir_.Sub("whole"));
  std::unique_ptr<Store> store;
  ASSERT_OK(OpenPageStore(options_, dir_.Sub("whole"), &store));
  Verify(store.get(), model_, last_seq_, "whole");
}

TEST_F(TornTailTest, ZeroFilledTailIsIgnored) {
  ASSERT_NO_FATAL_FAILURE(Build(MultiPageBatch(), false));
  CopyStore(dir_.Sub("store"), "", dir_.Sub("zero"));
  {
    std::ofstream out(dir_.Sub("zero") + "/" + PageName(0), std::ios::binary | std::ios::app);
    const std::string zeros(4096, '\0');
    out.write(zeros.data(), static_cast<std::streamsize>(zeros.size()));
  }
  std::unique_ptr<Store> store;
  ASSERT_OK(OpenPageStore(options_, dir_.Sub("zero"), &store));
  Verify(store.get(), model_, last_seq_, "zero tail");
}

// Flips one bit of a record in the middle of a page; returns the page index and the
// record's offset. `in_header` picks a header byte (the sequence) instead of the value.
void FlipMiddleRecord(const std::string& dir, bool in_header, int* page, uint64_t* offset,
                      std::string* key) {
  for (int p = 0; p < 4; p++) {
    const std::string path = dir + "/" + PageName(p);
    std::vector<ParsedRecord> recs = ParsePage(path);
    if (recs.size() < 5) continue;
    const ParsedRecord& r = recs[recs.size() / 2];
    if (!in_header && r.header.value_len == 0) continue;
    const uint64_t at = in_header ? r.offset + format::kRecSequence
                                  : r.offset + format::kRecordHeaderSize + r.header.key_len +
                                        r.header.value_len / 2;
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(static_cast<std::streamoff>(at));
    char c = 0;
    f.get(c);
    f.seekp(static_cast<std::streamoff>(at));
    f.put(static_cast<char>(c ^ 0x10));
    *page = p;
    *offset = r.offset;
    *key = r.key;
    return;
  }
  FAIL() << "no page with enough records";
}

class MiddleCorruptionTest : public TornTailTest,
                             public ::testing::WithParamInterface<std::tuple<bool, bool>> {};

TEST_P(MiddleCorruptionTest, ReportedWithFileAndOffset) {
  const auto [in_header, keep_hints] = GetParam();
  ASSERT_NO_FATAL_FAILURE(Build(MultiPageBatch(), false));
  const std::string copy = dir_.Sub("corrupt");
  CopyStore(dir_.Sub("store"), keep_hints ? final_hints_ : "", copy);
  int page = -1;
  uint64_t offset = 0;
  std::string key;
  ASSERT_NO_FATAL_FAILURE(FlipMiddleRecord(copy, in_header, &page, &offset, &key));

  std::unique_ptr<Store> store;
  Status s = OpenPageStore(options_, copy, &store);
  if (keep_hints && s.ok()) {
    // With a current hint the page need not be rescanned, but the damaged record must not
    // be served: reading every version of its key reports corruption somewhere.
    bool saw_corruption = false;
    std::vector<VersionInfo> versions;
    Status vs = store->Versions(key, &versions);
    saw_corruption |= vs.IsCorruption();
    for (const VersionInfo& v : versions) {
      ReadOptions ro;
      ro.sequence = v.sequence;
      std::string value;
      Status gs = store->Get(ro, key, &value);
      saw_corruption |= gs.IsCorruption();
    }
    EXPECT_TRUE(saw_corruption) << "damaged record of key " << key << " read without error";
    return;
  }
  ASSERT_TRUE(s.IsCorruption()) << s.ToString();
  EXPECT_NE(s.message().find(PageName(page)), std::string::npos) << s.ToString();
  EXPECT_NE(s.message().find(std::to_string(offset)), std::string::npos) << s.ToString();
  EXPECT_EQ(store, nullptr);
}

INSTANTIATE_TEST_SUITE_P(All, MiddleCorruptionTest,
                         ::testing::Combine(::testing::Bool(), ::testing::Bool()),
                         [](const auto& info) {
                           return std::string(std::get<0>(info.param) ? "Header" : "Value") +
                                  (std::get<1>(info.param) ? "WithHints" : "NoHints");
                         });

}  // namespace
}  // namespace kv

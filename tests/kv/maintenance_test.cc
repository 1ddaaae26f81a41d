// Store maintenance: VerifyStore finds every kind of damage (and nothing on a healthy store,
// even one that is open and being written), a salvage open reads what is intact, RepairStore
// makes a damaged store open and verify clean again, and ReshardStore changes the page count
// keeping every version of every key, atomically with respect to crashes.
#include "kv/maintenance.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "kv/format.h"
#include "kv/page_store.h"
#include "kv/record.h"
#include "kv/store.h"
#include "kv/superblock.h"
#include "tests/support/fault_env.h"
#include "tests/support/page_file.h"
#include "tests/support/test_util.h"

namespace kv {
namespace {

using kvtest::ParsedRecord;
using kvtest::ParsePage;
using kvtest::ReadFile;

namespace fs = std::filesystem;
using kvtest::RandomBytes;

// ---- File-level helpers ----

void WriteFile(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
}

void FlipBit(const std::string& path, uint64_t offset, int bit = 3) {
  std::string data = ReadFile(path);
  ASSERT_LT(offset, data.size());
  data[offset] = static_cast<char>(data[offset] ^ (1 << bit));
  WriteFile(path, data);
}

std::string PageName(uint32_t i) {
  char name[32];
  snprintf(name, sizeof(name), "page-%04u.kv", i);
  return name;
}

// Each key's newest record in a page file: the last of the key in file order (what the
// hint file of a cleanly closed store names).
std::map<std::string, uint64_t> NewestOffsets(const std::vector<ParsedRecord>& recs) {
  std::map<std::string, uint64_t> newest;
  for (const ParsedRecord& r : recs) newest[r.key] = r.offset;
  return newest;
}

// The keys whose newest record lies in [begin, end).
std::vector<std::string> NewestIn(const std::map<std::string, uint64_t>& newest, uint64_t begin,
                                  uint64_t end) {
  std::vector<std::string> keys;  // in key order, as lost_keys
  for (const auto& [key, offset] : newest) {
    if (offset >= begin && offset < end) keys.push_back(key);
  }
  return keys;
}

// The problem of `report` at `offset` of `page` whose message holds `what`, or null.
const VerifyProblem* FindProblem(const VerifyReport& report, int64_t page, const std::string& what,
                                 const uint64_t* offset = nullptr) {
  for (const VerifyProblem& p : report.problems) {
    if (p.page == page && p.message.find(what) != std::string::npos &&
        (offset == nullptr || (p.has_offset && p.offset == *offset))) {
      return &p;
    }
  }
  return nullptr;
}

// ---- Store content, as seen through the API ----

struct Version {
  VersionInfo info;
  std::string value;  // as read at info.sequence; empty for a delete
  bool operator==(const Version& o) const {
    return info.sequence == o.info.sequence && info.time_ns == o.info.time_ns &&
           info.value_size == o.info.value_size && info.deleted == o.info.deleted &&
           value == o.value;
  }
};

struct State {
  SequenceNumber last = 0;
  std::map<std::string, std::vector<Version>> keys;  // newest version first
  std::map<std::string, std::string> live;           // Get at the newest sequence
};

State Capture(Store* store, const std::vector<std::string>& keys) {
  State st;
  st.last = store->LastSequence();
  for (const std::string& k : keys) {
    std::vector<VersionInfo> infos;
    EXPECT_OK(store->Versions(k, &infos));
    std::vector<Version>& out = st.keys[k];
    for (const VersionInfo& vi : infos) {
      Version v{vi, {}};
      if (!vi.deleted) {
        ReadOptions ro;
        ro.sequence = vi.sequence;
        Status s = store->Get(ro, k, &v.value);
        if (!s.ok()) v.value = "ERROR " + s.ToString();
      }
      out.push_back(std::move(v));
    }
    std::string value;
    Status s = store->Get(ReadOptions(), k, &value);
    if (s.ok()) {
      st.live[k] = value;
    } else if (!s.IsNotFound()) {
      st.live[k] = "ERROR " + s.ToString();
    }
  }
  return st;
}

void ExpectSameState(const State& a, const State& b) {
  EXPECT_EQ(a.last, b.last);
  ASSERT_EQ(a.keys.size(), b.keys.size());
  for (const auto& [k, versions] : a.keys) {
    auto it = b.keys.find(k);
    ASSERT_NE(it, b.keys.end()) << k;
    EXPECT_TRUE(versions == it->second) << "versions of " << k << " differ";
  }
  EXPECT_EQ(a.live, b.live);
}

Options StoreOptions(uint32_t pages = 16, std::shared_ptr<const Sharder> sharder = nullptr) {
  Options o;
  o.page_count = pages;
  o.sharder = std::move(sharder);
  o.background_compaction = false;
  return o;
}

class MaintenanceTest : public ::testing::Test {
 protected:
  // Writes versions, deletes, compressible and incompressible values and batches that span
  // pages, then closes the store cleanly (hint files written).
  void Fill(const std::string& dir, uint32_t pages = 16,
            std::shared_ptr<const Sharder> sharder = nullptr, int nkeys = 240) {
    std::unique_ptr<Store> store;
    ASSERT_OK(OpenPageStore(StoreOptions(pages, sharder), dir, &store));
    std::mt19937_64 rng(42);
    for (int i = 0; i < nkeys; ++i) keys_.push_back(KeyName(i));
    for (int round = 0; round < 3; ++round) {
      for (int start = 0; start < nkeys; start += 40) {
        WriteBatch batch;  // 40 keys: a part in most pages
        for (int i = start; i < start + 40 && i < nkeys; ++i) {
          if ((i + round) % 5 == 4) continue;
          std::string value;
          switch ((i + round) % 3) {
            case 0:  // compressible
              for (int r = 0; r < 20; ++r) value += "compressible text " + keys_[i] + " ";
              break;
            case 1:
              value = RandomBytes(rng, 200);
              break;
            default:
              value = "v" + std::to_string(round) + "-" + keys_[i];
          }
          batch.Put(keys_[i], value);
        }
        ASSERT_OK(store->Write(WriteOptions(), batch));
      }
      for (int i = round; i < nkeys; i += 17) ASSERT_OK(store->Delete(WriteOptions(), keys_[i]));
    }
    // Single-key writes too: versions of one key next to each other.
    for (int v = 0; v < 4; ++v)
      ASSERT_OK(store->Put(WriteOptions(), keys_[3], "again" + std::to_string(v)));
  }

  virtual std::string KeyName(int i) {
    char k[32];
    snprintf(k, sizeof(k), "key%05d", i);
    return k;
  }

  State CaptureDir(const std::string& dir, Options o = StoreOptions()) {
    o.create_if_missing = false;
    std::unique_ptr<Store> store;
    Status s = OpenPageStore(o, dir, &store);
    EXPECT_TRUE(s.ok()) << s.ToString();
    if (!s.ok()) return State{};
    return Capture(store.get(), keys_);
  }

  // A record in the middle of a page (records before and after it) whose value is stored
  // raw (compressed when `compressed`) and that is the newest version of its key.
  ParsedRecord MiddleRecord(const std::string& dir, uint32_t* page, bool compressed = false) {
    for (uint32_t p = 0; p < 16; ++p) {
      std::vector<ParsedRecord> recs = ParsePage(dir + "/" + PageName(p));
      std::map<std::string, size_t> newest;
      for (size_t i = 0; i < recs.size(); ++i) newest[recs[i].key] = i;
      for (size_t i = recs.size() / 2; i + 1 < recs.size(); ++i) {
        const RecordHeader& h = recs[i].header;
        if (!h.deleted() && h.value_len > 32 && h.compressed() == compressed &&
            newest[recs[i].key] == i) {
          *page = p;
          return recs[i];
        }
      }
    }
    ADD_FAILURE() << "no suitable record";
    return {};
  }

  kvtest::ScopedTempDir tmp_{"kv-maint"};
  const std::string dir_ = tmp_.Sub("store");
  std::vector<std::string> keys_;
};

// ---- Verify ----

TEST_F(MaintenanceTest, VerifyCleanStore) {
  Fill(dir_);
  VerifyReport report;
  uint64_t last_done = 0, last_total = 0;
  VerifyOptions vo;
  vo.progress = [&](uint64_t done, uint64_t total) {
    last_done = done;
    last_total = total;
  };
  ASSERT_OK(VerifyStore(dir_, vo, &report));
  for (const auto& p : report.problems) ADD_FAILURE() << p.message;
  EXPECT_TRUE(report.ok());
  EXPECT_EQ(report.page_count, 16u);
  EXPECT_EQ(report.pages, 16u);
  EXPECT_GT(report.records, 600u);
  EXPECT_GT(report.bytes, 0u);
  EXPECT_GT(report.max_sequence, 0u);
  EXPECT_GT(last_total, 0u);
  EXPECT_EQ(last_done, last_total);

  // After compaction too (re-framed parts, remapped version chains).
  {
    std::unique_ptr<Store> store;
    Options o = StoreOptions();
    ASSERT_OK(OpenPageStore(o, dir_, &store));
    ASSERT_OK(store->Compact(CompactOptions{KeepLastNPolicy(2), -1}));
  }
  ASSERT_OK(VerifyStore(dir_, VerifyOptions(), &report));
  for (const auto& p : report.problems) ADD_FAILURE() << p.message;
}

TEST_F(MaintenanceTest, VerifyWhileOpenAndWriting) {
  Fill(dir_);
  std::unique_ptr<Store> store;
  ASSERT_OK(OpenPageStore(StoreOptions(), dir_, &store));
  for (int i = 0; i < 100; ++i) {
    WriteOptions wo;
    wo.flush = i % 2 == 0;
    ASSERT_OK(store->Put(wo, "live" + std::to_string(i), std::string(300, 'x')));
  }
  VerifyReport report;
  ASSERT_OK(VerifyStore(dir_, VerifyOptions(), &report));
  for (const auto& p : report.problems) ADD_FAILURE() << p.message;
  store.reset();

  // An incomplete last record (as while a write is under way) is a note.
  const std::string page = dir_ + "/" + PageName(2);
  std::vector<ParsedRecord> recs = ParsePage(page);
  ASSERT_FALSE(recs.empty());
  std::string data = ReadFile(page);
  data += data.substr(recs.back().offset, recs.back().header.record_size() / 2);
  WriteFile(page, data);
  ASSERT_OK(VerifyStore(dir_, VerifyOptions(), &report));
  for (const auto& p : report.problems) ADD_FAILURE() << p.message;
  bool noted = false;
  for (const std::string& n : report.notes) noted |= n.find("torn tail") != std::string::npos;
  EXPECT_TRUE(noted);
}

TEST_F(MaintenanceTest, VerifyFindsFlippedValueBit) {
  Fill(dir_);
  for (bool compressed : {false, true}) {
    SCOPED_TRACE(compressed ? "compressed" : "raw");
    fs::remove_all(dir_);
    keys_.clear();
    Fill(dir_);
    uint32_t page = 0;
    ParsedRecord rec = MiddleRecord(dir_, &page, compressed);
    FlipBit(dir_ + "/" + PageName(page), rec.offset + rec.header.record_size() - 5);
    VerifyReport report;
    ASSERT_OK(VerifyStore(dir_, VerifyOptions(), &report));
    ASSERT_EQ(report.problems.size(), 1u);
    const VerifyProblem& p = report.problems[0];
    EXPECT_EQ(p.page, page);
    EXPECT_TRUE(p.has_offset);
    EXPECT_EQ(p.offset, rec.offset);
    EXPECT_TRUE(p.has_key);
    EXPECT_EQ(p.key, rec.key);
    EXPECT_EQ(p.message.find(PageName(page) + " offset " + std::to_string(rec.offset) + ": "), 0u)
        << p.message;
    EXPECT_NE(p.message.find("data checksum mismatch"), std::string::npos) << p.message;
  }
}

TEST_F(MaintenanceTest, VerifyFindsFlippedHeaderBit) {
  Fill(dir_);
  uint32_t page = 0;
  ParsedRecord rec = MiddleRecord(dir_, &page);
  FlipBit(dir_ + "/" + PageName(page), rec.offset + format::kRecSequence + 1);
  VerifyReport report;
  ASSERT_OK(VerifyStore(dir_, VerifyOptions(), &report));
  ASSERT_FALSE(report.ok());
  const VerifyProblem& p = report.problems[0];
  EXPECT_EQ(p.page, page);
  EXPECT_EQ(p.offset, rec.offset);
  EXPECT_FALSE(p.has_key);
  EXPECT_NE(p.message.find("header checksum mismatch"), std::string::npos) << p.message;
  // The hint names the key whose newest version was there; no other key lost data.
  EXPECT_EQ(p.lost_keys, std::vector<std::string>{rec.key});
  EXPECT_FALSE(p.lost_keys_capped);
}

// Damage spanning records names every key that lost a version there: those whose newest
// version was there (from the hint file), and those whose newer versions chain back into it
// (from the scan). Exactly those: no key whose versions all lie elsewhere.
TEST_F(MaintenanceTest, VerifyNamesKeysLostToUnreadableBytes) {
  Fill(dir_);
  // A page and five records in it that hold both a newest version and an older version
  // whose key has a newer one after the damage, with records before and after.
  uint32_t page = 0;
  std::vector<ParsedRecord> recs;
  size_t first = 0;
  for (uint32_t p = 0; p < 16 && first == 0; ++p) {
    recs = ParsePage(dir_ + "/" + PageName(p));
    const std::map<std::string, uint64_t> newest = NewestOffsets(recs);
    for (size_t i = 2; i + 6 < recs.size() && first == 0; ++i) {
      bool has_newest = false, has_older = false;
      for (size_t j = i; j < i + 5; ++j) {
        (newest.at(recs[j].key) == recs[j].offset ? has_newest : has_older) = true;
      }
      if (has_newest && has_older) {
        page = p;
        first = i;
      }
    }
  }
  ASSERT_NE(first, 0u) << "no suitable records";
  const uint64_t begin = recs[first].offset, end = recs[first + 5].offset;
  std::set<std::string> from_hint, from_chains;
  for (const std::string& k : NewestIn(NewestOffsets(recs), begin, end)) from_hint.insert(k);
  for (size_t j = first + 5; j < recs.size(); ++j) {
    const uint64_t prev = recs[j].header.prev;
    if (prev != format::kNoPrev && prev >= begin && prev < end) from_chains.insert(recs[j].key);
  }
  ASSERT_FALSE(from_hint.empty());
  ASSERT_FALSE(from_chains.empty());
  std::set<std::string> expected = from_hint;
  expected.insert(from_chains.begin(), from_chains.end());

  // Garbage from the first record's header into the fifth's.
  const std::string path = dir_ + "/" + PageName(page);
  std::string data = ReadFile(path);
  std::mt19937_64 rng(11);
  const uint64_t from = begin + 10, to = recs[first + 4].offset + 20;
  data.replace(from, to - from, RandomBytes(rng, to - from));
  WriteFile(path, data);

  VerifyReport report;
  ASSERT_OK(VerifyStore(dir_, VerifyOptions(), &report));
  const VerifyProblem* p = FindProblem(report, page, "header checksum mismatch", &begin);
  ASSERT_NE(p, nullptr);
  EXPECT_NE(p->message.find("(" + std::to_string(end - begin) + " bytes unreadable)"),
            std::string::npos)
      << p->message;
  EXPECT_FALSE(p->has_key);
  EXPECT_EQ(p->lost_keys, std::vector<std::string>(expected.begin(), expected.end()));
  EXPECT_FALSE(p->lost_keys_capped);
  // No other problem names lost keys.
  size_t naming = 0;
  for (const VerifyProblem& q : report.problems) naming += q.lost_keys.empty() ? 0 : 1;
  EXPECT_EQ(naming, 1u);

  // Without a hint only the version chains tell.
  fs::remove(dir_ + "/page-" + PageName(page).substr(5, 4) + ".hint");
  ASSERT_OK(VerifyStore(dir_, VerifyOptions(), &report));
  p = FindProblem(report, page, "header checksum mismatch", &begin);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->lost_keys, std::vector<std::string>(from_chains.begin(), from_chains.end()));
}

TEST_F(MaintenanceTest, VerifyFindsTruncatedPage) {
  Fill(dir_);
  const std::string page = dir_ + "/" + PageName(5);
  ASSERT_TRUE(fs::exists(dir_ + "/page-0005.hint"));
  const uint64_t size = fs::file_size(page);
  fs::resize_file(page, size / 2);
  VerifyReport report;
  ASSERT_OK(VerifyStore(dir_, VerifyOptions(), &report));
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(report.problems[0].page, 5);
  EXPECT_NE(report.problems[0].message.find("truncated"), std::string::npos)
      << report.problems[0].message;
}

// A truncated page names, from its hint, the keys whose newest version was cut off; the
// record the cut went through is an incomplete record naming its own key.
TEST_F(MaintenanceTest, VerifyNamesKeysLostToTruncation) {
  Fill(dir_);
  const std::string path = dir_ + "/" + PageName(5);
  const std::vector<ParsedRecord> recs = ParsePage(path);
  ASSERT_GT(recs.size(), 10u);
  const std::map<std::string, uint64_t> newest = NewestOffsets(recs);
  const std::string original = ReadFile(path);
  const uint64_t size = original.size();
  ASSERT_EQ(recs.back().offset + recs.back().header.record_size(), size);

  // At a record boundary, and in the middle of a record.
  const ParsedRecord& cut_record = recs[recs.size() / 2];
  for (uint64_t cut : {cut_record.offset, cut_record.offset + 30}) {
    SCOPED_TRACE("cut at " + std::to_string(cut));
    WriteFile(path, original.substr(0, cut));
    VerifyReport report;
    ASSERT_OK(VerifyStore(dir_, VerifyOptions(), &report));
    const VerifyProblem* p = FindProblem(report, 5, "truncated");
    ASSERT_NE(p, nullptr);
    const std::vector<std::string> expected = NewestIn(newest, cut, size);
    ASSERT_FALSE(expected.empty());
    EXPECT_EQ(p->lost_keys, expected);
    EXPECT_FALSE(p->lost_keys_capped);
    const VerifyProblem* torn = FindProblem(report, 5, "incomplete record", &cut_record.offset);
    if (cut == cut_record.offset) {
      EXPECT_EQ(torn, nullptr);
    } else {
      ASSERT_NE(torn, nullptr);
      EXPECT_EQ(torn->lost_keys, NewestIn(newest, cut_record.offset, cut));
    }
    // No other problem names keys (an incomplete batch part, say, has no byte range).
    for (const VerifyProblem& q : report.problems) {
      if (&q != p && &q != torn) {
        EXPECT_TRUE(q.lost_keys.empty()) << q.message;
      }
    }
  }
}

// A missing page file names every key of its hint file, when the hint is that page's.
TEST_F(MaintenanceTest, VerifyNamesKeysLostWithAMissingPage) {
  Fill(dir_);
  const std::string hint7 = dir_ + "/page-0007.hint", hint8 = dir_ + "/page-0008.hint";
  const std::map<std::string, uint64_t> newest = NewestOffsets(ParsePage(dir_ + "/" + PageName(7)));
  ASSERT_GT(newest.size(), 5u);
  std::vector<std::string> expected;
  for (const auto& [key, offset] : newest) expected.push_back(key);
  for (const std::string& k : keys_) {
    EXPECT_EQ(newest.count(k), PageForKey(*WholeKeySharder(), k, 16) == 7 ? 1u : 0u) << k;
  }
  fs::remove(dir_ + "/" + PageName(7));
  VerifyReport report;
  ASSERT_OK(VerifyStore(dir_, VerifyOptions(), &report));
  ASSERT_EQ(report.problems.size(), 1u);
  EXPECT_NE(report.problems[0].message.find("missing"), std::string::npos);
  EXPECT_EQ(report.problems[0].lost_keys, expected);
  EXPECT_FALSE(report.problems[0].lost_keys_capped);

  // Another page's hint in its place names nothing.
  const std::string saved = ReadFile(hint7);
  WriteFile(hint7, ReadFile(hint8));
  ASSERT_OK(VerifyStore(dir_, VerifyOptions(), &report));
  ASSERT_EQ(report.problems.size(), 1u);
  EXPECT_TRUE(report.problems[0].lost_keys.empty());
  WriteFile(hint7, saved);

  // Neither does a hint whose store cannot be told (the superblock is damaged).
  FlipBit(dir_ + "/SUPERBLOCK", 14);
  ASSERT_OK(VerifyStore(dir_, VerifyOptions(), &report));
  const VerifyProblem* p = FindProblem(report, 7, "missing");
  ASSERT_NE(p, nullptr);
  EXPECT_TRUE(p->lost_keys.empty());
}

// The list stops at VerifyProblem::kMaxLostKeys keys, and says so.
TEST_F(MaintenanceTest, VerifyCapsLostKeys) {
  const size_t n = VerifyProblem::kMaxLostKeys + 25;
  {
    std::unique_ptr<Store> store;
    ASSERT_OK(OpenPageStore(StoreOptions(1), dir_, &store));
    WriteBatch batch;
    for (size_t i = 0; i < n; ++i) batch.Put("k" + std::to_string(i), "v");
    ASSERT_OK(store->Write(WriteOptions(), batch));
  }
  fs::remove(dir_ + "/" + PageName(0));
  VerifyReport report;
  ASSERT_OK(VerifyStore(dir_, VerifyOptions(), &report));
  ASSERT_EQ(report.problems.size(), 1u);
  const VerifyProblem& p = report.problems[0];
  EXPECT_EQ(p.lost_keys.size(), VerifyProblem::kMaxLostKeys);
  EXPECT_TRUE(p.lost_keys_capped);
  EXPECT_TRUE(std::is_sorted(p.lost_keys.begin(), p.lost_keys.end()));
  EXPECT_EQ(std::set<std::string>(p.lost_keys.begin(), p.lost_keys.end()).size(),
            p.lost_keys.size());
}

TEST_F(MaintenanceTest, VerifyFindsMissingPageAndBadSuperblock) {
  Fill(dir_);
  fs::remove(dir_ + "/" + PageName(7));
  VerifyReport report;
  ASSERT_OK(VerifyStore(dir_, VerifyOptions(), &report));
  ASSERT_EQ(report.problems.size(), 1u);
  EXPECT_EQ(report.problems[0].page, 7);
  EXPECT_NE(report.problems[0].message.find("missing"), std::string::npos);

  FlipBit(dir_ + "/SUPERBLOCK", 14);
  ASSERT_OK(VerifyStore(dir_, VerifyOptions(), &report));
  ASSERT_GE(report.problems.size(), 1u);
  EXPECT_EQ(report.problems[0].page, -1);
  EXPECT_NE(report.problems[0].message.find("SUPERBLOCK"), std::string::npos);
  EXPECT_EQ(report.pages, 15u);  // the other pages are still checked

  EXPECT_TRUE(VerifyStore(tmp_.Sub("nothing"), VerifyOptions(), &report).IsNotFound());
}

TEST_F(MaintenanceTest, VerifyRefusesNewerFormat) {
  Fill(dir_);
  Superblock sb;
  ASSERT_OK(ReadSuperblock(Env::Default(), dir_, &sb));
  sb.format_version = format::kFormatVersion + 1;
  WriteFile(dir_ + "/SUPERBLOCK", sb.Encode());
  VerifyReport report;
  Status s = VerifyStore(dir_, VerifyOptions(), &report);
  EXPECT_TRUE(s.IsNotSupported()) << s.ToString();
  EXPECT_NE(s.message().find("newer"), std::string::npos) << s.ToString();
  RepairReport repair;
  EXPECT_TRUE(RepairStore(dir_, RepairOptions(), &repair).IsNotSupported());
}

// ---- Salvage ----

TEST_F(MaintenanceTest, SalvageOpenReadsEverythingIntact) {
  Fill(dir_);
  const State before = CaptureDir(dir_);
  uint32_t page = 0;
  ParsedRecord rec = MiddleRecord(dir_, &page);
  FlipBit(dir_ + "/" + PageName(page), rec.offset + format::kRecordHeaderSize + rec.key.size() + 3);
  // Without hints recovery scans the page, and refuses it.
  for (uint32_t i = 0; i < 16; ++i)
    fs::remove(dir_ + "/page-" + PageName(i).substr(5, 4) + ".hint");
  std::unique_ptr<Store> store;
  Options o = StoreOptions();
  o.read_only = true;
  Status s = OpenPageStore(o, dir_, &store);
  ASSERT_TRUE(s.IsCorruption()) << s.ToString();
  EXPECT_NE(s.message().find(PageName(page) + " offset " + std::to_string(rec.offset)),
            std::string::npos)
      << s.ToString();

  o.salvage = true;
  o.read_only = false;
  EXPECT_TRUE(OpenPageStore(o, dir_, &store).IsInvalidArgument());
  o.read_only = true;
  ASSERT_OK(OpenPageStore(o, dir_, &store));
  State after = Capture(store.get(), keys_);
  size_t checked_in_page = 0;
  for (const std::string& k : keys_) {
    if (k == rec.key) continue;
    EXPECT_TRUE(before.keys.at(k) == after.keys.at(k)) << k;
    EXPECT_EQ(before.live.count(k), after.live.count(k)) << k;
    if (before.live.count(k)) {
      EXPECT_EQ(before.live.at(k), after.live.at(k)) << k;
    }
    if (PageForKey(*WholeKeySharder(), k, 16) == page) ++checked_in_page;
  }
  EXPECT_GT(checked_in_page, 5u);
  // The damaged key falls back to its previous version.
  const std::vector<Version>& v = before.keys.at(rec.key);
  std::vector<Version> expected(v.begin() + 1, v.end());
  EXPECT_TRUE(after.keys.at(rec.key) == expected);
  store.reset();

  // A missing page reads as empty.
  fs::remove(dir_ + "/" + PageName((page + 1) % 16));
  ASSERT_OK(OpenPageStore(o, dir_, &store));
  after = Capture(store.get(), keys_);
  for (const std::string& k : keys_) {
    const uint32_t p = PageForKey(*WholeKeySharder(), k, 16);
    if (p == (page + 1) % 16) {
      EXPECT_TRUE(after.keys.at(k).empty()) << k;
    } else if (k != rec.key) {
      EXPECT_TRUE(before.keys.at(k) == after.keys.at(k)) << k;
    }
  }
}

TEST_F(MaintenanceTest, GarbageSpanningRecordsIsSkipped) {
  Fill(dir_);
  const State before = CaptureDir(dir_);
  const std::string path = dir_ + "/" + PageName(6);
  std::vector<ParsedRecord> recs = ParsePage(path);
  ASSERT_GT(recs.size(), 14u);
  const uint64_t from = recs[5].offset + 10, to = recs[9].offset + 20;
  std::string data = ReadFile(path);
  std::mt19937_64 rng(7);
  data.replace(from, to - from, RandomBytes(rng, to - from));
  WriteFile(path, data);
  std::set<std::string> damaged;
  for (size_t i = 5; i <= 9; ++i) damaged.insert(recs[i].key);

  VerifyReport report;
  ASSERT_OK(VerifyStore(dir_, VerifyOptions(), &report));
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(report.problems[0].offset, recs[5].offset);
  EXPECT_NE(report.problems[0].message.find(std::to_string(recs[10].offset - recs[5].offset) +
                                            " bytes unreadable"),
            std::string::npos)
      << report.problems[0].message;

  Options o = StoreOptions();
  o.read_only = o.salvage = true;
  std::unique_ptr<Store> store;
  ASSERT_OK(OpenPageStore(o, dir_, &store));
  State salvaged = Capture(store.get(), keys_);
  store.reset();
  RepairReport repair;
  ASSERT_OK(RepairStore(dir_, RepairOptions(), &repair));
  ASSERT_OK(VerifyStore(dir_, VerifyOptions(), &report));
  for (const auto& p : report.problems) ADD_FAILURE() << p.message;
  State repaired = CaptureDir(dir_);
  for (const std::string& k : keys_) {
    if (damaged.count(k)) continue;
    EXPECT_TRUE(before.keys.at(k) == salvaged.keys.at(k)) << k;
    EXPECT_TRUE(before.keys.at(k) == repaired.keys.at(k)) << k;
  }
  for (const std::string& k : damaged) {
    // Repair relinks the versions around the lost ones: every other version is there.
    std::vector<Version> expected;
    for (const Version& v : before.keys.at(k)) {
      bool lost = false;
      for (size_t i = 5; i <= 9; ++i)
        lost |= recs[i].key == k && recs[i].header.sequence == v.info.sequence;
      if (!lost) expected.push_back(v);
    }
    EXPECT_TRUE(repaired.keys.at(k) == expected) << k;
  }
}

// ---- Repair ----

class RepairTest : public MaintenanceTest {
 protected:
  // Repairs, then checks that the store opens, verifies clean and that every key outside
  // `damaged_pages` (and other than `damaged_key`) is exactly as before.
  void RepairAndCheck(const State& before, const std::vector<uint32_t>& damaged_pages,
                      const std::string& damaged_key, RepairReport* report) {
    ASSERT_OK(RepairStore(dir_, RepairOptions(), report));
    EXPECT_TRUE(report->changed());
    VerifyReport verify;
    ASSERT_OK(VerifyStore(dir_, VerifyOptions(), &verify));
    for (const auto& p : verify.problems) ADD_FAILURE() << p.message;
    State after = CaptureDir(dir_);
    for (const std::string& k : keys_) {
      const uint32_t p = PageForKey(*WholeKeySharder(), k, 16);
      if (k == damaged_key ||
          std::find(damaged_pages.begin(), damaged_pages.end(), p) != damaged_pages.end()) {
        continue;
      }
      EXPECT_TRUE(before.keys.at(k) == after.keys.at(k)) << k;
      EXPECT_EQ(before.live.count(k), after.live.count(k)) << k;
    }
    EXPECT_EQ(after.last, before.last);
    // Still a working store.
    std::unique_ptr<Store> store;
    ASSERT_OK(OpenPageStore(StoreOptions(), dir_, &store));
    ASSERT_OK(store->Put(WriteOptions(), "after-repair", "yes"));
    store.reset();
    ASSERT_OK(OpenPageStore(StoreOptions(), dir_, &store));
    std::string v;
    ASSERT_OK(store->Get(ReadOptions(), "after-repair", &v));
    EXPECT_EQ(v, "yes");
  }
};

TEST_F(RepairTest, FlippedValueBit) {
  Fill(dir_);
  const State before = CaptureDir(dir_);
  uint32_t page = 0;
  ParsedRecord rec = MiddleRecord(dir_, &page);
  FlipBit(dir_ + "/" + PageName(page), rec.offset + rec.header.record_size() - 1);
  RepairReport report;
  RepairAndCheck(before, {}, rec.key, &report);
  EXPECT_EQ(report.pages_rewritten, 1u);
  ASSERT_EQ(report.dropped.size(), 1u);
  EXPECT_EQ(report.dropped[0].page, page);
  EXPECT_EQ(report.dropped[0].offset, rec.offset);
  EXPECT_EQ(report.dropped[0].bytes, rec.header.record_size());
  EXPECT_TRUE(report.dropped[0].has_key);
  EXPECT_EQ(report.dropped[0].key, rec.key);
  // The damaged version is gone; the key's older versions stay, chained as before.
  State after = CaptureDir(dir_);
  const std::vector<Version>& v = before.keys.at(rec.key);
  EXPECT_TRUE(after.keys.at(rec.key) == std::vector<Version>(v.begin() + 1, v.end()));
}

TEST_F(RepairTest, FlippedHeaderBit) {
  Fill(dir_);
  const State before = CaptureDir(dir_);
  uint32_t page = 0;
  ParsedRecord rec = MiddleRecord(dir_, &page, /*compressed=*/true);
  FlipBit(dir_ + "/" + PageName(page), rec.offset + format::kRecPrev);
  RepairReport report;
  RepairAndCheck(before, {}, rec.key, &report);
  ASSERT_EQ(report.dropped.size(), 1u);
  EXPECT_EQ(report.dropped[0].offset, rec.offset);
  EXPECT_EQ(report.dropped[0].bytes, rec.header.record_size());
  EXPECT_FALSE(report.dropped[0].has_key);
}

TEST_F(RepairTest, TruncatedPage) {
  Fill(dir_);
  const State before = CaptureDir(dir_);
  const std::string page = dir_ + "/" + PageName(9);
  fs::resize_file(page, fs::file_size(page) * 2 / 3);
  RepairReport report;
  RepairAndCheck(before, {9}, "", &report);
  EXPECT_FALSE(fs::exists(dir_ + "/page-0009.hint") &&
               fs::last_write_time(dir_ + "/page-0009.hint") < fs::last_write_time(page));
}

TEST_F(RepairTest, MissingPage) {
  Fill(dir_);
  const State before = CaptureDir(dir_);
  fs::remove(dir_ + "/" + PageName(12));
  RepairReport report;
  RepairAndCheck(before, {12}, "", &report);
  EXPECT_EQ(report.pages_recreated, 1u);
  State after = CaptureDir(dir_);
  for (const std::string& k : keys_) {
    if (PageForKey(*WholeKeySharder(), k, 16) == 12) {
      EXPECT_TRUE(after.keys.at(k).empty()) << k;
    }
  }
}

TEST_F(RepairTest, DamageAboveTheWatermarkOfACrashedStore) {
  Fill(dir_);
  Superblock sb;
  ASSERT_OK(ReadSuperblock(Env::Default(), dir_, &sb));
  const SequenceNumber watermark = sb.durable_sequence;
  // Batches above the watermark: copy the files of an open store (as a crash leaves them).
  {
    std::unique_ptr<Store> store;
    ASSERT_OK(OpenPageStore(StoreOptions(), dir_, &store));
    for (int i = 0; i < 50; ++i) {
      WriteBatch b;
      b.Put(keys_[i], "crash" + std::to_string(i));
      b.Put(keys_[i + 100], "crash" + std::to_string(i));
      ASSERT_OK(store->Write(WriteOptions(), b));
    }
    ASSERT_OK(store->Flush());
    fs::copy(dir_, tmp_.Sub("crashed"), fs::copy_options::recursive);
  }
  fs::remove_all(dir_);
  fs::rename(tmp_.Sub("crashed"), dir_);
  fs::remove(dir_ + "/LOCK");
  Options ro = StoreOptions();
  ro.read_only = true;
  const State before = CaptureDir(dir_, ro);
  ASSERT_OK(ReadSuperblock(Env::Default(), dir_, &sb));
  ASSERT_EQ(sb.durable_sequence, watermark);
  ASSERT_EQ(before.last, watermark + 50);

  // Damage a record above the watermark, and one below it in another page.
  ParsedRecord above{};
  uint32_t page = 0;
  for (uint32_t p = 0; p < 16 && above.offset == 0; ++p) {
    std::vector<ParsedRecord> recs = ParsePage(dir_ + "/" + PageName(p));
    for (size_t i = 0; i + 1 < recs.size(); ++i) {
      if (recs[i].header.sequence > watermark + 10) {
        above = recs[i];
        page = p;
        break;
      }
    }
  }
  ASSERT_NE(above.offset, 0u);
  FlipBit(dir_ + "/" + PageName(page), above.offset + above.header.record_size() - 1);
  const uint32_t other = (page + 3) % 16;
  std::vector<ParsedRecord> recs = ParsePage(dir_ + "/" + PageName(other));
  ASSERT_GT(recs.size(), 4u);
  const ParsedRecord below = recs[2];
  ASSERT_LE(below.header.sequence, watermark);
  FlipBit(dir_ + "/" + PageName(other), below.offset + 1);  // header checksum

  RepairReport report;
  ASSERT_OK(RepairStore(dir_, RepairOptions(), &report));
  EXPECT_EQ(report.pages_rewritten, 2u);
  VerifyReport verify;
  ASSERT_OK(VerifyStore(dir_, VerifyOptions(), &verify));
  for (const auto& p : verify.problems) ADD_FAILURE() << p.message;
  // The batch that lost a record is gone with every later one (recovery keeps a prefix of
  // the writes); below the watermark only the damaged version is missing.
  const SequenceNumber lost = above.header.sequence;
  State after = CaptureDir(dir_);
  EXPECT_EQ(after.last, lost - 1);
  EXPECT_EQ(report.last_sequence, lost - 1);
  for (const std::string& k : keys_) {
    std::vector<Version> expected;
    for (const Version& v : before.keys.at(k)) {
      if (v.info.sequence >= lost) continue;
      if (k == below.key && v.info.sequence == below.header.sequence) continue;
      expected.push_back(v);
    }
    EXPECT_TRUE(after.keys.at(k) == expected) << k;
  }
}

TEST_F(RepairTest, BadPageHeader) {
  Fill(dir_);
  const State before = CaptureDir(dir_);
  FlipBit(dir_ + "/" + PageName(4), 17);  // the generation: header checksum fails
  VerifyReport verify;
  ASSERT_OK(VerifyStore(dir_, VerifyOptions(), &verify));
  ASSERT_EQ(verify.problems.size(), 1u);
  EXPECT_NE(verify.problems[0].message.find("page-0004.kv: page header checksum mismatch"),
            std::string::npos)
      << verify.problems[0].message;
  std::unique_ptr<Store> store;
  Options o = StoreOptions();
  o.read_only = true;
  EXPECT_TRUE(OpenPageStore(o, dir_, &store).IsCorruption());
  o.salvage = true;
  ASSERT_OK(OpenPageStore(o, dir_, &store));
  ExpectSameState(before, Capture(store.get(), keys_));
  store.reset();

  RepairReport report;
  ASSERT_OK(RepairStore(dir_, RepairOptions(), &report));
  EXPECT_EQ(report.pages_rewritten, 1u);
  ExpectSameState(before, CaptureDir(dir_));
  ASSERT_OK(VerifyStore(dir_, VerifyOptions(), &verify));
  for (const auto& p : verify.problems) ADD_FAILURE() << p.message;
}

TEST_F(RepairTest, CleanStoreUnchangedAndLockRespected) {
  Fill(dir_);
  const State before = CaptureDir(dir_);
  RepairReport report;
  ASSERT_OK(RepairStore(dir_, RepairOptions(), &report));
  EXPECT_FALSE(report.changed());
  EXPECT_EQ(report.last_sequence, before.last);
  ExpectSameState(before, CaptureDir(dir_));

  std::unique_ptr<Store> store;
  ASSERT_OK(OpenPageStore(StoreOptions(), dir_, &store));
  Status s = RepairStore(dir_, RepairOptions(), &report);
  EXPECT_TRUE(s.IsBusy()) << s.ToString();
  EXPECT_NE(s.message().find("in use by pid"), std::string::npos) << s.ToString();
  s = ReshardStore(dir_, 4, ReshardOptions());
  EXPECT_TRUE(s.IsBusy()) << s.ToString();
}

// ---- Reshard ----

TEST_F(MaintenanceTest, ReshardKeepsEveryVersion) {
  Fill(dir_);
  const State before = CaptureDir(dir_);
  ASSERT_GT(before.last, 10u);
  uint64_t last_done = 0, last_total = 0;
  ReshardOptions ro;
  ro.progress = [&](uint64_t done, uint64_t total) {
    last_done = done;
    last_total = total;
  };
  for (uint32_t pages : {4u, 64u, 1u, 16u}) {
    SCOPED_TRACE(pages);
    ASSERT_OK(ReshardStore(dir_ + "/", pages, ro));
    EXPECT_FALSE(fs::exists(dir_ + ".reshard-tmp"));
    EXPECT_GT(last_total, 0u);
    EXPECT_EQ(last_done, last_total);
    Superblock sb;
    ASSERT_OK(ReadSuperblock(Env::Default(), dir_, &sb));
    EXPECT_EQ(sb.page_count, pages);
    ExpectSameState(before, CaptureDir(dir_));
    VerifyReport verify;
    ASSERT_OK(VerifyStore(dir_, VerifyOptions(), &verify));
    for (const auto& p : verify.problems) ADD_FAILURE() << p.message;
    std::unique_ptr<Store> store;
    ASSERT_OK(OpenPageStore(StoreOptions(), dir_, &store));
    EXPECT_EQ(store->ShardCount(), pages);
  }
  Superblock sb_before;
  ASSERT_OK(ReadSuperblock(Env::Default(), dir_, &sb_before));

  // The store keeps working: writes, compaction, reopen.
  {
    std::unique_ptr<Store> store;
    ASSERT_OK(OpenPageStore(StoreOptions(), dir_, &store));
    WriteBatch b;
    for (int i = 0; i < 50; ++i) b.Put("new" + std::to_string(i), "value" + std::to_string(i));
    SequenceNumber seq = 0;
    ASSERT_OK(store->Write(WriteOptions(), b, &seq));
    EXPECT_EQ(seq, before.last + 1);
    ASSERT_OK(store->Compact(CompactOptions{KeepLastNPolicy(10), -1}));
  }
  std::unique_ptr<Store> store;
  ASSERT_OK(OpenPageStore(StoreOptions(), dir_, &store));
  EXPECT_EQ(store->LastSequence(), before.last + 1);
  std::string v;
  ASSERT_OK(store->Get(ReadOptions(), "new7", &v));
  EXPECT_EQ(v, "value7");
  ExpectSameState(before, [&] {
    State s = Capture(store.get(), keys_);
    s.last = before.last;
    return s;
  }());
  Superblock sb;
  ASSERT_OK(ReadSuperblock(Env::Default(), dir_, &sb));
  EXPECT_EQ(sb.store_id, sb_before.store_id);
}

class DirKeysTest : public MaintenanceTest {
 protected:
  std::string KeyName(int i) override {
    return "dir" + std::to_string(i % 7) + "/entry" + std::to_string(i);
  }
};

TEST_F(DirKeysTest, ReshardHonoursTheSharder) {
  auto sharder = std::make_shared<kvtest::DirSharder>();
  Fill(dir_, 16, sharder);
  const Options o = StoreOptions(16, sharder);
  const State before = CaptureDir(dir_, o);
  // The wrong sharder is refused, and nothing changes.
  Status s = ReshardStore(dir_, 4, ReshardOptions());
  EXPECT_TRUE(s.IsInvalidArgument()) << s.ToString();
  ReshardOptions ro;
  ro.sharder = sharder;
  ASSERT_OK(ReshardStore(dir_, 5, ro));
  ExpectSameState(before, CaptureDir(dir_, o));
  std::unique_ptr<Store> store;
  ASSERT_OK(OpenPageStore(o, dir_, &store));
  EXPECT_EQ(store->ShardCount(), 5u);
  // Every key of one directory in one page, so prefix iteration reads one shard.
  for (int d = 0; d < 7; ++d) {
    const std::string prefix = "dir" + std::to_string(d) + "/";
    std::set<uint32_t> pages;
    std::vector<std::string> expected;
    for (const auto& [k, v] : before.live) {
      if (k.starts_with(prefix)) expected.push_back(k);
    }
    std::vector<std::string> got;
    auto it = store->NewIterator(ReadOptions(), prefix);
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      got.emplace_back(it->key());
      EXPECT_EQ(it->value(), before.live.at(std::string(it->key())));
      pages.insert(PageForKey(*sharder, it->key(), 5));
    }
    ASSERT_OK(it->status());
    EXPECT_EQ(got, expected);
    EXPECT_EQ(pages.size(), 1u);
    for (const std::string& k : expected) {
      std::vector<ParsedRecord> recs = ParsePage(dir_ + "/" + PageName(PageForKey(*sharder, k, 5)));
      EXPECT_TRUE(
          std::any_of(recs.begin(), recs.end(), [&](const ParsedRecord& r) { return r.key == k; }));
    }
  }
}

// Reshard to a sharder with page ranges: every key moves to its range, and the store, once
// moved, opens with the new sharder alone. Before that, the new sharder opens it through
// Options::earlier_sharders, reading and writing it in its old layout.
TEST_F(DirKeysTest, ReshardMovesAnEarlierSharderToPageRanges) {
  auto earlier = std::make_shared<kvtest::DirSharder>();
  auto grouped = std::make_shared<kvtest::GroupedDirSharder>();
  Fill(dir_, 16, earlier);
  Options o = StoreOptions(16, grouped);
  {  // Without the earlier sharder the store is refused.
    std::unique_ptr<Store> store;
    Status s = OpenPageStore(o, dir_, &store);
    EXPECT_TRUE(s.IsInvalidArgument()) << s.ToString();
  }
  o.earlier_sharders = {earlier};
  {  // Opened through earlier_sharders, the store still places keys by the old sharder.
    std::unique_ptr<Store> store;
    ASSERT_OK(OpenPageStore(o, dir_, &store));
    ASSERT_OK(store->Put(WriteOptions(), "dir1/late", "late value"));
  }
  EXPECT_EQ(ParsePage(dir_ + "/" + PageName(PageForKey(*earlier, "dir1/late", 16))).back().key,
            "dir1/late");
  keys_.push_back("dir1/late");
  const State with_late = CaptureDir(dir_, o);
  EXPECT_EQ(with_late.live.at("dir1/late"), "late value");

  ReshardOptions ro;
  ro.sharder = grouped;
  Status s = ReshardStore(dir_, 0, ro);  // the earlier sharder is not accepted
  EXPECT_TRUE(s.IsInvalidArgument()) << s.ToString();
  ro.earlier_sharders = {earlier};
  ASSERT_OK(ReshardStore(dir_, 0, ro));  // 0: keep the page count
  Superblock sb;
  ASSERT_OK(ReadSuperblock(Env::Default(), dir_, &sb));
  EXPECT_EQ(sb.sharder_name, grouped->Name());
  EXPECT_EQ(sb.page_count, 16u);
  ExpectSameState(with_late, CaptureDir(dir_, StoreOptions(16, grouped)));
  {  // Now the old sharder alone is refused.
    std::unique_ptr<Store> store;
    s = OpenPageStore(StoreOptions(16, earlier), dir_, &store);
    EXPECT_TRUE(s.IsInvalidArgument()) << s.ToString();
  }
  // Every record of a dir0/ key is in page 0, and page 0 holds nothing else.
  size_t dir0_records = 0;
  for (uint32_t p = 0; p < 16; ++p) {
    for (const ParsedRecord& r : ParsePage(dir_ + "/" + PageName(p))) {
      EXPECT_EQ(p == 0, r.key.starts_with("dir0/")) << r.key << " in page " << p;
      dir0_records += p == 0;
    }
  }
  EXPECT_GT(dir0_records, 20u);
  // Prefix iteration finds a directory's keys in the one page its range and hash pick, and
  // those of a shorter prefix in the pages its range names.
  std::unique_ptr<Store> store;
  ASSERT_OK(OpenPageStore(StoreOptions(16, grouped), dir_, &store));
  std::vector<std::string> prefixes = {"", "d", "dir", "dir0", "dir1", "dir6"};
  for (int d = 0; d < 7; ++d) prefixes.push_back("dir" + std::to_string(d) + "/");
  for (const std::string& prefix : prefixes) {
    std::vector<std::string> expected, got;
    for (const auto& [k, v] : with_late.live) {
      if (k.starts_with(prefix)) expected.push_back(k);
    }
    auto it = store->NewIterator(ReadOptions(), prefix);
    for (it->SeekToFirst(); it->Valid(); it->Next()) got.emplace_back(it->key());
    ASSERT_OK(it->status());
    EXPECT_EQ(got, expected) << prefix;
  }
}

// ---- Reshard crash safety ----

TEST_F(MaintenanceTest, ReshardSurvivesACrashAtEveryStep) {
  Fill(dir_, 4, nullptr, 60);
  const State before = CaptureDir(dir_);
  const std::string pristine = tmp_.Sub("pristine");
  fs::copy(dir_, pristine, fs::copy_options::recursive);
  int crashes = 0, crashes_after_swap = 0;
  bool done = false;
  for (uint64_t n = 0; n < 5000 && !done; ++n) {
    SCOPED_TRACE(n);
    fs::remove_all(dir_);
    fs::remove_all(dir_ + ".reshard-tmp");
    fs::copy(pristine, dir_, fs::copy_options::recursive);
    kvtest::FaultInjectionEnv env;
    env.SkipRealSyncs(true);
    env.DeactivateAfter(n);
    ReshardOptions ro;
    ro.env = &env;
    Status s = ReshardStore(dir_, 3, ro);
    env.SetFilesystemActive(true);
    if (s.ok()) {
      done = true;
    } else {
      ++crashes;
    }
    // Whatever happened, `dir` holds the old or the new store, complete.
    Superblock sb;
    ASSERT_OK(ReadSuperblock(Env::Default(), dir_, &sb));
    EXPECT_TRUE(sb.page_count == 4 || sb.page_count == 3) << sb.page_count;
    ExpectSameState(before, CaptureDir(dir_));  // a writable open: removes leftovers
    EXPECT_FALSE(fs::exists(dir_ + ".reshard-tmp"));
    if (s.ok()) {
      EXPECT_EQ(sb.page_count, 3u);
    } else if (sb.page_count == 3) {
      ++crashes_after_swap;
    }
  }
  EXPECT_TRUE(done);
  EXPECT_GT(crashes, 20);
  EXPECT_GT(crashes_after_swap, 0);
}

TEST_F(MaintenanceTest, ReshardLeftoversAreRemoved) {
  Fill(dir_, 16, nullptr, 60);
  const State before = CaptureDir(dir_);
  const std::string leftover = dir_ + ".reshard-tmp";
  // As if a reshard died after the exchange: the old copy is left next to the store.
  fs::copy(dir_, leftover, fs::copy_options::recursive);
  ASSERT_OK(ReshardStore(dir_, 8, ReshardOptions()));
  EXPECT_FALSE(fs::exists(leftover));
  ExpectSameState(before, CaptureDir(dir_));
  // A writable open removes one too; a read-only open leaves it.
  fs::copy(dir_, leftover, fs::copy_options::recursive);
  {
    Options o = StoreOptions();
    o.read_only = true;
    std::unique_ptr<Store> store;
    ASSERT_OK(OpenPageStore(o, dir_, &store));
  }
  EXPECT_TRUE(fs::exists(leftover));
  CaptureDir(dir_);
  EXPECT_FALSE(fs::exists(leftover));
  // Not a store's leftover: kept, and a reshard refuses to go on.
  fs::create_directory(leftover);
  WriteFile(leftover + "/precious.txt", "mine");
  Status s = ReshardStore(dir_, 4, ReshardOptions());
  EXPECT_TRUE(s.IsInvalidArgument()) << s.ToString();
  EXPECT_TRUE(fs::exists(leftover + "/precious.txt"));
  ExpectSameState(before, CaptureDir(dir_));
}

}  // namespace
}  // namespace kv

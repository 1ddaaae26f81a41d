// Basic behaviour of the page store through kv::Store: reads and writes, limits, large and
// compressed values, persistence, locking, format versions, versions and snapshots, iterators.
#include <gtest/gtest.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "kv/env.h"
#include "kv/format.h"
#include "kv/record.h"
#include "kv/status.h"
#include "kv/store.h"
#include "tests/support/fault_env.h"
#include "tests/support/page_file.h"
#include "tests/support/test_util.h"

namespace kv {
namespace {

using kvtest::CompressibleBytes;
using kvtest::RandomBytes;

// Values of every kind a read path treats apart: empty, raw and compressed, small and large.
std::map<std::string, std::string> ValuesOfEveryKind(uint64_t seed) {
  std::mt19937_64 rng(seed);
  return {
      {"empty", ""},
      {"raw-small", RandomBytes(rng, 300)},
      {"raw-large", RandomBytes(rng, 64 << 10)},
      {"zip-small", CompressibleBytes(2000)},
      {"zip-large", CompressibleBytes(256 << 10)},
  };
}

using kvtest::DirSharder;

class StoreBasicTest : public ::testing::Test {
 protected:
  StoreBasicTest() {
    options_.page_count = 4;
    options_.background_compaction = false;
  }

  void Open() {
    store_.reset();
    ASSERT_OK(OpenPageStore(options_, dir_.path(), &store_));
  }
  void Close() { store_.reset(); }

  // The value, "NOT_FOUND", or "ERROR: ..." .
  std::string Get(std::string_view key, const ReadOptions& ro = ReadOptions()) {
    std::string value;
    Status s = store_->Get(ro, key, &value);
    if (s.IsNotFound()) return "NOT_FOUND";
    if (!s.ok()) return "ERROR: " + s.ToString();
    return value;
  }
  std::string GetAt(std::string_view key, SequenceNumber seq) {
    ReadOptions ro;
    ro.sequence = seq;
    return Get(key, ro);
  }
  SequenceNumber Put(std::string_view key, std::string_view value, bool sync = false) {
    WriteBatch b;
    b.Put(key, value);
    return WriteOrDie(b, sync);
  }
  SequenceNumber Del(std::string_view key) {
    WriteBatch b;
    b.Delete(key);
    return WriteOrDie(b, false);
  }
  SequenceNumber WriteOrDie(const WriteBatch& b, bool sync) {
    WriteOptions wo;
    wo.sync = sync;
    SequenceNumber seq = 0;
    Status s = store_->Write(wo, b, &seq);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return seq;
  }
  // All (key, value) pairs under `prefix`, checking order.
  std::vector<std::pair<std::string, std::string>> Scan(std::string_view prefix,
                                                        const ReadOptions& ro = ReadOptions()) {
    std::vector<std::pair<std::string, std::string>> out;
    auto it = store_->NewIterator(ro, prefix);
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      if (!out.empty()) {
        EXPECT_LT(out.back().first, it->key());
      }
      EXPECT_TRUE(it->key().starts_with(prefix)) << it->key();
      out.emplace_back(std::string(it->key()), std::string(it->value()));
    }
    EXPECT_OK(it->status());
    return out;
  }

  kvtest::ScopedTempDir dir_{"kv-basic"};
  Options options_;
  std::unique_ptr<Store> store_;
};

TEST_F(StoreBasicTest, PutGetDeleteOverwrite) {
  ASSERT_NO_FATAL_FAILURE(Open());
  EXPECT_EQ(Get("a"), "NOT_FOUND");
  Put("a", "1");
  Put("b", "2");
  EXPECT_EQ(Get("a"), "1");
  EXPECT_EQ(Get("b"), "2");
  Put("a", "one");
  EXPECT_EQ(Get("a"), "one");
  Del("a");
  EXPECT_EQ(Get("a"), "NOT_FOUND");
  EXPECT_EQ(Get("b"), "2");
  Del("never-existed");  // deleting an absent key is not an error
  EXPECT_EQ(Get("never-existed"), "NOT_FOUND");
  Put("a", "again");
  EXPECT_EQ(Get("a"), "again");
  // Keys are bytes: NUL and high bytes are ordinary.
  const std::string binary_key("k\0\xff\x01", 4);
  Put(binary_key, std::string("v\0v", 3));
  EXPECT_EQ(Get(binary_key), std::string("v\0v", 3));
  EXPECT_EQ(Get(std::string("k\0", 2)), "NOT_FOUND");
}

// Point reads find a key's entry by its 32-bit index hash and check the key in the record;
// two keys with the same hash in one page must still read right (and absent stays absent).
TEST_F(StoreBasicTest, KeysWithTheSameIndexHash) {
  options_.page_count = 1;
  Open();
  auto hash = [](const std::string& k) {
    return static_cast<uint32_t>(XXH3_64bits(k.data(), k.size()) >> 32);
  };
  std::unordered_map<uint32_t, std::string> seen;
  std::string a, b;
  for (uint64_t i = 0; a.empty(); ++i) {
    std::string k = "collide-" + std::to_string(i);
    auto [it, inserted] = seen.emplace(hash(k), k);
    if (!inserted) {
      a = it->second;
      b = k;
    }
  }
  ASSERT_OK(store_->Put(WriteOptions(), a, "value of a"));
  std::string v;
  EXPECT_TRUE(store_->Get(ReadOptions(), b, &v).IsNotFound());
  ASSERT_OK(store_->Put(WriteOptions(), b, "value of b"));
  for (int round = 0; round < 2; ++round) {
    ASSERT_OK(store_->Get(ReadOptions(), a, &v));
    EXPECT_EQ(v, "value of a");
    ASSERT_OK(store_->Get(ReadOptions(), b, &v));
    EXPECT_EQ(v, "value of b");
    ASSERT_OK(store_->Delete(WriteOptions(), a));
    EXPECT_TRUE(store_->Get(ReadOptions(), a, &v).IsNotFound());
    ASSERT_OK(store_->Put(WriteOptions(), a, "value of a"));
    Open();  // the same from the hint files
  }
}

TEST_F(StoreBasicTest, EmptyValueIsNotAbsence) {
  ASSERT_NO_FATAL_FAILURE(Open());
  Put("empty", "");
  std::string v = "junk";
  ASSERT_OK(store_->Get(ReadOptions(), "empty", &v));
  EXPECT_EQ(v, "");
  std::vector<VersionInfo> versions;
  ASSERT_OK(store_->Versions("empty", &versions));
  ASSERT_EQ(versions.size(), 1u);
  EXPECT_EQ(versions[0].value_size, 0u);
  EXPECT_FALSE(versions[0].deleted);
  auto items = Scan("");
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(items[0].first, "empty");
  EXPECT_EQ(items[0].second, "");
}

TEST_F(StoreBasicTest, SequenceNumbersAreDense) {
  ASSERT_NO_FATAL_FAILURE(Open());
  EXPECT_EQ(store_->LastSequence(), 0u);
  EXPECT_EQ(Put("a", "1"), 1u);
  EXPECT_EQ(Put("b", "1"), 2u);
  WriteBatch b;
  for (int i = 0; i < 20; i++) b.Put("batch" + std::to_string(i), "x");
  b.Delete("a");
  EXPECT_EQ(WriteOrDie(b, false), 3u);
  EXPECT_EQ(Del("b"), 4u);
  EXPECT_EQ(store_->LastSequence(), 4u);
  for (int i = 0; i < 20; i++) {
    std::vector<VersionInfo> versions;
    ASSERT_OK(store_->Versions("batch" + std::to_string(i), &versions));
    ASSERT_EQ(versions.size(), 1u);
    EXPECT_EQ(versions[0].sequence, 3u);
  }
}

TEST_F(StoreBasicTest, LaterOpInBatchWins) {
  ASSERT_NO_FATAL_FAILURE(Open());
  WriteBatch b;
  b.Put("k", "first");
  b.Put("k", "second");
  b.Put("gone", "x");
  b.Delete("gone");
  WriteOrDie(b, false);
  EXPECT_EQ(Get("k"), "second");
  EXPECT_EQ(Get("gone"), "NOT_FOUND");
  Close();
  ASSERT_NO_FATAL_FAILURE(Open());
  EXPECT_EQ(Get("k"), "second");
  EXPECT_EQ(Get("gone"), "NOT_FOUND");
}

TEST_F(StoreBasicTest, KeySizeLimit) {
  ASSERT_NO_FATAL_FAILURE(Open());
  const std::string max_key(format::kMaxKeySize, 'k');
  const std::string too_long(format::kMaxKeySize + 1, 'k');
  Put(max_key, "fits");
  EXPECT_EQ(Get(max_key), "fits");
  const SequenceNumber before = store_->LastSequence();

  Status s = store_->Put(WriteOptions(), too_long, "no");
  EXPECT_TRUE(s.IsInvalidArgument()) << s.ToString();
  // A batch with one bad key is refused as a whole.
  WriteBatch b;
  b.Put("innocent", "v");
  b.Delete(too_long);
  s = store_->Write(WriteOptions(), b);
  EXPECT_TRUE(s.IsInvalidArgument()) << s.ToString();
  EXPECT_EQ(Get("innocent"), "NOT_FOUND");
  EXPECT_EQ(store_->LastSequence(), before);
  EXPECT_EQ(Put("after", "ok"), before + 1);

  Close();
  ASSERT_NO_FATAL_FAILURE(Open());
  EXPECT_EQ(Get(max_key), "fits");
  EXPECT_EQ(Get("innocent"), "NOT_FOUND");
  EXPECT_EQ(store_->LastSequence(), before + 1);
}

TEST_F(StoreBasicTest, ValueSizeLimit) {
  ASSERT_NO_FATAL_FAILURE(Open());
  std::string huge(format::kMaxValueSize + 1, 'v');
  Status s = store_->Put(WriteOptions(), "huge", huge);
  EXPECT_TRUE(s.IsInvalidArgument()) << s.ToString();
  EXPECT_EQ(store_->LastSequence(), 0u);
  EXPECT_EQ(Get("huge"), "NOT_FOUND");
}

TEST_F(StoreBasicTest, LargeValues) {
  ASSERT_NO_FATAL_FAILURE(Open());
  std::mt19937_64 rng(7);
  const std::string random_value = RandomBytes(rng, 5 << 20);
  const std::string text_value = CompressibleBytes(6 << 20);
  Put("random", random_value);
  Put("text", text_value);
  Put("small", "s");
  EXPECT_TRUE(Get("random") == random_value);
  EXPECT_TRUE(Get("text") == text_value);
  std::vector<VersionInfo> versions;
  ASSERT_OK(store_->Versions("text", &versions));
  ASSERT_EQ(versions.size(), 1u);
  EXPECT_EQ(versions[0].value_size, text_value.size());
  Close();
  ASSERT_NO_FATAL_FAILURE(Open());
  EXPECT_TRUE(Get("random") == random_value);
  EXPECT_TRUE(Get("text") == text_value);
  EXPECT_EQ(Get("small"), "s");
}

TEST_F(StoreBasicTest, CompressibleValuesShrink) {
  ASSERT_NO_FATAL_FAILURE(Open());
  const std::string text = CompressibleBytes(1 << 20);
  Put("text", text);
  ShardStats t = store_->Stats().Total();
  EXPECT_EQ(t.raw_value_bytes, text.size());
  EXPECT_LT(t.stored_value_bytes * 4, t.raw_value_bytes) << "stored " << t.stored_value_bytes;
  EXPECT_LT(t.file_bytes, text.size() / 2);
  EXPECT_TRUE(Get("text") == text);
  Close();
  ASSERT_NO_FATAL_FAILURE(Open());
  EXPECT_TRUE(Get("text") == text);
}

TEST_F(StoreBasicTest, IncompressibleValuesStayRaw) {
  ASSERT_NO_FATAL_FAILURE(Open());
  std::mt19937_64 rng(11);
  const std::string random_value = RandomBytes(rng, 1 << 20);
  Put("random", random_value);
  ShardStats t = store_->Stats().Total();
  EXPECT_EQ(t.raw_value_bytes, random_value.size());
  EXPECT_EQ(t.stored_value_bytes, random_value.size());
  EXPECT_TRUE(Get("random") == random_value);
}

TEST_F(StoreBasicTest, SmallValuesAreProbedByTheirByteHistogram) {
  // 128 B-16 KiB values (inodes with inline data, chunks of small files): random bytes are
  // stored raw, text is compressed, and the boundary sizes of the probe behave alike. The
  // probe's threshold falls with the sample's size (a few bytes cannot fill a histogram), and
  // must still let small text through.
  ASSERT_NO_FATAL_FAILURE(Open());
  std::mt19937_64 rng(5);
  uint64_t raw = 0;
  for (size_t size : {128, 129, 200, 512, 1023, 1024, 1025, 4095, 4096, 4097, 16383}) {
    const std::string random_value = RandomBytes(rng, size);
    const std::string text = CompressibleBytes(size);
    const ShardStats before = store_->Stats().Total();
    Put("random" + std::to_string(size), random_value);
    const ShardStats after_random = store_->Stats().Total();
    EXPECT_EQ(after_random.stored_value_bytes - before.stored_value_bytes, size) << size;
    Put("text" + std::to_string(size), text);
    const ShardStats after_text = store_->Stats().Total();
    EXPECT_LT((after_text.stored_value_bytes - after_random.stored_value_bytes) * 2, size) << size;
    EXPECT_TRUE(Get("random" + std::to_string(size)) == random_value);
    EXPECT_TRUE(Get("text" + std::to_string(size)) == text);
    raw += 2 * size;
  }
  EXPECT_EQ(store_->Stats().Total().raw_value_bytes, raw);
}

TEST_F(StoreBasicTest, ShortAndUncompressedValuesStayRaw) {
  options_.compression_level = 0;
  ASSERT_NO_FATAL_FAILURE(Open());
  const std::string text = CompressibleBytes(64 << 10);
  Put("text", text);
  Put("tiny", std::string(100, 'z'));  // below compression_min_size
  ShardStats t = store_->Stats().Total();
  EXPECT_EQ(t.stored_value_bytes, t.raw_value_bytes);
  EXPECT_EQ(t.raw_value_bytes, text.size() + 100);
  Close();

  options_.compression_level = 6;  // may change on every open
  ASSERT_NO_FATAL_FAILURE(Open());
  EXPECT_TRUE(Get("text") == text);
  Put("tiny2", std::string(100, 'z'));
  ShardStats t2 = store_->Stats().Total();
  EXPECT_EQ(t2.stored_value_bytes - t.stored_value_bytes, 100u);
  Put("text2", text);
  ShardStats t3 = store_->Stats().Total();
  EXPECT_LT(t3.stored_value_bytes - t2.stored_value_bytes, text.size() / 4);
  EXPECT_TRUE(Get("text2") == text);
}

TEST_F(StoreBasicTest, ReopenKeepsEverything) {
  ASSERT_NO_FATAL_FAILURE(Open());
  std::mt19937_64 rng(3);
  std::map<std::string, std::string> model;
  std::map<std::string, std::vector<VersionInfo>> versions_before;
  for (int i = 0; i < 1000; i++) {
    std::string key = "key" + std::to_string(rng() % 300);
    if (rng() % 5 == 0) {
      Del(key);
      model.erase(key);
    } else {
      std::string value = RandomBytes(rng, rng() % 200);
      Put(key, value, i % 100 == 0);
      model[key] = value;
    }
  }
  const SequenceNumber last = store_->LastSequence();
  EXPECT_EQ(last, 1000u);
  for (int i = 0; i < 300; i++) {
    std::string key = "key" + std::to_string(i);
    ASSERT_OK(store_->Versions(key, &versions_before[key]));
  }
  const ShardStats stats_before = store_->Stats().Total();
  Close();
  ASSERT_NO_FATAL_FAILURE(Open());
  EXPECT_EQ(store_->LastSequence(), last);
  for (const auto& [key, value] : model) EXPECT_EQ(Get(key), value) << key;
  auto items = Scan("key");
  EXPECT_EQ(items.size(), model.size());
  for (int i = 0; i < 300; i++) {
    std::string key = "key" + std::to_string(i);
    std::vector<VersionInfo> after;
    ASSERT_OK(store_->Versions(key, &after));
    const auto& before = versions_before[key];
    ASSERT_EQ(after.size(), before.size()) << key;
    for (size_t j = 0; j < after.size(); j++) {
      EXPECT_EQ(after[j].sequence, before[j].sequence);
      EXPECT_EQ(after[j].time_ns, before[j].time_ns);
      EXPECT_EQ(after[j].value_size, before[j].value_size);
      EXPECT_EQ(after[j].deleted, before[j].deleted);
    }
  }
  const ShardStats stats_after = store_->Stats().Total();
  EXPECT_EQ(stats_after.live_keys, model.size());
  EXPECT_EQ(stats_after.live_keys, stats_before.live_keys);
  EXPECT_EQ(stats_after.records, stats_before.records);
  EXPECT_EQ(stats_after.file_bytes, stats_before.file_bytes);
  // Writing continues with the next sequence number.
  EXPECT_EQ(Put("new", "v"), last + 1);

  // Without the hint files the pages are replayed to the same result.
  Close();
  for (const auto& entry : std::filesystem::directory_iterator(dir_.path())) {
    if (entry.path().extension() == ".hint") std::filesystem::remove(entry.path());
  }
  ASSERT_NO_FATAL_FAILURE(Open());
  EXPECT_EQ(store_->LastSequence(), last + 1);
  for (const auto& [key, value] : model) EXPECT_EQ(Get(key), value) << key;
  EXPECT_EQ(Get("new"), "v");
}

TEST_F(StoreBasicTest, CorruptHintFileIsNotTrusted) {
  ASSERT_NO_FATAL_FAILURE(Open());
  for (int i = 0; i < 200; i++) Put("k" + std::to_string(i), "value" + std::to_string(i));
  Close();
  int damaged = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir_.path())) {
    if (entry.path().extension() != ".hint") continue;
    std::fstream f(entry.path(), std::ios::in | std::ios::out | std::ios::binary);
    const auto size = std::filesystem::file_size(entry.path());
    for (uint64_t off = 10; off < size; off += 7) {
      f.seekp(static_cast<std::streamoff>(off));
      f.put('\x5a');
    }
    damaged++;
  }
  if (damaged == 0) GTEST_SKIP() << "no hint files written";
  Status s = OpenPageStore(options_, dir_.path(), &store_);
  if (!s.ok()) {
    // Refusing is acceptable; using damaged bytes is not.
    EXPECT_TRUE(s.IsCorruption()) << s.ToString();
    return;
  }
  for (int i = 0; i < 200; i++) {
    EXPECT_EQ(Get("k" + std::to_string(i)), "value" + std::to_string(i));
  }
  EXPECT_EQ(store_->LastSequence(), 200u);
}

// GetInto gives what Get gives, into the caller's buffer: raw and compressed values, small and
// large, older versions, values still in the write buffer and after a reopen.
TEST_F(StoreBasicTest, GetIntoMatchesGet) {
  const std::map<std::string, std::string> values = ValuesOfEveryKind(11);
  ASSERT_NO_FATAL_FAILURE(Open());
  auto get_into = [&](std::string_view key, size_t room, const ReadOptions& ro = ReadOptions()) {
    std::string buf(room, '#');
    size_t n = 0;
    Status s = store_->GetInto(ro, key, buf, &n);
    if (s.IsNotFound()) return std::string("NOT_FOUND");
    if (!s.ok()) return "ERROR: " + s.ToString();
    EXPECT_LE(n, room);
    return buf.substr(0, n);
  };
  const SequenceNumber before = Put("zip-large", "old value");
  for (const auto& [key, value] : values) Put(key, value);
  Del("gone");
  Put("deleted", "v");
  Del("deleted");
  for (int reopened = 0; reopened < 2; ++reopened) {
    SCOPED_TRACE(reopened ? "after reopen" : "before reopen");
    for (const auto& [key, value] : values) {
      EXPECT_EQ(get_into(key, value.size()), value) << key;
      EXPECT_EQ(get_into(key, value.size() + 100), value) << key;
      if (!value.empty()) {
        EXPECT_TRUE(get_into(key, value.size() - 1).starts_with("ERROR: invalid argument"))
            << key << ": " << get_into(key, value.size() - 1).substr(0, 60);
      }
    }
    ReadOptions old;
    old.sequence = before;
    EXPECT_EQ(get_into("zip-large", 100, old), "old value");
    EXPECT_EQ(get_into("deleted", 100), "NOT_FOUND");
    EXPECT_EQ(get_into("gone", 100), "NOT_FOUND");
    EXPECT_EQ(get_into("never", 100), "NOT_FOUND");
    Close();
    ASSERT_NO_FATAL_FAILURE(Open());
  }
}

// ReadOptions::value_prefix: Get returns the value's first bytes (all of a shorter value),
// raw or compressed, current or older, before and after reopen.
TEST_F(StoreBasicTest, GetReadsAValuePrefix) {
  const std::map<std::string, std::string> values = ValuesOfEveryKind(13);
  ASSERT_NO_FATAL_FAILURE(Open());
  auto get_prefix = [&](std::string_view key, size_t prefix, SequenceNumber at = kMaxSequence) {
    ReadOptions ro;
    ro.value_prefix = prefix;
    ro.sequence = at;
    return Get(key, ro);
  };
  const SequenceNumber before = Put("zip-large", CompressibleBytes(3000) + "old");
  for (const auto& [key, value] : values) Put(key, value);
  for (int reopened = 0; reopened < 2; ++reopened) {
    SCOPED_TRACE(reopened ? "after reopen" : "before reopen");
    for (const auto& [key, value] : values) {
      for (size_t prefix : {size_t{1}, size_t{75}, size_t{1999}, value.size(), value.size() + 1}) {
        if (prefix == 0) continue;  // 0 reads it all
        EXPECT_EQ(get_prefix(key, prefix), value.substr(0, prefix)) << key << " " << prefix;
      }
    }
    EXPECT_EQ(get_prefix("zip-large", 10, before), CompressibleBytes(3000).substr(0, 10));
    EXPECT_EQ(get_prefix("never", 10), "NOT_FOUND");
    Close();
    ASSERT_NO_FATAL_FAILURE(Open());
  }
}

// ReadOptions::keys_only: Get says whether a key exists (at any sequence) from the index,
// without reading the value.
TEST_F(StoreBasicTest, GetKeysOnlySaysWhetherAKeyExists) {
  ASSERT_NO_FATAL_FAILURE(Open());
  const std::string big = CompressibleBytes(100 << 10);
  const SequenceNumber first = Put("a", big);
  Put("b", "x");
  const SequenceNumber before_delete = Put("c", "y");
  Del("c");
  auto exists = [&](std::string_view key, SequenceNumber at = kMaxSequence) {
    ReadOptions ro;
    ro.keys_only = true;
    ro.sequence = at;
    std::string value = "stale";
    Status s = store_->Get(ro, key, &value);
    EXPECT_TRUE(s.ok() || s.IsNotFound()) << s.ToString();
    EXPECT_TRUE(value.empty() || value == "stale");
    return s.ok();
  };
  for (int reopened = 0; reopened < 2; ++reopened) {
    SCOPED_TRACE(reopened ? "after reopen" : "before reopen");
    EXPECT_TRUE(exists("a"));
    EXPECT_TRUE(exists("b"));
    EXPECT_FALSE(exists("c"));
    EXPECT_TRUE(exists("c", before_delete));
    EXPECT_FALSE(exists("b", first));
    EXPECT_FALSE(exists("never"));
    Close();
    ASSERT_NO_FATAL_FAILURE(Open());
  }
}

// A flipped bit anywhere in a record's key or value is reported by Get and by iterators, for
// values stored raw (read straight into the caller's string) and compressed, small and large.
TEST_F(StoreBasicTest, DamagedValueIsCorruptionOnRead) {
  std::mt19937_64 rng(7);
  const std::map<std::string, std::string> values = {
      {"raw-small", RandomBytes(rng, 300)},
      {"raw-large", RandomBytes(rng, 64 << 10)},
      {"zip-small", CompressibleBytes(2000)},
      {"zip-large", CompressibleBytes(256 << 10)},
  };
  for (const auto& [key, value] : values) {
    // Where to flip: the key's first byte, the stored value's first, middle and last byte.
    for (int where = 0; where < 4; ++where) {
      SCOPED_TRACE(key + " flip " + std::to_string(where));
      const std::string path = dir_.Sub(key + "-" + std::to_string(where));
      ASSERT_OK(OpenPageStore(options_, path, &store_));
      Put("other", "v");
      Put(key, value);
      Close();
      bool flipped = false;
      for (const auto& entry : std::filesystem::directory_iterator(path)) {
        if (entry.path().extension() != ".kv") continue;
        for (const kvtest::ParsedRecord& r : kvtest::ParsePage(entry.path())) {
          if (r.key != key) continue;
          const uint64_t value_at = r.offset + format::kRecordHeaderSize + r.header.key_len;
          const uint64_t n = r.header.value_len;
          const uint64_t at = where == 0   ? r.offset + format::kRecordHeaderSize
                              : where == 1 ? value_at
                              : where == 2 ? value_at + n / 2
                                           : value_at + n - 1;
          std::fstream f(entry.path(), std::ios::in | std::ios::out | std::ios::binary);
          f.seekg(static_cast<std::streamoff>(at));
          char c = 0;
          f.get(c);
          f.seekp(static_cast<std::streamoff>(at));
          f.put(static_cast<char>(c ^ 0x04));
          flipped = true;
        }
      }
      ASSERT_TRUE(flipped);
      ASSERT_OK(OpenPageStore(options_, path, &store_));  // current hints: no rescan
      EXPECT_TRUE(Get(key).starts_with("ERROR: corruption")) << Get(key).substr(0, 80);
      // A prefix read inflates less but checks the whole record all the same.
      ReadOptions prefix;
      prefix.value_prefix = 10;
      std::string head;
      EXPECT_TRUE(store_->Get(prefix, key, &head).IsCorruption());
      std::string buf(value.size(), '\0');
      size_t n = 0;
      EXPECT_TRUE(store_->GetInto(ReadOptions(), key, buf, &n).IsCorruption());
      EXPECT_EQ(Get("other"), "v");
      auto it = store_->NewIterator(ReadOptions(), "");
      for (it->SeekToFirst(); it->Valid(); it->Next()) EXPECT_NE(it->value(), value);
      EXPECT_TRUE(it->status().IsCorruption()) << it->status().ToString();
      Close();
    }
  }
}

TEST_F(StoreBasicTest, SecondOpenIsBusy) {
  ASSERT_NO_FATAL_FAILURE(Open());
  Put("k", "v");
  std::unique_ptr<Store> second;
  Status s = OpenPageStore(options_, dir_.path(), &second);
  EXPECT_TRUE(s.IsBusy()) << s.ToString();
  EXPECT_NE(s.message().find("in use by pid"), std::string::npos) << s.ToString();
  EXPECT_NE(s.message().find(std::to_string(getpid())), std::string::npos) << s.ToString();
  EXPECT_EQ(second, nullptr);
  EXPECT_EQ(Get("k"), "v");  // the first store is unharmed
  Close();
  ASSERT_OK(OpenPageStore(options_, dir_.path(), &second));
  std::string v;
  ASSERT_OK(second->Get(ReadOptions(), "k", &v));
  EXPECT_EQ(v, "v");
}

TEST_F(StoreBasicTest, ReadOnlyOpenReadsButRefusesWrites) {
  ASSERT_NO_FATAL_FAILURE(Open());
  Put("k", "v");
  Close();
  options_.read_only = true;
  ASSERT_NO_FATAL_FAILURE(Open());
  EXPECT_EQ(Get("k"), "v");
  EXPECT_FALSE(store_->Put(WriteOptions(), "k", "w").ok());
  EXPECT_FALSE(store_->Compact(CompactOptions()).ok());
  EXPECT_EQ(Get("k"), "v");
  Close();
  options_.read_only = false;
  ASSERT_NO_FATAL_FAILURE(Open());
  EXPECT_EQ(Get("k"), "v");
  EXPECT_EQ(store_->LastSequence(), 1u);
}

TEST_F(StoreBasicTest, CreateAndExistFlags) {
  options_.create_if_missing = false;
  std::unique_ptr<Store> s1;
  EXPECT_FALSE(OpenPageStore(options_, dir_.path(), &s1).ok());
  options_.create_if_missing = true;
  ASSERT_NO_FATAL_FAILURE(Open());
  Put("k", "v");
  Close();
  options_.error_if_exists = true;
  EXPECT_FALSE(OpenPageStore(options_, dir_.path(), &s1).ok());
  options_.error_if_exists = false;
  ASSERT_NO_FATAL_FAILURE(Open());
  EXPECT_EQ(Get("k"), "v");
}

TEST_F(StoreBasicTest, PageCountFixedAtCreation) {
  options_.page_count = 3;
  ASSERT_NO_FATAL_FAILURE(Open());
  EXPECT_EQ(store_->ShardCount(), 3u);
  EXPECT_EQ(store_->Stats().shards.size(), 3u);
  Put("k", "v");
  Close();
  options_.page_count = 9;  // ignored when opening
  ASSERT_NO_FATAL_FAILURE(Open());
  EXPECT_EQ(store_->ShardCount(), 3u);
  EXPECT_EQ(Get("k"), "v");
  Close();
  for (int i = 0; i < 3; i++) {
    char name[32];
    snprintf(name, sizeof(name), "page-%04d.kv", i);
    EXPECT_TRUE(std::filesystem::exists(dir_.Sub(name))) << name;
  }
  EXPECT_TRUE(std::filesystem::exists(dir_.Sub(format::kSuperblockFile)));
}

TEST_F(StoreBasicTest, SharderMustMatch) {
  options_.sharder = std::make_shared<DirSharder>();
  ASSERT_NO_FATAL_FAILURE(Open());
  Put("d/k", "v");
  Close();
  options_.sharder = nullptr;
  std::unique_ptr<Store> other;
  EXPECT_FALSE(OpenPageStore(options_, dir_.path(), &other).ok());
  options_.sharder = std::make_shared<DirSharder>();
  ASSERT_NO_FATAL_FAILURE(Open());
  EXPECT_EQ(Get("d/k"), "v");
}

TEST_F(StoreBasicTest, DestroyRemovesStore) {
  ASSERT_NO_FATAL_FAILURE(Open());
  Put("k", "v");
  Close();
  ASSERT_OK(DestroyPageStore(dir_.path()));
  for (const auto& entry : std::filesystem::directory_iterator(dir_.path())) {
    const std::string name = entry.path().filename().string();
    EXPECT_FALSE(name.starts_with("page-") || name == format::kSuperblockFile) << name;
  }
  ASSERT_NO_FATAL_FAILURE(Open());
  EXPECT_EQ(store_->LastSequence(), 0u);
  EXPECT_EQ(Get("k"), "NOT_FOUND");
}

// Rewrites the superblock's format version and fixes its trailing crc.
void PatchSuperblockVersion(const std::string& path, uint32_t version) {
  std::string data;
  {
    std::ifstream in(path, std::ios::binary);
    data.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  ASSERT_GE(data.size(), 16u);
  ASSERT_EQ(data.substr(0, 8), std::string(format::kSuperblockMagic, 8));
  // The trailing checksum is the format's (kv::Crc32) over every byte before it.
  auto load32 = [&](size_t off) {
    uint32_t v = 0;
    for (int i = 0; i < 4; i++)
      v |= static_cast<uint32_t>(static_cast<uint8_t>(data[off + i])) << (8 * i);
    return v;
  };
  ASSERT_EQ(load32(data.size() - 4), Crc32(data.data(), data.size() - 4))
      << "SUPERBLOCK does not end in kv::Crc32 of its other bytes";
  for (int i = 0; i < 4; i++) data[8 + i] = static_cast<char>(version >> (8 * i));
  const uint32_t crc = Crc32(data.data(), data.size() - 4);
  for (int i = 0; i < 4; i++) data[data.size() - 4 + i] = static_cast<char>(crc >> (8 * i));
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
}

TEST_F(StoreBasicTest, NewerFormatVersionRefused) {
  ASSERT_NO_FATAL_FAILURE(Open());
  Put("k", "v");
  Close();
  const std::string sb = dir_.Sub(format::kSuperblockFile);
  PatchSuperblockVersion(sb, format::kFormatVersion + 1);
  std::unique_ptr<Store> s;
  Status st = OpenPageStore(options_, dir_.path(), &s);
  EXPECT_TRUE(st.IsNotSupported()) << st.ToString();
  EXPECT_NE(st.message().find("newer"), std::string::npos) << st.ToString();
  EXPECT_EQ(s, nullptr);
  // The refusal changed nothing: with the version restored the store opens.
  PatchSuperblockVersion(sb, format::kFormatVersion);
  ASSERT_NO_FATAL_FAILURE(Open());
  EXPECT_EQ(Get("k"), "v");
}

TEST_F(StoreBasicTest, DamagedSuperblockIsCorruption) {
  ASSERT_NO_FATAL_FAILURE(Open());
  Close();
  const std::string sb = dir_.Sub(format::kSuperblockFile);
  {
    std::fstream f(sb, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(12);
    f.put('\x77');  // crc left stale
  }
  std::unique_ptr<Store> s;
  Status st = OpenPageStore(options_, dir_.path(), &s);
  EXPECT_TRUE(st.IsCorruption()) << st.ToString();
}

TEST_F(StoreBasicTest, VersionsAndReadsAtSequence) {
  ASSERT_NO_FATAL_FAILURE(Open());
  const uint64_t t0 = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                                std::chrono::system_clock::now().time_since_epoch())
                                                .count());
  const SequenceNumber s1 = Put("k", "v1");
  Put("other", "x");
  const SequenceNumber s2 = Put("k", "value2");
  const SequenceNumber s3 = Del("k");
  Put("other", "y");
  const SequenceNumber s4 = Put("k", "v4");
  const SequenceNumber last = Put("other", "z");

  std::vector<VersionInfo> v;
  ASSERT_OK(store_->Versions("k", &v));
  ASSERT_EQ(v.size(), 4u);
  EXPECT_EQ(v[0].sequence, s4);
  EXPECT_EQ(v[1].sequence, s3);
  EXPECT_EQ(v[2].sequence, s2);
  EXPECT_EQ(v[3].sequence, s1);
  EXPECT_FALSE(v[0].deleted);
  EXPECT_TRUE(v[1].deleted);
  EXPECT_FALSE(v[2].deleted);
  EXPECT_EQ(v[0].value_size, 2u);
  EXPECT_EQ(v[1].value_size, 0u);
  EXPECT_EQ(v[2].value_size, 6u);
  EXPECT_EQ(v[3].value_size, 2u);
  for (size_t i = 0; i + 1 < v.size(); i++) EXPECT_GE(v[i].time_ns, v[i + 1].time_ns);
  EXPECT_GE(v[3].time_ns, t0 - 1000000000ull);
  EXPECT_LE(v[0].time_ns, t0 + 60ull * 1000000000ull);

  EXPECT_EQ(GetAt("k", 0), "NOT_FOUND");
  EXPECT_EQ(GetAt("k", s1), "v1");
  EXPECT_EQ(GetAt("k", s1 + 1), "v1");
  EXPECT_EQ(GetAt("k", s2), "value2");
  EXPECT_EQ(GetAt("k", s3), "NOT_FOUND");
  EXPECT_EQ(GetAt("k", s3 + 1), "NOT_FOUND");
  EXPECT_EQ(GetAt("k", s4), "v4");
  EXPECT_EQ(GetAt("k", last), "v4");
  EXPECT_EQ(GetAt("other", s1), "NOT_FOUND");
  EXPECT_EQ(GetAt("other", s2), "x");
  EXPECT_EQ(GetAt("other", s4), "y");
  EXPECT_EQ(Get("other"), "z");

  std::vector<VersionInfo> none;
  ASSERT_OK(store_->Versions("absent", &none));
  EXPECT_TRUE(none.empty());

  // Reading at a sequence also applies to iteration.
  ReadOptions ro;
  ro.sequence = s2;
  auto items = Scan("", ro);
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(items[0], std::make_pair(std::string("k"), std::string("value2")));
  EXPECT_EQ(items[1], std::make_pair(std::string("other"), std::string("x")));

  Close();
  ASSERT_NO_FATAL_FAILURE(Open());
  EXPECT_EQ(GetAt("k", s1), "v1");
  EXPECT_EQ(GetAt("k", s2), "value2");
  EXPECT_EQ(GetAt("k", s3), "NOT_FOUND");
  std::vector<VersionInfo> after;
  ASSERT_OK(store_->Versions("k", &after));
  EXPECT_EQ(after.size(), 4u);
}

TEST_F(StoreBasicTest, Snapshots) {
  ASSERT_NO_FATAL_FAILURE(Open());
  Put("a", "a1");
  Put("b", "b1");
  auto snap = store_->GetSnapshot();
  EXPECT_EQ(snap->sequence(), store_->LastSequence());
  Put("a", "a2");
  Del("b");
  Put("c", "c1");
  ReadOptions ro;
  ro.snapshot = snap.get();
  EXPECT_EQ(Get("a", ro), "a1");
  EXPECT_EQ(Get("b", ro), "b1");
  EXPECT_EQ(Get("c", ro), "NOT_FOUND");
  EXPECT_EQ(Get("a"), "a2");
  EXPECT_EQ(Get("b"), "NOT_FOUND");
  auto items = Scan("", ro);
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(items[0].second, "a1");
  EXPECT_EQ(items[1].second, "b1");
  // A snapshot wins over ReadOptions::sequence.
  ro.sequence = store_->LastSequence();
  EXPECT_EQ(Get("a", ro), "a1");

  auto snap2 = store_->GetSnapshot();
  EXPECT_EQ(snap2->sequence(), 5u);
  // Compaction keeps what live snapshots see.
  ASSERT_OK(store_->Compact(CompactOptions{KeepLatestPolicy(), -1}));
  ro.snapshot = snap.get();
  EXPECT_EQ(Get("a", ro), "a1");
  EXPECT_EQ(Get("b", ro), "b1");
  EXPECT_EQ(Get("b"), "NOT_FOUND");
  snap.reset();
  snap2.reset();
}

TEST_F(StoreBasicTest, IteratorDefaultSharderMergesShards) {
  options_.page_count = 8;
  ASSERT_NO_FATAL_FAILURE(Open());
  std::mt19937_64 rng(5);
  std::map<std::string, std::string> model;
  for (int i = 0; i < 400; i++) {
    const char* prefixes[] = {"a/", "ab/", "b/", "a", ""};
    std::string key = std::string(prefixes[rng() % 5]) + std::to_string(rng() % 1000);
    std::string value = "v" + std::to_string(i);
    Put(key, value);
    model[key] = value;
  }
  for (int i = 0; i < 50; i++) {
    auto it = model.begin();
    std::advance(it, static_cast<long>(rng() % model.size()));
    Del(it->first);
    model.erase(it);
  }
  // Every shard holds something, so the scan below really merges.
  for (const ShardStats& s : store_->Stats().shards) EXPECT_GT(s.records, 0u);

  for (std::string prefix : {"", "a", "a/", "ab/", "b/", "c", "a/1"}) {
    std::vector<std::pair<std::string, std::string>> expected;
    for (const auto& [k, v] : model) {
      if (k.starts_with(prefix)) expected.emplace_back(k, v);
    }
    EXPECT_EQ(Scan(prefix), expected) << "prefix " << prefix;
  }

  // Seek inside, before and after the prefix.
  auto it = store_->NewIterator(ReadOptions(), "a/");
  it->Seek("a/5");
  auto lb = model.lower_bound("a/5");
  ASSERT_TRUE(it->Valid());
  EXPECT_EQ(it->key(), lb->first);
  EXPECT_EQ(it->value(), lb->second);
  it->Seek("");
  ASSERT_TRUE(it->Valid());
  EXPECT_EQ(it->key(), model.lower_bound("a/")->first);
  it->Seek("a/\xff");
  EXPECT_FALSE(it->Valid());
  it->Seek("b");
  EXPECT_FALSE(it->Valid());
  EXPECT_OK(it->status());
  it->SeekToFirst();
  ASSERT_TRUE(it->Valid());
  EXPECT_EQ(it->key(), model.lower_bound("a/")->first);
}

TEST_F(StoreBasicTest, IteratorSeesStateAtCreation) {
  ASSERT_NO_FATAL_FAILURE(Open());
  const SequenceNumber s1 = Put("p/1", "one");
  Put("p/2", "two");
  auto it = store_->NewIterator(ReadOptions(), "p/");
  Put("p/0", "zero");
  Put("p/1", "uno");
  Del("p/2");
  std::vector<std::pair<std::string, std::string>> got;
  std::vector<SequenceNumber> seqs;
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    got.emplace_back(std::string(it->key()), std::string(it->value()));
    seqs.push_back(it->sequence());
  }
  ASSERT_OK(it->status());
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0], std::make_pair(std::string("p/1"), std::string("one")));
  EXPECT_EQ(got[1], std::make_pair(std::string("p/2"), std::string("two")));
  EXPECT_EQ(seqs[0], s1);
  EXPECT_EQ(seqs[1], s1 + 1);
  auto now = Scan("p/");
  ASSERT_EQ(now.size(), 2u);
  EXPECT_EQ(now[0].first, "p/0");
  EXPECT_EQ(now[1].second, "uno");
}

TEST_F(StoreBasicTest, IteratorWithCustomSharderReadsOneShard) {
  options_.page_count = 8;
  options_.sharder = std::make_shared<DirSharder>();
  ASSERT_NO_FATAL_FAILURE(Open());
  std::map<std::string, std::string> model;
  for (int i = 0; i < 300; i++) {
    std::string key = "dir7/" + std::to_string(i * 37 % 1000);
    model[key] = "v" + std::to_string(i);
    Put(key, model[key]);
  }
  // Every key of the group landed in one shard.
  int shards_used = 0;
  for (const ShardStats& s : store_->Stats().shards) shards_used += s.records > 0;
  EXPECT_EQ(shards_used, 1);

  for (int d = 0; d < 20; d++) {
    std::string key = "d" + std::to_string(d) + "/entry";
    model[key] = "x";
    Put(key, "x");
  }
  Del("dir7/37");
  model.erase("dir7/37");

  for (std::string prefix : {"dir7/", "dir7/1", "d1/", "d", ""}) {
    std::vector<std::pair<std::string, std::string>> expected;
    for (const auto& [k, v] : model) {
      if (k.starts_with(prefix)) expected.emplace_back(k, v);
    }
    EXPECT_EQ(Scan(prefix), expected) << "prefix " << prefix;
  }
  auto it = store_->NewIterator(ReadOptions(), "dir7/");
  it->Seek("dir7/5");
  ASSERT_TRUE(it->Valid());
  EXPECT_EQ(it->key(), model.lower_bound("dir7/5")->first);
  Close();
  ASSERT_NO_FATAL_FAILURE(Open());
  EXPECT_EQ(Scan("dir7/").size(), 299u);
}

TEST_F(StoreBasicTest, EnvBasics) {
  Env* env = Env::Default();
  const std::string path = dir_.Sub("file");
  std::unique_ptr<File> f;
  EXPECT_TRUE(env->OpenFile(path, Env::OpenMode::kRead, &f).IsNotFound());
  EXPECT_FALSE(env->FileExists(path));
  ASSERT_OK(env->OpenFile(path, Env::OpenMode::kCreate, &f));
  ASSERT_OK(f->Append("hello ", 6));
  ASSERT_OK(f->Append("world", 5));
  ASSERT_OK(f->Reserve(11, 4096));
  EXPECT_EQ(f->Size(), 11u);
  ASSERT_OK(f->Sync());
  char buf[32];
  size_t got = 0;
  ASSERT_OK(f->Read(6, sizeof(buf), buf, &got));
  EXPECT_EQ(std::string(buf, got), "world");
  ASSERT_OK(f->Truncate(5));
  EXPECT_EQ(f->Size(), 5u);
  f.reset();
  EXPECT_TRUE(env->FileExists(path));
  std::string data;
  ASSERT_OK(ReadWholeFile(env, path, &data));
  EXPECT_EQ(data, "hello");
  ASSERT_OK(WriteFileAtomically(env, path, "replaced"));
  ASSERT_OK(ReadWholeFile(env, path, &data));
  EXPECT_EQ(data, "replaced");
  ASSERT_OK(env->Rename(path, dir_.Sub("renamed")));
  ASSERT_OK(env->SyncDir(dir_.path()));
  std::vector<std::string> names;
  ASSERT_OK(env->ListDir(dir_.path(), &names));
  EXPECT_EQ(names, std::vector<std::string>{"renamed"});
  ASSERT_OK(env->CreateDir(dir_.Sub("sub")));
  ASSERT_OK(env->CreateDir(dir_.Sub("sub")));
  uint64_t free_bytes = 0;
  ASSERT_OK(env->FreeSpace(dir_.path(), &free_bytes));
  EXPECT_GT(free_bytes, 0u);
  std::unique_ptr<FileLock> lock1, lock2;
  ASSERT_OK(env->LockFile(dir_.Sub("LOCK"), &lock1));
  Status busy = env->LockFile(dir_.Sub("LOCK"), &lock2);
  EXPECT_TRUE(busy.IsBusy()) << busy.ToString();
  lock1.reset();
  ASSERT_OK(env->LockFile(dir_.Sub("LOCK"), &lock2));
  ASSERT_OK(env->RemoveFile(dir_.Sub("renamed")));
  EXPECT_FALSE(env->FileExists(dir_.Sub("renamed")));
}

}  // namespace
}  // namespace kv

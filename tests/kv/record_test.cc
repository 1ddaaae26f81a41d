// Tests of the record encoding (kv/record.h against the layout in kv/format.h): every field
// round-trips, the bytes sit where the format says, and damage is detected.
#include "kv/record.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <string>

#include "kv/format.h"

namespace kv {
namespace {

uint64_t LoadLE(const std::string& buf, size_t offset, size_t width) {
  uint64_t v = 0;
  for (size_t i = 0; i < width; i++) {
    v |= static_cast<uint64_t>(static_cast<uint8_t>(buf[offset + i])) << (8 * i);
  }
  return v;
}

RecordHeader SampleHeader() {
  RecordHeader h;
  h.type = format::kTypePut;
  h.flags = format::kFlagCompressed;
  h.sequence = 0x0102030405060708ULL;
  h.time_ns = 0x1122334455667788ULL;
  h.prev = 0x0000123456789abcULL;
  h.raw_len = 0x00abcdefU;
  h.part_records = 7;
  h.batch_pages = 3;
  return h;
}

TEST(RecordTest, Crc32IsCastagnoli) {
  // record.h: the format's checksum is CRC-32C; this is its standard check value.
  const std::string s = "123456789";
  EXPECT_EQ(Crc32(s.data(), s.size()), 0xE3069283u);
  EXPECT_EQ(Crc32("", 0), 0u);
  const std::string a = "hello, ", b = "world";
  const uint32_t whole = Crc32((a + b).data(), a.size() + b.size());
  EXPECT_EQ(Crc32(b.data(), b.size(), Crc32(a.data(), a.size())), whole);
  // Large buffers and unaligned starts agree with byte-at-a-time chaining.
  std::string big(100000, '\0');
  for (size_t i = 0; i < big.size(); i++) big[i] = static_cast<char>(i * 131 + (i >> 7));
  for (size_t start : {0, 1, 3, 7}) {
    uint32_t chained = 0;
    for (size_t i = start; i < big.size(); i += 997) {
      const size_t n = std::min<size_t>(997, big.size() - i);
      chained = Crc32(big.data() + i, n, chained);
    }
    EXPECT_EQ(Crc32(big.data() + start, big.size() - start), chained) << start;
  }
  // Lengths around the multi-stream block (3 x 512 bytes) against a bit-at-a-time reference.
  auto reference = [](const char* p, size_t n) {
    uint32_t c = ~0u;
    for (size_t i = 0; i < n; i++) {
      c ^= static_cast<unsigned char>(p[i]);
      for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ 0x82f63b78u : c >> 1;
    }
    return ~c;
  };
  for (size_t n : {1535, 1536, 1537, 3071, 3072, 3079, 4608, 65536, 65541}) {
    EXPECT_EQ(Crc32(big.data() + 5, n), reference(big.data() + 5, n)) << n;
  }
}

TEST(RecordTest, PutRoundTripsEveryField) {
  const RecordHeader in = SampleHeader();
  const std::string key("some/key\0with-nul", 17), value(300, 'v');
  std::string out = "prefix";  // EncodeRecord appends
  EncodeRecord(in, key, value, &out);
  ASSERT_EQ(out.substr(0, 6), "prefix");
  const std::string rec = out.substr(6);
  ASSERT_EQ(rec.size(), format::kRecordHeaderSize + key.size() + value.size());

  RecordHeader h;
  ASSERT_TRUE(DecodeRecordHeader(rec.data(), &h).ok());
  EXPECT_EQ(h.type, format::kTypePut);
  EXPECT_EQ(h.flags, format::kFlagCompressed);
  EXPECT_TRUE(h.compressed());
  EXPECT_FALSE(h.deleted());
  EXPECT_EQ(h.key_len, key.size());
  EXPECT_EQ(h.value_len, value.size());
  EXPECT_EQ(h.sequence, in.sequence);
  EXPECT_EQ(h.time_ns, in.time_ns);
  EXPECT_EQ(h.prev, in.prev);
  EXPECT_EQ(h.raw_len, in.raw_len);
  EXPECT_EQ(h.part_records, in.part_records);
  EXPECT_EQ(h.batch_pages, in.batch_pages);
  EXPECT_EQ(h.record_size(), rec.size());
  EXPECT_TRUE(VerifyRecordData(h, rec).ok());

  // The bytes are where kv/format.h says, little-endian.
  EXPECT_EQ(LoadLE(rec, format::kRecType, 1), format::kTypePut);
  EXPECT_EQ(LoadLE(rec, format::kRecFlags, 1), format::kFlagCompressed);
  EXPECT_EQ(LoadLE(rec, format::kRecKeyLen, 2), key.size());
  EXPECT_EQ(LoadLE(rec, format::kRecValueLen, 4), value.size());
  EXPECT_EQ(LoadLE(rec, format::kRecSequence, 8), in.sequence);
  EXPECT_EQ(LoadLE(rec, format::kRecTime, 8), in.time_ns);
  EXPECT_EQ(LoadLE(rec, format::kRecPrev, 8), in.prev);
  EXPECT_EQ(LoadLE(rec, format::kRecRawLen, 4), in.raw_len);
  EXPECT_EQ(LoadLE(rec, format::kRecPartRecords, 4), in.part_records);
  EXPECT_EQ(LoadLE(rec, format::kRecBatchPages, 4), in.batch_pages);
  EXPECT_EQ(LoadLE(rec, format::kRecReserved, 4), 0u);
  EXPECT_EQ(LoadLE(rec, format::kRecHeaderCrc, 4),
            Crc32(rec.data() + 4, format::kRecordHeaderSize - 4));
  const std::string data = key + value;
  EXPECT_EQ(LoadLE(rec, format::kRecDataCrc, 4), Crc32(data.data(), data.size()));
  EXPECT_EQ(h.data_crc, Crc32(data.data(), data.size()));
  EXPECT_EQ(rec.substr(format::kRecordHeaderSize, key.size()), key);
  EXPECT_EQ(rec.substr(format::kRecordHeaderSize + key.size()), value);
}

TEST(RecordTest, DeleteRoundTrips) {
  RecordHeader in;
  in.type = format::kTypeDelete;
  in.sequence = 42;
  in.time_ns = 99;
  in.raw_len = 0;
  std::string rec;
  EncodeRecord(in, "gone", "", &rec);
  ASSERT_EQ(rec.size(), format::kRecordHeaderSize + 4);
  RecordHeader h;
  ASSERT_TRUE(DecodeRecordHeader(rec.data(), &h).ok());
  EXPECT_TRUE(h.deleted());
  EXPECT_FALSE(h.compressed());
  EXPECT_EQ(h.key_len, 4);
  EXPECT_EQ(h.value_len, 0u);
  EXPECT_EQ(h.sequence, 42u);
  EXPECT_EQ(h.time_ns, 99u);
  EXPECT_EQ(h.prev, format::kNoPrev);
  EXPECT_EQ(h.part_records, 1u);
  EXPECT_EQ(h.batch_pages, 1u);
  EXPECT_TRUE(VerifyRecordData(h, rec).ok());
}

TEST(RecordTest, EmptyValueAndLargestKey) {
  const std::string key(format::kMaxKeySize, 'k');
  std::string rec;
  RecordHeader in;
  in.sequence = 1;
  EncodeRecord(in, key, "", &rec);
  RecordHeader h;
  ASSERT_TRUE(DecodeRecordHeader(rec.data(), &h).ok());
  EXPECT_EQ(h.key_len, format::kMaxKeySize);
  EXPECT_EQ(h.value_len, 0u);
  EXPECT_TRUE(VerifyRecordData(h, rec).ok());
}

TEST(RecordTest, EncodeRecordHeaderMatchesEncodeRecord) {
  RecordHeader in = SampleHeader();
  std::string rec;
  EncodeRecord(in, "k", "value", &rec);
  RecordHeader decoded;
  ASSERT_TRUE(DecodeRecordHeader(rec.data(), &decoded).ok());
  char buf[format::kRecordHeaderSize];
  EncodeRecordHeader(decoded, buf);
  EXPECT_EQ(std::string(buf, sizeof(buf)), rec.substr(0, format::kRecordHeaderSize));
}

TEST(RecordTest, EveryHeaderBitFlipIsDetected) {
  std::string rec;
  EncodeRecord(SampleHeader(), "key", "value", &rec);
  for (size_t byte = 0; byte < format::kRecordHeaderSize; byte++) {
    for (int bit = 0; bit < 8; bit++) {
      std::string bad = rec;
      bad[byte] = static_cast<char>(bad[byte] ^ (1 << bit));
      RecordHeader h;
      Status s = DecodeRecordHeader(bad.data(), &h);
      EXPECT_TRUE(s.IsCorruption()) << "byte " << byte << " bit " << bit << ": " << s.ToString();
    }
  }
}

TEST(RecordTest, EveryDataBitFlipIsDetected) {
  std::string rec;
  const std::string key = "the-key", value = "the value bytes";
  EncodeRecord(SampleHeader(), key, value, &rec);
  RecordHeader h;
  ASSERT_TRUE(DecodeRecordHeader(rec.data(), &h).ok());
  for (size_t byte = format::kRecordHeaderSize; byte < rec.size(); byte++) {
    for (int bit = 0; bit < 8; bit++) {
      std::string bad = rec;
      bad[byte] = static_cast<char>(bad[byte] ^ (1 << bit));
      ASSERT_TRUE(DecodeRecordHeader(bad.data(), &h).ok());  // header untouched
      Status s = VerifyRecordData(h, bad);
      EXPECT_TRUE(s.IsCorruption()) << "byte " << byte << " bit " << bit << ": " << s.ToString();
    }
  }
}

// A header with a valid checksum but an impossible field is still rejected.
Status DecodeWith(RecordHeader h) {
  h.data_crc = 0;
  char buf[format::kRecordHeaderSize];
  EncodeRecordHeader(h, buf);
  RecordHeader out;
  return DecodeRecordHeader(buf, &out);
}

TEST(RecordTest, BadTypeRejected) {
  for (int type : {0, 3, 4, 0x7f, 0xff}) {
    RecordHeader h;
    h.type = static_cast<uint8_t>(type);
    Status s = DecodeWith(h);
    EXPECT_TRUE(s.IsCorruption()) << "type " << type << ": " << s.ToString();
  }
  RecordHeader ok_header;
  EXPECT_TRUE(DecodeWith(ok_header).ok());
}

TEST(RecordTest, UnknownFlagsRejected) {
  for (int flags : {2, 4, 0x80, 0xff, format::kFlagCompressed | 2}) {
    RecordHeader h;
    h.flags = static_cast<uint8_t>(flags);
    Status s = DecodeWith(h);
    EXPECT_TRUE(s.IsCorruption()) << "flags " << flags << ": " << s.ToString();
  }
}

TEST(RecordTest, OversizedValueLengthRejected) {
  RecordHeader h;
  h.value_len = static_cast<uint32_t>(format::kMaxValueSize + 1);
  h.raw_len = h.value_len;
  EXPECT_TRUE(DecodeWith(h).IsCorruption());
}

}  // namespace
}  // namespace kv

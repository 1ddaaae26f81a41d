// Per-value deflate (kv/compression.h): round trips, prefix reads, and the stored prefix
// block that lets a prefix read skip Huffman decoding.
#include "kv/compression.h"

#include <gtest/gtest.h>

#include <string>

#include "tests/support/test_util.h"

namespace kv {
namespace {

using kvtest::CompressibleBytes;

std::string Inflated(std::string_view stored, size_t raw_len) {
  std::string out;
  Status s = DecompressValue(stored, raw_len, &out);
  return s.ok() ? out : s.ToString();
}

std::string PrefixOf(std::string_view stored, size_t n) {
  std::string out(n, '\0');
  Status s = DecompressValuePrefix(stored, out);
  return s.ok() ? out : s.ToString();
}

TEST(CompressionTest, StoredPrefixRoundTrips) {
  for (size_t size : {size_t{128}, size_t{200}, size_t{4096}, size_t{70000}, size_t{300000}}) {
    const std::string value = CompressibleBytes(size);
    for (uint32_t stored_prefix : {0u, 1u, 75u, 4096u, 65535u}) {
      if (stored_prefix > size / 2) continue;  // too little left to save 1/16: stored raw
      SCOPED_TRACE(testing::Message() << size << " bytes, stored prefix " << stored_prefix);
      CompressionOptions options;
      options.stored_prefix = stored_prefix;
      std::string stored;
      ASSERT_TRUE(CompressValue(options, value, &stored));
      EXPECT_LT(stored.size(), value.size());
      EXPECT_EQ(Inflated(stored, value.size()), value);
      for (size_t n : {size_t{1}, size_t{74}, size_t{75}, size_t{76}, size / 2, size}) {
        EXPECT_EQ(PrefixOf(stored, n), value.substr(0, n)) << n;
      }
      std::string too_long(size + 1, '\0');
      EXPECT_TRUE(DecompressValuePrefix(stored, too_long).IsCorruption());
    }
  }
}

// The value starts with a stored block (RFC 1951 3.2.4) holding exactly the prefix, and a
// prefix read of that length decodes nothing after it: here the next block is made invalid,
// which a whole read reports and the prefix read never sees.
TEST(CompressionTest, PrefixReadStopsAtTheStoredBlock) {
  const std::string value = CompressibleBytes(3000);
  for (uint32_t stored_prefix : {1u, 75u, 1000u}) {
    SCOPED_TRACE(stored_prefix);
    CompressionOptions options;
    options.stored_prefix = stored_prefix;
    std::string stored;
    ASSERT_TRUE(CompressValue(options, value, &stored));
    ASSERT_GT(stored.size(), 5 + stored_prefix);
    EXPECT_EQ(stored[0] & 7, 0);  // not the final block; type 00, stored
    const uint32_t len = static_cast<uint8_t>(stored[1]) | static_cast<uint8_t>(stored[2]) << 8;
    const uint32_t nlen = static_cast<uint8_t>(stored[3]) | static_cast<uint8_t>(stored[4]) << 8;
    EXPECT_EQ(len, stored_prefix);
    EXPECT_EQ(nlen, 0xffffu ^ stored_prefix);
    EXPECT_EQ(stored.substr(5, stored_prefix), value.substr(0, stored_prefix));

    std::string broken = stored;
    broken[5 + stored_prefix] = static_cast<char>(0xff);  // final block of reserved type 11
    std::string whole;
    EXPECT_TRUE(DecompressValue(broken, value.size(), &whole).IsCorruption());
    EXPECT_EQ(PrefixOf(broken, stored_prefix), value.substr(0, stored_prefix));
  }
}

// Values too short for the prefix to leave anything to deflate are deflated whole, and
// values that do not deflate stay raw whatever the option says.
TEST(CompressionTest, StoredPrefixLongerThanTheValue) {
  CompressionOptions options;
  options.stored_prefix = 75;
  const std::string value = CompressibleBytes(75);
  options.min_size = 16;
  std::string stored;
  ASSERT_TRUE(CompressValue(options, value + value, &stored));
  EXPECT_EQ(Inflated(stored, 150), value + value);
  options.stored_prefix = 150;
  ASSERT_TRUE(CompressValue(options, value + value, &stored));
  EXPECT_NE(stored[0] & 6, 0);  // a Huffman block from the start
  EXPECT_EQ(Inflated(stored, 150), value + value);
}

}  // namespace
}  // namespace kv

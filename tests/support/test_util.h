// Assertions and data helpers shared by the kv and fs tests.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>

#include "kv/status.h"
#include "kv/store.h"

// Assert/expect that a kv::Status-returning expression is OK, printing the status if not.
#define ASSERT_OK(expr)                                     \
  do {                                                      \
    ::kv::Status _s = (expr);                               \
    ASSERT_TRUE(_s.ok()) << #expr << ": " << _s.ToString(); \
  } while (0)
#define EXPECT_OK(expr)                                     \
  do {                                                      \
    ::kv::Status _s = (expr);                               \
    EXPECT_TRUE(_s.ok()) << #expr << ": " << _s.ToString(); \
  } while (0)

namespace kvtest {

// n bytes of incompressible data from rng.
inline std::string RandomBytes(std::mt19937_64& rng, size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; i += 8) {
    uint64_t r = rng();
    for (size_t j = 0; j < 8 && i + j < n; j++) s[i + j] = static_cast<char>(r >> (8 * j));
  }
  return s;
}

// n bytes of log-like text, which deflates well.
inline std::string CompressibleBytes(size_t n) {
  std::string s;
  s.reserve(n);
  for (size_t i = 0; s.size() < n; i++) s += "line " + std::to_string(i % 1000) + " of a log\n";
  s.resize(n);
  return s;
}

// Groups keys by their first '/'-terminated component, as the filesystem groups an inode's
// directory entries, so that a prefix up to a '/' is iterated within one shard.
class DirSharder : public kv::Sharder {
 public:
  std::string_view ShardPart(std::string_view key) const override {
    size_t slash = key.find('/');
    return slash == std::string_view::npos ? key : key.substr(0, slash + 1);
  }
  bool PrefixShardPart(std::string_view prefix, std::string_view* part) const override {
    size_t slash = prefix.find('/');
    if (slash == std::string_view::npos) return false;
    *part = prefix.substr(0, slash + 1);
    return true;
  }
  std::string Name() const override { return "test-dir-sharder"; }
};

// DirSharder whose "dir0/" keys keep to page 0 and every other key to the pages after it, as
// fs::NewInodeSharder() keeps metadata apart from file data.
class GroupedDirSharder final : public DirSharder {
 public:
  kv::PageRange Pages(std::string_view prefix, uint32_t page_count) const override {
    if (prefix.starts_with("dir0/")) return {0, 1};
    // A prefix of "dir0/" itself ("", "d", "dir0") may start keys of both ranges.
    if (std::string_view("dir0/").starts_with(prefix)) return {0, page_count};
    return {1, page_count - 1};
  }
  std::string Name() const override { return "test-grouped-dir-sharder"; }
};

}  // namespace kvtest

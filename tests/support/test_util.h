// Assertions and data helpers shared by the kv and fs tests.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>

#include "kv/status.h"

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

}  // namespace kvtest

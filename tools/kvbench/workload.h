// The data kvbench writes, following LevelDB db_bench's conventions: keys are decimal numbers
// printed "%016d", values come from a buffer of half-compressible text, and random choices use
// a Lehmer (Park-Miller) generator with fixed seeds, so every engine gets the same workload.
#pragma once

#include <cstddef>
#include <cstdint>
#include <random>
#include <string>
#include <string_view>

namespace kvbench {

inline constexpr size_t kKeySize = 16;

// Writes the key of number k ("%016d") into buf, which must hold kKeySize + 1 bytes, and
// returns it. REQUIRES: 0 <= k < 10^16.
std::string_view FormatKey(int k, char* buf);

// The key-choosing random generator: multiplier 16807 modulo 2^31-1, the generator db_bench
// uses (leveldb's util/random.h), here std::minstd_rand0.
class KeyRandom {
 public:
  explicit KeyRandom(uint32_t seed) : engine_(seed) {}
  // A number in [0, n). REQUIRES: n > 0.
  int Uniform(int n) { return static_cast<int>(engine_() % static_cast<uint32_t>(n)); }

 private:
  std::minstd_rand0 engine_;
};

// Hands out values of a fixed size cut from at least 1 MiB of text that compresses to about
// half its size: every 100-byte piece is 50 random printable characters repeated. Values
// wrap around the buffer, so consecutive values differ.
//
// Thread safety: none; give every writer thread its own generator.
class ValueGenerator {
 public:
  ValueGenerator(uint32_t seed, size_t value_size);
  // The next value; valid until the generator is destroyed.
  std::string_view Next();

 private:
  std::string data_;
  size_t value_size_;
  size_t pos_ = 0;
};

}  // namespace kvbench

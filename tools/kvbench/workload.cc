// The db_bench-style keys and values of kvbench (see workload.h).
#include "tools/kvbench/workload.h"

#include <algorithm>
#include <cstdio>

namespace kvbench {
namespace {

// Fraction of each piece that is random; the rest repeats it, so deflate or Snappy shrinks
// a value to about this fraction.
constexpr double kCompressibleFraction = 0.5;
constexpr size_t kPieceSize = 100;
constexpr size_t kMinBufferSize = 1 << 20;

// Appends `len` bytes: a random printable run of len * fraction bytes, repeated to fill.
void AppendCompressiblePiece(KeyRandom* rnd, size_t len, std::string* out) {
  size_t raw = std::max<size_t>(1, static_cast<size_t>(len * kCompressibleFraction));
  std::string run(raw, ' ');
  for (char& c : run) c = static_cast<char>(' ' + rnd->Uniform(95));  // ' '..'~'
  for (size_t done = 0; done < len; done += raw) out->append(run, 0, std::min(raw, len - done));
}

}  // namespace

std::string_view FormatKey(int k, char* buf) {
  std::snprintf(buf, kKeySize + 1, "%016d", k);
  return std::string_view(buf, kKeySize);
}

ValueGenerator::ValueGenerator(uint32_t seed, size_t value_size) : value_size_(value_size) {
  KeyRandom rnd(seed);
  size_t target = std::max(kMinBufferSize, value_size);
  data_.reserve(target + kPieceSize);
  while (data_.size() < target) AppendCompressiblePiece(&rnd, kPieceSize, &data_);
}

std::string_view ValueGenerator::Next() {
  if (pos_ + value_size_ > data_.size()) pos_ = 0;
  std::string_view value(data_.data() + pos_, value_size_);
  pos_ += value_size_;
  return value;
}

}  // namespace kvbench

// CRC-32C with the SSE4.2 crc32 instruction, falling back to a byte-wise table.
#include "kv/crc32c.h"

#include <algorithm>
#include <array>
#include <cstring>

namespace kv {
namespace {

constexpr uint32_t kPolynomial = 0x82f63b78;  // reflected Castagnoli polynomial

constexpr std::array<uint32_t, 256> MakeTable() {
  std::array<uint32_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ kPolynomial : c >> 1;
    table[i] = c;
  }
  return table;
}
constexpr std::array<uint32_t, 256> kTable = MakeTable();

uint32_t Portable(const unsigned char* p, size_t n, uint32_t crc) {
  while (n-- > 0) crc = kTable[(crc ^ *p++) & 0xff] ^ (crc >> 8);
  return crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) uint32_t Sequential(const unsigned char* p, size_t n,
                                                      uint32_t crc) {
  uint64_t c = crc;
  while (n >= 8) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    c = __builtin_ia32_crc32di(c, v);
    p += 8;
    n -= 8;
  }
  uint32_t c32 = static_cast<uint32_t>(c);
  while (n-- > 0) c32 = __builtin_ia32_crc32qi(c32, *p++);
  return c32;
}

// The crc32 instruction takes 3 cycles but can start every cycle, so long inputs run as three
// independent streams of kStride bytes that are combined afterwards. Appending n zero bytes
// to a CRC register is linear over GF(2) in the register, so it is a lookup per register byte
// in a table built from the shifts of the 32 single-bit registers.
constexpr size_t kStride = 512;

struct ZeroShift {
  uint32_t table[4][256];

  explicit ZeroShift(size_t n) {
    static const unsigned char kZeros[kStride] = {};
    uint32_t basis[32];
    for (int bit = 0; bit < 32; ++bit) {
      uint32_t c = uint32_t{1} << bit;
      for (size_t left = n; left > 0; left -= std::min(left, kStride)) {
        c = Portable(kZeros, std::min(left, kStride), c);
      }
      basis[bit] = c;
    }
    for (int byte = 0; byte < 4; ++byte) {
      for (uint32_t v = 0; v < 256; ++v) {
        uint32_t c = 0;
        for (int bit = 0; bit < 8; ++bit) {
          if (v & (1u << bit)) c ^= basis[8 * byte + bit];
        }
        table[byte][v] = c;
      }
    }
  }

  uint32_t operator()(uint32_t c) const {
    return table[0][c & 0xff] ^ table[1][(c >> 8) & 0xff] ^ table[2][(c >> 16) & 0xff] ^
           table[3][c >> 24];
  }
};

__attribute__((target("sse4.2"))) uint32_t Hardware(const unsigned char* p, size_t n,
                                                    uint32_t crc) {
  static const ZeroShift shift1(kStride);
  static const ZeroShift shift2(2 * kStride);
  uint32_t c = crc;
  while (n >= 3 * kStride) {
    uint64_t c0 = c, c1 = 0, c2 = 0;
    for (size_t i = 0; i < kStride; i += 8) {
      uint64_t v0, v1, v2;
      std::memcpy(&v0, p + i, 8);
      std::memcpy(&v1, p + kStride + i, 8);
      std::memcpy(&v2, p + 2 * kStride + i, 8);
      c0 = __builtin_ia32_crc32di(c0, v0);
      c1 = __builtin_ia32_crc32di(c1, v1);
      c2 = __builtin_ia32_crc32di(c2, v2);
    }
    c = shift2(static_cast<uint32_t>(c0)) ^ shift1(static_cast<uint32_t>(c1)) ^
        static_cast<uint32_t>(c2);
    p += 3 * kStride;
    n -= 3 * kStride;
  }
  return Sequential(p, n, c);
}
const bool kHasHardware = __builtin_cpu_supports("sse4.2");
#endif

}  // namespace

uint32_t Crc32c(const void* data, size_t n, uint32_t crc) {
  const auto* p = static_cast<const unsigned char*>(data);
  crc = ~crc;
#if defined(__x86_64__)
  if (kHasHardware) return ~Hardware(p, n, crc);
#endif
  return ~Portable(p, n, crc);
}

}  // namespace kv

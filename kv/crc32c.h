// CRC-32C (Castagnoli), the checksum of every on-disk structure: SSE4.2 instructions where
// the CPU has them, a table otherwise.
#pragma once

#include <cstddef>
#include <cstdint>

namespace kv {

// Extends `crc` (the CRC-32C of some preceding bytes, 0 for none) over data[0, n).
uint32_t Crc32c(const void* data, size_t n, uint32_t crc = 0);

}  // namespace kv

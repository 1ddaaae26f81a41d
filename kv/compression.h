// Per-value zlib compression: raw deflate when it saves space, the raw bytes otherwise.
#pragma once

#include <span>
#include <string>
#include <string_view>

#include "kv/status.h"

namespace kv {

struct CompressionOptions {
  int level = 1;            // zlib level 1..9; 0 disables compression
  uint32_t min_size = 128;  // shorter values are stored raw
  // The first this many bytes of a deflated value go into a stored (uncompressed) deflate
  // block of their own, so that reading a prefix of up to this many bytes copies it instead
  // of decoding Huffman tables. The result is still plain raw deflate. 0: none.
  uint32_t stored_prefix = 0;
};

// Sets *out to the deflated value and returns true when that saves at least 1/16 of the
// value; returns false (leaving *out unspecified) when the value should be stored raw.
// Values of 128 bytes and more are probed first: a 4 KiB sample (or the whole value) whose
// byte histogram is nearly as even as random bytes of that count says the value is random or
// already compressed; and from
// 16 KiB on, a sample that does not deflate says the same. Either way the value is stored
// raw without deflating all of it.
bool CompressValue(const CompressionOptions& options, std::string_view value, std::string* out);

// Inflates `stored` into *out, which must come to exactly raw_len bytes.
Status DecompressValue(std::string_view stored, size_t raw_len, std::string* out);
// The same into `out`, which the value must fill exactly.
Status DecompressValueInto(std::string_view stored, std::span<char> out);
// Inflates only the first out.size() bytes of `stored` into `out`, which the value must at
// least fill: the cost is that of those bytes, not of the whole value, and nothing past the
// deflate block that ends them is decoded (so a stored prefix block costs a copy).
Status DecompressValuePrefix(std::string_view stored, std::span<char> out);

}  // namespace kv

// Per-value zlib compression: raw deflate when it saves space, the raw bytes otherwise.
#pragma once

#include <string>
#include <string_view>

#include "kv/status.h"

namespace kv {

struct CompressionOptions {
  int level = 1;            // zlib level 1..9; 0 disables compression
  uint32_t min_size = 128;  // shorter values are stored raw
};

// Sets *out to the deflated value and returns true when that saves at least 1/16 of the
// value; returns false (leaving *out unspecified) when the value should be stored raw.
// Large values are probed first: when a 4 KiB sample does not compress, the value is
// stored raw without deflating all of it.
bool CompressValue(const CompressionOptions& options, std::string_view value, std::string* out);

// Inflates `stored` into *out, which must come to exactly raw_len bytes.
Status DecompressValue(std::string_view stored, size_t raw_len, std::string* out);

}  // namespace kv

// zlib raw deflate with one reusable stream per thread, so that small values do not pay
// for deflateInit's allocations on every call.
#include "kv/compression.h"

#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <numbers>
#include <span>

namespace kv {
namespace {

constexpr size_t kProbeThreshold = 16 << 10;
constexpr size_t kProbeSize = 4 << 10;
// Smaller samples say too little about their value.
constexpr size_t kEntropyMinSize = 128;

// The byte entropy (bits per byte) above which an n-byte sample says its value will not
// deflate. Text measures 4-5.5 at any size. Uniformly random bytes, and deflate's own output
// (a git object, a compressed archive), measure about 8 - 255 / (2 n ln 2), since fewer bytes
// than symbols leave some unseen: 6.3-6.6 at 128 bytes, 7.7-7.8 at 1 KiB, 7.9-7.96 at 4 KiB.
double MaxCompressibleEntropy(size_t n) {
  const double random = 8 - 255 / (2 * static_cast<double>(n) * std::numbers::ln2);
  return std::min(7.5, random - 0.5);
}

// Order-0 (byte histogram) entropy of `sample` in bits per byte: the cheap first test of
// btrfs's compression heuristic, a few hundred nanoseconds per KiB against tens of
// microseconds for a deflate that fails.
double ByteEntropy(std::string_view sample) {
  uint32_t counts[256] = {};
  for (unsigned char c : sample) ++counts[c];
  const double n = static_cast<double>(sample.size());
  double bits = 0;
  for (uint32_t count : counts) {
    if (count != 0) bits -= count * std::log2(count / n);
  }
  return bits / n;
}

// A deflate stream bound to one level, reset between values.
class Deflater {
 public:
  explicit Deflater(int level) : level_(level) {
    ok_ = deflateInit2(&zs_, level, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) == Z_OK;
  }
  ~Deflater() {
    if (ok_) deflateEnd(&zs_);
  }
  Deflater(const Deflater&) = delete;
  Deflater& operator=(const Deflater&) = delete;

  int level() const { return level_; }

  // Deflates `in` into *out, its first `stored_prefix` bytes (when it is longer) as a stored
  // block; false when it fails or would exceed `limit` bytes.
  bool Run(std::string_view in, size_t limit, std::string* out, size_t stored_prefix = 0) {
    if (stored_prefix >= in.size()) stored_prefix = 0;
    // Level 0 writes stored blocks. deflateParams right after a reset only sets the level;
    // later, it ends the current block first (deflate(Z_BLOCK)) if the level changes.
    if (!ok_ || deflateReset(&zs_) != Z_OK ||
        deflateParams(&zs_, stored_prefix > 0 ? 0 : level_, Z_DEFAULT_STRATEGY) != Z_OK) {
      return false;
    }
    out->resize(limit);
    zs_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    zs_.avail_in = static_cast<uInt>(stored_prefix > 0 ? stored_prefix : in.size());
    zs_.next_out = reinterpret_cast<Bytef*>(out->data());
    zs_.avail_out = static_cast<uInt>(limit);
    if (stored_prefix > 0) {
      if (deflate(&zs_, Z_BLOCK) != Z_OK || zs_.avail_in != 0 ||
          deflateParams(&zs_, level_, Z_DEFAULT_STRATEGY) != Z_OK) {
        return false;
      }
      zs_.avail_in = static_cast<uInt>(in.size() - stored_prefix);
    }
    int r = deflate(&zs_, Z_FINISH);
    if (r != Z_STREAM_END) return false;  // Z_OK / Z_BUF_ERROR: output did not fit the limit
    out->resize(limit - zs_.avail_out);
    return true;
  }

 private:
  const int level_;
  bool ok_ = false;
  z_stream zs_{};
};

Deflater* ThreadDeflater(int level) {
  thread_local std::unique_ptr<Deflater> deflater;
  if (!deflater || deflater->level() != level) deflater = std::make_unique<Deflater>(level);
  return deflater.get();
}

class Inflater {
 public:
  Inflater() { ok_ = inflateInit2(&zs_, -15) == Z_OK; }
  ~Inflater() {
    if (ok_) inflateEnd(&zs_);
  }
  Inflater(const Inflater&) = delete;
  Inflater& operator=(const Inflater&) = delete;

  // Inflates `in` into exactly `out`.
  bool Run(std::string_view in, std::span<char> out) {
    return Start(in, out) && inflate(&zs_, Z_FINISH) == Z_STREAM_END && zs_.avail_out == 0 &&
           zs_.avail_in == 0;
  }

  // Inflates the start of `in` until `out` is full, a block at a time: Z_BLOCK stops at the
  // end of a block, so when `out` fills exactly there the next block's header and Huffman
  // tables are never decoded.
  bool RunPrefix(std::string_view in, std::span<char> out) {
    if (!Start(in, out)) return false;
    while (zs_.avail_out > 0) {
      const int r = inflate(&zs_, Z_BLOCK);
      if (r == Z_STREAM_END) break;
      if (r != Z_OK) return false;  // includes Z_BUF_ERROR: input ran out
    }
    return zs_.avail_out == 0;
  }

 private:
  bool Start(std::string_view in, std::span<char> out) {
    if (!ok_ || inflateReset(&zs_) != Z_OK) return false;
    zs_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    zs_.avail_in = static_cast<uInt>(in.size());
    zs_.next_out = reinterpret_cast<Bytef*>(out.data());
    zs_.avail_out = static_cast<uInt>(out.size());
    return true;
  }

  bool ok_ = false;
  z_stream zs_{};
};

Inflater* ThreadInflater() {
  thread_local Inflater inflater;
  return &inflater;
}

}  // namespace

bool CompressValue(const CompressionOptions& options, std::string_view value, std::string* out) {
  if (options.level <= 0 || value.size() < options.min_size) return false;
  // Incompressible data (media, archives, already-compressed files) must not pay for a full
  // deflate. Both probes look at the same sample: up to 4 KiB from the middle of the value.
  const size_t sample_size = std::min(value.size(), kProbeSize);
  const std::string_view sample = value.substr((value.size() - sample_size) / 2, sample_size);
  if (sample.size() >= kEntropyMinSize &&
      ByteEntropy(sample) > MaxCompressibleEntropy(sample.size())) {
    return false;
  }
  Deflater* deflater = ThreadDeflater(options.level);
  // From 16 KiB on, a sample that cannot shrink by 1/8 says the whole value will not.
  if (value.size() >= kProbeThreshold &&
      !deflater->Run(sample, sample.size() - sample.size() / 8, out)) {
    return false;
  }
  return deflater->Run(value, value.size() - value.size() / 16, out, options.stored_prefix);
}

Status DecompressValueInto(std::string_view stored, std::span<char> out) {
  if (!ThreadInflater()->Run(stored, out)) {
    return Status::Corruption("compressed value does not inflate to its recorded size");
  }
  return Status::OK();
}

Status DecompressValuePrefix(std::string_view stored, std::span<char> out) {
  if (!ThreadInflater()->RunPrefix(stored, out)) {
    return Status::Corruption("compressed value is shorter than its recorded size");
  }
  return Status::OK();
}

Status DecompressValue(std::string_view stored, size_t raw_len, std::string* out) {
  out->resize(raw_len);
  return DecompressValueInto(stored, *out);
}

}  // namespace kv

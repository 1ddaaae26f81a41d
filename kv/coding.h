// Explicit little-endian encoding helpers for the on-disk format. Never write a struct's bytes.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>

namespace kv {

inline void EncodeFixed16(char* dst, uint16_t v) {
  dst[0] = static_cast<char>(v);
  dst[1] = static_cast<char>(v >> 8);
}
inline void EncodeFixed32(char* dst, uint32_t v) {
  for (int i = 0; i < 4; ++i) dst[i] = static_cast<char>(v >> (8 * i));
}
inline void EncodeFixed64(char* dst, uint64_t v) {
  for (int i = 0; i < 8; ++i) dst[i] = static_cast<char>(v >> (8 * i));
}
inline uint16_t DecodeFixed16(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return static_cast<uint16_t>(u[0] | (u[1] << 8));
}
inline uint32_t DecodeFixed32(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | u[i];
  return v;
}
inline uint64_t DecodeFixed64(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | u[i];
  return v;
}

inline void PutFixed16(std::string* dst, uint16_t v) {
  char buf[2];
  EncodeFixed16(buf, v);
  dst->append(buf, 2);
}
inline void PutFixed32(std::string* dst, uint32_t v) {
  char buf[4];
  EncodeFixed32(buf, v);
  dst->append(buf, 4);
}
inline void PutFixed64(std::string* dst, uint64_t v) {
  char buf[8];
  EncodeFixed64(buf, v);
  dst->append(buf, 8);
}

// A bounds-checked reader over a byte string; every Get fails once input runs out.
class Decoder {
 public:
  Decoder(const char* data, size_t size) : p_(data), end_(data + size) {}
  bool GetFixed16(uint16_t* v) {
    return Take(2, [&](const char* p) { *v = DecodeFixed16(p); });
  }
  bool GetFixed32(uint32_t* v) {
    return Take(4, [&](const char* p) { *v = DecodeFixed32(p); });
  }
  bool GetFixed64(uint64_t* v) {
    return Take(8, [&](const char* p) { *v = DecodeFixed64(p); });
  }
  bool GetBytes(size_t n, std::string* out) {
    return Take(n, [&](const char* p) { out->assign(p, n); });
  }
  size_t remaining() const { return static_cast<size_t>(end_ - p_); }
  const char* position() const { return p_; }

 private:
  template <typename F>
  bool Take(size_t n, F&& f) {
    if (remaining() < n) return false;
    f(p_);
    p_ += n;
    return true;
  }
  const char* p_;
  const char* end_;
};

}  // namespace kv

// Big-endian integer encoding for fs/ keys and values. Keys use big-endian so that byte order
// equals numeric order; values use it too so that one set of helpers serves both.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace fs {

inline void PutBE64(std::string* out, uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) out->push_back(static_cast<char>(v >> shift));
}
inline void PutBE32(std::string* out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out->push_back(static_cast<char>(v >> shift));
}
inline void PutU8(std::string* out, uint8_t v) { out->push_back(static_cast<char>(v)); }

inline uint64_t DecodeBE64(const char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}
inline uint32_t DecodeBE32(const char* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

// Consumes fixed-width fields from the front of a value; every getter fails (returns false)
// instead of reading past the end, so a truncated or foreign value is an error, not a crash.
class Decoder {
 public:
  explicit Decoder(std::string_view in) : in_(in) {}
  bool U8(uint8_t* v) {
    if (in_.size() < 1) return false;
    *v = static_cast<uint8_t>(in_[0]);
    in_.remove_prefix(1);
    return true;
  }
  bool BE32(uint32_t* v) {
    if (in_.size() < 4) return false;
    *v = DecodeBE32(in_.data());
    in_.remove_prefix(4);
    return true;
  }
  bool BE64(uint64_t* v) {
    if (in_.size() < 8) return false;
    *v = DecodeBE64(in_.data());
    in_.remove_prefix(8);
    return true;
  }
  bool I64(int64_t* v) {
    uint64_t u;
    if (!BE64(&u)) return false;
    *v = static_cast<int64_t>(u);
    return true;
  }
  std::string_view rest() const { return in_; }

 private:
  std::string_view in_;
};

}  // namespace fs

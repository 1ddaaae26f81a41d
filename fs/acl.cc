// POSIX ACL xattr values and the mode rules: see fs/acl.h.
#include "fs/acl.h"

#include <algorithm>
#include <tuple>

namespace fs::acl {
namespace {

constexpr uint32_t kVersion = 2;
constexpr size_t kHeaderSize = 4;
constexpr size_t kEntrySize = 8;

uint32_t LoadLE(const char* p, int bytes) {
  uint32_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

void StoreLE(std::string* out, uint32_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out->push_back(static_cast<char>(v >> (8 * i)));
}

bool IsNamed(uint16_t tag) { return tag == kUser || tag == kGroup; }

// The entry with `tag` (one of the unique tags), or nullptr.
Entry* Find(Acl* acl, uint16_t tag) {
  for (Entry& e : *acl) {
    if (e.tag == tag) return &e;
  }
  return nullptr;
}

}  // namespace

bool Parse(std::string_view value, Acl* acl) {
  acl->clear();
  if (value.size() < kHeaderSize || (value.size() - kHeaderSize) % kEntrySize != 0) return false;
  if (LoadLE(value.data(), 4) != kVersion) return false;
  for (size_t at = kHeaderSize; at < value.size(); at += kEntrySize) {
    Entry e;
    e.tag = static_cast<uint16_t>(LoadLE(value.data() + at, 2));
    e.perm = static_cast<uint16_t>(LoadLE(value.data() + at + 2, 2));
    e.id = LoadLE(value.data() + at + 4, 4);
    if (e.perm > 7) return false;
    switch (e.tag) {
      case kUserObj:
      case kGroupObj:
      case kMask:
      case kOther:
        e.id = kUndefinedId;  // ignored by the kernel too
        break;
      case kUser:
      case kGroup:
        if (e.id == kUndefinedId) return false;
        break;
      default:
        return false;
    }
    acl->push_back(e);
  }
  std::sort(acl->begin(), acl->end(), [](const Entry& a, const Entry& b) {
    return std::tie(a.tag, a.id) < std::tie(b.tag, b.id);
  });
  int owner = 0, group = 0, other = 0, mask = 0, named = 0;
  for (size_t i = 0; i < acl->size(); ++i) {
    const Entry& e = (*acl)[i];
    if (i > 0 && e.tag == (*acl)[i - 1].tag && e.id == (*acl)[i - 1].id) return false;
    owner += e.tag == kUserObj;
    group += e.tag == kGroupObj;
    other += e.tag == kOther;
    mask += e.tag == kMask;
    named += IsNamed(e.tag);
  }
  return owner == 1 && group == 1 && other == 1 && (named == 0 || mask == 1);
}

std::string Encode(const Acl& acl) {
  std::string out;
  out.reserve(kHeaderSize + acl.size() * kEntrySize);
  StoreLE(&out, kVersion, 4);
  for (const Entry& e : acl) {
    StoreLE(&out, e.tag, 2);
    StoreLE(&out, e.perm, 2);
    StoreLE(&out, e.id, 4);
  }
  return out;
}

uint32_t ModeBits(const Acl& acl) {
  uint32_t owner = 0, owning_group = 0, mask = 0, other = 0;
  bool masked = false;
  for (const Entry& e : acl) {
    if (e.tag == kUserObj) owner = e.perm;
    if (e.tag == kGroupObj) owning_group = e.perm;
    if (e.tag == kMask) {
      mask = e.perm;
      masked = true;
    }
    if (e.tag == kOther) other = e.perm;
  }
  return owner << 6 | (masked ? mask : owning_group) << 3 | other;
}

bool IsMinimal(const Acl& acl) {
  return std::all_of(acl.begin(), acl.end(), [](const Entry& e) {
    return e.tag == kUserObj || e.tag == kGroupObj || e.tag == kOther;
  });
}

void Chmod(Acl* acl, uint32_t mode) {
  Entry* group = Find(acl, kMask);
  if (group == nullptr) group = Find(acl, kGroupObj);
  for (Entry& e : *acl) {
    if (e.tag == kUserObj) e.perm = (mode >> 6) & 7;
    if (e.tag == kOther) e.perm = mode & 7;
  }
  if (group != nullptr) group->perm = (mode >> 3) & 7;
}

void ApplyCreateMode(Acl* acl, uint32_t* mode) {
  uint32_t bits = *mode & 0777;
  Entry* group = Find(acl, kMask);
  if (group == nullptr) group = Find(acl, kGroupObj);
  for (Entry& e : *acl) {
    if (e.tag == kUserObj) {
      e.perm &= (bits >> 6) & 7;
      bits = (bits & ~0700u) | (uint32_t{e.perm} << 6);
    } else if (e.tag == kOther) {
      e.perm &= bits & 7;
      bits = (bits & ~07u) | e.perm;
    }
  }
  if (group != nullptr) {
    group->perm &= (bits >> 3) & 7;
    bits = (bits & ~070u) | (uint32_t{group->perm} << 3);
  }
  *mode = (*mode & ~0777u) | bits;
}

}  // namespace fs::acl

// KeyIndex: hash table for lookups, sorted id array for scans, arena for keys.
#include "kv/key_index.h"

#include <xxhash.h>

#include <algorithm>
#include <cassert>
#include <cstring>

namespace kv {
namespace {

constexpr size_t kArenaBlock = 64 << 10;

// The high half of XXH3: the page a key lives in was chosen by the same hash modulo the
// page count, so the low bits are nearly constant within a page and would cluster the table.
uint32_t HashKey(std::string_view key) {
  return static_cast<uint32_t>(XXH3_64bits(key.data(), key.size()) >> 32);
}

}  // namespace

KeyIndex::KeyIndex() : slots_(64, Slot{0, 0}) {}

std::string_view KeyIndex::KeyAt(const char* p) {
  uint32_t len = 0;
  int shift = 0;
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  while (*u & 0x80) {
    len |= static_cast<uint32_t>(*u++ & 0x7f) << shift;
    shift += 7;
  }
  len |= static_cast<uint32_t>(*u++) << shift;
  return {reinterpret_cast<const char*>(u), len};
}

const char* KeyIndex::StoreKey(std::string_view key) {
  char prefix[5];
  size_t plen = 0;
  uint32_t v = static_cast<uint32_t>(key.size());
  while (v >= 0x80) {
    prefix[plen++] = static_cast<char>(v | 0x80);
    v >>= 7;
  }
  prefix[plen++] = static_cast<char>(v);
  size_t need = plen + key.size();
  if (need > arena_left_) {
    size_t block = std::max(need, kArenaBlock);
    arena_.push_back(std::make_unique<char[]>(block));
    arena_ptr_ = arena_.back().get();
    arena_left_ = block;
    arena_bytes_ += block;
  }
  char* p = arena_ptr_;
  std::memcpy(p, prefix, plen);
  std::memcpy(p + plen, key.data(), key.size());
  arena_ptr_ += need;
  arena_left_ -= need;
  return p;
}

size_t KeyIndex::FindSlot(std::string_view k, uint32_t hash) const {
  size_t mask = slots_.size() - 1;
  for (size_t i = hash & mask;; i = (i + 1) & mask) {
    const Slot& s = slots_[i];
    if (s.id_plus_one == 0) return i;
    if (s.hash == hash && key(s.id_plus_one - 1) == k) return i;
  }
}

const IndexEntry* KeyIndex::Find(std::string_view k) const {
  const Slot& s = slots_[FindSlot(k, HashKey(k))];
  return s.id_plus_one == 0 ? nullptr : &entry(s.id_plus_one - 1).value;
}

const IndexEntry* KeyIndex::FindByHash(std::string_view k) const {
  const uint32_t hash = HashKey(k);
  const size_t mask = slots_.size() - 1;
  for (size_t i = hash & mask;; i = (i + 1) & mask) {
    const Slot& s = slots_[i];
    if (s.id_plus_one == 0) return nullptr;
    if (s.hash == hash) return &entry(s.id_plus_one - 1).value;
  }
}

bool KeyIndex::Upsert(std::string_view k, const IndexEntry& value, IndexEntry* old) {
  uint32_t hash = HashKey(k);
  size_t slot = FindSlot(k, hash);
  if (slots_[slot].id_plus_one != 0) {
    Entry& e = entry(slots_[slot].id_plus_one - 1);
    if (old != nullptr) *old = e.value;
    e.value = value;
    return true;
  }
  uint32_t id = static_cast<uint32_t>(count_);
  if ((id >> kBlockShift) == blocks_.size()) {
    blocks_.push_back(std::make_unique<Entry[]>(size_t{1} << kBlockShift));
  }
  entry(id) = Entry{StoreKey(k), value};
  slots_[slot] = Slot{id + 1, hash};
  ++count_;
  if (count_ * 4 > slots_.size() * 3) Grow();
  // Keys arriving in order (sequential loads, hint files, compaction) go straight to the end.
  if (pending_.empty() && (sorted_.empty() || key(sorted_.back()) < k)) {
    sorted_.push_back(id);
  } else {
    pending_.push_back(id);
  }
  return false;
}

void KeyIndex::Grow() {
  std::vector<Slot> old(slots_.size() * 2, Slot{0, 0});
  old.swap(slots_);
  size_t mask = slots_.size() - 1;
  for (const Slot& s : old) {
    if (s.id_plus_one == 0) continue;
    size_t i = s.hash & mask;
    while (slots_[i].id_plus_one != 0) i = (i + 1) & mask;
    slots_[i] = s;
  }
}

size_t KeyIndex::LowerBound(const std::vector<uint32_t>& ids, std::string_view start,
                            bool exclusive) const {
  auto it = exclusive
                ? std::upper_bound(ids.begin(), ids.end(), start,
                                   [&](std::string_view s, uint32_t id) { return s < key(id); })
                : std::lower_bound(ids.begin(), ids.end(), start,
                                   [&](uint32_t id, std::string_view s) { return key(id) < s; });
  return static_cast<size_t>(it - ids.begin());
}

void KeyIndex::SortPending() const {
  std::lock_guard lock(order_mu_);
  if (pending_.empty()) return;
  auto less = [&](uint32_t a, uint32_t b) { return key(a) < key(b); };
  std::sort(pending_.begin(), pending_.end(), less);
  if (pending_.size() < 64) {
    // A few new keys: insert them one by one rather than rewrite the whole array.
    for (uint32_t id : pending_) {
      sorted_.insert(sorted_.begin() + static_cast<ptrdiff_t>(LowerBound(sorted_, key(id), false)),
                     id);
    }
  } else {
    std::vector<uint32_t> merged;
    merged.reserve(sorted_.size() + pending_.size());
    std::merge(sorted_.begin(), sorted_.end(), pending_.begin(), pending_.end(),
               std::back_inserter(merged), less);
    sorted_.swap(merged);
  }
  pending_.clear();
  pending_.shrink_to_fit();
}

size_t KeyIndex::MemoryUsage() const {
  std::lock_guard lock(order_mu_);
  return blocks_.size() * (sizeof(Entry) << kBlockShift) + slots_.capacity() * sizeof(Slot) +
         (sorted_.capacity() + pending_.capacity()) * sizeof(uint32_t) + arena_bytes_;
}

}  // namespace kv

// KernelInodes: see fs/fuse/kernel_inodes.h.
#include "fs/fuse/kernel_inodes.h"

namespace fs::fuse {

KernelInodes::~KernelInodes() {
  for (std::atomic<Page*>& page : pages_) delete page.load();
}

std::atomic<uint64_t>* KernelInodes::Word(uint64_t ino, bool create) const {
  if (ino >= kLimit) return nullptr;
  std::atomic<Page*>& slot = pages_[ino / kBitsPerPage];
  Page* page = slot.load(std::memory_order_acquire);
  if (page == nullptr) {
    if (!create) return nullptr;
    auto fresh = std::make_unique<Page>();  // value-initialized: all bits clear
    if (slot.compare_exchange_strong(page, fresh.get(), std::memory_order_acq_rel)) {
      page = fresh.release();
    }  // else another thread made it; `page` is now that one
  }
  return &(*page)[(ino % kBitsPerPage) / 64];
}

void KernelInodes::Add(uint64_t ino) {
  if (std::atomic<uint64_t>* word = Word(ino, true)) {
    word->fetch_or(uint64_t{1} << (ino % 64), std::memory_order_relaxed);
  }
}

void KernelInodes::Forget(uint64_t ino) {
  if (std::atomic<uint64_t>* word = Word(ino, false)) {
    word->fetch_and(~(uint64_t{1} << (ino % 64)), std::memory_order_relaxed);
  }
}

bool KernelInodes::Holds(uint64_t ino) const {
  const std::atomic<uint64_t>* word = Word(ino, false);
  return word != nullptr && (word->load(std::memory_order_relaxed) >> (ino % 64) & 1) != 0;
}

}  // namespace fs::fuse

#include "fs/fuse/session_io.h"

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>
#include <linux/fuse.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstring>

#include "fs/fuse/killpriv.h"
#include "fs/fuse/uring.h"

namespace fs::fuse {
namespace {

// Protocol 7.42's flag; Debian 12's headers predate it. It sits in the second flags word.
constexpr uint64_t kOverIoUring = uint64_t{1} << 41;

struct InitOffer {
  uint64_t unique = 0;  // of the pending INIT request; 0 when none is pending
  bool killpriv_v2 = false;
  bool io_uring = false;
};

fuse_session* g_session = nullptr;
unsigned g_ring_threads = 0;
// Written by the thread that reads INIT, read by the one that answers it; the kernel sends
// nothing else before the answer.
InitOffer g_offer;
std::atomic<bool> g_init_pending{false};

// Notes what the kernel offers in INIT.
void NoteInit(const char* request, size_t size, uint64_t unique) {
  // The leading fields of every protocol version, then flags2 (7.36+, with FUSE_INIT_EXT).
  struct {
    uint32_t major, minor, max_readahead, flags, flags2;
  } init = {};
  const size_t available = size - sizeof(fuse_in_header);
  if (available < offsetof(decltype(init), flags2)) return;
  std::memcpy(&init, request + sizeof(fuse_in_header), std::min(available, sizeof(init)));
  uint64_t flags = init.flags;
  if (flags & FUSE_INIT_EXT) flags |= uint64_t{init.flags2} << 32;
  g_offer.unique = unique;
  g_offer.killpriv_v2 = flags & FUSE_HANDLE_KILLPRIV_V2;
  g_offer.io_uring = g_ring_threads > 0 && (flags & kOverIoUring);
  g_init_pending.store(true, std::memory_order_release);
}

ssize_t ReadRequest(int fd, void* buf, size_t len, void* /*userdata*/) {
  const ssize_t n = read(fd, buf, len);
  if (n <= 0) return n;
  const char* request = static_cast<const char*>(buf);
  NoteRequestFlags(request, static_cast<size_t>(n));
  fuse_in_header header;
  if (static_cast<size_t>(n) >= sizeof(header)) {
    std::memcpy(&header, request, sizeof(header));
    if (header.opcode == FUSE_INIT) NoteInit(request, static_cast<size_t>(n), header.unique);
  }
  return n;
}

ssize_t TotalLength(const iovec* iov, int count) {
  ssize_t total = 0;
  for (int i = 0; i < count; ++i) total += static_cast<ssize_t>(iov[i].iov_len);
  return total;
}

// libfuse answers INIT with two buffers: the header, then its fuse_init_out.
ssize_t AnswerInit(int fd, iovec* iov, int count) {
  constexpr size_t kFlags2End = offsetof(fuse_init_out, flags2) + sizeof(uint32_t);
  fuse_out_header header;
  std::memcpy(&header, iov[0].iov_base, sizeof(header));
  if (header.unique != g_offer.unique || header.error != 0 || count != 2 ||
      iov[1].iov_len < kFlags2End || iov[1].iov_len > sizeof(fuse_init_out)) {
    return writev(fd, iov, count);
  }
  g_init_pending.store(false);
  fuse_init_out reply = {};
  std::memcpy(&reply, iov[1].iov_base, iov[1].iov_len);
  if (g_offer.killpriv_v2) reply.flags |= FUSE_HANDLE_KILLPRIV_V2;
  if (g_offer.io_uring) {
    reply.flags |= FUSE_INIT_EXT;
    reply.flags2 |= static_cast<uint32_t>(kOverIoUring >> 32);
  }
  iovec patched[2] = {iov[0], {&reply, iov[1].iov_len}};
  const ssize_t written = writev(fd, patched, 2);
  // The kernel has taken the reply (and the ring size from max_write and max_pages): the
  // queues can be registered now.
  if (written > 0 && g_offer.io_uring) {
    const size_t max_payload =
        std::max<size_t>({reply.max_write, size_t{reply.max_pages} * 4096, FUSE_MIN_READ_BUFFER});
    StartRings(g_session, g_ring_threads, max_payload);
  }
  return written;
}

ssize_t WriteReply(int fd, struct iovec* iov, int count, void* /*userdata*/) {
  if (ReplyThroughRing(iov, count)) return TotalLength(iov, count);
  if (g_init_pending.load(std::memory_order_acquire) && count >= 1 &&
      iov[0].iov_len >= sizeof(fuse_out_header)) {
    return AnswerInit(fd, iov, count);
  }
  return writev(fd, iov, count);
}

}  // namespace

bool InstallSessionHooks(fuse_session* se, unsigned ring_threads) {
  static const fuse_custom_io io = {WriteReply, ReadRequest, nullptr, nullptr};
  g_session = se;
  g_ring_threads = ring_threads;
  return fuse_session_custom_io(se, &io, fuse_session_fd(se)) == 0;
}

}  // namespace fs::fuse

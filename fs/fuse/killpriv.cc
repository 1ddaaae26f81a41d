#include "fs/fuse/killpriv.h"

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>
#include <linux/fuse.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <atomic>
#include <cstddef>
#include <cstring>

namespace fs::fuse {
namespace {

thread_local bool t_drops_privileges = false;
// The unique id of an INIT request whose kernel offers KILLPRIV_V2; 0 when none is pending.
std::atomic<uint64_t> g_init_unique{0};

// Copies the request's fixed argument of type T, if the request is long enough to hold it.
template <typename T>
bool Arg(const char* request, size_t size, T* arg) {
  if (size < sizeof(fuse_in_header) + sizeof(T)) return false;
  std::memcpy(arg, request + sizeof(fuse_in_header), sizeof(T));
  return true;
}

ssize_t ReadRequest(int fd, void* buf, size_t len, void* /*userdata*/) {
  const ssize_t n = read(fd, buf, len);
  t_drops_privileges = false;
  if (n < static_cast<ssize_t>(sizeof(fuse_in_header))) return n;
  const char* request = static_cast<const char*>(buf);
  const size_t size = static_cast<size_t>(n);
  fuse_in_header header;
  std::memcpy(&header, request, sizeof(header));
  switch (header.opcode) {
    case FUSE_INIT: {
      // major, minor, max_readahead, flags: the leading fields of every protocol version.
      struct {
        uint32_t major, minor, max_readahead, flags;
      } init;
      if (Arg(request, size, &init) && (init.flags & FUSE_HANDLE_KILLPRIV_V2)) {
        g_init_unique.store(header.unique);
      }
      break;
    }
    case FUSE_WRITE: {
      fuse_write_in in;
      t_drops_privileges = Arg(request, size, &in) && (in.write_flags & FUSE_WRITE_KILL_SUIDGID);
      break;
    }
    case FUSE_OPEN: {
      fuse_open_in in;
      t_drops_privileges = Arg(request, size, &in) && (in.open_flags & FUSE_OPEN_KILL_SUIDGID);
      break;
    }
    case FUSE_SETATTR: {
      fuse_setattr_in in;
      t_drops_privileges = Arg(request, size, &in) && (in.valid & FATTR_KILL_SUIDGID);
      break;
    }
    default:
      break;
  }
  return n;
}

ssize_t WriteReply(int fd, struct iovec* iov, int count, void* /*userdata*/) {
  // libfuse replies to INIT with two buffers: the header, then fuse_init_out.
  constexpr size_t kFlagsEnd = offsetof(fuse_init_out, flags) + sizeof(uint32_t);
  const uint64_t init = g_init_unique.load();
  if (init == 0 || count != 2 || iov[0].iov_len < sizeof(fuse_out_header) ||
      iov[1].iov_len < kFlagsEnd || iov[1].iov_len > sizeof(fuse_init_out)) {
    return writev(fd, iov, count);
  }
  fuse_out_header header;
  std::memcpy(&header, iov[0].iov_base, sizeof(header));
  if (header.unique != init || header.error != 0) return writev(fd, iov, count);
  g_init_unique.store(0);
  fuse_init_out reply = {};
  std::memcpy(&reply, iov[1].iov_base, iov[1].iov_len);
  reply.flags |= FUSE_HANDLE_KILLPRIV_V2;
  iovec patched[2] = {iov[0], {&reply, iov[1].iov_len}};
  return writev(fd, patched, 2);
}

}  // namespace

bool InstallKillPrivHooks(fuse_session* se) {
  static const fuse_custom_io io = {WriteReply, ReadRequest, nullptr, nullptr};
  return fuse_session_custom_io(se, &io, fuse_session_fd(se)) == 0;
}

bool RequestDropsPrivileges() { return t_drops_privileges; }

uint32_t ModeWithoutPrivileges(uint32_t mode, bool caller_root_or_in_group) {
  mode &= ~static_cast<uint32_t>(S_ISUID);
  if ((mode & S_IXGRP) || !caller_root_or_in_group) mode &= ~static_cast<uint32_t>(S_ISGID);
  return mode;
}

}  // namespace fs::fuse

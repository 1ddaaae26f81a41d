#include "fs/fuse/killpriv.h"

#include <linux/fuse.h>
#include <sys/stat.h>

#include <cstring>

namespace fs::fuse {
namespace {

thread_local bool t_drops_privileges = false;

// Copies the request's fixed argument of type T, if the request is long enough to hold it.
template <typename T>
bool Arg(const char* request, size_t size, T* arg) {
  if (size < sizeof(fuse_in_header) + sizeof(T)) return false;
  std::memcpy(arg, request + sizeof(fuse_in_header), sizeof(T));
  return true;
}

}  // namespace

void NoteRequestFlags(const char* request, size_t size) {
  t_drops_privileges = false;
  if (size < sizeof(fuse_in_header)) return;
  fuse_in_header header;
  std::memcpy(&header, request, sizeof(header));
  switch (header.opcode) {
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
}

bool RequestDropsPrivileges() { return t_drops_privileges; }

uint32_t ModeWithoutPrivileges(uint32_t mode, bool caller_root_or_in_group) {
  mode &= ~static_cast<uint32_t>(S_ISUID);
  if ((mode & S_IXGRP) || !caller_root_or_in_group) mode &= ~static_cast<uint32_t>(S_ISGID);
  return mode;
}

}  // namespace fs::fuse

// The libfuse low-level operations of kvfs: a thin adapter from FUSE requests to fs::Volume.
// Each handler converts its arguments, makes one Volume call (two for readdirplus), and
// replies exactly once; errno values come only from fs::Errno.
#pragma once

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>

#include <atomic>
#include <cstdint>

#include "fs/fuse/kernel_inodes.h"
#include "fs/volume.h"

namespace fs::fuse {

// The state every handler reaches through fuse_req_userdata(). Owned by main; outlives the
// session.
struct FuseContext {
  Volume* volume = nullptr;
  fuse_session* session = nullptr;  // for notifications to the kernel
  double attr_timeout = 1.0;
  double entry_timeout = 1.0;
  double negative_timeout = 1.0;
  // User overrides of the negotiated capabilities (-o writeback_cache ...), applied in init
  // after kvfs's defaults; may be null.
  fuse_conn_info_opts* conn_opts = nullptr;
  // Whether the kernel runs the writeback cache (decided in init, read by open/create).
  std::atomic<bool> writeback{false};
  // Whether the kernel opens directories without OPENDIR when asked to (decided in init).
  std::atomic<bool> no_opendir{false};
  // Requests handled so far (forgets aside), so that a shutdown can tell when the kernel
  // has stopped sending (daemon.h, "Shutdown").
  std::atomic<uint64_t> requests{0};
  // Inodes the kernel holds, for READDIRPLUS replies (kernel_inodes.h).
  KernelInodes kernel_inodes;
};

// The operation table; pass a FuseContext* as the session's userdata.
const fuse_lowlevel_ops& KvfsOperations();

}  // namespace fs::fuse

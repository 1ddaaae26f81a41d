// The session's I/O hooks (fuse_session_custom_io, public libfuse API): how kvfs gets
// two kernel capabilities that libfuse 3.14 predates.
// - FUSE_HANDLE_KILLPRIV_V2 (killpriv.h): each request's kill-privileges flag is noted for
//   the thread that handles it.
// - FUSE_OVER_IO_URING (uring.h): once INIT is answered, requests come through per-CPU
//   rings instead of /dev/fuse, and their replies go back the same way.
// Both are added to the INIT reply only when the kernel offers them.
#pragma once

struct fuse_session;

namespace fs::fuse {

// Installs the hooks on a mounted session; false (and nothing changed) if libfuse refuses.
// `ring_threads`: threads per CPU serving FUSE over io_uring, 0 for /dev/fuse only.
bool InstallSessionHooks(fuse_session* se, unsigned ring_threads);

}  // namespace fs::fuse

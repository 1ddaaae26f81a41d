// FUSE over io_uring (Linux 6.14+) on libfuse 3.14, which predates it.
//
// Why: through /dev/fuse a request from a process on one CPU is often served by a daemon
// thread that sleeps on the other, and on a VM every such wakeup of a halted vCPU costs
// tens of microseconds; a FUSE round trip measured 15-30 µs here, against 5.6 µs when the
// caller and the daemon share a CPU. With io_uring the kernel keeps one request queue per
// CPU and hands a request to the queue of the CPU its caller runs on; kvfs serves each
// queue with threads pinned to that CPU (and, when the daemon has its session to itself, as
// SCHED_IDLE, so that the caller stays there too), so a metadata round trip never leaves
// the CPU. Bulk reads and writes, which keep a
// CPU busy for a while, move to another CPU (RingThread::Place in uring.cc).
//
// How: the kernel offers FUSE_OVER_IO_URING in INIT when the fuse module's enable_uring
// parameter is on; the session hooks (session_io.h) accept it and start the rings once the
// INIT reply is written. Each ring thread registers one request buffer for its CPU's queue
// (FUSE_IO_URING_CMD_REGISTER), rebuilds each request it receives in /dev/fuse's layout
// in place, hands it to libfuse (fuse_session_process_buf), and sends the reply with the
// next fetch in one system call (FUSE_IO_URING_CMD_COMMIT_AND_FETCH). The kernel still uses
// /dev/fuse for INIT, FORGET and INTERRUPT, which libfuse's own loop keeps serving.
#pragma once

#include <cstddef>
#include <span>

struct fuse_session;
struct iovec;

namespace fs::fuse {

// Starts `threads_per_cpu` ring threads for each CPU's queue, with request buffers for
// payloads of `max_payload` bytes. Called once the kernel has accepted the INIT reply; on
// failure the rings are torn down, the error logged, and requests keep coming through
// /dev/fuse.
void StartRings(fuse_session* se, unsigned threads_per_cpu, size_t max_payload);

// The session's write hook: if this thread is serving a ring request and `iov` is its
// reply (a fuse_out_header, then the reply's arguments), queues the reply on the ring and
// returns true. Otherwise false: the reply belongs on /dev/fuse.
bool ReplyThroughRing(const iovec* iov, int count);

// The reply buffer of the ring request this thread is serving, where the bytes of its
// reply's arguments end up; empty when the thread serves none. A reply argument that is
// already in its place there is not copied.
std::span<char> RingReplyBuffer();

// Stops and joins the ring threads. Call after the session loop has ended and before the
// file system they serve goes away.
void StopRings();

}  // namespace fs::fuse

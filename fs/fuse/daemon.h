// Process plumbing of the kvfs daemon: detaching from the terminal without losing startup
// errors, and turning termination signals into a clean unmount.
#pragma once

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

namespace fs::fuse {

// ---- Daemonizing ----
//
// libfuse's examples mount and then call fuse_daemonize(), which forks. fork() copies only
// the calling thread, and kv::Store starts threads when it opens (parallel recovery, the
// background compaction thread), so a daemon forked after opening the store would run
// without its compaction thread and with locks possibly held by threads that no longer
// exist. kvfs therefore forks FIRST, while it is still single-threaded: the child opens the
// store, mounts, and only then reports success through a pipe; the parent waits for that
// report. Errors reach the terminal because the child prints them on the stderr both share
// before detaching, and the parent exits with the child's status (1). A nice side effect:
// the pid in the store's lock file ("store is in use by pid N") is the daemon's.

// Forks. Returns in the child (the future daemon); the parent waits there for
// DetachDaemon() or the child's death and exits with 0 or the child's status. Returns false
// (in the only process) if fork failed.
bool ForkDaemon();
// In the child, once the file system is mounted: new session, cwd "/", stdio to /dev/null,
// log to syslog, and tell the parent to exit 0.
void DetachDaemon();

// ---- Shutdown ----
//
// SIGTERM, SIGINT and SIGHUP must unmount cleanly. libfuse's fuse_set_signal_handlers()
// only ends the session loop; fuse_session_unmount() then closes /dev/fuse before
// unmounting, which aborts the connection and DROPS whatever the kernel still holds in its
// writeback cache (tried: a 30 MB file still open at SIGTERM came back empty). So kvfs
// handles these signals on a thread of its own (sigwait) and unmounts the way
// `fusermount3 -u` does while the loop is still serving: the kernel lets go of the
// connection only when nothing is open, i.e. after every file's dirty pages were written
// back on close, and the loop then returns by itself.
// When the mount is busy (EBUSY: a file open, a shell inside), the watcher makes the kernel
// write its dirty pages back (syncfs) and keeps serving until the kernel has stopped
// sending requests: for a /dev/fuse mount syncfs only queues the writes, it does not wait
// for them (only virtiofs does). Then it ends the loop; main detaches the mount lazily and
// users still inside get ENOTCONN.

// Blocks SIGTERM, SIGINT and SIGHUP in the calling thread, so that every thread created
// later inherits the mask and only the ShutdownWatcher receives them; ignores SIGPIPE.
// Call first thing in main, before any thread exists.
void BlockTerminationSignals();

class ShutdownWatcher {
 public:
  // Must be constructed on the thread that runs fuse_session_loop_mt; it is woken with
  // SIGUSR1 when the loop must end without an unmount. `requests` counts the requests the
  // handlers have seen (FuseContext::requests).
  ShutdownWatcher(fuse_session* session, std::string mountpoint,
                  const std::atomic<uint64_t>* requests);
  ~ShutdownWatcher();  // calls LoopEnded()
  ShutdownWatcher(const ShutdownWatcher&) = delete;
  ShutdownWatcher& operator=(const ShutdownWatcher&) = delete;

  // Starts the signal thread. REQUIRES: BlockTerminationSignals() was called.
  void Start();
  // The loop has returned: stops the thread, which then no longer touches the session.
  void LoopEnded();

 private:
  void Run();
  // Unmounts like fusermount3 -u; false when the mount is busy or the call failed.
  bool Unmount();
  // Busy mount: flush the kernel's dirty pages through the running loop, then end it.
  void FlushAndStop();

  fuse_session* const session_;
  const std::string mountpoint_;
  const std::atomic<uint64_t>* const requests_;
  const pthread_t main_thread_;
  std::thread thread_;
  std::mutex mu_;
  bool loop_ended_ = false;                // GUARDED_BY(mu_)
  std::condition_variable loop_ended_cv_;  // signalled when loop_ended_ becomes true
};

}  // namespace fs::fuse

// Daemonizing (fork first, report through a pipe) and signal-driven clean unmount.
#include "fs/fuse/daemon.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <syslog.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>

#include "fs/fuse/log.h"

extern char** environ;

namespace fs::fuse {
namespace {
int g_report_fd = -1;  // the child's end of the startup pipe

sigset_t TerminationSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  return set;
}

void IgnoreSignal(int) {}
}  // namespace

bool ForkDaemon() {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    Log(LOG_ERR, "cannot daemonize: pipe: %s", strerror(errno));
    return false;
  }
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  if (pid < 0) {
    Log(LOG_ERR, "cannot daemonize: fork: %s", strerror(errno));
    close(fds[0]);
    close(fds[1]);
    return false;
  }
  if (pid == 0) {
    close(fds[0]);
    g_report_fd = fds[1];
    return true;
  }
  // The parent: wait for "mounted" (one byte) or for the pipe to close because the child
  // exited. Ctrl-C may interrupt the wait; the child gets it too and unmounts once up.
  close(fds[1]);
  sigset_t none;
  sigemptyset(&none);
  pthread_sigmask(SIG_SETMASK, &none, nullptr);
  char byte = 0;
  ssize_t n;
  do {
    n = read(fds[0], &byte, 1);
  } while (n < 0 && errno == EINTR);
  if (n == 1) _exit(0);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) != 0) _exit(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    fprintf(stderr, "kvfs: the daemon died during startup: %s\n", strsignal(WTERMSIG(status)));
  } else {
    fprintf(stderr, "kvfs: the daemon exited during startup\n");
  }
  _exit(1);
}

void DetachDaemon() {
  if (setsid() < 0) Log(LOG_WARNING, "setsid: %s", strerror(errno));
  if (chdir("/") != 0) Log(LOG_WARNING, "chdir /: %s", strerror(errno));
  LogToSyslog();
  int null = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null >= 0) {
    dup2(null, STDIN_FILENO);
    dup2(null, STDOUT_FILENO);
    dup2(null, STDERR_FILENO);
    if (null > STDERR_FILENO) close(null);
  }
  if (g_report_fd >= 0) {
    char ok = 1;
    ssize_t n = write(g_report_fd, &ok, 1);
    (void)n;  // if the parent is gone there is nobody left to tell
    close(g_report_fd);
    g_report_fd = -1;
  }
}

void BlockTerminationSignals() {
  sigset_t set = TerminationSignals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);
  // SIGUSR1 only interrupts a blocking call (the session loop's wait); no SA_RESTART.
  struct sigaction sa = {};
  sa.sa_handler = IgnoreSignal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;
  sigaction(SIGUSR1, &sa, nullptr);
}

ShutdownWatcher::ShutdownWatcher(fuse_session* session, std::string mountpoint,
                                 const std::atomic<uint64_t>* requests)
    : session_(session),
      mountpoint_(std::move(mountpoint)),
      requests_(requests),
      main_thread_(pthread_self()) {}

ShutdownWatcher::~ShutdownWatcher() { LoopEnded(); }

void ShutdownWatcher::Start() {
  thread_ = std::thread([this] { Run(); });
}

void ShutdownWatcher::LoopEnded() {
  {
    std::lock_guard lock(mu_);
    loop_ended_ = true;
  }
  loop_ended_cv_.notify_all();
  if (thread_.joinable()) {
    // Ends a sigwait(); the signal is blocked everywhere, so only sigwait can take it.
    pthread_kill(thread_.native_handle(), SIGTERM);
    thread_.join();
  }
}

bool ShutdownWatcher::Unmount() {
  if (geteuid() == 0) {
    // Not MNT_DETACH: a plain unmount makes the kernel write its cached dirty pages back
    // through the running loop before it lets go of the connection.
    if (umount2(mountpoint_.c_str(), UMOUNT_NOFOLLOW) == 0) return true;
    Log(LOG_WARNING, "unmount %s: %s", mountpoint_.c_str(), strerror(errno));
    return false;
  }
  const char* argv[] = {"fusermount3", "-u", "-q", mountpoint_.c_str(), nullptr};
  pid_t pid = 0;
  int rc = posix_spawnp(&pid, "fusermount3", nullptr, nullptr, const_cast<char**>(argv), environ);
  if (rc != 0) {
    Log(LOG_WARNING, "fusermount3: %s", strerror(rc));
    return false;
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return true;
  Log(LOG_WARNING, "fusermount3 -u %s failed (mount point busy?)", mountpoint_.c_str());
  return false;
}

void ShutdownWatcher::Run() {
  const sigset_t set = TerminationSignals();
  for (;;) {
    int sig = 0;
    if (sigwait(&set, &sig) != 0) continue;
    {
      std::lock_guard lock(mu_);
      if (loop_ended_) return;
    }
    Log(LOG_INFO, "%s: unmounting %s", strsignal(sig), mountpoint_.c_str());
    if (Unmount()) continue;  // the loop ends when the kernel lets go of the connection
    FlushAndStop();
    return;
  }
}

void ShutdownWatcher::FlushAndStop() {
  using Clock = std::chrono::steady_clock;
  Log(LOG_WARNING, "%s is busy; flushing it and detaching it", mountpoint_.c_str());
  int fd = open(mountpoint_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    if (syncfs(fd) != 0) Log(LOG_WARNING, "syncfs %s: %s", mountpoint_.c_str(), strerror(errno));
    close(fd);
  }
  // syncfs has queued the dirty pages as write requests without waiting for them. Serve
  // until no request has come for kQuiet (bounded by kMaxDrain, for a user who keeps
  // writing).
  constexpr auto kQuiet = std::chrono::milliseconds(300);
  constexpr auto kMaxDrain = std::chrono::seconds(30);
  const Clock::time_point deadline = Clock::now() + kMaxDrain;
  uint64_t seen = requests_->load();
  Clock::time_point quiet_since = Clock::now();
  std::unique_lock lock(mu_);
  while (!loop_ended_ && Clock::now() < deadline) {
    loop_ended_cv_.wait_for(lock, std::chrono::milliseconds(50));
    uint64_t now_seen = requests_->load();
    if (now_seen != seen) {
      seen = now_seen;
      quiet_since = Clock::now();
    } else if (Clock::now() - quiet_since >= kQuiet) {
      break;
    }
  }
  if (loop_ended_) return;
  fuse_session_exit(session_);
  // The loop's main thread sleeps in sem_wait() and notices the exit flag only when a
  // signal interrupts it; repeat until it has (a signal can land just before the wait).
  while (!loop_ended_) {
    pthread_kill(main_thread_, SIGUSR1);
    loop_ended_cv_.wait_for(lock, std::chrono::milliseconds(50));
  }
}

}  // namespace fs::fuse

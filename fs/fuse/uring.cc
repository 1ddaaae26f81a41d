#include "fs/fuse/uring.h"

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>
#include <liburing.h>
#include <linux/fuse.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/uio.h>
#include <syslog.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "fs/fuse/killpriv.h"
#include "fs/fuse/log.h"

namespace fs::fuse {
namespace {

// ---- The kernel's FUSE-over-io_uring ABI (protocol 7.42, include/uapi/linux/fuse.h);
// Debian 12's headers predate it. ----
constexpr uint32_t kCmdRegister = 1;        // FUSE_IO_URING_CMD_REGISTER
constexpr uint32_t kCmdCommitAndFetch = 2;  // FUSE_IO_URING_CMD_COMMIT_AND_FETCH
constexpr size_t kHeaderArea = 128;         // FUSE_URING_IN_OUT_HEADER_SZ, FUSE_URING_OP_IN_OUT_SZ

struct RingEntryInOut {  // fuse_uring_ent_in_out
  uint64_t flags;
  uint64_t commit_id;  // the request's id, echoed in the commit
  uint32_t payload_sz;
  uint32_t padding;
  uint64_t reserved;
};
struct RingHeaders {         // fuse_uring_req_header: iov[0] of a REGISTER
  char in_out[kHeaderArea];  // fuse_in_header; the reply's fuse_out_header
  char op_in[kHeaderArea];   // the request's fixed argument, if it has one
  RingEntryInOut entry;
};
struct RingCommand {  // fuse_uring_cmd_req, in the SQE's 80-byte command area
  uint64_t flags;
  uint64_t commit_id;
  uint16_t qid;
  uint8_t padding[6];
};
static_assert(sizeof(RingHeaders) == 288 && sizeof(RingCommand) == 24);

// Room before the payload buffer to put the in header and the fixed argument back in front
// of the payload: a request becomes /dev/fuse's contiguous layout without moving its
// payload. A page, so that the payload stays page-aligned.
constexpr size_t kPrefix = 4096;
static_assert(kPrefix >= sizeof(fuse_in_header) + kHeaderArea);

// The ring thread serving a request on this thread, if any: where its reply goes.
class RingThread;
thread_local RingThread* t_serving = nullptr;

constexpr uint64_t kRequestTag = 1;  // user_data of the entry's command
constexpr uint64_t kStopTag = 2;     // user_data of the poll on the stop eventfd

std::atomic<uint64_t> g_served{0};

// The highest possible CPU number + 1: the kernel keeps a queue for every possible CPU, and
// the rings are used only once every queue has a registered entry.
unsigned PossibleCpus() {
  std::ifstream in("/sys/devices/system/cpu/possible");  // "0-1", "0", "0-3,8-11"
  std::string text;
  std::getline(in, text);
  const size_t last = text.find_last_of(",-");
  const char* tail = text.c_str() + (last == std::string::npos ? 0 : last + 1);
  char* end = nullptr;
  const unsigned long highest = std::strtoul(tail, &end, 10);
  if (text.empty() || end == tail)
    return static_cast<unsigned>(std::thread::hardware_concurrency());
  return static_cast<unsigned>(highest) + 1;
}

// Whether SCHED_IDLE ring threads are safe from starvation (see RingThread::Place): the
// scheduler shares CPU time between sessions first (autogroup), and the daemon leads a
// session of its own, as it does once detached (not with -f from a shell, which shares the
// shell's session with whatever else runs there).
bool RunsInOwnAutogroup() {
  std::ifstream in("/proc/sys/kernel/sched_autogroup_enabled");
  int enabled = 0;
  return (in >> enabled) && enabled == 1 && getsid(0) == getpid();
}

// One thread, one io_uring and one registered request buffer, serving one CPU's queue.
class RingThread {
 public:
  RingThread(fuse_session* se, uint16_t qid, unsigned cpus, bool idle_policy, size_t max_payload)
      : se_(se), qid_(qid), cpus_(cpus), idle_policy_(idle_policy), max_payload_(max_payload) {}
  ~RingThread() {
    Stop();
    if (ring_ready_) io_uring_queue_exit(&ring_);
    if (stop_fd_ >= 0) close(stop_fd_);
    std::free(headers_);
    std::free(buffer_);
  }
  RingThread(const RingThread&) = delete;
  RingThread& operator=(const RingThread&) = delete;

  // Starts the thread and waits until its entry is registered; false (error logged) if
  // the kernel refused.
  bool Start() {
    std::promise<bool> registered;
    std::future<bool> result = registered.get_future();
    thread_ = std::thread([this, &registered] { Run(&registered); });
    return result.get();
  }

  void Stop() {
    if (!thread_.joinable()) return;
    const uint64_t one = 1;
    if (stop_fd_ >= 0 && write(stop_fd_, &one, sizeof(one)) != sizeof(one)) {
      Log(LOG_WARNING, "io_uring queue %u: stop: %s", qid_, strerror(errno));
    }
    thread_.join();
  }

  std::span<char> reply_buffer() const { return {payload_, max_payload_}; }

  // See ReplyThroughRing().
  bool Reply(const iovec* iov, int count) {
    fuse_out_header out;
    if (count < 1 || iov[0].iov_len < sizeof(out)) return false;
    std::memcpy(&out, iov[0].iov_base, sizeof(out));
    if (replied_ || out.unique != unique_) return false;
    size_t size = 0;
    for (int i = 1; i < count; ++i) size += iov[i].iov_len;
    if (size > max_payload_) {
      Log(LOG_ERR, "io_uring: a %zu-byte reply exceeds the %zu-byte buffer", size, max_payload_);
      out.error = -EIO;
      size = 0;
    } else {
      char* to = payload_;
      for (int i = 1; i < count; ++i) {
        // A reply may point into the request, or be in its place already (RingReplyBuffer).
        if (iov[i].iov_base != to) std::memmove(to, iov[i].iov_base, iov[i].iov_len);
        to += iov[i].iov_len;
      }
    }
    out.len = static_cast<uint32_t>(sizeof(out) + size);
    std::memcpy(headers_->in_out, &out, sizeof(out));
    headers_->entry.payload_sz = static_cast<uint32_t>(size);
    // Submitted with the wait for the next request, in one system call (Run).
    QueueCommand(kCmdCommitAndFetch);
    replied_ = true;
    return true;
  }

 private:
  bool Setup(std::string* error) {
    headers_ = static_cast<RingHeaders*>(std::aligned_alloc(4096, 4096));
    buffer_ = static_cast<char*>(std::aligned_alloc(4096, kPrefix + RoundUpToPage(max_payload_)));
    if (headers_ == nullptr || buffer_ == nullptr) {
      *error = "out of memory";
      return false;
    }
    std::memset(headers_, 0, sizeof(*headers_));
    payload_ = buffer_ + kPrefix;
    iov_[0] = {headers_, sizeof(*headers_)};
    iov_[1] = {payload_, max_payload_};

    stop_fd_ = eventfd(0, EFD_CLOEXEC);
    if (stop_fd_ < 0) {
      *error = std::string("eventfd: ") + strerror(errno);
      return false;
    }
    io_uring_params params = {};
    params.flags = IORING_SETUP_SQE128;  // FUSE's command needs the 80-byte area
    // Only this thread submits, and it always waits in io_uring_enter: completions can
    // wait for it there instead of interrupting it.
    params.flags |= IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
    int rc = io_uring_queue_init_params(4, &ring_, &params);
    if (rc < 0) {
      *error = std::string("io_uring_setup: ") + strerror(-rc);
      return false;
    }
    ring_ready_ = true;
    const int fuse_fd = fuse_session_fd(se_);
    rc = io_uring_register_files(&ring_, &fuse_fd, 1);
    if (rc < 0) {
      *error = std::string("registering /dev/fuse: ") + strerror(-rc);
      return false;
    }
    io_uring_sqe* poll = io_uring_get_sqe(&ring_);
    io_uring_prep_poll_add(poll, stop_fd_, POLLIN);
    io_uring_sqe_set_data64(poll, kStopTag);
    QueueCommand(kCmdRegister);
    rc = io_uring_submit(&ring_);
    if (rc < 0) {
      *error = std::string("io_uring_enter: ") + strerror(-rc);
      return false;
    }
    // A refused REGISTER completes at once; an accepted one only when a request comes.
    io_uring_cqe* cqe = nullptr;
    if (io_uring_peek_cqe(&ring_, &cqe) == 0 && cqe->user_data == kRequestTag && cqe->res < 0) {
      *error = std::string("FUSE_IO_URING_CMD_REGISTER: ") + strerror(-cqe->res);
      return false;
    }
    return true;
  }

  // A READ or WRITE of at least kBulkBytes: work (decompressing, compressing, copying a
  // MiB) that dwarfs a move to another CPU. Served on the queue's CPU it would compete with
  // its caller, which is busy meanwhile (readahead and writeback are asynchronous): a
  // sequential read fell from 1.0 to 0.7 GB/s. So the thread leaves its CPU for the
  // request, and comes back only for a request that is not bulk (Serve, Place).
  static bool IsBulk(const fuse_in_header& in, const char* fixed, size_t payload_size) {
    constexpr size_t kBulkBytes = 128 << 10;
    if (in.opcode == FUSE_WRITE) return payload_size >= kBulkBytes;
    if (in.opcode != FUSE_READ || in.len < sizeof(in) + sizeof(fuse_read_in)) return false;
    fuse_read_in read;
    std::memcpy(&read, fixed, sizeof(read));
    return read.size >= kBulkBytes;
  }

  static size_t RoundUpToPage(size_t n) { return (n + 4095) & ~size_t{4095}; }

  // Where and how the thread runs.
  //
  // Serving its queue, it is pinned to the queue's CPU (the point of a per-CPU queue; a CPU
  // this process may not use leaves it unpinned) and runs as SCHED_IDLE. When the reply
  // wakes the caller, the scheduler looks for an idle CPU to run it on; a CPU running only
  // SCHED_IDLE tasks counts as idle, so the caller stays here (and preempts this thread,
  // which is about to sleep anyway) instead of moving to the other CPU and sending its next
  // request to the other queue: measured, a GETATTR round trip takes 11 µs so, 35 µs
  // without, and 23 µs through /dev/fuse.
  //
  // Busy programs in the daemon's session would starve a SCHED_IDLE thread (writing 300 MiB
  // with both CPUs busy in the same session took 42 s, against 4 s through /dev/fuse), so
  // the policy is used only when the daemon has its session to itself (RunsInOwnAutogroup):
  // there, the same write took 3.2 s (3.3 s through /dev/fuse) and untarring a source tree
  // 2.3 s (3.4 s). And a bulk request, the one kind that takes much CPU time, is served on
  // any other CPU at normal priority.
  void Place(bool bulk) {
    cpu_set_t cpus;
    CPU_ZERO(&cpus);
    for (unsigned cpu = 0; cpu < cpus_; ++cpu) {
      if ((cpu == qid_) != bulk) CPU_SET(cpu, &cpus);
    }
    if (CPU_COUNT(&cpus) > 0 && sched_setaffinity(0, sizeof(cpus), &cpus) != 0) {
      Log(LOG_DEBUG, "io_uring queue %u: affinity: %s", qid_, strerror(errno));
    }
    if (!idle_policy_) return;  // SCHED_OTHER throughout
    const sched_param no_priority = {};
    if (sched_setscheduler(0, bulk ? SCHED_OTHER : SCHED_IDLE, &no_priority) != 0) {
      Log(LOG_DEBUG, "io_uring queue %u: scheduling policy: %s", qid_, strerror(errno));
    }
  }

  void QueueCommand(uint32_t op) {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    if (sqe == nullptr) {  // cannot happen: the entry has one command in flight at most
      Log(LOG_ERR, "io_uring queue %u: no free submission slot", qid_);
      return;
    }
    // The whole 128-byte SQE: the command area follows the first 64 bytes.
    std::memset(static_cast<void*>(sqe), 0, 2 * sizeof(io_uring_sqe));
    sqe->opcode = IORING_OP_URING_CMD;
    sqe->flags = IOSQE_FIXED_FILE;
    sqe->fd = 0;  // the registered /dev/fuse
    sqe->cmd_op = op;
    sqe->user_data = kRequestTag;
    auto* command = reinterpret_cast<RingCommand*>(sqe->cmd);
    command->qid = qid_;
    if (op == kCmdRegister) {
      sqe->addr = reinterpret_cast<uint64_t>(iov_);
      sqe->len = 2;
    } else {
      command->commit_id = commit_id_;
    }
    last_command_ = op;
  }

  void Run(std::promise<bool>* registered) {
    char name[16];
    snprintf(name, sizeof(name), "kvfs-ring-%u", static_cast<unsigned>(qid_));
    pthread_setname_np(pthread_self(), name);
    Place(/*bulk=*/false);
    std::string error;
    const bool ok = Setup(&error);
    if (!ok) Log(LOG_WARNING, "io_uring queue %u: %s", qid_, error.c_str());
    registered->set_value(ok);  // *registered is gone after this
    if (!ok) return;
    for (bool stop = false; !stop;) {
      const int rc = io_uring_submit_and_wait(&ring_, 1);
      if (rc < 0 && rc != -EINTR) {
        Log(LOG_ERR, "io_uring queue %u: %s", qid_, strerror(-rc));
        return;
      }
      unsigned head;
      unsigned seen = 0;
      io_uring_cqe* cqe;
      io_uring_for_each_cqe(&ring_, head, cqe) {
        ++seen;
        if (cqe->user_data == kStopTag) {
          stop = true;
        } else if (cqe->res == -EAGAIN || cqe->res == -EINTR) {
          QueueCommand(last_command_);
        } else if (cqe->res < 0) {
          // ENOTCONN: the file system was unmounted.
          if (cqe->res != -ENOTCONN)
            Log(LOG_ERR, "io_uring queue %u: %s", qid_, strerror(-cqe->res));
          stop = true;
        } else {
          Serve();
        }
      }
      io_uring_cq_advance(&ring_, seen);
    }
    io_uring_submit(&ring_);  // a reply served in the last batch
  }

  // Rebuilds the request the kernel wrote into the entry as /dev/fuse would have delivered
  // it (in header, fixed argument, payload) and lets libfuse dispatch it.
  void Serve() {
    fuse_in_header in;
    std::memcpy(&in, headers_->in_out, sizeof(in));
    const size_t payload_size = headers_->entry.payload_sz;
    commit_id_ = headers_->entry.commit_id;
    unique_ = in.unique;
    replied_ = false;
    // The kernel's in.len counts all arguments, so the fixed argument is what is left.
    const size_t fixed = in.len - sizeof(in) - payload_size;
    if (in.len < sizeof(in) + payload_size || fixed > kHeaderArea || payload_size > max_payload_) {
      Log(LOG_ERR, "io_uring: malformed request (opcode %u, len %u, payload %zu)", in.opcode,
          in.len, payload_size);
      return ReplyEio();
    }
    char* request = payload_ - fixed - sizeof(in);
    std::memcpy(request, &in, sizeof(in));
    std::memcpy(request + sizeof(in), headers_->op_in, fixed);
    // The thread stays where the last request put it until one of the other kind comes: a
    // sequential read or write is a run of bulk requests, and moving back and forth for
    // each cost the daemon 20% more CPU time (four system calls and two migrations a MiB).
    const bool bulk = IsBulk(in, request + sizeof(in), payload_size);
    if (bulk != placed_bulk_) {
      Place(bulk);
      placed_bulk_ = bulk;
    }
    NoteRequestFlags(request, in.len);
    fuse_buf buf = {};
    buf.mem = request;
    buf.size = in.len;
    t_serving = this;
    fuse_session_process_buf(se_, &buf);
    t_serving = nullptr;
    g_served.fetch_add(1, std::memory_order_relaxed);
    if (!replied_) {
      // Every request that comes through a ring expects a reply (FORGET, the one that does
      // not, comes through /dev/fuse); without one the entry would stay with the kernel.
      Log(LOG_ERR, "io_uring: opcode %u was not answered", in.opcode);
      ReplyEio();
    }
  }

  void ReplyEio() {
    fuse_out_header out = {sizeof(out), -EIO, unique_};
    iovec reply = {&out, sizeof(out)};
    Reply(&reply, 1);
  }

  fuse_session* const se_;
  const uint16_t qid_;
  const unsigned cpus_;     // queues in all, one per possible CPU
  const bool idle_policy_;  // SCHED_IDLE while serving the queue (Place)
  const size_t max_payload_;
  std::thread thread_;
  io_uring ring_ = {};
  bool ring_ready_ = false;
  int stop_fd_ = -1;
  RingHeaders* headers_ = nullptr;
  char* buffer_ = nullptr;   // kPrefix, then the payload
  char* payload_ = nullptr;  // registered as iov_[1]
  iovec iov_[2] = {};
  uint32_t last_command_ = kCmdRegister;
  uint64_t commit_id_ = 0;  // of the request being served
  uint64_t unique_ = 0;
  bool replied_ = true;
  bool placed_bulk_ = false;  // placed for bulk requests (Place)
};

std::mutex g_mu;
std::vector<std::unique_ptr<RingThread>> g_threads;  // GUARDED_BY(g_mu)

}  // namespace

void StartRings(fuse_session* se, unsigned threads_per_cpu, size_t max_payload) {
  std::lock_guard<std::mutex> lock(g_mu);
  const unsigned cpus = PossibleCpus();
  const bool idle_policy = RunsInOwnAutogroup();
  for (unsigned thread = 0; thread < threads_per_cpu; ++thread) {
    for (unsigned cpu = 0; cpu < cpus; ++cpu) {
      auto ring = std::make_unique<RingThread>(se, static_cast<uint16_t>(cpu), cpus, idle_policy,
                                               max_payload);
      if (!ring->Start()) {
        // The queues already registered stay unused: the kernel switches to the rings
        // only once every CPU's queue has an entry.
        Log(LOG_WARNING, "FUSE over io_uring unavailable; serving /dev/fuse");
        return;
      }
      g_threads.push_back(std::move(ring));
    }
  }
  Log(LOG_INFO, "serving FUSE through io_uring: %u CPUs, %u threads each%s", cpus, threads_per_cpu,
      idle_policy ? "" : " (not SCHED_IDLE: the daemon shares its session)");
}

bool ReplyThroughRing(const iovec* iov, int count) {
  return t_serving != nullptr && t_serving->Reply(iov, count);
}

std::span<char> RingReplyBuffer() {
  return t_serving != nullptr ? t_serving->reply_buffer() : std::span<char>();
}

void StopRings() {
  std::lock_guard<std::mutex> lock(g_mu);
  if (g_threads.empty()) return;
  g_threads.clear();  // each destructor stops and joins its thread
  Log(LOG_INFO, "%llu requests served through io_uring",
      static_cast<unsigned long long>(g_served.load()));
}

}  // namespace fs::fuse

// kvfs: mounts a kvfs store with FUSE. `kvfs STORE MOUNTPOINT [-f] [-d] [-o OPTIONS]`.
//
// Startup order, chosen so that every failure is one line on the terminal and exit 1
// (usage errors: exit 2):
//   parse options -> new FUSE session (validates FUSE options; no threads, no kernel)
//   -> check the mount point -> fork (unless -f; daemon.h says why before the store)
//   -> open the store and volume -> mount -> detach -> serve -> Volume::Close -> exit 0.
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>

#include "fs/fuse/daemon.h"
#include "fs/fuse/fuse_ops.h"
#include "fs/fuse/log.h"
#include "fs/fuse/mount_point.h"
#include "fs/fuse/options.h"
#include "fs/fuse/session_io.h"
#include "fs/fuse/uring.h"
#include "fs/volume.h"
#include "kv/store.h"

namespace fs::fuse {
namespace {

// How long to wait for a store whose previous daemon is still shutting down.
constexpr int kBusyWaitMs = 5000;

// Opens (creating on first use) the store in o.store and the volume in it. On failure
// *error is the one-line reason.
bool OpenVolume(const DaemonOptions& o, std::unique_ptr<Volume>* volume, std::string* error) {
  kv::Options ko = Volume::StoreOptions();
  struct stat st;
  if (stat(o.store.c_str(), &st) == 0) {
    if (!S_ISDIR(st.st_mode)) {
      *error = "store " + o.store + " is not a directory";
      return false;
    }
    // A non-empty directory must already be a store: never scatter page files over a
    // directory that was named by mistake (a home directory, the mount point ...).
    std::error_code ec;
    if (!std::filesystem::is_empty(o.store, ec)) ko.create_if_missing = false;
  } else if (errno == ENOENT) {
    // The store holds every file's data: private to the mounting user by default.
    std::error_code ec;
    std::filesystem::create_directories(std::filesystem::path(o.store).parent_path(), ec);
    if (mkdir(o.store.c_str(), 0700) != 0 && errno != EEXIST) {
      *error = "cannot create store " + o.store + ": " + strerror(errno);
      return false;
    }
  } else {
    *error = "store " + o.store + ": " + strerror(errno);
    return false;
  }

  ko.page_count = o.pages;
  ko.compression_level = o.compression;
  // ko.retention is the volume's history-aware policy (Volume::StoreOptions); the volume
  // binds it below, so that background compaction keeps versions, snapshots and trash.
  ko.on_background_error = [](const kv::Status& s) {
    Log(LOG_ERR, "background compaction: %s", s.ToString().c_str());
  };
  std::unique_ptr<kv::Store> store;
  kv::Status s = kv::OpenPageStore(ko, o.store, &store);
  // `fusermount3 -u` returns as soon as the kernel lets go, while the old daemon may still be
  // closing the store; a remount right after it should wait for that, not fail. A store
  // that is mounted is really in use: that fails at once.
  for (int waited_ms = 0; s.IsBusy() && waited_ms < kBusyWaitMs && !IsStoreMounted(o.store);
       waited_ms += 100) {
    usleep(100 * 1000);
    s = kv::OpenPageStore(ko, o.store, &store);
  }
  if (!s.ok()) {
    if (s.IsNotFound() && !ko.create_if_missing) {
      *error = o.store + " is not a kvfs store (the directory is not empty)";
    } else {
      *error = "cannot open store " + o.store + ": " + s.message();
    }
    return false;
  }

  VolumeOptions vo;
  vo.chunk_size = o.chunk_size;
  vo.version_retention = o.versions;
  vo.version_min_age_ns = static_cast<int64_t>(o.version_min_age * 1e9);
  vo.trash_retention_ns = static_cast<int64_t>(o.trash_retention * 1e9);
  vo.update_retention = o.retention_given;
  vo.posix_acl = o.acl;
  vo.store_retention = ko.retention;
  vo.root_owner = Caller{static_cast<uint32_t>(getuid()), static_cast<uint32_t>(getgid())};
  vo.chunk_cache_bytes = o.cache_size;
  vo.max_dirty_bytes = o.write_buffer;
  vo.commit_interval_ns = static_cast<int64_t>(o.commit_interval * 1e9);
  vo.space_path = o.store;  // statfs reports the free space where the store lives
  Errno err = Volume::Open(std::move(store), vo, volume);
  if (!err.ok()) {
    *error = "cannot open the file system in store " + o.store + ": " +
             (err.detail().empty() ? std::string(strerror(err.value())) : err.detail());
    return false;
  }
  const std::string layout = (*volume)->store()->Stats().sharder_name;
  if (layout != Volume::Sharder()->Name()) {
    Log(LOG_NOTICE,
        "store %s has the layout of an earlier kvfs (%s); unmount and run `kvfsck reshard %s` "
        "to move it to the current one, which keeps metadata in page files of its own",
        o.store.c_str(), layout.c_str(), o.store.c_str());
  }
  if (o.compact) {
    kv::StoreStats before = (*volume)->store()->Stats();
    err = (*volume)->Compact();
    if (!err.ok()) {
      *error = "compacting store " + o.store + ": " + err.ToString();
      (*volume)->Close().IgnoreError();
      volume->reset();
      return false;
    }
    Log(LOG_INFO, "compacted %s: %llu -> %llu bytes", o.store.c_str(),
        static_cast<unsigned long long>(before.Total().file_bytes),
        static_cast<unsigned long long>((*volume)->store()->Stats().Total().file_bytes));
  }
  return true;
}

int Run(int argc, char** argv) {
  // Before any thread exists, so that all inherit the mask (daemon.h, "Shutdown"). A
  // SIGTERM or Ctrl-C during startup is therefore acted on once mounted: a clean unmount
  // right away, never a half-opened store.
  BlockTerminationSignals();
  InstallFuseLogger();

  DaemonOptions o;
  fuse_args args;
  switch (ParseCommandLine(argc, argv, &o, &args)) {
    case ParseResult::kRun:
      break;
    case ParseResult::kExitOk:
      return 0;
    case ParseResult::kUsage:
      return 2;
  }
  SetLogDebug(o.debug);

  FuseContext ctx;
  ctx.attr_timeout = o.attr_timeout;
  ctx.entry_timeout = o.entry_timeout;
  ctx.negative_timeout = o.negative_timeout;
  // Takes max_write, writeback_cache, readdirplus= ... out of args; applied in init.
  ctx.conn_opts = fuse_parse_conn_info_opts(&args);
  if (ctx.conn_opts == nullptr) {
    PrintUsage("kvfs", false);
    fuse_opt_free_args(&args);
    return 2;
  }

  fuse_session* se = nullptr;
  {
    FuseLogCapture capture;
    se = fuse_session_new(&args, &KvfsOperations(), sizeof(fuse_lowlevel_ops), &ctx);
    if (se == nullptr) {
      std::string why = capture.Text();
      fprintf(stderr, "kvfs: %s\n", why.empty() ? "bad FUSE options" : why.c_str());
      PrintUsage("kvfs", false);
      fuse_opt_free_args(&args);
      free(ctx.conn_opts);
      return 2;
    }
  }
  fuse_opt_free_args(&args);

  std::string mountpoint, error;
  if (!CheckMountPoint(o.mountpoint, &mountpoint, &error)) {
    Log(LOG_ERR, "%s", error.c_str());
    return 1;
  }
  if (!o.foreground && !ForkDaemon()) return 1;

  std::unique_ptr<Volume> volume;
  if (!OpenVolume(o, &volume, &error)) {
    Log(LOG_ERR, "%s", error.c_str());
    return 1;
  }
  ctx.volume = volume.get();

  {
    FuseLogCapture capture;
    if (fuse_session_mount(se, mountpoint.c_str()) != 0) {
      std::string why = capture.Text();
      Log(LOG_ERR, "cannot mount %s: %s", mountpoint.c_str(),
          why.empty() ? "mount failed" : why.c_str());
      volume->Close().IgnoreError();
      fuse_session_destroy(se);
      return 1;
    }
  }
  ctx.session = se;
  // Attributes the volume changes behind the kernel's back (a tree restored from the trash)
  // must not be served from the kernel's cache until they time out.
  volume->SetSideEffectObserver(
      [se](Ino ino) { fuse_lowlevel_notify_inval_inode(se, ino, -1, 0); });
  if (!InstallSessionHooks(se, o.ring_threads)) {
    Log(LOG_WARNING, "session I/O hooks refused; no KILLPRIV_V2, no io_uring");
  }
  if (!o.foreground) {
    DetachDaemon();
  } else if (chdir("/") != 0) {
    // Like a daemon, do not keep the starting directory busy.
    Log(LOG_WARNING, "chdir /: %s", strerror(errno));
  }
  Log(LOG_INFO, "mounted %s on %s", o.store.c_str(), mountpoint.c_str());

  ShutdownWatcher watcher(se, mountpoint, &ctx.requests);
  watcher.Start();
  std::thread readahead;
  if (o.readahead > 0) {
    readahead = std::thread([&mountpoint, bytes = o.readahead] {
      std::string why;
      if (!SetMountReadahead(mountpoint, bytes, &why)) Log(LOG_DEBUG, "readahead: %s", why.c_str());
    });
  }

  // clone_fd: each worker reads from its own /dev/fuse descriptor, so replies and requests
  // of different threads do not contend on one file.
  fuse_loop_config* config = fuse_loop_cfg_create();
  fuse_loop_cfg_set_clone_fd(config, 1);
  if (o.max_threads > 0) fuse_loop_cfg_set_max_threads(config, o.max_threads);
  int loop_rc = fuse_session_loop_mt(se, config);
  fuse_loop_cfg_destroy(config);
  watcher.LoopEnded();
  if (readahead.joinable()) readahead.join();

  // Normally the kernel has already let go (fusermount3 -u, or the watcher's unmount); after
  // a busy shutdown this detaches the mount lazily.
  fuse_session_unmount(se);
  StopRings();
  Errno closed = volume->Close();
  fuse_session_destroy(se);
  free(ctx.conn_opts);
  if (!closed.ok()) {
    Log(LOG_ERR, "closing the store: %s", closed.ToString().c_str());
    return 1;
  }
  if (loop_rc < 0) {
    Log(LOG_ERR, "session loop: %s", strerror(-loop_rc));
    return 1;
  }
  Log(LOG_INFO, "unmounted %s; store closed", mountpoint.c_str());
  return 0;
}

}  // namespace
}  // namespace fs::fuse

int main(int argc, char** argv) { return fs::fuse::Run(argc, argv); }

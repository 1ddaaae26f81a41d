// kvfs's FUSE request handlers: argument conversion, one fs::Volume call, one reply.
//
// Lookup counts: the kernel counts every successful entry reply (lookup, mknod, mkdir,
// symlink, link, create, and each readdirplus entry but "." and "..") and gives them back
// with forget. fs::Volume keeps no per-inode kernel references (it has no forget hook:
// unlinked files live until their last Release, and its inode cache evicts by itself).
// The adapter notes which inodes the kernel holds (KernelInodes), only so that readdirplus
// can skip attributes the kernel already has.
#include "fs/fuse/fuse_ops.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/uio.h>
#include <syslog.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <string>
#include <string_view>
#include <vector>

#include "fs/acl.h"
#include "fs/fuse/killpriv.h"
#include "fs/fuse/log.h"
#include "fs/fuse/uring.h"

namespace fs::fuse {
namespace {

constexpr unsigned kMaxWrite = 1 << 20;  // bytes per FUSE_WRITE (256 pages)

// Every handler but forget reaches the context (or the volume) through here, which is
// where requests are counted.
FuseContext* Ctx(fuse_req_t req) {
  auto* ctx = static_cast<FuseContext*>(fuse_req_userdata(req));
  ctx->requests.fetch_add(1, std::memory_order_relaxed);
  return ctx;
}
Volume* Vol(fuse_req_t req) { return Ctx(req)->volume; }

// The umask comes with mknod, mkdir and create (0 otherwise). The kernel has applied it to
// the mode already unless ACLs are on (DONT_MASK): then the volume decides (fs/acl.h).
Caller CallerOf(fuse_req_t req) {
  const fuse_ctx* c = fuse_req_ctx(req);
  return Caller{static_cast<uint32_t>(c->uid), static_cast<uint32_t>(c->gid),
                static_cast<uint32_t>(c->umask)};
}

timespec ToTimespec(int64_t ns) {
  timespec ts;
  ts.tv_sec = ns / 1'000'000'000;
  ts.tv_nsec = ns % 1'000'000'000;
  if (ts.tv_nsec < 0) {  // times before 1970
    ts.tv_nsec += 1'000'000'000;
    --ts.tv_sec;
  }
  return ts;
}

int64_t ToNs(const timespec& ts) {
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

struct stat ToStat(const Attr& a) {
  struct stat st = {};
  st.st_ino = a.ino;
  st.st_mode = a.mode;
  st.st_nlink = a.nlink;
  st.st_uid = a.uid;
  st.st_gid = a.gid;
  st.st_rdev = a.rdev;
  st.st_size = static_cast<off_t>(a.size);
  st.st_blocks = static_cast<blkcnt_t>(a.blocks);
  st.st_blksize = a.blksize;
  st.st_atim = ToTimespec(a.atime_ns);
  st.st_mtim = ToTimespec(a.mtime_ns);
  st.st_ctim = ToTimespec(a.ctime_ns);
  return st;
}

// The one place a failed Volume call becomes a FUSE reply. Store trouble (EIO: I/O error or
// corruption; ENOSPC) is logged with the store's message; ordinary answers (ENOENT, EEXIST
// ...) are not.
void ReplyError(fuse_req_t req, const Errno& err, const char* op, uint64_t ino) {
  if (err.value() == EIO || err.value() == ENOSPC || err.ok()) {
    Log(err.value() == ENOSPC ? LOG_WARNING : LOG_ERR, "%s (inode %" PRIu64 "): %s", op, ino,
        err.ToString().c_str());
  }
  fuse_reply_err(req, err.ok() ? EIO : err.value());
}

// Rejects a request before it reaches the Volume (bad arguments the Volume's types cannot
// carry).
void ReplyErrno(fuse_req_t req, int err) { fuse_reply_err(req, err); }

fuse_entry_param EntryOf(FuseContext* ctx, const Attr& a) {
  fuse_entry_param e = {};
  e.ino = a.ino;
  e.generation = 0;  // inode numbers are never reused by a volume
  e.attr = ToStat(a);
  e.attr_timeout = ctx->attr_timeout;
  e.entry_timeout = ctx->entry_timeout;
  return e;
}

void ReplyEntry(fuse_req_t req, const Errno& err, const Attr& a, const char* op, uint64_t ino) {
  if (!err.ok()) return ReplyError(req, err, op, ino);
  FuseContext* ctx = Ctx(req);
  fuse_entry_param e = EntryOf(ctx, a);
  ctx->kernel_inodes.Add(a.ino);
  fuse_reply_entry(req, &e);
}

// open(2) flags as the Volume should see them. With the writeback cache the kernel decides
// where appended data goes (it holds the inode lock and knows the size including its dirty
// pages), and it writes cached pages back through any writable handle at their own offsets;
// a Volume handle that forced O_APPEND would move those writes to the end of the file. This
// mount is the store's only writer (the store is flock'ed), so the kernel's idea of the end
// of file is exact and two O_APPEND writers stay correct. The kernel may also read through
// a write-only handle to fill a partly written page, so such handles are opened read-write.
int VolumeOpenFlags(FuseContext* ctx, int flags) {
  if (ctx->writeback.load(std::memory_order_relaxed)) {
    flags &= ~O_APPEND;
    if ((flags & O_ACCMODE) == O_WRONLY) flags = (flags & ~O_ACCMODE) | O_RDWR;
  }
  return flags;
}

// ---------------------------------------------------------------------------------------------
// Session.

void Init(void* userdata, fuse_conn_info* conn) {
  auto* ctx = static_cast<FuseContext*>(userdata);
  // Capabilities (libfuse has already set its defaults in conn->want):
  // - WRITEBACK_CACHE: small writes gather in the page cache and reach the Volume as large
  //   writes; the Volume buffers per chunk anyway, so this mostly saves round trips. The
  //   kernel then owns mtime/ctime and O_APPEND offsets (see VolumeOpenFlags).
  // - READDIRPLUS (+AUTO, libfuse's default): `ls -l` gets names and attributes in one
  //   request; plain readdir stays available for scans that need names only.
  // - max_write 1 MiB: 16 chunks of the default size per request; libfuse derives
  //   max_pages (256) from it, and its receive buffer is exactly that large.
  // - No SPLICE_*: every byte must pass through user memory anyway (compression, checksums,
  //   chunk buffers), so splicing would only add pipe copies.
  // - OVER_IO_URING (negotiated by the session hooks, uring.h): requests come through
  //   per-CPU rings served by threads pinned to each CPU.
  // - HANDLE_KILLPRIV_V2 (negotiated by the session hooks, killpriv.h): the daemon drops
  //   setuid, setgid and security.capability on the requests the kernel flags, and the
  //   kernel stops asking for security.capability before every write. Not the older
  //   HANDLE_KILLPRIV, which would ask the daemon to judge CAP_FSETID itself.
  // - No AUTO_INVAL_DATA: nobody changes the store behind the kernel's back, so cached pages
  //   never go stale and need no invalidation on mtime changes.
  // - CACHE_SYMLINKS: a symlink's target never changes.
  // - NO_OPENDIR_SUPPORT (offered by the kernel, not asked for): see OpenDir.
  // - No POSIX/flock locks here: the kernel keeps them locally, which is exact for a store
  //   that only one mount can open.
  // - PARALLEL_DIROPS and ASYNC_READ (defaults): the Volume is thread-safe throughout.
  // - time_gran 1: the Volume keeps nanosecond times.
  // - Readahead: the kernel caps a FUSE mount's at 128 KiB whatever max_readahead says; the
  //   daemon raises it once INIT is done (SetMountReadahead, -o readahead, default 1 MiB).
  // - POSIX_ACL and DONT_MASK when the volume has ACLs on: the kernel enforces ACLs (and so
  //   checks permissions itself, as with default_permissions) and sends the mode unmasked
  //   with the umask, for the volume to apply a default ACL or the umask (fs/acl.h).
  if (conn->capable & FUSE_CAP_WRITEBACK_CACHE) conn->want |= FUSE_CAP_WRITEBACK_CACHE;
  if (ctx->volume->posix_acl()) conn->want |= FUSE_CAP_POSIX_ACL | FUSE_CAP_DONT_MASK;
  if (conn->capable & FUSE_CAP_READDIRPLUS) conn->want |= FUSE_CAP_READDIRPLUS;
  if (conn->capable & FUSE_CAP_CACHE_SYMLINKS) conn->want |= FUSE_CAP_CACHE_SYMLINKS;
  conn->want &= ~(FUSE_CAP_SPLICE_READ | FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE |
                  FUSE_CAP_HANDLE_KILLPRIV | FUSE_CAP_AUTO_INVAL_DATA);
  conn->max_write = kMaxWrite;
  conn->time_gran = 1;
  if (ctx->conn_opts != nullptr) fuse_apply_conn_info_opts(ctx->conn_opts, conn);
  // libfuse refuses the session if we want what the kernel cannot do.
  const bool acl_refused = (conn->want & ~conn->capable & FUSE_CAP_POSIX_ACL) != 0;
  conn->want &= conn->capable;
  if (acl_refused) {
    // Serving files whose ACLs nobody enforces would open them to more users: refuse.
    Log(LOG_ERR, "the store has POSIX ACLs on and this kernel cannot enforce them");
    fuse_session_exit(ctx->session);
  }
  ctx->writeback.store((conn->want & FUSE_CAP_WRITEBACK_CACHE) != 0);
  ctx->no_opendir.store((conn->capable & FUSE_CAP_NO_OPENDIR_SUPPORT) != 0);
  ctx->volume->SetKernelSetsWriteTimes(ctx->writeback.load());
  Log(LOG_DEBUG, "FUSE protocol %u.%u, max_write %u, writeback cache %s, readdirplus %s",
      conn->proto_major, conn->proto_minor, conn->max_write,
      (conn->want & FUSE_CAP_WRITEBACK_CACHE) ? "on" : "off",
      (conn->want & FUSE_CAP_READDIRPLUS) ? "on" : "off");
}

// ---------------------------------------------------------------------------------------------
// Names and attributes.

void Lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  FuseContext* ctx = Ctx(req);
  Attr a;
  Errno err = ctx->volume->Lookup(parent, name, &a);
  if (err.value() == ENOENT && ctx->negative_timeout > 0) {
    // A negative entry: the kernel remembers that the name is absent (ino 0 takes no
    // lookup reference).
    fuse_entry_param e = {};
    e.entry_timeout = ctx->negative_timeout;
    fuse_reply_entry(req, &e);
    return;
  }
  ReplyEntry(req, err, a, "lookup", parent);
}

// The kernel forgets an inode when it evicts it, so whatever the count, it holds no more.
void Forget(fuse_req_t req, fuse_ino_t ino, uint64_t /*nlookup*/) {
  Ctx(req)->kernel_inodes.Forget(ino);
  fuse_reply_none(req);
}

void ForgetMulti(fuse_req_t req, size_t count, fuse_forget_data* forgets) {
  KernelInodes& held = Ctx(req)->kernel_inodes;
  for (size_t i = 0; i < count; ++i) held.Forget(forgets[i].ino);
  fuse_reply_none(req);
}

void GetAttr(fuse_req_t req, fuse_ino_t ino, fuse_file_info* /*fi*/) {
  Attr a;
  Errno err = Vol(req)->GetAttr(ino, &a);
  if (!err.ok()) return ReplyError(req, err, "getattr", ino);
  struct stat st = ToStat(a);
  fuse_reply_attr(req, &st, Ctx(req)->attr_timeout);
}

// Whether the caller's group or one of its supplementary groups is gid.
bool CallerInGroup(fuse_req_t req, uint32_t gid) {
  if (fuse_req_ctx(req)->gid == gid) return true;
  gid_t groups[64];
  const int n = std::min(fuse_req_getgroups(req, 64, groups), 64);
  for (int i = 0; i < n; ++i) {
    if (groups[i] == gid) return true;
  }
  return false;
}

bool CallerRootOrInGroup(fuse_req_t req, uint32_t gid) {
  return fuse_req_ctx(req)->uid == 0 || CallerInGroup(req, gid);
}

// access(2), chdir(2) and the like arrive here only without default_permissions, that is
// on a mount that only root can enter (options.cc). Root may do anything but execute or
// search through a file that has no x bit at all; any other caller gets the mode bits.
void Access(fuse_req_t req, fuse_ino_t ino, int mask) {
  Attr a;
  Errno err = Vol(req)->GetAttr(ino, &a);
  if (!err.ok()) return ReplyError(req, err, "access", ino);
  const fuse_ctx* caller = fuse_req_ctx(req);
  bool allowed = true;
  if (caller->uid == 0) {
    allowed = !(mask & X_OK) || S_ISDIR(a.mode) || (a.mode & 0111) != 0;
  } else if (mask != F_OK) {
    uint32_t granted = a.mode & 07;  // the "other" bits
    if (caller->uid == a.uid) {
      granted = (a.mode >> 6) & 07;
    } else if (CallerInGroup(req, a.gid)) {
      granted = (a.mode >> 3) & 07;
    }
    // R_OK, W_OK and X_OK are 4, 2 and 1, the bits of one rwx triple.
    allowed = (static_cast<uint32_t>(mask) & ~granted & 07) == 0;
  }
  fuse_reply_err(req, allowed ? 0 : EACCES);
}

// security.capability goes with setuid (killpriv.h); most files have none.
Errno DropCapability(Volume* volume, fuse_ino_t ino) {
  Errno err = volume->RemoveXattr(ino, "security.capability");
  return err.value() == ENODATA ? Errno::OK() : err;
}

// Adds dropping the file's privileges (killpriv.h) to `r`: setuid and setgid leave the
// mode, unless `r` sets a mode itself, and security.capability is removed now.
Errno AddPrivilegeDrop(fuse_req_t req, fuse_ino_t ino, SetAttrRequest* r) {
  Volume* volume = Vol(req);
  if (!(r->valid & SetAttrRequest::kMode)) {
    Attr a;
    Errno err = volume->GetAttr(ino, &a);
    if (!err.ok()) return err;
    const uint32_t mode = a.mode & 07777;
    const uint32_t dropped = ModeWithoutPrivileges(mode, CallerRootOrInGroup(req, a.gid));
    if (dropped != mode) {
      r->valid |= SetAttrRequest::kMode;
      r->mode = dropped;
    }
  }
  return DropCapability(volume, ino);
}

// A write or an O_TRUNC open that the kernel flagged (killpriv.h) first drops the file's
// privileges, so that no crash can leave new bytes under an old setuid bit. The kernel
// keeps the mode it has cached, so its attributes are invalidated.
Errno DropPrivileges(fuse_req_t req, fuse_ino_t ino) {
  SetAttrRequest r;
  Errno err = AddPrivilegeDrop(req, ino, &r);
  if (!err.ok() || r.valid == 0) return err;
  Attr a;
  err = Vol(req)->SetAttr(ino, r, &a);
  if (err.ok()) fuse_lowlevel_notify_inval_inode(Ctx(req)->session, ino, -1, 0);
  return err;
}

void SetAttr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set,
             fuse_file_info* /*fi*/) {
  // ftruncate arrives with fi set; the Volume truncates by inode and commits the inode's
  // buffered writes first, whichever handle made them, so fi adds nothing.
  SetAttrRequest r;
  if (to_set & FUSE_SET_ATTR_MODE) {
    r.valid |= SetAttrRequest::kMode;
    r.mode = attr->st_mode & 07777;
  }
  if (to_set & FUSE_SET_ATTR_UID) {
    r.valid |= SetAttrRequest::kUid;
    r.uid = attr->st_uid;
  }
  if (to_set & FUSE_SET_ATTR_GID) {
    r.valid |= SetAttrRequest::kGid;
    r.gid = attr->st_gid;
  }
  if (to_set & FUSE_SET_ATTR_SIZE) {
    if (attr->st_size < 0) return ReplyErrno(req, EINVAL);
    r.valid |= SetAttrRequest::kSize;
    r.size = static_cast<uint64_t>(attr->st_size);
  }
  // utimensat: UTIME_NOW sets ATIME|ATIME_NOW (the volume's clock decides), an explicit
  // time sets ATIME alone, UTIME_OMIT sets neither. Same for mtime.
  if (to_set & FUSE_SET_ATTR_ATIME_NOW) {
    r.valid |= SetAttrRequest::kAtimeNow;
  } else if (to_set & FUSE_SET_ATTR_ATIME) {
    r.valid |= SetAttrRequest::kAtime;
    r.atime_ns = ToNs(attr->st_atim);
  }
  if (to_set & FUSE_SET_ATTR_MTIME_NOW) {
    r.valid |= SetAttrRequest::kMtimeNow;
  } else if (to_set & FUSE_SET_ATTR_MTIME) {
    r.valid |= SetAttrRequest::kMtime;
    r.mtime_ns = ToNs(attr->st_mtim);
  }
  // With the writeback cache the kernel keeps ctime and sends it with the mtime it flushes.
  if (to_set & FUSE_SET_ATTR_CTIME) {
    r.valid |= SetAttrRequest::kCtime;
    r.ctime_ns = ToNs(attr->st_ctim);
  }
  Attr a;
  Errno err;
  // A truncation by a caller without CAP_FSETID, or a chown (killpriv.h): one batch.
  if (RequestDropsPrivileges()) err = AddPrivilegeDrop(req, ino, &r);
  if (err.ok()) err = Vol(req)->SetAttr(ino, r, &a);
  if (!err.ok()) return ReplyError(req, err, "setattr", ino);
  struct stat st = ToStat(a);
  fuse_reply_attr(req, &st, Ctx(req)->attr_timeout);
}

void Readlink(fuse_req_t req, fuse_ino_t ino) {
  std::string target;
  Errno err = Vol(req)->Readlink(ino, &target);
  if (!err.ok()) return ReplyError(req, err, "readlink", ino);
  fuse_reply_readlink(req, target.c_str());
}

void Mknod(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, dev_t rdev) {
  Attr a;
  Errno err = Vol(req)->Mknod(parent, name, mode, rdev, CallerOf(req), &a);
  ReplyEntry(req, err, a, "mknod", parent);
}

void Mkdir(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode) {
  Attr a;
  Errno err = Vol(req)->Mkdir(parent, name, mode, CallerOf(req), &a);
  ReplyEntry(req, err, a, "mkdir", parent);
}

void Symlink(fuse_req_t req, const char* target, fuse_ino_t parent, const char* name) {
  Attr a;
  Errno err = Vol(req)->Symlink(parent, name, target, CallerOf(req), &a);
  ReplyEntry(req, err, a, "symlink", parent);
}

void Link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t new_parent, const char* new_name) {
  Attr a;
  Errno err = Vol(req)->Link(ino, new_parent, new_name, &a);
  ReplyEntry(req, err, a, "link", ino);
}

void Unlink(fuse_req_t req, fuse_ino_t parent, const char* name) {
  Errno err = Vol(req)->Unlink(parent, name);
  if (!err.ok()) return ReplyError(req, err, "unlink", parent);
  fuse_reply_err(req, 0);
}

void Rmdir(fuse_req_t req, fuse_ino_t parent, const char* name) {
  Errno err = Vol(req)->Rmdir(parent, name);
  if (!err.ok()) return ReplyError(req, err, "rmdir", parent);
  fuse_reply_err(req, 0);
}

void Rename(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t new_parent,
            const char* new_name, unsigned int flags) {
  // RENAME_WHITEOUT (overlayfs) and unknown flags are not supported.
  if (flags & ~(kRenameNoReplace | kRenameExchange)) return ReplyErrno(req, EINVAL);
  Errno err = Vol(req)->Rename(parent, name, new_parent, new_name, flags);
  if (!err.ok()) return ReplyError(req, err, "rename", parent);
  fuse_reply_err(req, 0);
}

// ---------------------------------------------------------------------------------------------
// Files.

void Open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  FuseContext* ctx = Ctx(req);
  uint64_t handle = 0;
  Errno err;
  if (RequestDropsPrivileges()) err = DropPrivileges(req, ino);  // O_TRUNC
  if (err.ok()) err = ctx->volume->Open(ino, VolumeOpenFlags(ctx, fi->flags), &handle);
  if (!err.ok()) return ReplyError(req, err, "open", ino);
  fi->fh = handle;
  // Keep the page cache across opens: only this mount changes the store, and every change
  // passes through the kernel, so cached pages are never stale. Not so for the .kvfs views:
  // a version's content can be replaced by a re-seal, and .kvfs/stats changes all the time
  // while its reported size is only a guess (it is read with direct I/O, like /proc).
  fi->keep_cache = IsMetaIno(ino) ? 0 : 1;
  if (ino == kMetaStatsIno) fi->direct_io = 1;
  // An interrupted open(2) never learns the handle; release it or it leaks (and an
  // unlinked file would stay until the next mount).
  if (fuse_reply_open(req, fi) != 0) Vol(req)->Release(handle).IgnoreError();
}

void Create(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, fuse_file_info* fi) {
  FuseContext* ctx = Ctx(req);
  Attr a;
  uint64_t handle = 0;
  Errno err = ctx->volume->Create(parent, name, mode, VolumeOpenFlags(ctx, fi->flags),
                                  CallerOf(req), &a, &handle);
  if (!err.ok()) return ReplyError(req, err, "create", parent);
  fi->fh = handle;
  fi->keep_cache = 1;
  fuse_entry_param e = EntryOf(ctx, a);
  ctx->kernel_inodes.Add(a.ino);
  if (fuse_reply_create(req, &e, fi) != 0) ctx->volume->Release(handle).IgnoreError();
}

void Read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
  if (off < 0) return ReplyErrno(req, EINVAL);
  // Served from a ring, chunks are read straight into the ring's reply buffer.
  fs::ReadBuffer data(RingReplyBuffer());
  Errno err = Vol(req)->Read(fi->fh, static_cast<uint64_t>(off), size, &data);
  if (!err.ok()) return ReplyError(req, err, "read", ino);
  // The reply gathers the slices (cached chunks, shared zeros) without copying them here.
  std::vector<iovec> iov;
  iov.reserve(data.slices().size());
  for (const fs::ReadBuffer::Slice& slice : data.slices()) {
    iov.push_back({const_cast<char*>(slice.data), slice.size});
  }
  fuse_reply_iov(req, iov.data(), static_cast<int>(iov.size()));
}

void Write(fuse_req_t req, fuse_ino_t ino, const char* buf, size_t size, off_t off,
           fuse_file_info* fi) {
  if (off < 0) return ReplyErrno(req, EINVAL);
  size_t written = 0;
  Errno err;
  if (RequestDropsPrivileges()) err = DropPrivileges(req, ino);
  if (err.ok()) {
    err =
        Vol(req)->Write(fi->fh, static_cast<uint64_t>(off), std::string_view(buf, size), &written);
  }
  if (!err.ok()) return ReplyError(req, err, "write", ino);
  fuse_reply_write(req, written);
}

void Flush(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  Errno err = Vol(req)->Flush(fi->fh);
  if (!err.ok()) return ReplyError(req, err, "flush", ino);
  fuse_reply_err(req, 0);
}

void Release(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  // close(2) has already returned; an error here can only be logged.
  Errno err = Vol(req)->Release(fi->fh);
  if (!err.ok()) return ReplyError(req, err, "release", ino);
  fuse_reply_err(req, 0);
}

void Fsync(fuse_req_t req, fuse_ino_t ino, int datasync, fuse_file_info* fi) {
  Errno err = Vol(req)->Fsync(fi->fh, datasync != 0);
  if (!err.ok()) return ReplyError(req, err, "fsync", ino);
  fuse_reply_err(req, 0);
}

void Fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length,
               fuse_file_info* fi) {
  if (offset < 0 || length <= 0) return ReplyErrno(req, EINVAL);
  Errno err = Vol(req)->Fallocate(fi->fh, mode, static_cast<uint64_t>(offset),
                                  static_cast<uint64_t>(length));
  if (!err.ok()) return ReplyError(req, err, "fallocate", ino);
  fuse_reply_err(req, 0);
}

// No lseek handler on purpose: the kernel sends FUSE_LSEEK only for SEEK_DATA/SEEK_HOLE,
// and the Volume has no hole map to answer from. Without the handler the kernel treats the
// whole file as data up to its own size, which is always right, also with dirty pages in
// the writeback cache that the Volume has not seen yet (an answer from the Volume's size
// could make `cp --sparse` drop them).

// ---------------------------------------------------------------------------------------------
// Directories.

// With FUSE_CAP_NO_OPENDIR_SUPPORT (Linux 5.1+), ENOSYS here makes the kernel open every
// directory by itself from then on: no OPENDIR and RELEASEDIR round trips (two of the five
// requests per directory of a cold `git status`), and it keeps every listing (as if with
// cache_readdir and keep_cache). That is exact: every change to a directory comes through
// this mount and the kernel drops the listing at each, and ReadDir needs no handle (its
// offsets resume on any listing, readdir.cc). The .kvfs views change with the files they
// show; their listings are dropped as soon as they are read (ReplyDirEnd). An older kernel
// gets handle 0 and the same caching, minus the views.
void OpenDir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  FuseContext* ctx = Ctx(req);
  if (ctx->no_opendir.load()) return ReplyErrno(req, ENOSYS);
  fi->fh = 0;
  if (!IsMetaIno(ino)) {
    fi->cache_readdir = 1;
    fi->keep_cache = 1;
  }
  fuse_reply_open(req, fi);
}

// After the empty reply that ends a listing: the kernel has stored the listing's entries by
// then (they came in the replies before), and completes its cached copy with this one. A
// view's is dropped again, so that the next listing asks the volume.
void ReplyDirEnd(fuse_req_t req, fuse_ino_t ino) {
  FuseContext* ctx = Ctx(req);
  fuse_reply_buf(req, nullptr, 0);
  if (IsMetaIno(ino)) fuse_lowlevel_notify_inval_inode(ctx->session, ino, 0, 0);
}

void ReadDir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* /*fi*/) {
  if (off < 0) return ReplyErrno(req, EINVAL);
  std::vector<char> buf(size);
  size_t used = 0;
  std::string name;
  Errno err = Vol(req)->ReadDir(ino, static_cast<uint64_t>(off), [&](const DirEntry& d) {
    name.assign(d.name);  // fuse_add_direntry wants a C string
    struct stat st = {};
    st.st_ino = d.ino;
    st.st_mode = d.type;
    size_t need = fuse_add_direntry(req, buf.data() + used, size - used, name.c_str(), &st,
                                    static_cast<off_t>(d.next_offset));
    if (need > size - used) return false;  // full: the entry stays for the next call
    used += need;
    return true;
  });
  // Entries already placed are returned even if the listing then failed; the error comes
  // back on the next call.
  if (!err.ok() && used == 0) return ReplyError(req, err, "readdir", ino);
  if (used == 0) return ReplyDirEnd(req, ino);
  fuse_reply_buf(req, buf.data(), used);
}

void ReadDirPlus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* /*fi*/) {
  if (off < 0) return ReplyErrno(req, EINVAL);
  FuseContext* ctx = Ctx(req);
  // Two passes. The Volume calls the filler with its directory locks held, and getting an
  // entry's attributes takes that inode's lock, which must not nest inside them (fs lock
  // order). An entry's size in the reply depends on its name only, so the first pass takes
  // the entries that fit and the second fetches attributes and encodes them.
  struct Pending {
    std::string name;
    Ino ino;
    uint32_t type;
    uint64_t next_offset;
  };
  std::vector<Pending> pending;
  size_t planned = 0;
  Errno err = ctx->volume->ReadDir(ino, static_cast<uint64_t>(off), [&](const DirEntry& d) {
    std::string name(d.name);
    size_t need = fuse_add_direntry_plus(req, nullptr, 0, name.c_str(), nullptr, 0);
    if (need > size - planned) return false;
    planned += need;
    pending.push_back(Pending{std::move(name), d.ino, d.type, d.next_offset});
    return true;
  });
  if (!err.ok() && pending.empty()) return ReplyError(req, err, "readdirplus", ino);
  if (pending.empty()) return ReplyDirEnd(req, ino);

  std::vector<char> buf(size);
  size_t used = 0;
  for (const Pending& p : pending) {
    fuse_entry_param e = {};
    Attr a;
    // Every entry with a nonzero e.ino is a lookup the kernel will forget later. Entries go
    // as a bare name, with ino 0, which takes no reference: "." and "..", which the kernel
    // never links; an inode the kernel holds already (kernel_inodes.h); an entry that
    // vanished since the listing.
    const bool bare = p.name == "." || p.name == ".." || ctx->kernel_inodes.Holds(p.ino);
    if (!bare && ctx->volume->GetAttr(p.ino, &a).ok()) {
      e = EntryOf(ctx, a);
      ctx->kernel_inodes.Add(a.ino);
    } else {
      e.attr.st_ino = p.ino;
      e.attr.st_mode = p.type;
    }
    size_t n = fuse_add_direntry_plus(req, buf.data() + used, size - used, p.name.c_str(), &e,
                                      static_cast<off_t>(p.next_offset));
    used += n;  // fits: planned above with the same name
  }
  fuse_reply_buf(req, buf.data(), used);
}

void FsyncDir(fuse_req_t req, fuse_ino_t ino, int /*datasync*/, fuse_file_info* /*fi*/) {
  // Every directory change is already one committed batch; fsync of a directory only has to
  // make the committed state durable.
  Errno err = Errno::FromStatus(Vol(req)->store()->Sync());
  if (!err.ok()) return ReplyError(req, err, "fsyncdir", ino);
  fuse_reply_err(req, 0);
}

// ---------------------------------------------------------------------------------------------
// Whole volume and extended attributes.

void StatFs(fuse_req_t req, fuse_ino_t ino) {
  FsStats s;
  Errno err = Vol(req)->Statfs(&s);
  if (!err.ok()) return ReplyError(req, err, "statfs", ino);
  struct statvfs v = {};
  v.f_bsize = s.block_size;
  v.f_frsize = s.block_size;
  v.f_blocks = s.blocks;
  v.f_bfree = s.blocks_free;
  v.f_bavail = s.blocks_avail;
  v.f_files = s.files;
  v.f_ffree = s.files_free;
  v.f_favail = s.files_free;
  v.f_namemax = s.name_max;
  fuse_reply_statfs(req, &v);
}

// POSIX ACLs (system.posix_acl_*) are the volume's to keep or refuse (Volume::posix_acl).
void SetXattr(fuse_req_t req, fuse_ino_t ino, const char* name, const char* value, size_t size,
              int flags) {
  Volume* volume = Vol(req);
  if (volume->posix_acl() && name == acl::kAccessName) {
    // libfuse 3.14 drops the kernel's KILL_SGID flag, so the daemon judges it the same way.
    Attr a;
    Errno err = volume->GetAttr(ino, &a);
    if (!err.ok()) return ReplyError(req, err, "setxattr", ino);
    if ((a.mode & S_ISGID) && !CallerRootOrInGroup(req, a.gid)) flags |= kXattrAclKillSgid;
  }
  Errno err = volume->SetXattr(ino, name, std::string_view(value, size), flags);
  if (!err.ok()) return ReplyError(req, err, "setxattr", ino);
  fuse_reply_err(req, 0);
}

// getxattr/listxattr protocol: size 0 asks for the length; a buffer too small is ERANGE.
void ReplyXattrData(fuse_req_t req, const std::string& data, size_t size) {
  if (size == 0) {
    fuse_reply_xattr(req, data.size());
  } else if (size < data.size()) {
    fuse_reply_err(req, ERANGE);
  } else {
    fuse_reply_buf(req, data.data(), data.size());
  }
}

void GetXattr(fuse_req_t req, fuse_ino_t ino, const char* name, size_t size) {
  std::string value;
  Errno err = Vol(req)->GetXattr(ino, name, &value);
  if (!err.ok()) return ReplyError(req, err, "getxattr", ino);
  ReplyXattrData(req, value, size);
}

void ListXattr(fuse_req_t req, fuse_ino_t ino, size_t size) {
  std::vector<std::string> names;
  Errno err = Vol(req)->ListXattr(ino, &names);
  if (!err.ok()) return ReplyError(req, err, "listxattr", ino);
  std::string list;  // "name\0name\0..."
  for (const std::string& n : names) {
    list += n;
    list.push_back('\0');
  }
  ReplyXattrData(req, list, size);
}

void RemoveXattr(fuse_req_t req, fuse_ino_t ino, const char* name) {
  Errno err = Vol(req)->RemoveXattr(ino, name);
  if (!err.ok()) return ReplyError(req, err, "removexattr", ino);
  fuse_reply_err(req, 0);
}

fuse_lowlevel_ops MakeOperations() {
  fuse_lowlevel_ops ops = {};
  ops.init = Init;
  ops.lookup = Lookup;
  ops.forget = Forget;
  ops.forget_multi = ForgetMulti;
  ops.getattr = GetAttr;
  ops.access = Access;
  ops.setattr = SetAttr;
  ops.readlink = Readlink;
  ops.mknod = Mknod;
  ops.mkdir = Mkdir;
  ops.unlink = Unlink;
  ops.rmdir = Rmdir;
  ops.symlink = Symlink;
  ops.rename = Rename;
  ops.link = Link;
  ops.open = Open;
  ops.read = Read;
  ops.write = Write;
  ops.flush = Flush;
  ops.release = Release;
  ops.fsync = Fsync;
  ops.opendir = OpenDir;
  ops.readdir = ReadDir;
  ops.readdirplus = ReadDirPlus;
  ops.fsyncdir = FsyncDir;
  ops.statfs = StatFs;
  ops.setxattr = SetXattr;
  ops.getxattr = GetXattr;
  ops.listxattr = ListXattr;
  ops.removexattr = RemoveXattr;
  ops.create = Create;
  ops.fallocate = Fallocate;
  // Not implemented, on purpose: lseek (above), copy_file_range (the kernel falls back to
  // read/write), locks (kept by the kernel), ioctl, poll, bmap.
  return ops;
}

}  // namespace

const fuse_lowlevel_ops& KvfsOperations() {
  static const fuse_lowlevel_ops ops = MakeOperations();
  return ops;
}

}  // namespace fs::fuse

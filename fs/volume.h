// fs::Volume: the public face of fs/. POSIX file-system semantics over a kv::Store, with no
// FUSE types, testable without mounting. fs/README.md describes the key schema.
//
// Contract shared by every method:
//  - Each operation that changes the file system commits exactly one atomic kv WriteBatch,
//    so a crash never leaves half an operation. File data written with Write() is buffered
//    per inode (like a page cache) and committed by Flush/Fsync/Release/Close or when a chunk
//    fills; only Fsync makes it durable.
//  - Errors are returned as an Errno value (a POSIX errno, 0 for success); nothing throws.
//  - Permission checks are the caller's (the kernel's with default_permissions, or the
//    daemon's access handler on a root-only mount); the volume keeps mode, uid and gid
//    correct.
//  - Inode numbers are stable for the life of the file and are the FUSE inode numbers; the
//    root directory is kRootIno.
//  - Thread safety: every method may be called concurrently from any thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "kv/progress.h"
#include "kv/status.h"
#include "kv/store.h"

namespace fs {

using Ino = uint64_t;
inline constexpr Ino kRootIno = 1;
inline constexpr size_t kNameMax = 255;
inline constexpr uint64_t kMaxFileSize = uint64_t{1} << 44;  // 16 TiB; larger is EFBIG

// Linux flag values, accepted as they are (<stdio.h>, <sys/xattr.h>, <linux/falloc.h>).
inline constexpr uint32_t kRenameNoReplace = 1;  // RENAME_NOREPLACE
inline constexpr uint32_t kRenameExchange = 2;   // RENAME_EXCHANGE
inline constexpr int kXattrCreate = 1;           // XATTR_CREATE
inline constexpr int kXattrReplace = 2;          // XATTR_REPLACE
// With an access ACL: the caller is neither in the file's group nor privileged, so the
// setgid bit goes (as the kernel's FUSE_SETXATTR_ACL_KILL_SGID asks).
inline constexpr int kXattrAclKillSgid = 1 << 8;
inline constexpr int kFallocKeepSize = 1;   // FALLOC_FL_KEEP_SIZE
inline constexpr int kFallocPunchHole = 2;  // FALLOC_FL_PUNCH_HOLE

// The `.kvfs` views (fs/README.md, "The .kvfs views"): a read-only directory reachable by
// this name from the root and listed nowhere. Its inode numbers, and those of everything
// below it except trashed files, have bit 63 set; real inode numbers never do.
inline constexpr std::string_view kMetaDirName = ".kvfs";
inline constexpr bool IsMetaIno(uint64_t ino) { return (ino >> 63) != 0; }
// .kvfs/stats: its content changes all the time, so it must be read without a page cache.
inline constexpr uint64_t kMetaStatsIno = (uint64_t{1} << 63) | 4;

// The result of an fs operation: a POSIX errno (0 = success) and, for store failures, the
// kv message for logs. kv::Status becomes an errno in exactly one place, Errno::FromStatus.
class [[nodiscard]] Errno {
 public:
  Errno() = default;
  explicit Errno(int value, std::string detail = {}) : value_(value), detail_(std::move(detail)) {}
  static Errno OK() { return Errno(); }
  // NotFound -> ENOENT, NoSpace -> ENOSPC, InvalidArgument -> EINVAL, NotSupported ->
  // EOPNOTSUPP, Busy -> EBUSY, Corruption and IOError -> EIO.
  static Errno FromStatus(const kv::Status& s);

  bool ok() const { return value_ == 0; }
  int value() const { return value_; }
  const std::string& detail() const { return detail_; }
  // "OK" or "<strerror> (<detail>)", one line.
  std::string ToString() const;
  void IgnoreError() const {}

 private:
  int value_ = 0;
  std::string detail_;
};

// What stat(2) reports.
struct Attr {
  Ino ino = 0;
  uint32_t mode = 0;
  uint32_t nlink = 0;
  uint32_t uid = 0;
  uint32_t gid = 0;
  uint64_t rdev = 0;
  uint64_t size = 0;
  uint64_t blocks = 0;  // 512-byte units
  uint32_t blksize = 0;
  int64_t atime_ns = 0;
  int64_t mtime_ns = 0;
  int64_t ctime_ns = 0;
  uint64_t version = 0;  // sealed versions of this file so far
};

// The credentials of the process that asked (for the owner of new inodes).
struct Caller {
  uint32_t uid = 0;
  uint32_t gid = 0;
  // Cleared from a new node's mode unless its parent has a default ACL (which decides
  // instead). 0 when the kernel applied the umask already (it does unless ACLs are on).
  uint32_t umask = 0;
};

// SetAttr: the fields named in `valid` are changed; ctime becomes now unless kCtime gives it.
struct SetAttrRequest {
  enum : uint32_t {
    kMode = 1 << 0,
    kUid = 1 << 1,
    kGid = 1 << 2,
    kSize = 1 << 3,
    kAtime = 1 << 4,
    kMtime = 1 << 5,
    kAtimeNow = 1 << 6,
    kMtimeNow = 1 << 7,
    kCtime = 1 << 8,
  };
  uint32_t valid = 0;
  uint32_t mode = 0;  // permission bits (07777); the file type cannot change
  uint32_t uid = 0;
  uint32_t gid = 0;
  uint64_t size = 0;
  int64_t atime_ns = 0;
  int64_t mtime_ns = 0;
  int64_t ctime_ns = 0;
};

// One directory entry passed to a ReadDir filler. `next_offset` is the cookie to resume
// after this entry.
struct DirEntry {
  std::string_view name;
  Ino ino = 0;
  uint32_t type = 0;  // S_IFMT bits
  uint64_t next_offset = 0;
};
// Returns false when it could not take the entry (buffer full); the entry is then not
// consumed and ReadDir stops.
using DirFiller = std::function<bool(const DirEntry&)>;

struct FsStats {
  uint32_t block_size = 0;
  uint64_t blocks = 0;  // in block_size units
  uint64_t blocks_free = 0;
  uint64_t blocks_avail = 0;
  uint64_t files = 0;
  uint64_t files_free = 0;
  uint32_t name_max = 0;
};

// One sealed version of a file (ListVersions).
struct FileVersion {
  // Stable for the life of the version; 1 is the oldest the path's file ever had (versions
  // of files replaced by a rename over this one come first).
  uint64_t number = 0;
  int64_t time_ns = 0;  // when it was sealed
  uint64_t size = 0;
  Ino data_ino = 0;       // the inode holding it: this file or one it replaced by rename
  uint64_t local = 0;     // its number among data_ino's own versions
  uint64_t sequence = 0;  // the store sequence it was sealed at
};

// A top-level entry of the trash (ListTrash).
struct TrashEntry {
  std::string name;     // its name in .kvfs/trash: "<deletion time>__<path, '/' as '__'>"
  std::string path;     // where it was, from the root, without the leading '/'
  int64_t time_ns = 0;  // when it was deleted
  Ino ino = 0;          // the trashed inode (a directory holds its trashed tree)
  uint32_t mode = 0;
  uint64_t size = 0;
};

struct SnapshotInfo {
  std::string name;
  uint64_t sequence = 0;  // the store sequence the tree is read at
  int64_t time_ns = 0;    // when it was taken
};

struct VolumeOptions {
  // ---- Chosen when the volume is created (stored in the S key); later opens keep the
  // stored values unless update_retention is set ----
  uint32_t chunk_size = 64 << 10;  // power of two, 4 KiB .. 4 MiB; fixed at creation
  Caller root_owner;               // owner of the root directory; creation only
  // Sealed versions kept per file: the newest this many, plus every version younger than
  // version_min_age_ns. 0 turns versioning off (no new versions; renames do not link).
  uint32_t version_retention = 32;
  int64_t version_min_age_ns = 0;
  // How long deleted files and trees stay in .kvfs/trash; 0: deletion is final at once.
  int64_t trash_retention_ns = 24LL * 3600 * 1'000'000'000;
  // When opening an existing volume, replace its stored retention settings by the three
  // above.
  bool update_retention = false;
  // Turn POSIX ACLs on (fs/acl.h; stored in S and never turned off again): the
  // system.posix_acl_* xattrs are kept, chmod updates them, new nodes inherit default ACLs.
  // Off, those names are refused with EOPNOTSUPP, as on a file system without ACLs.
  bool posix_acl = false;

  // ---- May change on every open ----
  size_t chunk_cache_bytes = 64 << 20;         // LRU cache of decompressed chunks
  size_t inode_cache_entries = 65536;          // cached inodes without open handles or dirty data
  size_t max_dirty_bytes_per_inode = 4 << 20;  // buffered write data before a flush
  // Buffered write data of all files together: past it, every write commits its own file's
  // buffer, so that many files written at random and kept open cannot fill the memory.
  size_t max_dirty_bytes = 256 << 20;
  // Buffered data and changed attributes of files still open are committed at least this
  // often (0: only when a limit, flush, fsync, release or close commits them). sync(2) does
  // not reach a FUSE file system: this bounds how long what the kernel wrote back can wait
  // in memory, where a crash of the daemon would lose it.
  int64_t commit_interval_ns = 1'000'000'000;
  // Seals of the same handle closer together than this rewrite its newest version instead of
  // adding one (fsync after every write must not create thousands of versions).
  int64_t seal_collapse_ns = 2'000'000'000;

  // Directory whose file system's free space Statfs reports; empty: report none free.
  std::string space_path;
  // Wall-clock time in ns since the epoch; nullptr: CLOCK_REALTIME. Tests inject a clock.
  std::function<int64_t()> clock;
  // The kv::Options::retention the store was opened with. When it came from StoreOptions(),
  // the volume binds it to itself, so that the store's own (background) compactions keep
  // file history, snapshots and trash. Otherwise only Volume::Compact() knows about them.
  std::shared_ptr<const kv::RetentionPolicy> store_retention;
};

// The bytes a Read returns: slices of shared, immutable buffers. A cached chunk goes to the
// caller (the FUSE reply's iovec) without a copy, and a hole points at shared zeros.
//
// A caller that knows where the bytes will end up (a FUSE ring entry's reply buffer) names
// it as the destination: Read then reads whole chunks that are not cached straight into it,
// destination[i] holding the byte at the read's offset + i, and their slices point there.
class ReadBuffer {
 public:
  struct Slice {
    std::shared_ptr<const std::string> owner;  // keeps `data` alive; null in the destination
    const char* data;
    size_t size;
  };

  ReadBuffer() = default;
  explicit ReadBuffer(std::span<char> destination) : destination_(destination) {}

  void Clear() {
    slices_.clear();
    size_ = 0;
  }
  // Appends owner[offset, offset + n). REQUIRES: offset + n <= owner->size().
  void Append(std::shared_ptr<const std::string> owner, size_t offset, size_t n) {
    if (n == 0) return;
    const char* data = owner->data() + offset;
    slices_.push_back({std::move(owner), data, n});
    size_ += n;
  }
  // Appends destination[offset, offset + n). REQUIRES: offset + n <= destination().size().
  void AppendFromDestination(size_t offset, size_t n) {
    if (n == 0) return;
    slices_.push_back({nullptr, destination_.data() + offset, n});
    size_ += n;
  }
  std::span<char> destination() const { return destination_; }
  const std::vector<Slice>& slices() const { return slices_; }
  size_t size() const { return size_; }
  // The bytes in one string (for callers that want them flat, such as tests).
  std::string ToString() const;

 private:
  std::span<char> destination_;
  std::vector<Slice> slices_;
  size_t size_ = 0;
};

class Volume {
 public:
  // The sharder every store holding a volume is created with (kv::Options::sharder).
  static std::shared_ptr<const kv::Sharder> Sharder();
  // Those of stores that earlier versions created, which still open (and which
  // `kvfsck reshard` moves to Sharder()).
  static std::vector<std::shared_ptr<const kv::Sharder>> EarlierSharders();
  // kv::Options with the volume's sharders and a fresh history-aware retention policy, which
  // keeps every version until a volume binds it (pass it as VolumeOptions::store_retention).
  static kv::Options StoreOptions();

  // Opens the volume in `store`, creating it (root directory, superblock) when the store
  // holds none, and reclaims files left open-but-unlinked by a process that died.
  static Errno Open(std::unique_ptr<kv::Store> store, const VolumeOptions& options,
                    std::unique_ptr<Volume>* volume);
  // Opens (or creates) the page store in `dir` with StoreOptions(), then Open() with that
  // retention policy bound.
  static Errno OpenAt(const std::string& dir, const VolumeOptions& options,
                      std::unique_ptr<Volume>* volume);

  virtual ~Volume() = default;
  Volume() = default;
  Volume(const Volume&) = delete;
  Volume& operator=(const Volume&) = delete;

  // Commits buffered data and pending atime updates, seals files written through handles
  // still open, releases them, and syncs the store. The destructor calls it when it was not
  // called; afterwards every other method fails with EIO.
  virtual Errno Close() = 0;
  // The store (for tools and tests); owned by the volume.
  virtual kv::Store* store() = 0;

  // ---- Names ----
  // "." and ".." are resolved too. ENOENT, ENOTDIR (parent), ENAMETOOLONG.
  virtual Errno Lookup(Ino parent, std::string_view name, Attr* attr) = 0;
  virtual Errno GetAttr(Ino ino, Attr* attr) = 0;
  // Size changes truncate or extend (EISDIR on a directory, EINVAL on other non-files,
  // EFBIG beyond kMaxFileSize). `attr` (may be null) receives the result.
  virtual Errno SetAttr(Ino ino, const SetAttrRequest& request, Attr* attr) = 0;
  // Regular files, fifos, sockets and devices (mode carries the type; 0 means regular).
  // A setgid parent gives its gid. EEXIST, ENOENT, ENOTDIR, ENAMETOOLONG, EINVAL (type).
  virtual Errno Mknod(Ino parent, std::string_view name, uint32_t mode, uint64_t rdev,
                      const Caller& caller, Attr* attr) = 0;
  // A setgid parent gives its gid and its setgid bit.
  virtual Errno Mkdir(Ino parent, std::string_view name, uint32_t mode, const Caller& caller,
                      Attr* attr) = 0;
  virtual Errno Symlink(Ino parent, std::string_view name, std::string_view target,
                        const Caller& caller, Attr* attr) = 0;
  // EINVAL when `ino` is not a symlink.
  virtual Errno Readlink(Ino ino, std::string* target) = 0;
  // A new name for `ino`. EPERM for directories, EEXIST, EMLINK.
  virtual Errno Link(Ino ino, Ino new_parent, std::string_view new_name, Attr* attr) = 0;
  // EISDIR for directories. A file still open stays readable until its last Release.
  virtual Errno Unlink(Ino parent, std::string_view name) = 0;
  // ENOTDIR, ENOTEMPTY, EINVAL for ".".
  virtual Errno Rmdir(Ino parent, std::string_view name) = 0;
  // flags: 0, kRenameNoReplace or kRenameExchange. Replaces a file or an empty directory;
  // EEXIST (NOREPLACE), ENOENT (EXCHANGE without target), EISDIR, ENOTDIR, ENOTEMPTY,
  // EINVAL (a directory into its own subtree, or both flags).
  virtual Errno Rename(Ino parent, std::string_view name, Ino new_parent, std::string_view new_name,
                       uint32_t flags) = 0;

  // ---- Directories ----
  // Calls `filler` for the entries of directory `dir` after `offset` (0: from the start,
  // including "." and "..") in name order; ENOTDIR, and nothing for a directory removed
  // since (an open one). There are no directory handles: an offset is a cookie derived from
  // the entry's name, the same in every listing, and resuming from one returns every entry
  // that existed throughout exactly once, however entries are added or removed meanwhile.
  // The filler runs under the volume's locks and must not call the volume (a readdirplus
  // adapter looks entries up after ReadDir returns).
  virtual Errno ReadDir(Ino dir, uint64_t offset, const DirFiller& filler) = 0;

  // ---- Files ----
  // Mknod of a regular file plus Open. O_EXCL is implied: EEXIST when the name exists.
  virtual Errno Create(Ino parent, std::string_view name, uint32_t mode, int flags,
                       const Caller& caller, Attr* attr, uint64_t* handle) = 0;
  // flags: open(2) flags; O_TRUNC truncates, O_APPEND makes writes append. EISDIR for
  // directories opened for writing.
  virtual Errno Open(Ino ino, int flags, uint64_t* handle) = 0;
  // Up to `size` bytes at `offset` (fewer only at end of file); holes read as zeros.
  virtual Errno Read(uint64_t handle, uint64_t offset, size_t size, ReadBuffer* data) = 0;
  // The same bytes, copied into one string.
  Errno Read(uint64_t handle, uint64_t offset, size_t size, std::string* data);
  // Writes all of `data` at `offset` (at the end with O_APPEND). EFBIG past kMaxFileSize.
  virtual Errno Write(uint64_t handle, uint64_t offset, std::string_view data, size_t* written) = 0;
  // Commits the file's buffered data (close(2) of one descriptor); not durable.
  virtual Errno Flush(uint64_t handle) = 0;
  // Commits, seals a version if the handle wrote, and makes the store durable.
  virtual Errno Fsync(uint64_t handle, bool datasync) = 0;
  // Last use of the handle: commits, seals a version if it wrote, and reclaims the file if
  // it was the last handle of an unlinked file.
  virtual Errno Release(uint64_t handle) = 0;
  // mode 0 extends the size; kFallocKeepSize does not; kFallocKeepSize|kFallocPunchHole
  // zeroes the range. Other modes: EOPNOTSUPP.
  virtual Errno Fallocate(uint64_t handle, int mode, uint64_t offset, uint64_t length) = 0;

  // ---- Extended attributes ----
  // flags: 0, kXattrCreate (EEXIST if present) or kXattrReplace (ENODATA if absent), and
  // kXattrAclKillSgid. ERANGE for names over 255 bytes, E2BIG for values over 64 KiB.
  virtual Errno SetXattr(Ino ino, std::string_view name, std::string_view value, int flags) = 0;
  // ENODATA when absent. The caller compares value->size() with its buffer (ERANGE).
  virtual Errno GetXattr(Ino ino, std::string_view name, std::string* value) = 0;
  // Names in byte order.
  virtual Errno ListXattr(Ino ino, std::vector<std::string>* names) = 0;
  virtual Errno RemoveXattr(Ino ino, std::string_view name) = 0;

  // ---- History, trash and snapshots (fs/README.md). The same things are reachable as
  // files under .kvfs through the methods above; these are their programmatic faces. ----
  // The retained versions of file `ino`, oldest first (empty for a file never sealed).
  virtual Errno ListVersions(Ino ino, std::vector<FileVersion>* versions) = 0;
  // Bytes of version `number` of file `ino` (as ListVersions numbers them). ENOENT if it is
  // not retained.
  virtual Errno ReadVersion(Ino ino, uint64_t number, uint64_t offset, size_t size,
                            std::string* data) = 0;
  // The top-level trash entries, oldest first. A trashed directory holds its trashed tree:
  // Lookup and ReadDir of its inode show the entries that were in it.
  virtual Errno ListTrash(std::vector<TrashEntry>* entries) = 0;
  // Puts trash entry `name` (a TrashEntry::name) back as `new_name` in `new_parent`, with its
  // tree. EEXIST if the name is taken (Rename from the .kvfs/trash directory replaces it
  // instead, as rename(2) does, unless asked not to with kRenameNoReplace).
  virtual Errno RestoreTrash(std::string_view name, Ino new_parent, std::string_view new_name) = 0;
  // Takes a read-only snapshot of the whole tree (committing buffered data first); the same
  // as Mkdir in .kvfs/snapshots. EEXIST, ENAMETOOLONG, EINVAL, ENOSPC (too many).
  virtual Errno CreateSnapshot(std::string_view name) = 0;
  // Drops a snapshot (Rmdir in .kvfs/snapshots); its versions become garbage. ENOENT.
  virtual Errno DeleteSnapshot(std::string_view name) = 0;
  virtual Errno ListSnapshots(std::vector<SnapshotInfo>* snapshots) = 0;
  // Deletes versions beyond the retention settings, purges expired trash, then compacts the
  // store with the history-aware retention policy, reclaiming the space of what was dropped.
  // `progress` (may be empty) is told the store bytes compacted so far after each page.
  virtual Errno Compact(const kv::ProgressFn& progress) = 0;
  Errno Compact() { return Compact(nullptr); }
  // The text of .kvfs/stats: "name value" lines.
  virtual std::string StatsText() = 0;

  // ---- Whole volume ----
  virtual Errno Statfs(FsStats* stats) = 0;
  virtual uint32_t chunk_size() const = 0;
  // Whether POSIX ACLs are on (VolumeOptions::posix_acl, now or when any earlier open).
  virtual bool posix_acl() const = 0;
  // With FUSE's writeback cache the kernel keeps a file's mtime and ctime across writes and
  // sends them with setattr; when `on`, Write leaves them alone, so that data arriving after
  // the kernel's times cannot overwrite them.
  virtual void SetKernelSetsWriteTimes(bool on) = 0;
  // `observer` is called, once the change is committed, with each inode whose attributes an
  // operation changed beyond the ones it was asked about: moving a tree out of the trash
  // relinks and re-dates every inode in it. A kernel caching attributes must drop those.
  // It runs under the volume's locks and must not call the volume. Set before use.
  virtual void SetSideEffectObserver(std::function<void(Ino)> observer) = 0;
};

}  // namespace fs

// VolumeImpl: the implementation of fs::Volume over kv::Store. Internal to fs/.
//
// The methods are spread over files by concern: volume.cc (open, close, statfs),
// dir_ops.cc (names), rename.cc, readdir.cc, file_ops.cc (handles), file_data.cc (chunk I/O),
// xattr_ops.cc, inode_txn.cc (one operation = one batch), history.cc (versions, pruning),
// trash.cc, snapshots.cc, meta_view.cc (the .kvfs views), retention.cc (compaction policy).
//
// Locking (fs/README.md, "Locking"):
//   ns_mu_  ->  InodeState::mu  ->  leaf locks (InodeTable, ChunkCache, handles_mu_,
//                                    DirCookies::mu)
// Operations that change names (create, link, unlink, rmdir, rename) hold ns_mu_ exclusively
// and may then hold several InodeState locks. Every other thread holds at most one
// InodeState lock at a time and never waits for ns_mu_ while holding it, so those
// acquisitions cannot deadlock in any order. Lookup and ReadDir hold ns_mu_ shared: directory
// entries only change under the exclusive lock.
#pragma once

#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <thread>
#include <unordered_map>

#include "fs/chunk_cache.h"
#include "fs/inode_table.h"
#include "fs/records.h"
#include "fs/retention.h"
#include "fs/volume.h"
#include "kv/store.h"

namespace fs {

class InodeTxn;

// What a handle of a read-only view file (a version, a file in a snapshot, .kvfs/stats)
// reads: an inode as of a store sequence, or a text made when it was opened.
struct MetaFile {
  Ino data_ino = 0;
  kv::SequenceNumber sequence = kv::kMaxSequence;
  Inode inode;  // data_ino as of `sequence`
  bool is_text = false;
  std::string text;
};

struct FileHandle {
  std::shared_ptr<InodeState> state;     // null for view files
  std::shared_ptr<const MetaFile> meta;  // view files only
  int flags = 0;
  // GUARDED_BY(state->mu):
  bool wrote_unsealed = false;  // written since its last seal
  uint64_t sealed_version = 0;  // the version this handle sealed last (0: none)
  int64_t sealed_at_ns = 0;
};

// One entry of a listing made at once (views and trashed directories).
struct ListedEntry {
  std::string name;
  Ino ino = 0;
  uint32_t type = 0;
};

// What ReadDir keeps of a directory between calls (readdir.cc): the names behind the
// offsets it gave out, and for views and trashed directories, the listing being read.
struct DirCookies {
  std::mutex mu;
  // GUARDED_BY(mu): offset -> the name it follows; offsets 1 and 2 follow "." and "..".
  std::unordered_map<uint64_t, std::string> names;
  // GUARDED_BY(mu): views and trashed directories are listed whole, in name order, by a
  // ReadDir from offset 0 (or one that finds no listing here).
  bool is_listed = false;
  std::vector<ListedEntry> listed;
};

class VolumeImpl final : public Volume {
 public:
  VolumeImpl(std::unique_ptr<kv::Store> store, const VolumeOptions& options);
  ~VolumeImpl() override;

  // Formats an empty store or loads the superblock, then reclaims orphans.
  Errno Init();

  Errno Close() override;
  kv::Store* store() override { return store_.get(); }

  Errno Lookup(Ino parent, std::string_view name, Attr* attr) override;
  Errno GetAttr(Ino ino, Attr* attr) override;
  Errno SetAttr(Ino ino, const SetAttrRequest& request, Attr* attr) override;
  Errno Mknod(Ino parent, std::string_view name, uint32_t mode, uint64_t rdev, const Caller& caller,
              Attr* attr) override;
  Errno Mkdir(Ino parent, std::string_view name, uint32_t mode, const Caller& caller,
              Attr* attr) override;
  Errno Symlink(Ino parent, std::string_view name, std::string_view target, const Caller& caller,
                Attr* attr) override;
  Errno Readlink(Ino ino, std::string* target) override;
  Errno Link(Ino ino, Ino new_parent, std::string_view new_name, Attr* attr) override;
  Errno Unlink(Ino parent, std::string_view name) override;
  Errno Rmdir(Ino parent, std::string_view name) override;
  Errno Rename(Ino parent, std::string_view name, Ino new_parent, std::string_view new_name,
               uint32_t flags) override;

  Errno ReadDir(Ino dir, uint64_t offset, const DirFiller& filler) override;

  Errno Create(Ino parent, std::string_view name, uint32_t mode, int flags, const Caller& caller,
               Attr* attr, uint64_t* handle) override;
  Errno Open(Ino ino, int flags, uint64_t* handle) override;
  using Volume::Read;
  Errno Read(uint64_t handle, uint64_t offset, size_t size, ReadBuffer* data) override;
  Errno Write(uint64_t handle, uint64_t offset, std::string_view data, size_t* written) override;
  Errno Flush(uint64_t handle) override;
  Errno Fsync(uint64_t handle, bool datasync) override;
  Errno Release(uint64_t handle) override;
  Errno Fallocate(uint64_t handle, int mode, uint64_t offset, uint64_t length) override;

  Errno SetXattr(Ino ino, std::string_view name, std::string_view value, int flags) override;
  Errno GetXattr(Ino ino, std::string_view name, std::string* value) override;
  Errno ListXattr(Ino ino, std::vector<std::string>* names) override;
  Errno RemoveXattr(Ino ino, std::string_view name) override;

  Errno ListVersions(Ino ino, std::vector<FileVersion>* versions) override;
  Errno ReadVersion(Ino ino, uint64_t number, uint64_t offset, size_t size,
                    std::string* data) override;
  Errno ListTrash(std::vector<TrashEntry>* entries) override;
  Errno RestoreTrash(std::string_view name, Ino new_parent, std::string_view new_name) override;
  Errno CreateSnapshot(std::string_view name) override;
  Errno DeleteSnapshot(std::string_view name) override;
  Errno ListSnapshots(std::vector<SnapshotInfo>* snapshots) override;
  Errno Compact(const kv::ProgressFn& progress) override;
  std::string StatsText() override;

  Errno Statfs(FsStats* stats) override;
  uint32_t chunk_size() const override { return chunk_size_; }
  bool posix_acl() const override { return posix_acl_; }
  void SetKernelSetsWriteTimes(bool on) override { kernel_sets_write_times_.store(on); }
  void SetSideEffectObserver(std::function<void(Ino)> observer) override {
    side_effect_observer_ = std::move(observer);
  }

  // ---- Internal helpers shared by the ops files and InodeTxn ----
  int64_t Now() const;
  // Commits `batch` as one kv write.
  // Writes one operation's batch. Namespace and attribute changes reach the OS before the
  // call returns (`flush`), so that they survive a crash of the daemon as they would on a
  // kernel file system; buffered file data is flushed by Release.
  Errno Commit(const kv::WriteBatch& batch, bool sync = false, bool flush = true);
  // The state of `ino`, loaded. REQUIRES: state->mu held. ENOENT if it has no inode.
  Errno LoadLocked(InodeState* state);
  // The same for callers that only read the attributes (ToAttr): an inode not loaded yet is
  // read without its data, sparing a stat the inflating of inline file bytes.
  Errno LoadHeadLocked(InodeState* state);
  // Both: reads the I value unless `state` holds what the caller needs (with `head_only`,
  // only its head).
  Errno ReadInodeLocked(InodeState* state, bool head_only);
  // Adds the I value `value` and every dirty chunk of `state` to `batch`.
  // REQUIRES: state->mu held.
  void StageInodeLocked(kv::WriteBatch* batch, const InodeState& state, const Inode& value);
  // After a batch staged by StageInodeLocked committed: `value` becomes the cached inode and
  // the dirty chunks move to the chunk cache. REQUIRES: state->mu held.
  void InodeCommittedLocked(InodeState* state, Inode value);
  // Commits the buffered data and inode of `state` if anything is uncommitted.
  // REQUIRES: state->mu held.
  Errno FlushLocked(InodeState* state);
  // FlushLocked for every inode in memory; the first error, after trying them all.
  // REQUIRES: no InodeState lock held.
  Errno FlushAll();
  // Indexes of the stored chunks of `ino` in [first, end), in order. No chunk lies at or past
  // a file's size, so `end` = its size in chunks finds them all; kAllChunks finds even those.
  Errno ListChunks(Ino ino, uint64_t first, uint64_t end, std::vector<uint64_t>* indexes) const;
  static constexpr uint64_t kAllChunks = ~uint64_t{0};
  // The chunks a file of `size` bytes spans: the `end` for ListChunks.
  uint64_t ChunksSpanned(uint64_t size) const { return (size + chunk_size_ - 1) / chunk_size_; }
  // How a file without names goes away (StageReclaim).
  enum class Reclaim {
    kArchive,  // its data goes; its V and H keys stay, as history of the file that replaced it
    kPurge,    // everything goes, its history (and that of files it replaced) too
  };
  // Adds deletes of the keys of a file that loses its data (I, C, X, and O if `was_orphan`;
  // with kPurge also its V keys and H chain) to `batch`.
  Errno StageReclaim(kv::WriteBatch* batch, const InodeState& state, Reclaim how, bool was_orphan);
  // Adds the T and W keys that put inode `ino` (value `value`, already marked trashed) in the
  // trash; a directory takes its trashed children into its tree. `place` says where it was.
  Errno StageTrash(kv::WriteBatch* batch, Ino ino, const Inode& value, PlaceRecord place);
  // Whether deleted files go to the trash, and versioning is on.
  bool trash_enabled() const { return trash_retention_ns_ > 0; }
  bool versioning() const { return version_retention_ > 0; }
  // Reads the H link of `ino`. *found false when it has none.
  Errno GetHistoryLink(Ino ino, HistoryLink* link, bool* found);
  // After a V key commit: compaction must see the new pin.
  void VersionsChanged() { retention_->Invalidate(); }
  // After a StageReclaim batch committed. REQUIRES: state->mu held.
  void ReclaimedLocked(InodeState* state);
  // Counts n more buffered bytes of state's, and drops its whole buffer (committed or
  // reclaimed): the only ways dirty_bytes changes, so that the volume's sum stays right.
  void AddDirtyBytesLocked(InodeState* state, size_t n);
  void ClearDirtyLocked(InodeState* state);
  // Sets state->inode_dirty. This and AddDirtyBytesLocked tell the committer there may be
  // something to commit.
  void MarkInodeDirtyLocked(InodeState* state);
  // Attr of a loaded inode.
  Attr ToAttr(const InodeState& state) const;
  // The attributes an inode value gives by itself (blocks from its size): ToAttr refines
  // them with the in-memory state; the views show stored inodes with them.
  Attr InodeAttr(Ino ino, const Inode& n) const;
  ChunkCache& cache() { return cache_; }
  InodeTable& inodes() { return inodes_; }

 private:
  friend class InodeTxn;

  // ---- POSIX ACLs (xattr_ops.cc, fs/acl.h) ----
  // CheckXattrName, and EOPNOTSUPP for the ACL names while ACLs are off.
  Errno CheckXattrAccess(std::string_view name) const;
  // Stages setting ACL xattr `name` of txn member `ino` to `value` (`stored`: it has one),
  // with the mode change an access ACL brings. EINVAL for a malformed ACL, EACCES for a
  // default ACL on a non-directory.
  Errno StageAclLocked(InodeTxn* txn, Ino ino, std::string_view name, std::string_view value,
                       bool stored);
  // Stages what chmod to `mode` does to txn member `ino`'s access ACL, if it has one.
  Errno StageAclChmodLocked(InodeTxn* txn, Ino ino, uint32_t mode);
  // The access and default ACL xattrs a new node of *mode gets in directory `parent`, which
  // also limit *mode; without a default ACL, the caller's umask limits *mode instead.
  Errno InheritAclsLocked(Ino parent, const Caller& caller, uint32_t* mode,
                          std::vector<std::pair<std::string_view, std::string>>* xattrs);

  // ---- Namespace helpers (dir_ops.cc) ----
  // Creates `proto` as `name` in `parent`. REQUIRES: ns_mu_ held exclusively.
  // *state receives the new inode's state (unlocked).
  Errno CreateNodeLocked(Ino parent, std::string_view name, Inode proto, const Caller& caller,
                         Attr* attr, std::shared_ptr<InodeState>* state);
  // The child named `name` in directory `parent`. ENOENT when absent.
  Errno GetDentry(Ino parent, std::string_view name, DentryValue* entry);
  // True if `dir` has no entries.
  Errno IsEmptyDir(Ino dir, bool* empty);
  // rename(2)'s rules for an entry (a directory if `src_dir`) replacing `dst`, the entry
  // `name` of `parent`: a directory only over an empty one (ENOTDIR, ENOTEMPTY), a file only
  // over a non-directory (EISDIR). *dst_path receives dst's path, for its trash record.
  // REQUIRES: ns_mu_ held exclusively and no InodeState lock held.
  Errno CheckReplace(bool src_dir, const DentryValue& dst, Ino parent, std::string_view name,
                     std::string* dst_path);
  // Whether `ino` is `ancestor` or lies below it. REQUIRES: ns_mu_ held exclusively.
  Errno IsInSubtree(Ino ino, Ino ancestor, bool* inside);
  // Reserves the next inode number; stages an S update into `batch` when a new range is
  // needed. Takes effect through InoCommitted. REQUIRES: ns_mu_ held exclusively.
  Ino ReserveIno(kv::WriteBatch* batch);
  void InoCommitted();

  // ---- File data (file_data.cc); all REQUIRE state->mu held and the inode loaded ----
 public:
  // One chunk's part of a read: the chunk's bytes from file offset `base` on (the rest of
  // the chunk within the read is a hole), or null while it must come from the store.
  struct ChunkPiece {
    uint64_t index = 0;
    uint64_t base = 0;
    std::shared_ptr<const std::string> bytes;
    bool fetched = false;  // read from the store by this read, not yet in the cache
    // Read from the store straight into the ReadBuffer's destination instead (bytes stays
    // null): the chunk's first `direct_size` bytes, at destination offset base - read offset.
    bool direct = false;
    size_t direct_size = 0;
  };
  // Plans a read of [offset, end) (within the file): one piece per chunk, from the inline
  // bytes, the write buffer or the cache. Returns how many pieces are still null.
  size_t PlanReadLocked(InodeState* state, uint64_t offset, uint64_t end,
                        std::vector<ChunkPiece>* pieces);
  Errno WriteLocked(InodeState* state, uint64_t offset, std::string_view data);
  // Stages a size change (truncate or extend) of `value` into `batch`. REQUIRES: no dirty
  // chunks. *drop_from receives the first chunk index whose cached copy must be dropped
  // after the commit.
  Errno StageResizeLocked(InodeState* state, Inode* value, uint64_t new_size, kv::WriteBatch* batch,
                          uint64_t* drop_from);
  // Stages zeroing [offset, end) of a file (hole punching). REQUIRES: no dirty chunks.
  Errno StageZeroRangeLocked(InodeState* state, Inode* value, uint64_t offset, uint64_t end,
                             kv::WriteBatch* batch, uint64_t* drop_from);
  // Commits and seals a version for a handle that wrote (or after a truncation the inode
  // owes a version). REQUIRES: h.state->mu held.
  Errno SealLocked(FileHandle* handle);
  // Deletes the versions of `head` and of the files it replaced beyond the retention
  // settings. REQUIRES: head's state->mu held (it serializes pruning of one history).
  Errno PruneHistoryLocked(Ino head);
  // PruneHistoryLocked when the newest version's number says there may be too many.
  // REQUIRES: state->mu held.
  Errno MaybePruneLocked(InodeState* state);

 private:
  // The committed bytes of one chunk (empty when absent), through the cache.
  Errno ReadCleanChunk(Ino ino, uint64_t index, std::shared_ptr<const std::string>* data);
  // The same from the store, bypassing the cache; needs no lock.
  Errno FetchChunk(Ino ino, uint64_t index, std::shared_ptr<const std::string>* data);
  // The same into buf[0, *size) (chunk_size_ bytes of room).
  Errno FetchChunkInto(Ino ino, uint64_t index, std::span<char> buf, size_t* size);
  // The bytes of [offset, end) from planned pieces; zeros where they hold none.
  void AssembleRead(uint64_t offset, uint64_t end, const std::vector<ChunkPiece>& pieces,
                    ReadBuffer* out) const;
  // Applies relatime to a read. REQUIRES: state->mu held.
  void TouchAtimeLocked(InodeState* state);

  std::shared_ptr<FileHandle> FindFile(uint64_t handle);
  uint64_t AddHandle(std::shared_ptr<FileHandle> handle);
  // Takes one open reference on a loaded, existing file. REQUIRES: state->mu held.
  Errno OpenLocked(const std::shared_ptr<InodeState>& state, int flags, uint64_t* handle);
  Errno ReleaseHandle(const std::shared_ptr<FileHandle>& handle);
  Errno ReclaimOrphans();
  // Rename after the argument checks; *replaced tells whether a target lost its name.
  // REQUIRES: ns_mu_ held exclusively.
  Errno RenameLocked(Ino parent, std::string_view name, Ino new_parent, std::string_view new_name,
                     uint32_t flags, bool* replaced);
  // Unlink and Rmdir after the checks; `to_trash` false deletes at once.
  // REQUIRES: ns_mu_ held exclusively.
  Errno UnlinkLocked(Ino parent, std::string_view name, const std::string& path, bool to_trash);
  Errno RmdirLocked(Ino parent, std::string_view name, const std::string& path, bool to_trash);
  // Adds a writable directory `parent` and its entry `name` (returned in *entry) to txn.
  Errno AddEntryLocked(InodeTxn* txn, Ino parent, std::string_view name, DentryValue* entry);
  using RemoveLockedFn = Errno (VolumeImpl::*)(Ino, std::string_view, const std::string&, bool);
  // Unlink and Rmdir under ns_mu_: into the trash, or freed at once when the disk is full.
  Errno RemoveName(Ino parent, std::string_view name, RemoveLockedFn remove);
  // SetAttr; `from_open` (O_TRUNC) leaves the version to the handle being opened.
  Errno SetAttrImpl(Ino ino, const SetAttrRequest& request, Attr* attr, bool from_open);
  // Counts an operation; false when the volume is closed.
  bool Enter() {
    ops_.fetch_add(1, std::memory_order_relaxed);
    return !closed_;
  }

  // ---- Paths (trash.cc) ----
  // The path of directory `dir` from the root ("" for the root), by its parent pointers.
  // REQUIRES: ns_mu_ held exclusively and no InodeState lock held.
  Errno DirPath(Ino dir, std::string* path);
  // DirPath(parent) + "/" + name, without the leading '/'.
  Errno EntryPath(Ino parent, std::string_view name, std::string* path);

  // ---- History (history.cc) ----
  // The versions of `ino` and of the files it replaced, oldest first. `members` (may be
  // null) receives the inodes of the chain, newest first.
  Errno LoadHistory(Ino ino, std::vector<FileVersion>* versions, std::vector<Ino>* members);
  // `ino` as of store sequence `sequence`. ENOENT if it did not exist then.
  Errno InodeAt(Ino ino, kv::SequenceNumber sequence, Inode* inode);
  // Bytes of `inode` (ino `ino` as of `sequence`), like ReadLocked but from the store at
  // that sequence.
  Errno ReadAt(Ino ino, kv::SequenceNumber sequence, const Inode& inode, uint64_t offset,
               size_t size, std::string* out);
  // The version of data inode `data_ino` whose own number is congruent to `local_low`
  // (meta_ino.h keeps only the low bits).
  Errno FindLocalVersion(Ino data_ino, uint64_t local_low, FileVersion* version);
  // Version prunes for every file, and deletes of versions nobody reaches any more.
  Errno PruneAll();

  // ---- Trash (trash.cc) ----
  struct TrashItem {
    std::string key;  // its T key (top level) or W key (member)
    std::string w_key;
    PlaceRecord place;
  };
  // The top-level entries with their display names, oldest first. With `window_ns` > 0 only
  // those deleted in [from_ns, from_ns + window_ns).
  Errno ScanTrash(int64_t from_ns, int64_t window_ns, std::vector<TrashEntry>* entries,
                  std::vector<TrashItem>* items);
  // The members of trashed directory `dir` (the newest trashed child of each name with the
  // member flag), in name order.
  Errno TrashMembers(Ino dir, std::vector<TrashItem>* members);
  Errno FindTrashMember(Ino dir, std::string_view name, TrashItem* item);
  Errno FindTrashEntry(std::string_view name, TrashItem* item);
  // One inode of a trashed tree: `parent` is its directory in the tree.
  struct TrashTreeNode {
    Ino ino = 0;
    Ino parent = 0;
    std::string name;
    std::string w_key;
    bool is_dir = false;
    int64_t parent_mtime_ns = 0;  // its directory's mtime before it was deleted
  };
  // The tree of a trash item: the item first, then its members, breadth first.
  Errno CollectTrashTree(const TrashItem& top, std::vector<TrashTreeNode>* nodes);
  // Restores a trash item (top level or member) as new_parent/new_name. An entry there is
  // EEXIST, or with `replace` replaced as by a rename (and goes to the trash in its turn).
  // REQUIRES: ns_mu_ held exclusively.
  Errno RestoreLocked(const TrashItem& item, Ino new_parent, std::string_view new_name,
                      bool replace);
  // Drops trash entries deleted before `before_ns`, with their trees and histories.
  // REQUIRES: ns_mu_ held exclusively.
  Errno PurgeTrashLocked(int64_t before_ns);
  // Purges expired trash at most once a minute. REQUIRES: ns_mu_ held exclusively.
  void MaybePurgeTrashLocked();

  // ---- Snapshots (snapshots.cc) ----
  Errno LoadSnapshots();
  // The sequence of snapshot `id`. ENOENT if it is gone.
  Errno SnapshotSequence(uint32_t id, kv::SequenceNumber* sequence);

  // ---- The .kvfs views (meta_view.cc) ----
  // The Attr of a view inode. ENOENT if it does not exist (any more).
  Errno MetaGetAttr(Ino ino, Attr* attr);
  Errno MetaLookup(Ino parent, std::string_view name, Attr* attr);
  // Every entry of view directory `ino` (or of trashed directory `ino`).
  Errno MetaList(Ino ino, std::vector<ListedEntry>* entries);
  // ReadDir over a listing made whole (MetaList) when read from offset 0.
  Errno ReadListed(Ino dir, uint64_t offset, const DirFiller& filler, Ino dot_dot);
  // The cookies of `dir`, created empty if there are none; DropCookies forgets them.
  std::shared_ptr<DirCookies> CookiesOf(Ino dir);
  void DropCookies(Ino dir);
  Errno MetaOpen(Ino ino, int flags, uint64_t* handle);
  Errno MetaRead(const MetaFile& file, uint64_t offset, size_t size, std::string* data);
  Errno MetaReadlink(Ino ino, std::string* target);
  // Whose xattrs a view shows, as of when, and how its access ACL changes on the way.
  struct ViewXattrs {
    Ino real = 0;  // 0: the view has none
    kv::ReadOptions at;
    bool acl_only = false;                          // only the access ACL
    uint16_t (*acl_perm)(uint16_t perm) = nullptr;  // maps each entry's rwx bits
  };
  Errno MetaXattrSource(Ino ino, ViewXattrs* source);
  Errno MetaGetXattr(Ino ino, std::string_view name, std::string* value);
  Errno MetaListXattr(Ino ino, std::vector<std::string>* names);
  // Attr of the history view of real inode `real`.
  Errno HistoryViewAttr(Ino real, Attr* attr);
  // Whether `ino` is a trashed directory (for ReadDir and Lookup). REQUIRES: no locks.
  Errno IsTrashedDir(Ino ino, bool* trashed);

  std::unique_ptr<kv::Store> store_;
  const VolumeOptions options_;
  std::atomic<bool> kernel_sets_write_times_{false};
  std::function<void(Ino)> side_effect_observer_;  // set before use
  uint32_t chunk_size_ = 0;
  bool posix_acl_ = false;                    // from S, set by Init
  std::shared_ptr<const std::string> zeros_;  // chunk_size_ zero bytes: what holes read as
  Superblock super_;                          // GUARDED_BY(ns_mu_ exclusive) for ino_limit
  // Retention settings, from super_ after Init.
  uint32_t version_retention_ = 0;
  int64_t version_min_age_ns_ = 0;
  int64_t trash_retention_ns_ = 0;
  // The compaction policy bound to store_ (the store's own when it came from StoreOptions).
  std::shared_ptr<HistoryRetention> retention_;
  int64_t last_purge_ns_ = 0;  // GUARDED_BY(ns_mu_ exclusive)

  std::mutex snapshots_mu_;                          // leaf
  std::map<std::string, SnapshotRecord> snapshots_;  // GUARDED_BY(snapshots_mu_)

  // Counters for .kvfs/stats.
  std::atomic<uint64_t> ops_{0};
  std::atomic<uint64_t> bytes_read_{0};
  std::atomic<uint64_t> bytes_written_{0};
  // Buffered write data of all inodes: the sum of their InodeState::dirty_bytes.
  std::atomic<size_t> dirty_bytes_{0};
  std::atomic<uint64_t> versions_sealed_{0};

  std::shared_mutex ns_mu_;
  Ino next_ino_ = 0;            // GUARDED_BY(ns_mu_ exclusive)
  uint64_t pending_limit_ = 0;  // GUARDED_BY(ns_mu_ exclusive); 0: none staged

  InodeTable inodes_;
  ChunkCache cache_;

  std::mutex handles_mu_;                                            // leaf
  uint64_t next_handle_ = 1;                                         // GUARDED_BY
  std::unordered_map<uint64_t, std::shared_ptr<FileHandle>> files_;  // GUARDED_BY
  // Directories being listed. Dropped when a listing reaches its end; idle ones also go
  // when there are more than kMaxDirCookies.
  std::unordered_map<Ino, std::shared_ptr<DirCookies>> dir_cookies_;  // GUARDED_BY

  std::atomic<bool> closed_{false};

  // The committer: FlushAll every options_.commit_interval_ns until Close.
  void CommitLoop();
  void StopCommitter();
  std::thread committer_;
  std::mutex committer_mu_;  // leaf
  std::condition_variable committer_cv_;
  bool committer_stop_ = false;  // GUARDED_BY(committer_mu_)
  // Set by changes held in memory, cleared by the committer before each FlushAll: an idle
  // volume is not scanned (a scan locks every inode in the table).
  std::atomic<bool> maybe_uncommitted_{false};
  void NoteUncommitted() {
    if (!maybe_uncommitted_.load(std::memory_order_relaxed)) maybe_uncommitted_.store(true);
  }
};

// Validates a name for creation: ENAMETOOLONG, EINVAL (empty, '/' or NUL), EEXIST ("." "..").
Errno CheckNewName(std::string_view name);
// S_IFMT bits -> an Attr-style type for dentries.
inline uint32_t FileType(uint32_t mode) { return mode & S_IFMT; }

}  // namespace fs

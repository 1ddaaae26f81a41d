// VolumeImpl: opening, formatting, closing, statfs, and the inode commit helpers shared by
// every operation.
#include <fcntl.h>
#include <malloc.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <chrono>

#include "fs/inode_txn.h"
#include "fs/keys.h"
#include "fs/sharder.h"
#include "fs/volume_impl.h"
#include "kv/env.h"

namespace fs {
namespace {
// Inode numbers are reserved in the superblock this many at a time.
constexpr uint64_t kInoReserveStep = 1024;
constexpr uint32_t kStatBlockSize = 4096;
}  // namespace

std::shared_ptr<const kv::Sharder> Volume::Sharder() {
  static const std::shared_ptr<const kv::Sharder> sharder = NewInodeSharder();
  return sharder;
}

std::vector<std::shared_ptr<const kv::Sharder>> Volume::EarlierSharders() {
  static const std::vector<std::shared_ptr<const kv::Sharder>> sharders = {NewInodeSharderV1()};
  return sharders;
}

kv::Options Volume::StoreOptions() {
  kv::Options options;
  options.sharder = Sharder();
  options.earlier_sharders = EarlierSharders();
  options.retention = std::make_shared<HistoryRetention>();
  // Lookups and stats read only an inode's head (LoadHeadLocked); with it in a stored block,
  // that read is a copy, not a Huffman decode.
  options.compression_stored_prefix = kInodeHeadBytes + 1;
  return options;
}

std::string ReadBuffer::ToString() const {
  std::string flat;
  flat.reserve(size_);
  for (const Slice& slice : slices_) flat.append(slice.data, slice.size);
  return flat;
}

Errno Volume::Read(uint64_t handle, uint64_t offset, size_t size, std::string* data) {
  ReadBuffer buffer;
  Errno err = Read(handle, offset, size, &buffer);
  *data = err.ok() ? buffer.ToString() : std::string();
  return err;
}

Errno Volume::Open(std::unique_ptr<kv::Store> store, const VolumeOptions& options,
                   std::unique_ptr<Volume>* volume) {
  uint32_t cs = options.chunk_size;
  if (cs < 4096 || cs > (4u << 20) || (cs & (cs - 1)) != 0) {
    return Errno(EINVAL, "chunk size must be a power of two from 4 KiB to 4 MiB");
  }
  auto impl = std::make_unique<VolumeImpl>(std::move(store), options);
  Errno err = impl->Init();
  if (!err.ok()) return err;
  *volume = std::move(impl);
  return Errno::OK();
}

Errno Volume::OpenAt(const std::string& dir, const VolumeOptions& options,
                     std::unique_ptr<Volume>* volume) {
  kv::Options store_options = StoreOptions();
  std::unique_ptr<kv::Store> store;
  Errno err = Errno::FromStatus(kv::OpenPageStore(store_options, dir, &store));
  if (!err.ok()) return err;
  VolumeOptions with_space = options;
  if (with_space.space_path.empty()) with_space.space_path = dir;
  with_space.store_retention = store_options.retention;
  return Open(std::move(store), with_space, volume);
}

VolumeImpl::VolumeImpl(std::unique_ptr<kv::Store> store, const VolumeOptions& options)
    : store_(std::move(store)),
      options_(options),
      inodes_(options.inode_cache_entries > 0 ? options.inode_cache_entries : 1),
      cache_(options.chunk_cache_bytes) {
  // Bind the store's own policy when it is ours, so that background compaction keeps
  // history; otherwise a private one serves Compact().
  auto ours = std::dynamic_pointer_cast<const HistoryRetention>(options.store_retention);
  retention_ =
      ours ? std::const_pointer_cast<HistoryRetention>(ours) : std::make_shared<HistoryRetention>();
}

VolumeImpl::~VolumeImpl() {
  Close().IgnoreError();
  // The store (and its compaction thread) goes with this object; the policy may outlive it.
  retention_->Unbind();
}

int64_t VolumeImpl::Now() const {
  if (options_.clock) return options_.clock();
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Errno VolumeImpl::Init() {
  std::string value;
  kv::Status s = store_->Get(kv::ReadOptions(), keys::Super(), &value);
  if (s.ok()) {
    if (!DecodeSuperblock(value, &super_)) return Errno(EIO, "corrupt fs superblock");
    if (super_.format > kSuperblockFormat) {
      return Errno(EOPNOTSUPP, "fs format " + std::to_string(super_.format) + " is newer");
    }
    chunk_size_ = super_.chunk_size;
    if (chunk_size_ < 4096 || (chunk_size_ & (chunk_size_ - 1)) != 0) {
      return Errno(EIO, "corrupt fs superblock: chunk size");
    }
    // Numbers below the limit may have been used before a crash; start past them.
    next_ino_ = super_.ino_limit;
    // ACLs, once on, stay on: files that carry them would be open to more users without.
    const bool enable_acl = options_.posix_acl && !(super_.features & Superblock::kPosixAcl);
    if (options_.update_retention || super_.format < 2 || enable_acl) {
      if (options_.update_retention) {
        super_.version_retention = options_.version_retention;
        super_.version_min_age_ns = options_.version_min_age_ns;
        super_.trash_retention_ns = options_.trash_retention_ns;
      }
      if (enable_acl) super_.features |= Superblock::kPosixAcl;
      kv::WriteBatch batch;
      batch.Put(keys::Super(), EncodeSuperblock(super_));
      Errno err = Commit(batch, /*sync=*/true);
      if (!err.ok()) return err;
    }
  } else if (s.IsNotFound()) {
    // A new volume: superblock and root directory in one batch.
    int64_t now = Now();
    super_.chunk_size = options_.chunk_size;
    if (options_.posix_acl) super_.features |= Superblock::kPosixAcl;
    super_.version_retention = options_.version_retention;
    super_.version_min_age_ns = options_.version_min_age_ns;
    super_.trash_retention_ns = options_.trash_retention_ns;
    super_.created_ns = now;
    super_.ino_limit = kRootIno + 1;
    chunk_size_ = super_.chunk_size;
    next_ino_ = kRootIno + 1;
    Inode root;
    root.mode = S_IFDIR | 0755;
    root.uid = options_.root_owner.uid;
    root.gid = options_.root_owner.gid;
    root.nlink = 2;
    root.atime_ns = root.mtime_ns = root.ctime_ns = now;
    root.parent = kRootIno;
    kv::WriteBatch batch;
    batch.Put(keys::Super(), EncodeSuperblock(super_));
    batch.Put(keys::Inode(kRootIno), EncodeInode(root));
    Errno err = Commit(batch, /*sync=*/true);
    if (!err.ok()) return err;
  } else {
    return Errno::FromStatus(s);
  }
  zeros_ = std::make_shared<const std::string>(chunk_size_, '\0');
  posix_acl_ = (super_.features & Superblock::kPosixAcl) != 0;
  version_retention_ = super_.version_retention;
  version_min_age_ns_ = std::max<int64_t>(super_.version_min_age_ns, 0);
  trash_retention_ns_ = std::max<int64_t>(super_.trash_retention_ns, 0);
  retention_->Bind(store_.get());
  Errno err = LoadSnapshots();
  if (!err.ok()) return err;
  err = ReclaimOrphans();
  if (!err.ok()) return err;
  {
    std::unique_lock ns(ns_mu_);
    err = PurgeTrashLocked(Now() - trash_retention_ns_);
    if (!err.ok()) return err;
  }
  if (options_.commit_interval_ns > 0) committer_ = std::thread([this] { CommitLoop(); });
  return Errno::OK();
}

Errno VolumeImpl::ReclaimOrphans() {
  std::vector<Ino> orphans;
  {
    std::unique_ptr<kv::Iterator> it = store_->NewIterator(kv::ReadOptions(), "O");
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      if (it->key().size() == keys::kInoEnd) orphans.push_back(keys::KeyIno(it->key()));
    }
    Errno err = Errno::FromStatus(it->status());
    if (!err.ok()) return err;
  }
  for (Ino ino : orphans) {
    InodeTxn txn(this);
    Errno err = txn.Add(ino);
    if (err.value() == ENOENT) {
      kv::WriteBatch batch;
      batch.Delete(keys::Orphan(ino));
      err = Commit(batch);
      if (!err.ok()) return err;
      continue;
    }
    if (!err.ok()) return err;
    if (txn.Get(ino).nlink > 0) {
      txn.batch()->Delete(keys::Orphan(ino));  // linked again: only the record is stale
    } else {
      err = txn.ReclaimOrphan(ino);
    }
    if (err.ok()) err = txn.Commit();
    if (!err.ok()) return err;
  }
  return Errno::OK();
}

Errno VolumeImpl::Close() {
  if (closed_.exchange(true)) return Errno::OK();
  StopCommitter();
  Errno first;
  // Handles still open are released as if their process closed them.
  std::vector<std::shared_ptr<FileHandle>> files;
  {
    std::lock_guard lock(handles_mu_);
    for (auto& [id, h] : files_) files.push_back(h);
    files_.clear();
    dir_cookies_.clear();
  }
  for (auto& h : files) {
    Errno err = ReleaseHandle(h);
    if (first.ok() && !err.ok()) first = err;
  }
  Errno err = FlushAll();
  if (first.ok() && !err.ok()) first = err;
  err = Errno::FromStatus(store_->Sync());
  if (first.ok() && !err.ok()) first = err;
  return first;
}

Errno VolumeImpl::FlushAll() {
  Errno first;
  for (auto& state : inodes_.All()) {
    std::lock_guard lock(state->mu);
    if (!state->loaded || !state->exists) continue;
    Errno err = FlushLocked(state.get());
    if (first.ok() && !err.ok()) first = err;
  }
  return first;
}

void VolumeImpl::CommitLoop() {
  const auto interval = std::chrono::nanoseconds(options_.commit_interval_ns);
  uint64_t ops_seen = ops_.load();
  bool trimmed = true;
  std::unique_lock lock(committer_mu_);
  while (!committer_cv_.wait_for(lock, interval, [&] { return committer_stop_; })) {
    // Chunks come and go through the cache in every thread's malloc arena, and glibc keeps
    // what they free: after 1 GiB written and 5 s of random writes the daemon held 266 MiB
    // of anonymous memory for 97 MiB in use. The first interval without operations gives
    // the free pages back.
    const uint64_t ops = ops_.load();
    const bool idle = ops == ops_seen;
    const bool trim = idle && !trimmed;
    ops_seen = ops;
    trimmed = idle;
    const bool flush = maybe_uncommitted_.exchange(false);
    if (!flush && !trim) continue;
    lock.unlock();
    // A failure (a full disk) leaves the buffers as they were, to be tried again; the file's
    // next flush, fsync or close reports it.
    if (flush && !FlushAll().ok()) NoteUncommitted();
    if (trim) malloc_trim(0);
    lock.lock();
  }
}

void VolumeImpl::StopCommitter() {
  if (!committer_.joinable()) return;
  {
    std::lock_guard lock(committer_mu_);
    committer_stop_ = true;
  }
  committer_cv_.notify_all();
  committer_.join();
}

Errno VolumeImpl::Compact(const kv::ProgressFn& progress) {
  if (!Enter()) return Errno(EIO, "volume closed");
  {
    std::unique_lock ns(ns_mu_);
    Errno err = PurgeTrashLocked(Now() - trash_retention_ns_);
    if (!err.ok()) return err;
  }
  Errno err = PruneAll();
  if (!err.ok()) return err;
  // Buffered data first, so that the compacted files hold it.
  err = FlushAll();
  if (!err.ok()) return err;
  // Page by page, so that a caller can show progress.
  std::vector<kv::ShardStats> shards = store_->Stats().shards;
  uint64_t total = 0;
  uint64_t done = 0;
  for (const kv::ShardStats& shard : shards) total += shard.file_bytes;
  kv::CompactOptions options;
  options.retention = retention_;
  for (size_t i = 0; i < shards.size(); ++i) {
    options.shard = static_cast<int>(i);
    err = Errno::FromStatus(store_->Compact(options));
    if (!err.ok()) return err;
    done += shards[i].file_bytes;
    if (progress) progress(done, total);
  }
  return Errno::OK();
}

Errno VolumeImpl::Commit(const kv::WriteBatch& batch, bool sync, bool flush) {
  kv::WriteOptions options;
  options.sync = sync;
  options.flush = flush;
  return Errno::FromStatus(store_->Write(options, batch));
}

Errno VolumeImpl::LoadLocked(InodeState* state) { return ReadInodeLocked(state, false); }

Errno VolumeImpl::LoadHeadLocked(InodeState* state) { return ReadInodeLocked(state, true); }

Errno VolumeImpl::ReadInodeLocked(InodeState* state, bool head_only) {
  if (!state->loaded || (state->head_only && !head_only)) {
    kv::ReadOptions options;
    // One byte past the head says whether data follows it.
    if (head_only) options.value_prefix = kInodeHeadBytes + 1;
    std::string value;
    kv::Status s = store_->Get(options, keys::Inode(state->ino), &value);
    if (s.IsNotFound() && !state->loaded) {
      state->exists = false;
      state->loaded = true;
      return Errno(ENOENT);
    }
    if (!s.ok()) return Errno::FromStatus(s);
    Inode stored;
    if (!(head_only ? DecodeInodeHead(value, &stored) : DecodeInode(value, &stored))) {
      return Errno(EIO, "corrupt inode " + std::to_string(state->ino));
    }
    if (state->loaded) {
      // The data joins a head-only state: its attributes are already the inode's.
      state->inode.data = std::move(stored.data);
    } else {
      state->inode = std::move(stored);
      state->exists = true;
      state->loaded = true;
    }
    state->head_only = head_only && value.size() > kInodeHeadBytes;
  }
  return state->exists ? Errno::OK() : Errno(ENOENT);
}

void VolumeImpl::StageInodeLocked(kv::WriteBatch* batch, const InodeState& state,
                                  const Inode& value) {
  for (auto& [index, bytes] : state.dirty) batch->Put(keys::Chunk(state.ino, index), bytes);
  batch->Put(keys::Inode(state.ino), EncodeInode(value));
}

void VolumeImpl::InodeCommittedLocked(InodeState* state, Inode value) {
  state->inode = std::move(value);
  state->head_only = false;
  state->inode_dirty = false;
  ++state->data_generation;
  for (auto& [index, bytes] : state->dirty) {
    cache_.Insert(state->ino, index, std::make_shared<const std::string>(std::move(bytes)));
  }
  ClearDirtyLocked(state);
  state->stored_chunks = -1;  // chunks may have been added or removed
}

Errno VolumeImpl::FlushLocked(InodeState* state) {
  if (!state->has_uncommitted()) return Errno::OK();
  kv::WriteBatch batch;
  StageInodeLocked(&batch, *state, state->inode);
  // Buffered file data may sit in the store's write buffer; Release flushes it.
  Errno err = Commit(batch, /*sync=*/false, /*flush=*/false);
  if (!err.ok()) return err;
  InodeCommittedLocked(state, state->inode);
  return Errno::OK();
}

Errno VolumeImpl::ListChunks(Ino ino, uint64_t first, uint64_t end,
                             std::vector<uint64_t>* indexes) const {
  indexes->clear();
  if (first >= end) return Errno::OK();
  kv::ReadOptions options;
  options.keys_only = true;
  // A few chunks (the whole of most files past the inline limit) are probed key by key in
  // the store's index: cheaper than an iterator's setup and seek.
  constexpr uint64_t kProbeLimit = 4;
  if (end - first <= kProbeLimit) {
    std::string unused;
    for (uint64_t index = first; index < end; ++index) {
      kv::Status s = store_->Get(options, keys::Chunk(ino, index), &unused);
      if (s.ok()) {
        indexes->push_back(index);
      } else if (!s.IsNotFound()) {
        return Errno::FromStatus(s);
      }
    }
    return Errno::OK();
  }
  // A stripe's chunks share a page: a range of a few stripes is scanned stripe by stripe,
  // one page each, rather than with one scan merging every data page (a stat of a chunked
  // file counts its chunks this way).
  constexpr uint64_t kStripeScanLimit = 8;
  const uint64_t first_stripe = first / keys::kStripeChunks;
  const uint64_t last_stripe = (end - 1) / keys::kStripeChunks;
  const bool by_stripe = end != kAllChunks && last_stripe - first_stripe < kStripeScanLimit;
  for (uint64_t stripe = first_stripe; stripe <= last_stripe; ++stripe) {
    const std::string prefix =
        by_stripe ? keys::ChunkStripe(ino, stripe) : keys::InoKey(keys::kChunk, ino);
    std::unique_ptr<kv::Iterator> it = store_->NewIterator(options, prefix);
    for (it->Seek(keys::Chunk(ino, first)); it->Valid(); it->Next()) {
      if (it->key().size() != keys::kChunkKeySize) continue;
      const uint64_t index = keys::ChunkIndex(it->key());
      if (index >= end) break;
      indexes->push_back(index);
    }
    if (!it->status().ok()) return Errno::FromStatus(it->status());
    if (!by_stripe) break;
  }
  return Errno::OK();
}

Errno VolumeImpl::StageReclaim(kv::WriteBatch* batch, const InodeState& state, Reclaim how,
                               bool was_orphan) {
  Ino ino = state.ino;
  std::vector<uint64_t> chunks;
  // Every chunk, even one a damaged store holds past the size.
  Errno err = ListChunks(ino, 0, kAllChunks, &chunks);
  if (!err.ok()) return err;
  for (uint64_t index : chunks) batch->Delete(keys::Chunk(ino, index));
  std::unique_ptr<kv::Iterator> it =
      store_->NewIterator(kv::ReadOptions(), keys::InoKey(keys::kXattr, ino));
  for (it->SeekToFirst(); it->Valid(); it->Next()) batch->Delete(it->key());
  err = Errno::FromStatus(it->status());
  if (!err.ok()) return err;
  batch->Delete(keys::Inode(ino));
  if (was_orphan) batch->Delete(keys::Orphan(ino));
  if (how == Reclaim::kArchive) return Errno::OK();
  // The history goes too: this file's versions and those of the files it replaced.
  std::vector<FileVersion> versions;
  std::vector<Ino> members;
  err = LoadHistory(ino, &versions, &members);
  if (!err.ok()) return err;
  for (const FileVersion& v : versions) batch->Delete(keys::Version(v.data_ino, v.local));
  for (Ino m : members) batch->Delete(keys::History(m));
  return Errno::OK();
}

void VolumeImpl::ReclaimedLocked(InodeState* state) {
  state->exists = false;
  state->loaded = true;
  state->head_only = false;
  // The attributes stay (without data) for the kernel, which may still write back the
  // times of the file it had open (SetAttr).
  state->inode.nlink = 0;
  state->inode.data.clear();
  state->inode.data.shrink_to_fit();
  state->inode_dirty = false;
  ClearDirtyLocked(state);
  ++state->data_generation;
  cache_.EraseFrom(state->ino, 0);
}

void VolumeImpl::AddDirtyBytesLocked(InodeState* state, size_t n) {
  state->dirty_bytes += n;
  dirty_bytes_.fetch_add(n, std::memory_order_relaxed);
  NoteUncommitted();
}

void VolumeImpl::MarkInodeDirtyLocked(InodeState* state) {
  state->inode_dirty = true;
  NoteUncommitted();
}

void VolumeImpl::ClearDirtyLocked(InodeState* state) {
  dirty_bytes_.fetch_sub(state->dirty_bytes, std::memory_order_relaxed);
  state->dirty.clear();
  state->dirty_bytes = 0;
}

Attr VolumeImpl::InodeAttr(Ino ino, const Inode& n) const {
  Attr a;
  a.ino = ino;
  a.mode = n.mode;
  a.nlink = n.nlink;
  a.uid = n.uid;
  a.gid = n.gid;
  a.rdev = n.rdev;
  a.size = n.size;
  a.blocks = (n.size + 511) / 512;
  a.blksize = chunk_size_;
  a.atime_ns = n.atime_ns;
  a.mtime_ns = n.mtime_ns;
  a.ctime_ns = n.ctime_ns;
  a.version = n.version;
  return a;
}

Attr VolumeImpl::ToAttr(const InodeState& state) const {
  const Inode& n = state.inode;
  Attr a = InodeAttr(state.ino, n);
  // A trashed file has no name, but is shown in the trash as if linked once.
  if (n.trashed && a.nlink == 0) a.nlink = n.is_dir() ? 2 : 1;
  if (n.is_reg() && !n.inline_data) {
    // Holes take no space: count the stored chunks (keys only, from the index), plus the
    // buffered ones, each at most a chunk and all together at most the size.
    if (state.stored_chunks < 0) {
      std::vector<uint64_t> chunks;
      if (ListChunks(state.ino, 0, ChunksSpanned(n.size), &chunks).ok()) {
        state.stored_chunks = static_cast<int64_t>(chunks.size());
      }
    }
    const uint64_t chunks =
        static_cast<uint64_t>(std::max<int64_t>(state.stored_chunks, 0)) + state.dirty.size();
    a.blocks = (std::min(n.size, chunks * chunk_size_) + 511) / 512;
  }
  return a;
}

Errno VolumeImpl::Statfs(FsStats* stats) {
  if (!Enter()) return Errno(EIO, "volume closed");
  kv::ShardStats total = store_->Stats().Total();
  uint64_t free_bytes = 0;
  if (!options_.space_path.empty()) {
    Errno err = Errno::FromStatus(kv::Env::Default()->FreeSpace(options_.space_path, &free_bytes));
    if (!err.ok()) return err;
  }
  uint64_t used = total.file_bytes > 0 ? total.file_bytes : total.live_bytes;
  stats->block_size = kStatBlockSize;
  stats->blocks_free = free_bytes / kStatBlockSize;
  stats->blocks_avail = stats->blocks_free;
  stats->blocks = (used + kStatBlockSize - 1) / kStatBlockSize + stats->blocks_free;
  // Every inode is one I key among the live keys; the store can hold as many more as the
  // free space allows, roughly one per block.
  stats->files = total.live_keys + stats->blocks_free;
  stats->files_free = stats->blocks_free;
  stats->name_max = kNameMax;
  return Errno::OK();
}

}  // namespace fs

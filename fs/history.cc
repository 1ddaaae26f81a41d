// File history: listing and reading sealed versions (each is the file's I and C keys read
// at the sequence of its V key), the H chain that carries a file's history over a rename that
// replaced it, and pruning to the retention settings.
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>
#include <unordered_set>

#include "fs/keys.h"
#include "fs/meta_ino.h"
#include "fs/volume_impl.h"

namespace fs {
namespace {
// A chain longer than this is corrupt (retention keeps it far shorter).
constexpr int kMaxChain = 1 << 20;
}  // namespace

Errno VolumeImpl::GetHistoryLink(Ino ino, HistoryLink* link, bool* found) {
  std::string value;
  kv::Status s = store_->Get(kv::ReadOptions(), keys::History(ino), &value);
  *found = false;
  if (s.IsNotFound()) return Errno::OK();
  if (!s.ok()) return Errno::FromStatus(s);
  if (!DecodeHistoryLink(value, link)) return Errno(EIO, "corrupt history link");
  *found = true;
  return Errno::OK();
}

Errno VolumeImpl::LoadHistory(Ino ino, std::vector<FileVersion>* versions,
                              std::vector<Ino>* members) {
  versions->clear();
  if (members) members->clear();
  std::unordered_set<Ino> seen;
  Ino cur = ino;
  for (int depth = 0; depth < kMaxChain; ++depth) {
    if (!seen.insert(cur).second) break;  // a cycle (corrupt): stop rather than loop
    if (members) members->push_back(cur);
    HistoryLink link;
    bool linked = false;
    Errno err = GetHistoryLink(cur, &link, &linked);
    if (!err.ok()) return err;
    const uint64_t base = linked ? link.base : 0;
    const std::string prefix = keys::InoKey(keys::kVersion, cur);
    std::unique_ptr<kv::Iterator> it = store_->NewIterator(kv::ReadOptions(), prefix);
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      if (it->key().size() != prefix.size() + 8) continue;
      VersionRecord record;
      if (!DecodeVersion(it->value(), &record)) return Errno(EIO, "corrupt version record");
      FileVersion v;
      v.local = DecodeBE64(it->key().data() + prefix.size());
      v.number = base + v.local;
      v.time_ns = record.time_ns;
      v.size = record.size;
      v.data_ino = cur;
      v.sequence = it->sequence();
      versions->push_back(v);
    }
    err = Errno::FromStatus(it->status());
    if (!err.ok()) return err;
    if (!linked || link.prev == 0) break;  // prev 0: the older part was pruned
    cur = link.prev;
  }
  std::sort(versions->begin(), versions->end(),
            [](const FileVersion& a, const FileVersion& b) { return a.number < b.number; });
  return Errno::OK();
}

Errno VolumeImpl::InodeAt(Ino ino, kv::SequenceNumber sequence, Inode* inode) {
  kv::ReadOptions at;
  at.sequence = sequence;
  std::string value;
  kv::Status s = store_->Get(at, keys::Inode(ino), &value);
  if (!s.ok()) return Errno::FromStatus(s);
  if (!DecodeInode(value, inode)) return Errno(EIO, "corrupt inode " + std::to_string(ino));
  return Errno::OK();
}

Errno VolumeImpl::ReadAt(Ino ino, kv::SequenceNumber sequence, const Inode& n, uint64_t offset,
                         size_t size, std::string* out) {
  out->clear();
  if (offset >= n.size || size == 0) return Errno::OK();
  const uint64_t len = std::min<uint64_t>(size, n.size - offset);
  if (n.inline_data) {
    out->assign(n.data, offset, len);
    return Errno::OK();
  }
  out->assign(len, '\0');
  kv::ReadOptions at;
  at.sequence = sequence;
  const uint64_t end = offset + len;
  std::string bytes;
  for (uint64_t index = offset / chunk_size_; index * chunk_size_ < end; ++index) {
    const uint64_t start = index * chunk_size_;
    kv::Status s = store_->Get(at, keys::Chunk(ino, index), &bytes);
    if (s.IsNotFound()) continue;  // a hole
    if (!s.ok()) return Errno::FromStatus(s);
    uint64_t from = std::max(offset, start);
    uint64_t to = std::min<uint64_t>(end, start + bytes.size());
    if (from < to) {
      std::memcpy(out->data() + (from - offset), bytes.data() + (from - start), to - from);
    }
  }
  return Errno::OK();
}

Errno VolumeImpl::FindLocalVersion(Ino data_ino, uint64_t local_low, FileVersion* version) {
  const std::string prefix = keys::InoKey(keys::kVersion, data_ino);
  std::unique_ptr<kv::Iterator> it = store_->NewIterator(kv::ReadOptions(), prefix);
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    if (it->key().size() != prefix.size() + 8) continue;
    const uint64_t local = DecodeBE64(it->key().data() + prefix.size());
    if ((local & meta::kVersionLocalMask) != local_low) continue;
    VersionRecord record;
    if (!DecodeVersion(it->value(), &record)) return Errno(EIO, "corrupt version record");
    version->local = local;
    version->number = local;  // callers that show it add the chain's base
    version->time_ns = record.time_ns;
    version->size = record.size;
    version->data_ino = data_ino;
    version->sequence = it->sequence();
    return Errno::OK();
  }
  Errno err = Errno::FromStatus(it->status());
  return err.ok() ? Errno(ENOENT) : err;
}

Errno VolumeImpl::ListVersions(Ino ino, std::vector<FileVersion>* versions) {
  if (!Enter()) return Errno(EIO, "volume closed");
  if (IsMetaIno(ino)) return Errno(EINVAL);
  {
    std::shared_ptr<InodeState> state = inodes_.Get(ino);
    std::lock_guard lock(state->mu);
    Errno err = LoadLocked(state.get());
    if (!err.ok()) return err;
  }
  return LoadHistory(ino, versions, nullptr);
}

Errno VolumeImpl::ReadVersion(Ino ino, uint64_t number, uint64_t offset, size_t size,
                              std::string* data) {
  std::vector<FileVersion> versions;
  Errno err = ListVersions(ino, &versions);
  if (!err.ok()) return err;
  for (const FileVersion& v : versions) {
    if (v.number != number) continue;
    Inode inode;
    err = InodeAt(v.data_ino, v.sequence, &inode);
    if (err.value() == ENOENT) return Errno(EIO, "version without its inode");
    if (!err.ok()) return err;
    err = ReadAt(v.data_ino, v.sequence, inode, offset, size, data);
    if (err.ok()) bytes_read_.fetch_add(data->size(), std::memory_order_relaxed);
    return err;
  }
  return Errno(ENOENT);
}

Errno VolumeImpl::PruneHistoryLocked(Ino head) {
  if (!versioning()) return Errno::OK();
  std::vector<FileVersion> versions;
  std::vector<Ino> members;
  Errno err = LoadHistory(head, &versions, &members);
  if (!err.ok()) return err;
  if (versions.size() <= version_retention_) return Errno::OK();
  const int64_t now = Now();
  kv::WriteBatch batch;
  std::set<Ino> still_used;
  const size_t droppable = versions.size() - version_retention_;
  for (size_t i = 0; i < versions.size(); ++i) {
    const FileVersion& v = versions[i];
    if (i < droppable && now - v.time_ns >= version_min_age_ns_) {
      batch.Delete(keys::Version(v.data_ino, v.local));
    } else {
      still_used.insert(v.data_ino);
    }
  }
  // Members older than the oldest one still holding a version are gone from the history:
  // drop their links, and end the chain at that one (its link keeps only its base, so that
  // its versions keep their numbers). members: newest first.
  size_t last_used = 0;
  for (size_t i = 0; i < members.size(); ++i) {
    if (still_used.count(members[i])) last_used = i;
  }
  if (last_used + 1 < members.size()) {
    HistoryLink link;
    bool linked = false;
    err = GetHistoryLink(members[last_used], &link, &linked);
    if (!err.ok()) return err;
    if (linked) {
      link.prev = 0;
      batch.Put(keys::History(members[last_used]), EncodeHistoryLink(link));
    }
  }
  for (size_t i = last_used + 1; i < members.size(); ++i) {
    batch.Delete(keys::History(members[i]));
  }
  if (batch.empty()) return Errno::OK();
  return Commit(batch);
}

Errno VolumeImpl::PruneAll() {
  // Renames (which link histories) wait, so that the chains below stay as they are.
  std::unique_lock ns(ns_mu_);
  // Every inode that holds V keys or has an H link.
  std::set<Ino> candidates;
  for (char tag : {keys::kVersion, keys::kHistory}) {
    std::unique_ptr<kv::Iterator> it = store_->NewIterator(kv::ReadOptions(), std::string(1, tag));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      if (it->key().size() < keys::kInoEnd) continue;
      Ino ino = keys::KeyIno(it->key());
      candidates.insert(ino);
    }
    Errno err = Errno::FromStatus(it->status());
    if (!err.ok()) return err;
  }
  // Files that exist (named, trashed or open) head a history; the files they replaced are
  // its members. V keys of an inode that is neither belong to no one.
  std::unordered_set<Ino> reached;
  for (Ino ino : candidates) {
    std::string value;
    kv::Status s = store_->Get(kv::ReadOptions(), keys::Inode(ino), &value);
    if (s.IsNotFound()) continue;
    if (!s.ok()) return Errno::FromStatus(s);
    std::shared_ptr<InodeState> state = inodes_.Get(ino);
    std::lock_guard lock(state->mu);
    Errno err = PruneHistoryLocked(ino);
    if (!err.ok()) return err;
    std::vector<FileVersion> versions;
    std::vector<Ino> members;
    err = LoadHistory(ino, &versions, &members);
    if (!err.ok()) return err;
    reached.insert(members.begin(), members.end());
  }
  kv::WriteBatch batch;
  for (Ino ino : candidates) {
    if (reached.count(ino)) continue;
    std::unique_ptr<kv::Iterator> it =
        store_->NewIterator(kv::ReadOptions(), keys::InoKey(keys::kVersion, ino));
    for (it->SeekToFirst(); it->Valid(); it->Next()) batch.Delete(it->key());
    Errno err = Errno::FromStatus(it->status());
    if (!err.ok()) return err;
    batch.Delete(keys::History(ino));
  }
  if (batch.empty()) return Errno::OK();
  return Commit(batch);
}

}  // namespace fs

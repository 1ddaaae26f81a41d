// File data over chunks: reads through the write buffer and the chunk cache, buffered
// writes, truncation and hole punching. Every function here REQUIRES state->mu held and the
// inode loaded.
//
// Invariant: no stored or buffered chunk holds bytes at or past the file size, so extending
// a file (truncate up, a write past the end) exposes zeros without touching chunks.
#include <algorithm>
#include <cerrno>
#include <cstring>

#include "fs/keys.h"
#include "fs/volume_impl.h"

namespace fs {
namespace {
constexpr int64_t kRelatimeWindowNs = 24LL * 3600 * 1'000'000'000;
}  // namespace

Errno VolumeImpl::FetchChunk(Ino ino, uint64_t index, std::shared_ptr<const std::string>* data) {
  std::string value;
  kv::Status s = store_->Get(kv::ReadOptions(), keys::Chunk(ino, index), &value);
  if (!s.ok() && !s.IsNotFound()) return Errno::FromStatus(s);
  *data = std::make_shared<const std::string>(std::move(value));
  return Errno::OK();
}

Errno VolumeImpl::FetchChunkInto(Ino ino, uint64_t index, std::span<char> buf, size_t* size) {
  kv::Status s = store_->GetInto(kv::ReadOptions(), keys::Chunk(ino, index), buf, size);
  if (s.IsNotFound()) *size = 0;
  if (s.IsInvalidArgument()) return Errno(EIO, "chunk larger than the chunk size");
  if (!s.ok() && !s.IsNotFound()) return Errno::FromStatus(s);
  return Errno::OK();
}

Errno VolumeImpl::ReadCleanChunk(Ino ino, uint64_t index,
                                 std::shared_ptr<const std::string>* data) {
  *data = cache_.Lookup(ino, index);
  if (*data) return Errno::OK();
  Errno err = FetchChunk(ino, index, data);
  if (err.ok()) cache_.Insert(ino, index, *data);
  return err;
}

size_t VolumeImpl::PlanReadLocked(InodeState* state, uint64_t offset, uint64_t end,
                                  std::vector<ChunkPiece>* pieces) {
  const Inode& n = state->inode;
  pieces->clear();
  if (n.inline_data) {
    // Inline bytes lie within chunk 0 (kInlineMax < any chunk size).
    pieces->push_back(
        {0, offset, std::make_shared<const std::string>(n.data, offset, end - offset)});
    return 0;
  }
  size_t missing = 0;
  for (uint64_t index = offset / chunk_size_; index * chunk_size_ < end; ++index) {
    const uint64_t start = index * chunk_size_;
    ChunkPiece& piece = pieces->emplace_back(ChunkPiece{index, start, nullptr});
    auto d = state->dirty.find(index);
    if (d != state->dirty.end()) {
      // Buffered bytes change under later writes: copy the part this read needs.
      const uint64_t from = std::max(offset, start);
      const uint64_t to = std::min<uint64_t>(end, start + d->second.size());
      piece.base = from;
      piece.bytes = std::make_shared<const std::string>(
          from < to ? std::string_view(d->second).substr(from - start, to - from) : "");
      continue;
    }
    piece.bytes = cache_.Lookup(state->ino, index);
    if (!piece.bytes) ++missing;
  }
  return missing;
}

void VolumeImpl::AssembleRead(uint64_t offset, uint64_t end, const std::vector<ChunkPiece>& pieces,
                              ReadBuffer* out) const {
  out->Clear();
  for (const ChunkPiece& piece : pieces) {
    const uint64_t start = piece.index * chunk_size_;
    uint64_t from = std::max(offset, start);  // piece.base <= from
    const uint64_t to = std::min<uint64_t>(end, start + chunk_size_);
    const size_t size = piece.direct ? piece.direct_size : piece.bytes->size();
    const uint64_t data_end = std::min<uint64_t>(to, piece.base + size);
    if (from < data_end) {
      if (piece.direct) {
        out->AppendFromDestination(from - offset, data_end - from);
      } else {
        out->Append(piece.bytes, from - piece.base, data_end - from);
      }
      from = data_end;
    }
    if (from < to) out->Append(zeros_, 0, to - from);
  }
}

void VolumeImpl::TouchAtimeLocked(InodeState* state) {
  Inode& n = state->inode;
  int64_t now = Now();
  if (n.atime_ns <= n.mtime_ns || n.atime_ns <= n.ctime_ns ||
      now - n.atime_ns >= kRelatimeWindowNs) {
    // Committed with the inode's next write (at the latest on last Release or Close), never
    // as a write of its own per read.
    n.atime_ns = now;
    MarkInodeDirtyLocked(state);
  }
}

Errno VolumeImpl::WriteLocked(InodeState* state, uint64_t offset, std::string_view data) {
  Inode& n = state->inode;
  if (data.empty()) return Errno::OK();
  if (offset > kMaxFileSize || data.size() > kMaxFileSize - offset) return Errno(EFBIG);
  ++state->data_generation;
  const uint64_t end = offset + data.size();
  if (n.inline_data) {
    if (end <= kInlineMax) {
      if (n.data.size() < end) n.data.resize(end, '\0');
      n.data.replace(offset, data.size(), data);
      n.size = n.data.size();
      if (!kernel_sets_write_times_.load()) n.mtime_ns = n.ctime_ns = Now();
      MarkInodeDirtyLocked(state);
      return Errno::OK();
    }
    // Outgrows the inode: its bytes become chunk 0 (kInlineMax < any chunk size).
    if (!n.data.empty()) {
      AddDirtyBytesLocked(state, n.data.size());
      state->dirty[0] = std::move(n.data);
    }
    n.data.clear();
    n.inline_data = false;
  }
  for (uint64_t index = offset / chunk_size_; index * chunk_size_ < end; ++index) {
    const uint64_t start = index * chunk_size_;
    const uint64_t a = std::max(offset, start) - start;  // range within the chunk
    const uint64_t b = std::min(end, start + chunk_size_) - start;
    auto d = state->dirty.find(index);
    if (d == state->dirty.end()) {
      std::string bytes;
      // A write that covers the whole chunk need not read it; nor one past the end of file.
      if ((a != 0 || b != chunk_size_) && start < n.size) {
        std::shared_ptr<const std::string> clean;
        Errno err = ReadCleanChunk(state->ino, index, &clean);
        if (!err.ok()) return err;
        bytes = *clean;
      }
      AddDirtyBytesLocked(state, bytes.size());
      d = state->dirty.emplace(index, std::move(bytes)).first;
    }
    std::string& chunk = d->second;
    if (chunk.size() < b) {
      AddDirtyBytesLocked(state, b - chunk.size());
      chunk.resize(b, '\0');
    }
    std::memcpy(chunk.data() + a, data.data() + (start + a - offset), b - a);
  }
  n.size = std::max(n.size, end);
  if (!kernel_sets_write_times_.load()) n.mtime_ns = n.ctime_ns = Now();
  MarkInodeDirtyLocked(state);
  return Errno::OK();
}

Errno VolumeImpl::StageResizeLocked(InodeState* state, Inode* value, uint64_t new_size,
                                    kv::WriteBatch* batch, uint64_t* drop_from) {
  const Ino ino = state->ino;
  *drop_from = ~uint64_t{0};
  if (value->inline_data) {
    if (new_size <= kInlineMax) {
      value->data.resize(new_size, '\0');
    } else {
      if (!value->data.empty()) batch->Put(keys::Chunk(ino, 0), value->data);
      value->data.clear();
      value->inline_data = false;
      *drop_from = 0;
    }
  } else if (new_size < value->size) {
    const uint64_t cut = (new_size + chunk_size_ - 1) / chunk_size_;  // first chunk to go
    std::vector<uint64_t> doomed;
    Errno err = ListChunks(ino, cut, ChunksSpanned(value->size), &doomed);
    if (!err.ok()) return err;
    for (uint64_t index : doomed) batch->Delete(keys::Chunk(ino, index));
    *drop_from = cut;
    if (new_size == 0) {
      // An emptied file starts over inline.
      value->inline_data = true;
      value->data.clear();
    } else if (new_size % chunk_size_ != 0) {
      const uint64_t last = new_size / chunk_size_;
      std::shared_ptr<const std::string> clean;
      err = ReadCleanChunk(ino, last, &clean);
      if (!err.ok()) return err;
      const uint64_t keep = new_size % chunk_size_;
      if (clean->size() > keep) batch->Put(keys::Chunk(ino, last), clean->substr(0, keep));
      *drop_from = last;
    }
  }
  value->size = new_size;
  return Errno::OK();
}

Errno VolumeImpl::StageZeroRangeLocked(InodeState* state, Inode* value, uint64_t offset,
                                       uint64_t end, kv::WriteBatch* batch, uint64_t* drop_from) {
  const Ino ino = state->ino;
  *drop_from = ~uint64_t{0};
  end = std::min(end, value->size);
  if (offset >= end) return Errno::OK();
  if (value->inline_data) {
    std::fill(value->data.begin() + offset, value->data.begin() + end, '\0');
    return Errno::OK();
  }
  *drop_from = offset / chunk_size_;
  // Whole chunks inside the range are deleted (they read as zeros); the partly covered
  // chunks at either end are rewritten with the covered bytes zeroed.
  const uint64_t first_whole = (offset + chunk_size_ - 1) / chunk_size_;
  const uint64_t end_whole = end / chunk_size_;
  std::vector<uint64_t> stored;
  Errno err = ListChunks(ino, offset / chunk_size_, ChunksSpanned(end), &stored);
  if (!err.ok()) return err;
  for (uint64_t index : stored) {
    if (index * chunk_size_ >= end) break;
    if (index >= first_whole && index < end_whole) {
      batch->Delete(keys::Chunk(ino, index));
      continue;
    }
    std::shared_ptr<const std::string> clean;
    err = ReadCleanChunk(ino, index, &clean);
    if (!err.ok()) return err;
    const uint64_t start = index * chunk_size_;
    std::string bytes = *clean;
    uint64_t from = std::max(offset, start) - start;
    uint64_t to = std::min<uint64_t>(std::min(end, start + chunk_size_) - start, bytes.size());
    if (from < to) {
      std::fill(bytes.begin() + from, bytes.begin() + to, '\0');
      batch->Put(keys::Chunk(ino, index), bytes);
    }
  }
  return Errno::OK();
}

}  // namespace fs

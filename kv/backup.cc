// Backup and restore of a page store. The archive format and why a copy of a live store is
// consistent are described in backup.h.
#include "kv/backup.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <random>
#include <string_view>
#include <thread>

#include "kv/coding.h"
#include "kv/crc32c.h"
#include "kv/env.h"
#include "kv/format.h"
#include "kv/journal.h"
#include "kv/page.h"
#include "kv/page_store.h"
#include "kv/superblock.h"

namespace kv {
namespace {

constexpr char kArchiveMagic[8] = {'K', 'V', 'F', 'S', 'B', 'K', 'U', 'P'};
constexpr uint32_t kFlagIncremental = 1;
// magic, version, header length, flags, block size, archive id, created, store id, page
// count, zero, base id, base path length, CRC.
constexpr size_t kMinHeaderSize = 8 + 4 + 4 + 4 + 4 + 8 + 8 + 8 + 4 + 4 + 8 + 2 + 4;
constexpr size_t kMaxHeaderSize = kMinHeaderSize + 65535;
constexpr size_t kFrameHeaderSize = 12;  // u32 CRC, u8 type, 3 zero, u32 payload length
constexpr size_t kFrameOverhead = kFrameHeaderSize + 4;
constexpr uint32_t kMinBlockSize = 4096;
constexpr uint32_t kMaxBlockSize = 64 << 20;
constexpr size_t kHashSize = 16;
constexpr size_t kPagePayload = 4 + 8;
constexpr size_t kBlockPrefix = 4 + 4 + kHashSize;
constexpr size_t kRefPayload = 4 + 4 + kHashSize + 4 + 4 + 4 + 4;
constexpr size_t kPageEndPayload = 4 + 8 + 4 + kHashSize;
constexpr size_t kTrailerPayload = 8 + 4 + 4 + 8 + 8 + 8 + 8 + 8 + 4;
// Attempts at reading the superblock unchanged around opening the page files.
constexpr int kSnapshotAttempts = 100;

enum FrameType : uint8_t {
  kSuperblockFrame = 1,
  kPageFrame = 2,
  kBlockFrame = 3,
  kRefFrame = 4,
  kPageEndFrame = 5,
  kTrailerFrame = 6,
};

struct Hash128 {
  uint64_t lo = 0;
  uint64_t hi = 0;
  bool operator==(const Hash128&) const = default;
};

Hash128 HashBytes(const void* data, size_t n) {
  XXH128_hash_t h = XXH3_128bits(data, n);
  return Hash128{h.low64, h.high64};
}
void PutHash(std::string* out, const Hash128& h) {
  PutFixed64(out, h.lo);
  PutFixed64(out, h.hi);
}
Hash128 DecodeHash(const char* p) { return Hash128{DecodeFixed64(p), DecodeFixed64(p + 8)}; }

uint64_t NowNs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

uint64_t NewArchiveId() {
  std::random_device rd;
  uint64_t id = 0;
  while (id == 0) id = ((static_cast<uint64_t>(rd()) << 32) | rd()) ^ NowNs();
  return id;
}

std::string Hex(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

std::string BaseName(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

std::string StripTrailingSlashes(std::string path) {
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  return path;
}

// Whether two paths name the same file (or directory).
bool SameFile(const std::string& a, const std::string& b) {
  struct stat sa, sb;
  return ::stat(a.c_str(), &sa) == 0 && ::stat(b.c_str(), &sb) == 0 && sa.st_dev == sb.st_dev &&
         sa.st_ino == sb.st_ino;
}

Status WithPrefix(const std::string& prefix, const Status& s) {
  if (s.ok()) return s;
  const std::string msg = prefix + ": " + s.message();
  switch (s.code()) {
    case Status::Code::kNotFound:
      return Status::NotFound(msg);
    case Status::Code::kCorruption:
      return Status::Corruption(msg);
    case Status::Code::kNoSpace:
      return Status::NoSpace(msg);
    case Status::Code::kInvalidArgument:
      return Status::InvalidArgument(msg);
    case Status::Code::kBusy:
      return Status::Busy(msg);
    case Status::Code::kNotSupported:
      return Status::NotSupported(msg);
    default:
      return Status::IOError(msg);
  }
}

// Writes the archive through a buffer, keeping the CRC-32C of every byte written.
class ArchiveWriter {
 public:
  explicit ArchiveWriter(File* file) : file_(file) {}

  Status Raw(std::string_view bytes) {
    crc_ = Crc32c(bytes.data(), bytes.size(), crc_);
    offset_ += bytes.size();
    buf_.append(bytes);
    return buf_.size() >= kArchiveBlockSize ? Flush() : Status::OK();
  }
  // A frame whose payload is `head` followed by `body`.
  Status Frame(uint8_t type, std::string_view head, std::string_view body = {}) {
    char h[kFrameHeaderSize] = {};
    h[4] = static_cast<char>(type);
    EncodeFixed32(h + 8, static_cast<uint32_t>(head.size() + body.size()));
    EncodeFixed32(h, Crc32c(h + 4, 8));
    char t[4];
    EncodeFixed32(t, Crc32c(body.data(), body.size(), Crc32c(head.data(), head.size())));
    KV_RETURN_IF_ERROR(Raw(std::string_view(h, sizeof(h))));
    KV_RETURN_IF_ERROR(Raw(head));
    KV_RETURN_IF_ERROR(Raw(body));
    return Raw(std::string_view(t, sizeof(t)));
  }
  Status Flush() {
    if (buf_.empty()) return Status::OK();
    KV_RETURN_IF_ERROR(file_->Append(buf_.data(), buf_.size()));
    buf_.clear();
    // Write the archive out while the store is still being read (the final Sync would
    // otherwise write all of it after all of the reading).
    if (file_->Size() >= written_back_ + kWritebackStep) {
      file_->StartWriteback(written_back_, file_->Size() - written_back_);
      written_back_ = file_->Size();
    }
    return Status::OK();
  }
  uint64_t offset() const { return offset_; }
  uint32_t crc() const { return crc_; }

 private:
  static constexpr uint64_t kWritebackStep = 8 << 20;
  uint64_t written_back_ = 0;
  File* const file_;
  std::string buf_;
  uint64_t offset_ = 0;
  uint32_t crc_ = 0;
};

// Where the bytes of one block are: in this archive at `offset`, or (ref) in the base's
// block (base_page, base_block).
struct BlockLoc {
  Hash128 hash;
  uint32_t length = 0;
  bool ref = false;
  uint64_t offset = 0;
  uint32_t base_page = 0;
  uint32_t base_block = 0;
};

struct PageLoc {
  uint64_t generation = 0;
  uint64_t length = 0;
  std::vector<BlockLoc> blocks;
};

// An open archive: its header and, once scanned, where every block is.
struct Archive {
  ArchiveSummary summary;
  std::unique_ptr<File> file;
  uint64_t header_size = 0;
  uint32_t header_crc = 0;  // CRC-32C of the header bytes, where the archive CRC starts
  std::string superblock;
  std::vector<PageLoc> pages;
  bool scanned = false;

  Status Bad(const std::string& what) const {
    return Status::Corruption(summary.path + ": " + what);
  }
  Status BadAt(uint64_t offset, const std::string& what) const {
    return Bad(what + " at offset " + std::to_string(offset));
  }
  Status Truncated(uint64_t offset) const {
    return Bad("archive is truncated (it ends inside the frame at offset " +
               std::to_string(offset) + " of " + std::to_string(summary.archive_bytes) + ")");
  }
};

Status ReadExactly(const Archive& a, uint64_t offset, size_t n, std::string* out) {
  out->resize(n);
  size_t got = 0;
  KV_RETURN_IF_ERROR(a.file->Read(offset, n, out->data(), &got));
  // The file was shorter than when we looked at it: it changed under us.
  if (got != n) return a.Truncated(offset);
  return Status::OK();
}

// Opens `path` and decodes and checks its header.
Status OpenArchive(Env* env, const std::string& path, std::unique_ptr<Archive>* out) {
  auto a = std::make_unique<Archive>();
  a->summary.path = path;
  KV_RETURN_IF_ERROR(env->OpenFile(path, Env::OpenMode::kRead, &a->file));
  const uint64_t size = a->file->Size();
  a->summary.archive_bytes = size;
  std::string fixed;
  const size_t head = static_cast<size_t>(std::min<uint64_t>(size, 16));
  KV_RETURN_IF_ERROR(ReadExactly(*a, 0, head, &fixed));
  const size_t magic_bytes = std::min(fixed.size(), sizeof(kArchiveMagic));
  if (size == 0) return a->Bad("archive is empty (truncated)");
  if (std::memcmp(fixed.data(), kArchiveMagic, magic_bytes) != 0) {
    return a->Bad("not a kvfs backup archive (bad magic)");
  }
  if (size < 16) return a->Truncated(0);
  const uint32_t version = DecodeFixed32(fixed.data() + 8);
  if (version > kArchiveFormatVersion) {
    return Status::NotSupported(path + ": archive format version " + std::to_string(version) +
                                " is newer than this kvfs supports (" +
                                std::to_string(kArchiveFormatVersion) + "); upgrade kvfs");
  }
  if (version == 0) return a->Bad("damaged header (format version 0)");
  const uint32_t header_size = DecodeFixed32(fixed.data() + 12);
  if (header_size < kMinHeaderSize || header_size > kMaxHeaderSize) {
    return a->Bad("damaged header (length " + std::to_string(header_size) + ")");
  }
  if (header_size > size) return a->Truncated(0);
  std::string h;
  KV_RETURN_IF_ERROR(ReadExactly(*a, 0, header_size, &h));
  if (Crc32c(h.data(), header_size - 4) != DecodeFixed32(h.data() + header_size - 4)) {
    return a->Bad("header checksum mismatch");
  }
  Decoder d(h.data() + 16, header_size - 16 - 4);
  uint32_t flags = 0, zero = 0;
  uint16_t base_len = 0;
  ArchiveSummary& s = a->summary;
  s.format_version = version;
  if (!d.GetFixed32(&flags) || !d.GetFixed32(&s.block_size) || !d.GetFixed64(&s.archive_id) ||
      !d.GetFixed64(&s.created_ns) || !d.GetFixed64(&s.store_id) || !d.GetFixed32(&s.page_count) ||
      !d.GetFixed32(&zero) || !d.GetFixed64(&s.base_id) || !d.GetFixed16(&base_len) ||
      !d.GetBytes(base_len, &s.base_path) || d.remaining() != 0) {
    return a->Bad("damaged header (fields do not fit its length)");
  }
  s.incremental = (flags & kFlagIncremental) != 0;
  if ((flags & ~kFlagIncremental) != 0 || zero != 0 || s.archive_id == 0 ||
      s.incremental != (s.base_id != 0) || s.block_size < kMinBlockSize ||
      s.block_size > kMaxBlockSize || s.page_count == 0 || s.page_count > 65536) {
    return a->Bad("damaged header (invalid field)");
  }
  a->header_size = header_size;
  a->header_crc = Crc32c(h.data(), h.size());
  *out = std::move(a);
  return Status::OK();
}

// Reads the frame at `offset`: checks its header, that it lies within the file and its
// payload checksum. *raw receives the frame's header (12 bytes) and CRC (4 bytes) for the
// archive-wide checksum.
Status ReadFrame(const Archive& a, uint64_t offset, uint8_t* type, std::string* payload,
                 char raw[kFrameOverhead]) {
  const uint64_t size = a.summary.archive_bytes;
  if (size - offset < kFrameOverhead) return a.Truncated(offset);
  std::string h;
  KV_RETURN_IF_ERROR(ReadExactly(a, offset, kFrameHeaderSize, &h));
  if (Crc32c(h.data() + 4, 8) != DecodeFixed32(h.data()) || h[5] != 0 || h[6] != 0 || h[7] != 0) {
    return a.BadAt(offset, "damaged frame header");
  }
  *type = static_cast<uint8_t>(h[4]);
  const uint32_t len = DecodeFixed32(h.data() + 8);
  if (len > a.summary.block_size + 64) return a.BadAt(offset, "frame too long");
  if (size - offset - kFrameOverhead < len) return a.Truncated(offset);
  KV_RETURN_IF_ERROR(ReadExactly(a, offset + kFrameHeaderSize, len + 4, payload));
  const uint32_t crc = DecodeFixed32(payload->data() + len);
  std::memcpy(raw, h.data(), kFrameHeaderSize);
  std::memcpy(raw + kFrameHeaderSize, payload->data() + len, 4);
  payload->resize(len);
  if (Crc32c(payload->data(), len) != crc) return a.BadAt(offset, "checksum mismatch in frame");
  return Status::OK();
}

Status DecodeArchiveSuperblock(const Archive& a, const std::string& payload, Superblock* sb) {
  Status s = Superblock::Decode(payload, sb);
  if (s.IsNotSupported()) return WithPrefix(a.summary.path, s);
  if (!s.ok()) return a.Bad("archived superblock: " + s.message());
  if (sb->store_id != a.summary.store_id || sb->page_count != a.summary.page_count) {
    return a.Bad("archived superblock does not match the archive header");
  }
  return Status::OK();
}

struct Trailer {
  uint64_t archive_id, block_frames, ref_frames, page_bytes, literal_bytes, archive_bytes;
  uint32_t page_count, zero, crc;
};

bool DecodeTrailer(const std::string& p, Trailer* t) {
  Decoder d(p.data(), p.size());
  return p.size() == kTrailerPayload && d.GetFixed64(&t->archive_id) &&
         d.GetFixed32(&t->page_count) && d.GetFixed32(&t->zero) && d.GetFixed64(&t->block_frames) &&
         d.GetFixed64(&t->ref_frames) && d.GetFixed64(&t->page_bytes) &&
         d.GetFixed64(&t->literal_bytes) && d.GetFixed64(&t->archive_bytes) &&
         d.GetFixed32(&t->crc);
}

// Reads the whole archive, checking every checksum and the frame order, and records where
// each block is. References are checked against `base` when it is given (scanned already).
Status ScanArchive(Archive* a, const Archive* base, const std::function<void(uint64_t)>& read) {
  ArchiveSummary& sum = a->summary;
  const uint32_t bsize = sum.block_size;
  uint64_t pos = a->header_size;
  uint32_t crc = a->header_crc;
  bool have_sb = false, in_page = false;
  uint64_t literal_bytes = 0, page_bytes = 0, blocks = 0, refs = 0;
  std::string payload;
  std::string block_hashes;
  char raw[kFrameOverhead];
  a->pages.clear();
  for (;;) {
    if (pos == sum.archive_bytes) return a->Bad("archive is truncated (no trailer)");
    uint8_t type = 0;
    KV_RETURN_IF_ERROR(ReadFrame(*a, pos, &type, &payload, raw));
    const uint64_t frame_end = pos + kFrameOverhead + payload.size();
    if (read) read(frame_end - pos);
    const char* p = payload.data();
    const uint32_t page = static_cast<uint32_t>(a->pages.size()) - (in_page ? 1 : 0);
    if (!have_sb && type != kSuperblockFrame) return a->BadAt(pos, "superblock frame missing");
    switch (type) {
      case kSuperblockFrame: {
        if (have_sb) return a->BadAt(pos, "unexpected superblock frame");
        Superblock sb;
        KV_RETURN_IF_ERROR(DecodeArchiveSuperblock(*a, payload, &sb));
        sum.durable_sequence = sb.durable_sequence;
        sum.sharder_name = sb.sharder_name;
        a->superblock = payload;
        have_sb = true;
        break;
      }
      case kPageFrame: {
        if (in_page || a->pages.size() >= sum.page_count || payload.size() != kPagePayload ||
            DecodeFixed32(p) != a->pages.size()) {
          return a->BadAt(pos, "unexpected page frame");
        }
        a->pages.emplace_back();
        a->pages.back().generation = DecodeFixed64(p + 4);
        in_page = true;
        block_hashes.clear();
        break;
      }
      case kBlockFrame:
      case kRefFrame: {
        const bool ref = type == kRefFrame;
        if (!in_page || payload.size() < (ref ? kRefPayload : kBlockPrefix + 1) ||
            (ref && payload.size() != kRefPayload) || DecodeFixed32(p) != page ||
            DecodeFixed32(p + 4) != a->pages.back().blocks.size()) {
          return a->BadAt(pos, "unexpected block frame");
        }
        std::vector<BlockLoc>& list = a->pages.back().blocks;
        if (!list.empty() && list.back().length != bsize) {
          return a->BadAt(pos, "short block before the last block of a page");
        }
        BlockLoc b;
        b.hash = DecodeHash(p + 8);
        if (ref) {
          b.ref = true;
          b.length = DecodeFixed32(p + 24);
          b.base_page = DecodeFixed32(p + 28);
          b.base_block = DecodeFixed32(p + 32);
          if (DecodeFixed32(p + 36) != 0 || b.length == 0 || b.length > bsize) {
            return a->BadAt(pos, "invalid reference frame");
          }
          if (!sum.incremental) return a->BadAt(pos, "reference in a full archive");
          if (base != nullptr) {
            const BlockLoc* target = nullptr;
            if (b.base_page < base->pages.size() &&
                b.base_block < base->pages[b.base_page].blocks.size()) {
              target = &base->pages[b.base_page].blocks[b.base_block];
            }
            if (target == nullptr || target->hash != b.hash || target->length != b.length) {
              return a->BadAt(pos, "reference to block " + std::to_string(b.base_block) +
                                       " of page " + std::to_string(b.base_page) +
                                       " does not match the base archive " + base->summary.path);
            }
          }
          ++refs;
        } else {
          b.length = static_cast<uint32_t>(payload.size() - kBlockPrefix);
          if (b.length > bsize) return a->BadAt(pos, "block longer than the block size");
          if (HashBytes(p + kBlockPrefix, b.length) != b.hash) {
            return a->BadAt(pos, "block hash mismatch");
          }
          b.offset = pos + kFrameHeaderSize + kBlockPrefix;
          literal_bytes += b.length;
        }
        PutHash(&block_hashes, b.hash);
        a->pages.back().length += b.length;
        list.push_back(b);
        ++blocks;
        break;
      }
      case kPageEndFrame: {
        if (!in_page || payload.size() != kPageEndPayload || DecodeFixed32(p) != page) {
          return a->BadAt(pos, "unexpected page end frame");
        }
        const PageLoc& pl = a->pages.back();
        if (DecodeFixed64(p + 4) != pl.length || DecodeFixed32(p + 12) != pl.blocks.size() ||
            HashBytes(block_hashes.data(), block_hashes.size()) != DecodeHash(p + 16)) {
          return a->BadAt(pos, "page " + std::to_string(page) + " does not match its summary");
        }
        page_bytes += pl.length;
        in_page = false;
        break;
      }
      case kTrailerFrame: {
        Trailer t;
        if (in_page || a->pages.size() != sum.page_count || !DecodeTrailer(payload, &t)) {
          return a->BadAt(pos, "unexpected trailer frame");
        }
        if (t.archive_id != sum.archive_id || t.page_count != sum.page_count || t.zero != 0 ||
            t.block_frames != blocks || t.ref_frames != refs || t.page_bytes != page_bytes ||
            t.literal_bytes != literal_bytes || t.archive_bytes != pos) {
          return a->BadAt(pos, "trailer does not match the archive");
        }
        if (t.crc != crc) return a->Bad("archive checksum mismatch");
        if (frame_end != sum.archive_bytes) {
          return a->BadAt(frame_end, "unexpected data after the trailer");
        }
        sum.page_bytes = page_bytes;
        sum.blocks = blocks;
        sum.blocks_referenced = refs;
        a->scanned = true;
        return Status::OK();
      }
      default:
        return a->BadAt(pos, "unknown frame type " + std::to_string(type));
    }
    crc = Crc32c(raw, kFrameHeaderSize, crc);
    crc = Crc32c(payload.data(), payload.size(), crc);
    crc = Crc32c(raw + kFrameHeaderSize, 4, crc);
    pos = frame_end;
  }
}

// Finds the base archive of `a`: `override` when given; else the recorded path, or a file
// of the same name next to `a` (archives are often moved together).
Status ResolveBasePath(Env* env, const Archive& a, const std::string& override, std::string* path) {
  if (!override.empty()) {
    *path = override;
    return Status::OK();
  }
  const std::string& recorded = a.summary.base_path;
  if (!recorded.empty() && env->FileExists(recorded)) {
    *path = recorded;
    return Status::OK();
  }
  const std::string sibling = ParentDir(a.summary.path) + "/" + BaseName(recorded);
  if (!recorded.empty() && env->FileExists(sibling)) {
    *path = sibling;
    return Status::OK();
  }
  return Status::NotFound(a.summary.path + ": its base archive '" + recorded + "' (id " +
                          Hex(a.summary.base_id) + ") is missing; give its path");
}

using Chain = std::vector<std::unique_ptr<Archive>>;

// Opens `path` and (with_bases) its chain of base archives, then scans them all, the
// deepest base first so that references are checked against scanned bases.
Status LoadChain(Env* env, const std::string& path, const std::vector<std::string>& base_paths,
                 bool with_bases, const ProgressFn& progress, Chain* chain) {
  chain->clear();
  std::unique_ptr<Archive> top;
  KV_RETURN_IF_ERROR(OpenArchive(env, path, &top));
  chain->push_back(std::move(top));
  while (with_bases && chain->back()->summary.incremental) {
    const Archive& child = *chain->back();
    if (chain->size() > 10000) return child.Bad("chain of base archives too long");
    const size_t depth = chain->size() - 1;
    std::string base_path;
    KV_RETURN_IF_ERROR(ResolveBasePath(
        env, child, depth < base_paths.size() ? base_paths[depth] : std::string(), &base_path));
    std::unique_ptr<Archive> base;
    KV_RETURN_IF_ERROR(OpenArchive(env, base_path, &base));
    if (base->summary.archive_id != child.summary.base_id) {
      return Status::InvalidArgument(base_path + " is archive " + Hex(base->summary.archive_id) +
                                     ", but " + child.summary.path + " was made over archive " +
                                     Hex(child.summary.base_id));
    }
    if (base->summary.store_id != child.summary.store_id ||
        base->summary.page_count != child.summary.page_count) {
      return Status::InvalidArgument(base_path + " is an archive of another store than " +
                                     child.summary.path);
    }
    chain->push_back(std::move(base));
  }
  uint64_t total = 0, done = 0;
  for (const auto& a : *chain) total += a->summary.archive_bytes;
  auto read = [&](uint64_t n) {
    done += n;
    if (progress) progress(done, total);
  };
  for (size_t i = chain->size(); i-- > 0;) {
    const Archive* base = i + 1 < chain->size() ? (*chain)[i + 1].get() : nullptr;
    KV_RETURN_IF_ERROR(ScanArchive((*chain)[i].get(), base, read));
  }
  return Status::OK();
}

// ---- Backup ----

struct PageSource {
  std::unique_ptr<File> file;
  uint64_t generation = 0;
  uint64_t length = 0;    // when opened: everything below it is complete
  std::string journaled;  // the page's bytes after `length`, from the journal
  bool gap = false;       // a journal range started past the end: nothing more appended

  uint64_t total() const { return length + journaled.size(); }
  // Reads up to n bytes at offset, from the file below `length`, then from `journaled`.
  Status Read(uint64_t offset, size_t n, char* buf, size_t* got) const {
    *got = 0;
    if (offset < length) {
      const size_t from_file = static_cast<size_t>(std::min<uint64_t>(n, length - offset));
      KV_RETURN_IF_ERROR(file->Read(offset, from_file, buf, got));
      if (*got < from_file) return Status::OK();  // the file was cut back meanwhile
    }
    const uint64_t at = offset + *got - length;
    if (*got < n && at < journaled.size()) {
      const size_t more = static_cast<size_t>(std::min<uint64_t>(n - *got, journaled.size() - at));
      std::memcpy(buf + *got, journaled.data() + at, more);
      *got += more;
    }
    return Status::OK();
  }
};

// Appends to each page what the journal holds right after it. A group commit may journal
// the tail of a page while it is still in the page's write buffer, so a synced write may be
// in the journal only (for up to 200 ms); a crash would replay it, and so does the backup.
// Only ranges of the same file generation that continue the page are used: the result is
// still a prefix of that page file's records.
Status AddJournaledTails(Env* env, const std::string& dir, std::vector<PageSource>* pages,
                         uint64_t* bytes_read) {
  std::vector<JournalRange> ranges;
  KV_RETURN_IF_ERROR(WithPrefix(dir + "/JOURNAL", Journal::ReadAll(env, dir, &ranges)));
  for (JournalRange& r : ranges) {
    *bytes_read += r.bytes.size();
    if (r.page >= pages->size()) continue;
    PageSource& src = (*pages)[r.page];
    if (src.gap || r.generation != src.generation) continue;
    const uint64_t end = src.total();
    if (r.offset > end) {
      src.gap = true;
    } else if (r.offset + r.bytes.size() > end) {
      src.journaled.append(r.bytes, static_cast<size_t>(end - r.offset), std::string::npos);
    }
  }
  return Status::OK();
}

// Reads SUPERBLOCK, opens every page file and reads SUPERBLOCK again, until it is unchanged
// meanwhile (see backup.h for why).
Status OpenConsistent(Env* env, const std::string& dir, std::string* sb_bytes, Superblock* sb,
                      std::vector<PageSource>* pages, uint64_t* bytes_read) {
  const std::string sb_path = dir + "/" + format::kSuperblockFile;
  for (int attempt = 0; attempt < kSnapshotAttempts; ++attempt) {
    if (attempt > 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    std::string first;
    Status s = ReadWholeFile(env, sb_path, &first);
    if (s.IsNotFound()) return Status::NotFound("no kvfs store at " + dir + " (no SUPERBLOCK)");
    KV_RETURN_IF_ERROR(s);
    KV_RETURN_IF_ERROR(WithPrefix(dir, Superblock::Decode(first, sb)));
    pages->clear();
    for (uint32_t i = 0; i < sb->page_count; ++i) {
      PageSource src;
      const std::string name = PageFileName(i);
      KV_RETURN_IF_ERROR(env->OpenFile(dir + "/" + name, Env::OpenMode::kRead, &src.file));
      char h[format::kPageHeaderSize];
      size_t got = 0;
      KV_RETURN_IF_ERROR(src.file->Read(0, sizeof(h), h, &got));
      if (got < sizeof(h) || std::memcmp(h, format::kPageMagic, sizeof(format::kPageMagic)) != 0 ||
          DecodeFixed32(h + 32) != Crc32c(h, 32) || DecodeFixed32(h + 12) != i ||
          DecodeFixed64(h + 24) != sb->store_id) {
        return Status::Corruption(dir + "/" + name + ": not a page file of this store");
      }
      src.generation = DecodeFixed64(h + 16);
      src.length = src.file->Size();
      pages->push_back(std::move(src));
    }
    KV_RETURN_IF_ERROR(AddJournaledTails(env, dir, pages, bytes_read));
    std::string second;
    KV_RETURN_IF_ERROR(ReadWholeFile(env, sb_path, &second));
    if (second == first) {
      *sb_bytes = std::move(first);
      return Status::OK();
    }
  }
  return Status::Busy("the superblock of " + dir + " kept changing; try again");
}

Status WriteArchive(Env* env, const std::string& tmp_path, const std::string& base_path,
                    const Archive* base, const std::string& sb_bytes, const Superblock& sb,
                    std::vector<PageSource>& pages, const ProgressFn& progress,
                    BackupStats* stats) {
  std::unique_ptr<File> file;
  KV_RETURN_IF_ERROR(env->OpenFile(tmp_path, Env::OpenMode::kCreateTruncate, &file));
  ArchiveWriter w(file.get());
  const uint32_t bsize = kArchiveBlockSize;

  std::string h(kArchiveMagic, sizeof(kArchiveMagic));
  PutFixed32(&h, kArchiveFormatVersion);
  PutFixed32(&h, static_cast<uint32_t>(kMinHeaderSize + base_path.size()));
  PutFixed32(&h, base != nullptr ? kFlagIncremental : 0);
  PutFixed32(&h, bsize);
  PutFixed64(&h, stats->archive_id);
  PutFixed64(&h, NowNs());
  PutFixed64(&h, sb.store_id);
  PutFixed32(&h, sb.page_count);
  PutFixed32(&h, 0);
  PutFixed64(&h, base != nullptr ? base->summary.archive_id : 0);
  PutFixed16(&h, static_cast<uint16_t>(base_path.size()));
  h += base_path;
  PutFixed32(&h, Crc32c(h.data(), h.size()));
  KV_RETURN_IF_ERROR(w.Raw(h));
  KV_RETURN_IF_ERROR(w.Frame(kSuperblockFrame, sb_bytes));

  uint64_t total = 0, done = 0, literal_bytes = 0, page_bytes = 0;
  for (const PageSource& src : pages) total += src.total();
  std::string block(bsize, '\0');
  std::string head;
  std::string hashes;
  for (uint32_t p = 0; p < pages.size(); ++p) {
    PageSource& src = pages[p];
    head.clear();
    PutFixed32(&head, p);
    PutFixed64(&head, src.generation);
    KV_RETURN_IF_ERROR(w.Frame(kPageFrame, head));
    const PageLoc* base_page =
        base != nullptr && p < base->pages.size() ? &base->pages[p] : nullptr;
    hashes.clear();
    uint64_t length = 0;
    uint32_t k = 0;
    while (length < src.total()) {
      const size_t want = static_cast<size_t>(std::min<uint64_t>(bsize, src.total() - length));
      size_t got = 0;
      KV_RETURN_IF_ERROR(src.Read(length, want, block.data(), &got));
      // A page cut back meanwhile (a failed append) ends here; recovery sees a torn tail.
      if (got == 0) break;
      const Hash128 hash = HashBytes(block.data(), got);
      head.clear();
      PutFixed32(&head, p);
      PutFixed32(&head, k);
      PutHash(&head, hash);
      const BlockLoc* old =
          base_page != nullptr && k < base_page->blocks.size() ? &base_page->blocks[k] : nullptr;
      if (old != nullptr && old->length == got && old->hash == hash) {
        PutFixed32(&head, static_cast<uint32_t>(got));
        PutFixed32(&head, p);
        PutFixed32(&head, k);
        PutFixed32(&head, 0);
        KV_RETURN_IF_ERROR(w.Frame(kRefFrame, head));
        ++stats->blocks_referenced;
      } else {
        KV_RETURN_IF_ERROR(w.Frame(kBlockFrame, head, std::string_view(block.data(), got)));
        literal_bytes += got;
      }
      PutHash(&hashes, hash);
      ++stats->blocks;
      length += got;
      stats->bytes_read += got;
      done += got;
      if (progress) progress(done, total);
      ++k;
      if (got < want) break;
    }
    head.clear();
    PutFixed32(&head, p);
    PutFixed64(&head, length);
    PutFixed32(&head, k);
    PutHash(&head, HashBytes(hashes.data(), hashes.size()));
    KV_RETURN_IF_ERROR(w.Frame(kPageEndFrame, head));
    page_bytes += length;
    src.file.reset();  // the old file of a compacted page is freed as we go
  }
  head.clear();
  PutFixed64(&head, stats->archive_id);
  PutFixed32(&head, sb.page_count);
  PutFixed32(&head, 0);
  PutFixed64(&head, stats->blocks);
  PutFixed64(&head, stats->blocks_referenced);
  PutFixed64(&head, page_bytes);
  PutFixed64(&head, literal_bytes);
  PutFixed64(&head, w.offset());
  PutFixed32(&head, w.crc());
  KV_RETURN_IF_ERROR(w.Frame(kTrailerFrame, head));
  KV_RETURN_IF_ERROR(w.Flush());
  KV_RETURN_IF_ERROR(file->Sync());
  stats->bytes_written = w.offset();
  return Status::OK();
}

// ---- Restore ----

// Holds the writer lock of a store directory about to be replaced, without writing to it
// (Env::LockFile would write our pid), so that a store in use is never swapped away.
class TargetLock {
 public:
  TargetLock() = default;
  TargetLock(const TargetLock&) = delete;
  TargetLock& operator=(const TargetLock&) = delete;
  ~TargetLock() {
    if (fd_ >= 0) ::close(fd_);
  }
  Status Take(const std::string& dir) {
    const std::string path = dir + "/" + format::kLockFile;
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) return errno == ENOENT ? Status::OK() : Status::FromErrno(errno, "open " + path);
    if (::flock(fd_, LOCK_EX | LOCK_NB) < 0) {
      return errno == EWOULDBLOCK ? Status::Busy("the store at " + dir + " is in use")
                                  : Status::FromErrno(errno, "lock " + path);
    }
    return Status::OK();
  }

 private:
  int fd_ = -1;
};

// Removes a directory tree; errors are ignored (used for cleanup only).
void RemoveTree(const std::string& path) {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
}

// Writes the store files of chain[0] into `dir`, each synced.
Status WriteStoreFiles(Env* env, const Chain& chain, const std::string& dir,
                       const ProgressFn& progress, RestoreStats* stats) {
  const Archive& top = *chain[0];
  {
    std::unique_ptr<File> f;
    const std::string path = dir + "/" + format::kSuperblockFile;
    KV_RETURN_IF_ERROR(env->OpenFile(path, Env::OpenMode::kCreateTruncate, &f));
    KV_RETURN_IF_ERROR(f->Append(top.superblock.data(), top.superblock.size()));
    KV_RETURN_IF_ERROR(f->Sync());
    stats->bytes_written += top.superblock.size();
  }
  const uint64_t total = top.summary.page_bytes;
  uint64_t done = 0;
  std::string block;
  for (uint32_t p = 0; p < top.pages.size(); ++p) {
    std::unique_ptr<File> f;
    KV_RETURN_IF_ERROR(
        env->OpenFile(dir + "/" + PageFileName(p), Env::OpenMode::kCreateTruncate, &f));
    for (uint32_t k = 0; k < top.pages[p].blocks.size(); ++k) {
      // Follow references down the chain to the archive holding the bytes.
      size_t i = 0;
      uint32_t bp = p, bk = k;
      const BlockLoc* b = &top.pages[p].blocks[k];
      while (b->ref) {
        bp = b->base_page;
        bk = b->base_block;
        if (++i >= chain.size()) return top.Bad("reference without a base archive");
        b = &chain[i]->pages[bp].blocks[bk];
      }
      if (i > 0) ++stats->blocks_from_base;
      KV_RETURN_IF_ERROR(ReadExactly(*chain[i], b->offset, b->length, &block));
      stats->bytes_read += b->length;
      // The archive was verified before; this catches it changing since.
      if (HashBytes(block.data(), block.size()) != b->hash) {
        return chain[i]->BadAt(b->offset, "block changed since it was verified");
      }
      KV_RETURN_IF_ERROR(f->Append(block.data(), block.size()));
      f->StartWriteback(f->Size() - block.size(), block.size());
      stats->bytes_written += block.size();
      ++stats->blocks;
      done += block.size();
      if (progress) progress(done, total);
    }
    KV_RETURN_IF_ERROR(f->Sync());
    ++stats->pages;
  }
  return env->SyncDir(dir);
}

// Opens the restored store once: recovery cuts torn tails and partial batches above the
// watermark and checks every record; closing syncs it and writes the hint files.
Status RecoverStore(Env* env, const std::string& dir, const std::string& sharder_name,
                    SequenceNumber* last) {
  Options o;
  o.env = env;
  o.create_if_missing = false;
  o.background_compaction = false;
  o.sharder = NameOnlySharder(sharder_name);
  std::unique_ptr<Store> store;
  KV_RETURN_IF_ERROR(OpenPageStore(o, dir, &store));
  *last = store->LastSequence();
  KV_RETURN_IF_ERROR(store->Sync());
  store.reset();
  return env->SyncDir(dir);
}

// Puts the finished store `tmp` at `target`; an existing (empty, or with force) directory
// there is swapped out atomically and removed.
Status MoveIntoPlace(Env* env, const std::string& tmp, const std::string& target, bool exists) {
  const std::string parent = ParentDir(target);
  if (!exists) {
    KV_RETURN_IF_ERROR(env->Rename(tmp, target));
    return env->SyncDir(parent);
  }
  Status exchanged = ExchangeDirectories(tmp, target);
  if (exchanged.ok()) {
    Status s = env->SyncDir(parent);
    RemoveTree(tmp);  // now the old tree
    return s;
  }
  if (!exchanged.IsNotSupported()) return exchanged;
  // A file system without RENAME_EXCHANGE: move the old tree aside first.
  const std::string old = target + ".restore-old";
  RemoveTree(old);
  KV_RETURN_IF_ERROR(env->Rename(target, old));
  Status s = env->Rename(tmp, target);
  if (!s.ok()) {
    env->Rename(old, target).IgnoreError();
    return s;
  }
  s = env->SyncDir(parent);
  RemoveTree(old);
  return s;
}

}  // namespace

Status Backup(const std::string& store_dir, const std::string& archive_path,
              const BackupOptions& options, BackupStats* stats) {
  Env* env = options.env != nullptr ? options.env : Env::Default();
  BackupStats local;
  if (stats == nullptr) stats = &local;
  *stats = BackupStats{};
  if (archive_path.empty() || archive_path.back() == '/') {
    return Status::InvalidArgument("archive path '" + archive_path + "' is not a file name");
  }
  const std::string dir = StripTrailingSlashes(store_dir);
  // Backup never writes into the store directory: a daemon may own it.
  if (SameFile(ParentDir(archive_path), dir)) {
    return Status::InvalidArgument("the archive " + archive_path +
                                   " must not be inside the store directory " + dir);
  }
  Chain base_chain;
  const Archive* base = nullptr;
  if (!options.base_archive.empty()) {
    if (options.base_archive == archive_path || SameFile(options.base_archive, archive_path)) {
      return Status::InvalidArgument("the archive " + archive_path +
                                     " would replace its own base archive");
    }
    KV_RETURN_IF_ERROR(
        LoadChain(env, options.base_archive, {}, /*with_bases=*/true, nullptr, &base_chain));
    base = base_chain[0].get();
  }

  std::string sb_bytes;
  Superblock sb;
  std::vector<PageSource> pages;
  uint64_t bytes_read = 0;
  KV_RETURN_IF_ERROR(OpenConsistent(env, dir, &sb_bytes, &sb, &pages, &bytes_read));
  if (base != nullptr &&
      (base->summary.store_id != sb.store_id || base->summary.page_count != sb.page_count)) {
    return Status::InvalidArgument("base archive " + options.base_archive +
                                   " is of another store than " + dir);
  }
  stats->archive_id = NewArchiveId();
  stats->durable_sequence = sb.durable_sequence;
  stats->pages = sb.page_count;
  stats->bytes_read = sb_bytes.size() + bytes_read;

  const std::string tmp = archive_path + ".tmp";
  Status s = WriteArchive(env, tmp, options.base_archive, base, sb_bytes, sb, pages,
                          options.progress, stats);
  if (s.ok()) s = env->Rename(tmp, archive_path);
  if (!s.ok()) {
    if (env->FileExists(tmp)) env->RemoveFile(tmp).IgnoreError();
    return s;
  }
  return env->SyncDir(ParentDir(archive_path));
}

Status ReadArchiveSummary(const std::string& path, ArchiveSummary* summary, Env* env) {
  if (env == nullptr) env = Env::Default();
  std::unique_ptr<Archive> a;
  KV_RETURN_IF_ERROR(OpenArchive(env, path, &a));
  std::string payload;
  char raw[kFrameOverhead];
  uint8_t type = 0;
  KV_RETURN_IF_ERROR(ReadFrame(*a, a->header_size, &type, &payload, raw));
  Superblock sb;
  if (type != kSuperblockFrame) return a->BadAt(a->header_size, "superblock frame missing");
  KV_RETURN_IF_ERROR(DecodeArchiveSuperblock(*a, payload, &sb));
  const uint64_t trailer_size = kFrameOverhead + kTrailerPayload;
  const uint64_t size = a->summary.archive_bytes;
  if (size < a->header_size + trailer_size) return a->Bad("archive is truncated (no trailer)");
  Trailer t;
  Status s = ReadFrame(*a, size - trailer_size, &type, &payload, raw);
  if (!s.ok() || type != kTrailerFrame || !DecodeTrailer(payload, &t) ||
      t.archive_id != a->summary.archive_id) {
    return a->Bad("archive is truncated or damaged (no valid trailer at its end)");
  }
  *summary = a->summary;
  summary->durable_sequence = sb.durable_sequence;
  summary->sharder_name = sb.sharder_name;
  summary->page_bytes = t.page_bytes;
  summary->blocks = t.block_frames;
  summary->blocks_referenced = t.ref_frames;
  return Status::OK();
}

Status VerifyArchive(const std::string& path, const ArchiveVerifyOptions& options,
                     std::vector<ArchiveSummary>* chain) {
  Env* env = options.env != nullptr ? options.env : Env::Default();
  Chain archives;
  KV_RETURN_IF_ERROR(
      LoadChain(env, path, options.base_paths, options.verify_bases, options.progress, &archives));
  if (chain != nullptr) {
    chain->clear();
    for (const auto& a : archives) chain->push_back(a->summary);
  }
  return Status::OK();
}

Status Restore(const std::string& archive_path, const std::string& target_dir,
               const RestoreOptions& options, RestoreStats* stats) {
  Env* env = options.env != nullptr ? options.env : Env::Default();
  RestoreStats local;
  if (stats == nullptr) stats = &local;
  *stats = RestoreStats{};
  const std::string target = StripTrailingSlashes(target_dir);
  if (target.empty()) return Status::InvalidArgument("no target directory given");

  // Everything is checked before anything is written.
  Chain chain;
  KV_RETURN_IF_ERROR(
      LoadChain(env, archive_path, options.base_paths, /*with_bases=*/true, nullptr, &chain));
  stats->archives = static_cast<uint32_t>(chain.size());
  for (const auto& a : chain) stats->bytes_read += a->summary.archive_bytes;
  const ArchiveSummary& top = chain[0]->summary;
  if (options.sharder && options.sharder->Name() != top.sharder_name &&
      !FindSharder(top.sharder_name, options.earlier_sharders)) {
    return Status::InvalidArgument(archive_path + " holds a store created with sharder '" +
                                   top.sharder_name + "', not '" + options.sharder->Name() + "'");
  }
  std::error_code ec;
  const auto st = std::filesystem::symlink_status(target, ec);
  const bool exists = !ec && std::filesystem::exists(st);
  if (ec && ec != std::errc::no_such_file_or_directory) {
    return Status::IOError("stat " + target + ": " + ec.message());
  }
  if (exists) {
    if (std::filesystem::is_symlink(st)) {
      return Status::InvalidArgument(target + " is a symbolic link; give the directory itself");
    }
    if (!std::filesystem::is_directory(st)) {
      return Status::InvalidArgument(target + " exists and is not a directory");
    }
    std::vector<std::string> names;
    KV_RETURN_IF_ERROR(env->ListDir(target, &names));
    if (!names.empty() && !options.force) {
      return Status::InvalidArgument(target + " is not empty (use --force to replace it)");
    }
  }
  TargetLock lock;
  if (exists) KV_RETURN_IF_ERROR(lock.Take(target));

  const std::string tmp = target + ".restore-tmp";
  RemoveTree(tmp);  // left by an interrupted restore
  Status s = env->CreateDir(tmp);
  if (s.ok()) s = WriteStoreFiles(env, chain, tmp, options.progress, stats);
  if (s.ok()) s = RecoverStore(env, tmp, top.sharder_name, &stats->last_sequence);
  if (s.ok()) s = MoveIntoPlace(env, tmp, target, exists);
  if (!s.ok()) {
    RemoveTree(tmp);
    return WithPrefix("restore into " + target, s);
  }
  return Status::OK();
}

}  // namespace kv

// Inode value encoding: see fs/inode.h and fs/README.md.
#include "fs/inode.h"

#include "fs/coding.h"

namespace fs {
namespace {
constexpr uint8_t kInodeFormat = 1;
constexpr uint8_t kFlagInline = 1;
constexpr uint8_t kFlagTrashed = 2;

bool DecodeHead(Decoder& d, Inode* n) {
  uint8_t format, flags;
  if (!d.U8(&format) || format != kInodeFormat || !d.U8(&flags)) return false;
  if (!d.BE32(&n->mode) || !d.BE32(&n->uid) || !d.BE32(&n->gid) || !d.BE32(&n->nlink) ||
      !d.BE64(&n->size) || !d.I64(&n->atime_ns) || !d.I64(&n->mtime_ns) || !d.I64(&n->ctime_ns) ||
      !d.BE64(&n->rdev) || !d.BE64(&n->version) || !d.BE64(&n->parent)) {
    return false;
  }
  n->inline_data = (flags & kFlagInline) != 0;
  n->trashed = (flags & kFlagTrashed) != 0;
  return true;
}
}  // namespace

static_assert(kInodeHeadBytes == 2 + 4 * 4 + 7 * 8);

std::string EncodeInode(const Inode& n) {
  std::string out;
  out.reserve(kInodeHeadBytes + n.data.size());
  PutU8(&out, kInodeFormat);
  PutU8(&out,
        static_cast<uint8_t>((n.inline_data ? kFlagInline : 0) | (n.trashed ? kFlagTrashed : 0)));
  PutBE32(&out, n.mode);
  PutBE32(&out, n.uid);
  PutBE32(&out, n.gid);
  PutBE32(&out, n.nlink);
  PutBE64(&out, n.size);
  PutBE64(&out, static_cast<uint64_t>(n.atime_ns));
  PutBE64(&out, static_cast<uint64_t>(n.mtime_ns));
  PutBE64(&out, static_cast<uint64_t>(n.ctime_ns));
  PutBE64(&out, n.rdev);
  PutBE64(&out, n.version);
  PutBE64(&out, n.parent);
  out.append(n.data);
  return out;
}

bool DecodeInodeHead(std::string_view value, Inode* n) {
  Decoder d(value.substr(0, kInodeHeadBytes));
  if (!DecodeHead(d, n) || !d.rest().empty()) return false;
  n->data.clear();
  // A value that ends with its head has no inline bytes.
  return !(value.size() == kInodeHeadBytes && n->inline_data && n->size != 0);
}

bool DecodeInode(std::string_view value, Inode* n) {
  Decoder d(value);
  if (!DecodeHead(d, n)) return false;
  n->data.assign(d.rest());
  if (n->inline_data && n->data.size() != n->size) return false;
  return true;
}

}  // namespace fs

// Value encodings of S, D, V, O, T, W, H and N keys: see fs/records.h.
#include "fs/records.h"

#include "fs/coding.h"

namespace fs {
namespace {
constexpr char kSuperMagic[4] = {'K', 'V', 'F', 'S'};
// First byte of a place record. Format 1 records started with the parent inode number,
// whose first byte is 0 for every inode number a volume hands out.
constexpr uint8_t kPlaceFormat = 2;
}  // namespace

std::string EncodeSuperblock(Superblock& sb) {
  sb.format = sb.features != 0 ? 3 : 2;
  std::string out(kSuperMagic, sizeof(kSuperMagic));
  PutBE32(&out, sb.format);
  PutBE32(&out, sb.chunk_size);
  PutBE32(&out, sb.version_retention);
  PutBE64(&out, sb.ino_limit);
  PutBE64(&out, static_cast<uint64_t>(sb.created_ns));
  PutBE64(&out, static_cast<uint64_t>(sb.version_min_age_ns));
  PutBE64(&out, static_cast<uint64_t>(sb.trash_retention_ns));
  if (sb.format >= 3) PutBE32(&out, sb.features);
  return out;
}

bool DecodeSuperblock(std::string_view value, Superblock* sb) {
  if (value.substr(0, 4) != std::string_view(kSuperMagic, 4)) return false;
  Decoder d(value.substr(4));
  if (!(d.BE32(&sb->format) && d.BE32(&sb->chunk_size) && d.BE32(&sb->version_retention) &&
        d.BE64(&sb->ino_limit) && d.I64(&sb->created_ns))) {
    return false;
  }
  sb->features = 0;
  if (sb->format == 1) {
    sb->version_min_age_ns = 0;
    sb->trash_retention_ns = 24LL * 3600 * 1'000'000'000;
    return true;
  }
  if (!d.I64(&sb->version_min_age_ns) || !d.I64(&sb->trash_retention_ns)) return false;
  // A newer format is reported by the caller; its first fields are ours.
  return sb->format == 2 || d.BE32(&sb->features);
}

std::string EncodeDentry(const DentryValue& v) {
  std::string out;
  PutBE64(&out, v.ino);
  PutBE32(&out, v.type);
  return out;
}

bool DecodeDentry(std::string_view value, DentryValue* v) {
  Decoder d(value);
  return d.BE64(&v->ino) && d.BE32(&v->type) && v->ino != 0;
}

std::string EncodeVersion(const VersionRecord& v) {
  std::string out;
  PutBE64(&out, static_cast<uint64_t>(v.time_ns));
  PutBE64(&out, v.size);
  return out;
}

bool DecodeVersion(std::string_view value, VersionRecord* v) {
  Decoder d(value);
  return d.I64(&v->time_ns) && d.BE64(&v->size);
}

std::string EncodePlace(const PlaceRecord& p) {
  std::string out;
  PutU8(&out, kPlaceFormat);
  PutBE64(&out, p.parent);
  PutBE64(&out, p.ino);
  PutBE32(&out, p.mode);
  PutBE64(&out, p.size);
  PutBE64(&out, static_cast<uint64_t>(p.time_ns));
  PutU8(&out, p.flags);
  PutBE64(&out, static_cast<uint64_t>(p.parent_mtime_ns));
  PutBE32(&out, static_cast<uint32_t>(p.name.size()));
  out.append(p.name);
  out.append(p.path);
  return out;
}

bool DecodePlace(std::string_view value, PlaceRecord* p) {
  Decoder d(value);
  uint8_t format = 0;
  if (!value.empty() && static_cast<uint8_t>(value[0]) == kPlaceFormat) {
    uint32_t name_len = 0;
    if (!d.U8(&format) || !d.BE64(&p->parent) || !d.BE64(&p->ino) || !d.BE32(&p->mode) ||
        !d.BE64(&p->size) || !d.I64(&p->time_ns) || !d.U8(&p->flags) ||
        !d.I64(&p->parent_mtime_ns) || !d.BE32(&name_len) || d.rest().size() < name_len) {
      return false;
    }
    p->name.assign(d.rest().substr(0, name_len));
    p->path.assign(d.rest().substr(name_len));
    return true;
  }
  // Format 1: parent, ino, mode, size, name.
  if (!d.BE64(&p->parent) || !d.BE64(&p->ino) || !d.BE32(&p->mode) || !d.BE64(&p->size)) {
    return false;
  }
  p->name.assign(d.rest());
  p->path = p->name;
  p->time_ns = 0;
  p->flags = 0;
  p->parent_mtime_ns = 0;
  return true;
}

std::string EncodeHistoryLink(const HistoryLink& h) {
  std::string out;
  PutBE64(&out, h.prev);
  PutBE64(&out, h.base);
  return out;
}

bool DecodeHistoryLink(std::string_view value, HistoryLink* h) {
  Decoder d(value);
  return d.BE64(&h->prev) && d.BE64(&h->base);  // prev 0: the older part was pruned
}

std::string EncodeSnapshot(const SnapshotRecord& s) {
  std::string out;
  PutBE32(&out, s.id);
  PutBE64(&out, s.sequence);
  PutBE64(&out, static_cast<uint64_t>(s.time_ns));
  return out;
}

bool DecodeSnapshot(std::string_view value, SnapshotRecord* s) {
  Decoder d(value);
  return d.BE32(&s->id) && d.BE64(&s->sequence) && d.I64(&s->time_ns);
}

}  // namespace fs

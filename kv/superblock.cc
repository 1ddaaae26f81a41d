// Superblock encoding: magic, fields, then a crc32 of everything before it.
#include "kv/superblock.h"

#include <cstring>

#include "kv/coding.h"
#include "kv/format.h"
#include "kv/record.h"

namespace kv {

std::string Superblock::Encode() const {
  std::string out(format::kSuperblockMagic, sizeof(format::kSuperblockMagic));
  PutFixed32(&out, format_version);
  PutFixed32(&out, page_count);
  PutFixed64(&out, store_id);
  PutFixed64(&out, durable_sequence);
  PutFixed64(&out, created_ns);
  PutFixed16(&out, static_cast<uint16_t>(sharder_name.size()));
  out += sharder_name;
  PutFixed32(&out, Crc32(out.data(), out.size()));
  return out;
}

Status Superblock::Decode(const std::string& data, Superblock* sb) {
  constexpr size_t kMagic = sizeof(format::kSuperblockMagic);
  if (data.size() < kMagic + 4 || std::memcmp(data.data(), format::kSuperblockMagic, kMagic) != 0) {
    return Status::Corruption("not a kvfs store: bad superblock magic");
  }
  if (Crc32(data.data(), data.size() - 4) != DecodeFixed32(data.data() + data.size() - 4)) {
    return Status::Corruption("superblock checksum mismatch");
  }
  Decoder d(data.data() + kMagic, data.size() - kMagic - 4);
  uint16_t name_len = 0;
  if (!d.GetFixed32(&sb->format_version)) return Status::Corruption("superblock truncated");
  if (sb->format_version > format::kFormatVersion) {
    return Status::NotSupported("store format version " + std::to_string(sb->format_version) +
                                " is newer than this kvfs supports (" +
                                std::to_string(format::kFormatVersion) + "); upgrade kvfs");
  }
  if (!d.GetFixed32(&sb->page_count) || !d.GetFixed64(&sb->store_id) ||
      !d.GetFixed64(&sb->durable_sequence) || !d.GetFixed64(&sb->created_ns) ||
      !d.GetFixed16(&name_len) || !d.GetBytes(name_len, &sb->sharder_name)) {
    return Status::Corruption("superblock truncated");
  }
  if (sb->page_count == 0 || sb->page_count > 65536) {
    return Status::Corruption("superblock page count out of range");
  }
  return Status::OK();
}

Status ReadSuperblock(Env* env, const std::string& dir, Superblock* sb) {
  std::string data;
  KV_RETURN_IF_ERROR(ReadWholeFile(env, dir + "/" + format::kSuperblockFile, &data));
  return Superblock::Decode(data, sb);
}

Status WriteSuperblock(Env* env, const std::string& dir, const Superblock& sb) {
  return WriteFileAtomically(env, dir + "/" + format::kSuperblockFile, sb.Encode());
}

}  // namespace kv

// Record encoding: a fixed little-endian header, then the key, then the stored value.
#include "kv/record.h"

#include "kv/coding.h"
#include "kv/crc32c.h"

namespace kv {

using namespace format;

uint32_t Crc32(const void* data, size_t n, uint32_t seed) { return Crc32c(data, n, seed); }

void EncodeRecordHeader(const RecordHeader& h, char* buf) {
  EncodeFixed32(buf + kRecDataCrc, h.data_crc);
  buf[kRecType] = static_cast<char>(h.type);
  buf[kRecFlags] = static_cast<char>(h.flags);
  EncodeFixed16(buf + kRecKeyLen, h.key_len);
  EncodeFixed32(buf + kRecValueLen, h.value_len);
  EncodeFixed64(buf + kRecSequence, h.sequence);
  EncodeFixed64(buf + kRecTime, h.time_ns);
  EncodeFixed64(buf + kRecPrev, h.prev);
  EncodeFixed32(buf + kRecRawLen, h.raw_len);
  EncodeFixed32(buf + kRecPartRecords, h.part_records);
  EncodeFixed32(buf + kRecBatchPages, h.batch_pages);
  EncodeFixed32(buf + kRecReserved, 0);
  EncodeFixed32(buf + kRecHeaderCrc, Crc32(buf + 4, kRecordHeaderSize - 4));
}

void EncodeRecord(RecordHeader header, std::string_view key, std::string_view stored_value,
                  std::string* out) {
  header.key_len = static_cast<uint16_t>(key.size());
  header.value_len = static_cast<uint32_t>(stored_value.size());
  header.data_crc = Crc32(stored_value.data(), stored_value.size(), Crc32(key.data(), key.size()));
  size_t start = out->size();
  out->resize(start + kRecordHeaderSize);
  EncodeRecordHeader(header, out->data() + start);
  out->append(key);
  out->append(stored_value);
}

Status DecodeRecordHeader(const char* buf, RecordHeader* h) {
  if (DecodeFixed32(buf + kRecHeaderCrc) != Crc32(buf + 4, kRecordHeaderSize - 4)) {
    return Status::Corruption("record header checksum mismatch");
  }
  h->data_crc = DecodeFixed32(buf + kRecDataCrc);
  h->type = static_cast<uint8_t>(buf[kRecType]);
  h->flags = static_cast<uint8_t>(buf[kRecFlags]);
  h->key_len = DecodeFixed16(buf + kRecKeyLen);
  h->value_len = DecodeFixed32(buf + kRecValueLen);
  h->sequence = DecodeFixed64(buf + kRecSequence);
  h->time_ns = DecodeFixed64(buf + kRecTime);
  h->prev = DecodeFixed64(buf + kRecPrev);
  h->raw_len = DecodeFixed32(buf + kRecRawLen);
  h->part_records = DecodeFixed32(buf + kRecPartRecords);
  h->batch_pages = DecodeFixed32(buf + kRecBatchPages);
  if (h->type != kTypePut && h->type != kTypeDelete) {
    return Status::Corruption("unknown record type " + std::to_string(h->type));
  }
  if ((h->flags & ~kKnownFlags) != 0) {
    return Status::Corruption("unknown record flags " + std::to_string(h->flags));
  }
  if (h->value_len > kMaxValueSize || h->raw_len > kMaxValueSize || h->part_records == 0 ||
      h->batch_pages == 0 || (!h->compressed() && h->raw_len != h->value_len) ||
      (h->deleted() && h->value_len != 0)) {
    return Status::Corruption("record header fields out of range");
  }
  return Status::OK();
}

Status VerifyRecordData(const RecordHeader& header, std::string_view record) {
  if (record.size() != header.record_size()) {
    return Status::Corruption("record length mismatch");
  }
  return VerifyRecordParts(header, record.substr(kRecordHeaderSize, header.key_len),
                           record.substr(kRecordHeaderSize + header.key_len));
}

Status VerifyRecordParts(const RecordHeader& header, std::string_view key,
                         std::string_view stored_value) {
  if (key.size() != header.key_len || stored_value.size() != header.value_len) {
    return Status::Corruption("record length mismatch");
  }
  // The checksum covers the key and the stored value, which follow each other on disk.
  const uint32_t key_crc = Crc32(key.data(), key.size());
  if (Crc32(stored_value.data(), stored_value.size(), key_crc) != header.data_crc) {
    return Status::Corruption("record data checksum mismatch");
  }
  return Status::OK();
}

}  // namespace kv

// Reading page files byte by byte, for tests that damage them on purpose.
#pragma once

#include <cstdint>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "kv/format.h"
#include "kv/record.h"

namespace kvtest {

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

struct ParsedRecord {
  uint64_t offset;
  kv::RecordHeader header;
  std::string key;
};

// The whole, valid records of a page file, in file order (stops at the first bad one).
inline std::vector<ParsedRecord> ParsePage(const std::string& path) {
  const std::string data = ReadFile(path);
  std::vector<ParsedRecord> out;
  uint64_t off = kv::format::kPageHeaderSize;
  while (off + kv::format::kRecordHeaderSize <= data.size()) {
    kv::RecordHeader h;
    if (!kv::DecodeRecordHeader(data.data() + off, &h).ok()) break;
    if (off + h.record_size() > data.size()) break;
    out.push_back({off, h, data.substr(off + kv::format::kRecordHeaderSize, h.key_len)});
    off += h.record_size();
  }
  return out;
}

}  // namespace kvtest

// The parts of store.h every backend shares: retention policies, the default sharder,
// Put/Delete, stats totals.
#include "kv/store.h"

#include <algorithm>

namespace kv {
namespace {

class KeepLastN final : public RetentionPolicy {
 public:
  explicit KeepLastN(uint32_t n) : n_(n) {}
  void Select(std::string_view, std::span<const VersionInfo> versions,
              std::vector<bool>* keep) const override {
    for (size_t i = 0; i < versions.size() && i < n_; ++i) (*keep)[i] = true;
  }

 private:
  const uint32_t n_;
};

class KeepLatest final : public RetentionPolicy {
 public:
  void Select(std::string_view, std::span<const VersionInfo> versions,
              std::vector<bool>* keep) const override {
    // A deleted key goes entirely: its tombstone has nothing left to hide.
    if (!versions.empty() && !versions[0].deleted) (*keep)[0] = true;
  }
};

class KeepVisibleAt final : public RetentionPolicy {
 public:
  explicit KeepVisibleAt(SequenceNumber seq) : seq_(seq) {}
  void Select(std::string_view, std::span<const VersionInfo> versions,
              std::vector<bool>* keep) const override {
    for (size_t i = 0; i < versions.size(); ++i) {
      (*keep)[i] = true;
      if (versions[i].sequence <= seq_) break;  // the version a reader at seq_ sees
    }
  }

 private:
  const SequenceNumber seq_;
};

class WholeKey : public Sharder {
 public:
  std::string_view ShardPart(std::string_view key) const override { return key; }
  bool PrefixShardPart(std::string_view, std::string_view*) const override { return false; }
  std::string Name() const override { return "whole-key"; }
};

class NameOnly final : public WholeKey {
 public:
  explicit NameOnly(std::string name) : name_(std::move(name)) {}
  std::string Name() const override { return name_; }

 private:
  const std::string name_;
};

}  // namespace

std::shared_ptr<const RetentionPolicy> KeepLatestPolicy() {
  static const auto policy = std::make_shared<const KeepLatest>();
  return policy;
}
std::shared_ptr<const RetentionPolicy> KeepLastNPolicy(uint32_t n) {
  return std::make_shared<const KeepLastN>(std::max<uint32_t>(n, 1));
}
std::shared_ptr<const RetentionPolicy> KeepVisibleAtPolicy(SequenceNumber sequence) {
  return std::make_shared<const KeepVisibleAt>(sequence);
}

const Sharder* WholeKeySharder() {
  static const WholeKey sharder;
  return &sharder;
}

std::shared_ptr<const Sharder> NameOnlySharder(std::string name) {
  return std::make_shared<NameOnly>(std::move(name));
}

std::shared_ptr<const Sharder> FindSharder(const std::string& name,
                                           const std::vector<std::shared_ptr<const Sharder>>& in) {
  for (const auto& s : in) {
    if (s && s->Name() == name) return s;
  }
  return nullptr;
}

Status Store::Put(const WriteOptions& options, std::string_view key, std::string_view value) {
  WriteBatch batch;
  batch.Put(key, value);
  return Write(options, batch);
}

Status Store::Delete(const WriteOptions& options, std::string_view key) {
  WriteBatch batch;
  batch.Delete(key);
  return Write(options, batch);
}

ShardStats StoreStats::Total() const {
  ShardStats t;
  for (const ShardStats& s : shards) {
    t.live_keys += s.live_keys;
    t.tombstones += s.tombstones;
    t.records += s.records;
    t.file_bytes += s.file_bytes;
    t.live_bytes += s.live_bytes;
    t.garbage_bytes += s.garbage_bytes;
    t.raw_value_bytes += s.raw_value_bytes;
    t.stored_value_bytes += s.stored_value_bytes;
    t.compactions += s.compactions;
  }
  return t;
}

}  // namespace kv

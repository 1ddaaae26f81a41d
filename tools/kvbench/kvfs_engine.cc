// The kvbench adapter for kvfs's page store (kv::OpenPageStore) with default kv::Options:
// 16 pages, zlib level 1 for values of 128 bytes and more (so db_bench's 100-byte values are
// stored raw), background compaction on.
#include <memory>
#include <string>

#include "kv/store.h"
#include "tools/kvbench/engine.h"

namespace kvbench {
namespace {

class KvfsEngine final : public Engine {
 public:
  kv::Status Open(const std::string& dir) override {
    kv::Options options;
    options.create_if_missing = true;
    return kv::OpenPageStore(options, dir, &store_);
  }

  void Close() override { store_.reset(); }

  kv::Status Put(std::string_view key, std::string_view value, bool sync) override {
    kv::WriteOptions options;
    options.sync = sync;
    return store_->Put(options, key, value);
  }

  kv::Status Get(std::string_view key, std::string* value) override {
    return store_->Get(kv::ReadOptions(), key, value);
  }

  kv::Status Scan(const std::function<void(std::string_view, std::string_view)>& visit) override {
    // The empty prefix covers the whole keyspace, merged across shards in key order.
    std::unique_ptr<kv::Iterator> it = store_->NewIterator(kv::ReadOptions(), "");
    for (it->SeekToFirst(); it->Valid(); it->Next()) visit(it->key(), it->value());
    return it->status();
  }

  std::optional<IndexMemory> index_memory() override {
    kv::StoreStats stats = store_->Stats();
    return IndexMemory{stats.index_memory_bytes, stats.Total().live_keys};
  }

 private:
  std::unique_ptr<kv::Store> store_;
};

}  // namespace

std::unique_ptr<Engine> NewKvfsEngine() { return std::make_unique<KvfsEngine>(); }

}  // namespace kvbench

// The kvbench adapter for RocksDB (librocksdb-dev), compiled when KVBENCH_HAVE_ROCKSDB is set.
//
// Options: rocksdb::Options defaults plus create_if_missing. That means a 64 MiB write buffer,
// an 8 MiB block cache (in 7.x), Snappy block compression (when RocksDB was
// built with it), no bloom filter (BlockBasedTableOptions::filter_policy is nullptr by
// default) and the default background job limits. No tuning such as IncreaseParallelism() or
// OptimizeLevelStyleCompaction(): kvfs runs on its defaults too.
#include <rocksdb/db.h>
#include <rocksdb/iterator.h>
#include <rocksdb/options.h>

#include <memory>
#include <string>

#include "tools/kvbench/engine.h"

namespace kvbench {
namespace {

kv::Status FromRocksDb(const rocksdb::Status& s) {
  if (s.ok()) return kv::Status::OK();
  if (s.IsNotFound()) return kv::Status::NotFound(s.ToString());
  if (s.IsCorruption()) return kv::Status::Corruption("rocksdb: " + s.ToString());
  if (s.IsNoSpace()) return kv::Status::NoSpace("rocksdb: " + s.ToString());
  return kv::Status::IOError("rocksdb: " + s.ToString());
}

rocksdb::Slice ToSlice(std::string_view s) { return rocksdb::Slice(s.data(), s.size()); }
std::string_view ToView(const rocksdb::Slice& s) { return std::string_view(s.data(), s.size()); }

class RocksDbEngine final : public Engine {
 public:
  ~RocksDbEngine() override { Close(); }

  kv::Status Open(const std::string& dir) override {
    rocksdb::Options options;
    options.create_if_missing = true;
    rocksdb::DB* db = nullptr;
    rocksdb::Status s = rocksdb::DB::Open(options, dir, &db);
    db_.reset(db);
    return FromRocksDb(s);
  }

  void Close() override {
    if (db_ == nullptr) return;
    // Close() waits for background work to stop. Its error is dropped: nothing is pending
    // that a later Open would not find and report.
    db_->Close().PermitUncheckedError();
    db_.reset();
  }

  kv::Status Put(std::string_view key, std::string_view value, bool sync) override {
    rocksdb::WriteOptions options;
    options.sync = sync;
    return FromRocksDb(db_->Put(options, ToSlice(key), ToSlice(value)));
  }

  kv::Status Get(std::string_view key, std::string* value) override {
    return FromRocksDb(db_->Get(rocksdb::ReadOptions(), ToSlice(key), value));
  }

  kv::Status Scan(const std::function<void(std::string_view, std::string_view)>& visit) override {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
    for (it->SeekToFirst(); it->Valid(); it->Next()) visit(ToView(it->key()), ToView(it->value()));
    return FromRocksDb(it->status());
  }

 private:
  std::unique_ptr<rocksdb::DB> db_;
};

}  // namespace

std::unique_ptr<Engine> NewRocksDbEngine() { return std::make_unique<RocksDbEngine>(); }

}  // namespace kvbench

// The kvbench adapter for LevelDB (libleveldb-dev), compiled when KVBENCH_HAVE_LEVELDB is set.
//
// Options: leveldb::Options defaults plus create_if_missing, as db_bench runs it: 4 MiB write
// buffer, 8 MiB block cache, Snappy block compression (when LevelDB was built with it), and no
// bloom filter (filter_policy is nullptr by default). kvfs has no filters either.
#include <leveldb/db.h>
#include <leveldb/iterator.h>
#include <leveldb/options.h>

#include <memory>
#include <string>

#include "tools/kvbench/engine.h"

namespace kvbench {
namespace {

kv::Status FromLevelDb(const leveldb::Status& s) {
  if (s.ok()) return kv::Status::OK();
  if (s.IsNotFound()) return kv::Status::NotFound(s.ToString());
  if (s.IsCorruption()) return kv::Status::Corruption("leveldb: " + s.ToString());
  return kv::Status::IOError("leveldb: " + s.ToString());
}

leveldb::Slice ToSlice(std::string_view s) { return leveldb::Slice(s.data(), s.size()); }
std::string_view ToView(const leveldb::Slice& s) { return std::string_view(s.data(), s.size()); }

class LevelDbEngine final : public Engine {
 public:
  kv::Status Open(const std::string& dir) override {
    leveldb::Options options;
    options.create_if_missing = true;
    leveldb::DB* db = nullptr;
    leveldb::Status s = leveldb::DB::Open(options, dir, &db);
    db_.reset(db);
    return FromLevelDb(s);
  }

  void Close() override { db_.reset(); }

  kv::Status Put(std::string_view key, std::string_view value, bool sync) override {
    leveldb::WriteOptions options;
    options.sync = sync;
    return FromLevelDb(db_->Put(options, ToSlice(key), ToSlice(value)));
  }

  kv::Status Get(std::string_view key, std::string* value) override {
    return FromLevelDb(db_->Get(leveldb::ReadOptions(), ToSlice(key), value));
  }

  kv::Status Scan(const std::function<void(std::string_view, std::string_view)>& visit) override {
    std::unique_ptr<leveldb::Iterator> it(db_->NewIterator(leveldb::ReadOptions()));
    for (it->SeekToFirst(); it->Valid(); it->Next()) visit(ToView(it->key()), ToView(it->value()));
    return FromLevelDb(it->status());
  }

 private:
  std::unique_ptr<leveldb::DB> db_;
};

}  // namespace

std::unique_ptr<Engine> NewLevelDbEngine() { return std::make_unique<LevelDbEngine>(); }

}  // namespace kvbench

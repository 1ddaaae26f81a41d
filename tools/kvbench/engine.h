// Engine: the narrow interface kvbench drives, with one adapter per key-value engine (kvfs's
// page store, LevelDB, RocksDB), so that every engine runs exactly the same workload.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kv/status.h"

namespace kvbench {

// Memory the engine's in-memory index holds, and the keys it indexes.
struct IndexMemory {
  uint64_t bytes = 0;
  uint64_t live_keys = 0;
};

// One database at a time. Errors of foreign engines are mapped to kv::Status with their
// message kept.
//
// Thread safety: Put and Get may be called concurrently while the database is open; Open,
// Close and Scan must not race with anything else.
class Engine {
 public:
  virtual ~Engine() = default;
  Engine() = default;
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Opens the database in directory `dir`, creating it if it holds none.
  // REQUIRES: no database is open.
  virtual kv::Status Open(const std::string& dir) = 0;
  // Closes the open database (its files stay); a no-op when none is open.
  virtual void Close() = 0;
  // Writes one key as a single-op write; durable before returning when `sync`.
  virtual kv::Status Put(std::string_view key, std::string_view value, bool sync) = 0;
  // Reads the newest value of `key`; NotFound when it has none.
  virtual kv::Status Get(std::string_view key, std::string* value) = 0;
  // Calls `visit` for every key, in ascending byte order.
  virtual kv::Status Scan(
      const std::function<void(std::string_view key, std::string_view value)>& visit) = 0;
  // The index memory, for engines that report it (kvfs); nullopt otherwise.
  virtual std::optional<IndexMemory> index_memory() { return std::nullopt; }
};

// An engine kvbench can run: its name on the command line and in the output.
struct EngineFactory {
  std::string name;
  std::function<std::unique_ptr<Engine>()> make;
};

// The engines compiled into this binary, kvfs first.
std::vector<EngineFactory> BuiltEngines();

std::unique_ptr<Engine> NewKvfsEngine();
#ifdef KVBENCH_HAVE_LEVELDB
std::unique_ptr<Engine> NewLevelDbEngine();
#endif
#ifdef KVBENCH_HAVE_ROCKSDB
std::unique_ptr<Engine> NewRocksDbEngine();
#endif

}  // namespace kvbench

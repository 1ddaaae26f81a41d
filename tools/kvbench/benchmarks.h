// BenchmarkRunner: runs db_bench-style benchmarks on one Engine, in fresh directories, and
// checks the answers as it goes (a read that misses a written key is an engine error).
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kv/status.h"
#include "tools/kvbench/engine.h"

namespace kvbench {

struct BenchConfig {
  int num = 1000000;     // keys in the keyspace; ops of the fill, overwrite and read runs
  int value_size = 100;  // bytes per value
  int sync_ops = 2000;   // ops per thread of fillsync
};

// How much work a benchmark did, and how long it took.
struct Throughput {
  uint64_t ops = 0;
  double seconds = 0;
  double ops_per_sec() const { return seconds > 0 ? ops / seconds : 0; }
};

// Measured on a database holding all `num` keys, right after fillseq.
struct StoreMetrics {
  double reopen_ms = 0;
  std::optional<double> index_bytes_per_key;  // beyond the key bytes; kvfs only
};

// The benchmark names Run accepts, except fillsync/<threads> (see IsFillSync).
//   fillseq     fresh database, keys 0..num-1 in order
//   fillrandom  fresh database, num puts of random keys (some repeat, as in db_bench)
//   overwrite   num puts of random keys into the current database
//   readrandom  num gets of random keys among those the current database holds
//   readseq     one ordered scan of the whole current database; ops = keys seen
//   fillsync/T  fresh database, T threads each doing sync_ops synced puts of random keys;
//               ops/s is the total over all threads
inline constexpr std::string_view kFillSeq = "fillseq";
inline constexpr std::string_view kFillRandom = "fillrandom";
inline constexpr std::string_view kOverwrite = "overwrite";
inline constexpr std::string_view kReadRandom = "readrandom";
inline constexpr std::string_view kReadSeq = "readseq";
inline constexpr std::string_view kFillSync = "fillsync";

// The name of fillsync with `threads` threads: "fillsync/<threads>".
std::string FillSyncName(int threads);
// Parses "fillsync/<threads>"; returns 0 when `name` is not one.
int FillSyncThreads(std::string_view name);

// Not thread-safe; one runner drives one engine at a time.
class BenchmarkRunner {
 public:
  // Databases go in directories `parent_dir`/<n>, created as needed; each is removed when
  // the next replaces it, and the last by the destructor.
  BenchmarkRunner(const BenchConfig& config, Engine* engine, std::filesystem::path parent_dir);
  // Closes the database and removes its directory.
  ~BenchmarkRunner();
  BenchmarkRunner(const BenchmarkRunner&) = delete;
  BenchmarkRunner& operator=(const BenchmarkRunner&) = delete;

  // Runs one benchmark. InvalidArgument for an unknown name.
  kv::Status Run(std::string_view name, Throughput* result);
  // Closes and reopens the current database, timing the open, then reads its index memory.
  // REQUIRES: a database is open.
  kv::Status MeasureReopen(StoreMetrics* metrics);

 private:
  kv::Status OpenFresh();
  kv::Status FillSeq(Throughput* result);
  kv::Status WriteRandom(uint32_t seed, Throughput* result);
  kv::Status ReadRandom(Throughput* result);
  kv::Status ReadSeq(Throughput* result);
  kv::Status FillSync(int threads, Throughput* result);
  void MarkPresent(int k);

  const BenchConfig config_;
  Engine* const engine_;
  const std::filesystem::path parent_dir_;
  std::filesystem::path dir_;  // of the current database; empty when none
  int generation_ = 0;
  bool open_ = false;
  // Which keys the current database holds; every one was written with a value_size value.
  std::vector<bool> present_;
  uint64_t present_count_ = 0;
};

}  // namespace kvbench

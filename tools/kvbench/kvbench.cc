// kvbench: benchmarks kvfs's key-value engine against LevelDB and RocksDB with db_bench's
// workloads, printing one "<benchmark> <engine> <value>" line per result. Slow results never
// fail the run; the exit status is non-zero only when an engine reports an error.
#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "tools/kvbench/benchmarks.h"
#include "tools/kvbench/engine.h"
#include "tools/kvbench/workload.h"

namespace kvbench {

std::vector<EngineFactory> BuiltEngines() {
  std::vector<EngineFactory> engines;
  engines.push_back({"kvfs", NewKvfsEngine});
#ifdef KVBENCH_HAVE_LEVELDB
  engines.push_back({"leveldb", NewLevelDbEngine});
#endif
#ifdef KVBENCH_HAVE_ROCKSDB
  engines.push_back({"rocksdb", NewRocksDbEngine});
#endif
  return engines;
}

namespace {

const std::vector<std::string> kKnownEngines = {"kvfs", "leveldb", "rocksdb"};

// A directory created for this run under --dir, removed with everything in it on exit.
class RunDirectory {
 public:
  RunDirectory() = default;
  ~RunDirectory() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);  // best effort
  }
  RunDirectory(const RunDirectory&) = delete;
  RunDirectory& operator=(const RunDirectory&) = delete;

  // Creates `parent` if needed and a fresh, uniquely named directory in it.
  kv::Status Create(const std::filesystem::path& parent) {
    std::error_code ec;
    std::filesystem::create_directories(parent, ec);
    if (ec) return kv::Status::IOError(parent.string() + ": " + ec.message());
    std::string pattern = (parent / "run-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) return kv::Status::FromErrno(errno, pattern);
    path_ = pattern;
    return kv::Status::OK();
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

std::string CpuModel() {
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line;
  while (std::getline(cpuinfo, line)) {
    if (line.starts_with("model name")) {
      size_t colon = line.find(':');
      if (colon != std::string::npos && colon + 2 <= line.size()) return line.substr(colon + 2);
    }
  }
  return "unknown CPU";
}

struct Flags {
  BenchConfig config;
  std::vector<std::string> benchmarks = {"fillseq",    "fillrandom", "overwrite",
                                         "readrandom", "readseq",    "fillsync"};
  std::vector<std::string> engines = kKnownEngines;
  std::vector<int> sync_threads = {1, 8};
  std::string dir = "/tmp/kvbench";
};

bool IsKnownBenchmark(std::string_view name) {
  return name == kFillSeq || name == kFillRandom || name == kOverwrite || name == kReadRandom ||
         name == kReadSeq || FillSyncThreads(name) > 0;
}

// "fillsync" stands for fillsync/<t> for each of --sync_threads. Returns false (after
// printing why) on an unknown name.
bool ExpandBenchmarks(const Flags& flags, std::vector<std::string>* out) {
  for (const std::string& name : flags.benchmarks) {
    if (name == kFillSync) {
      for (int t : flags.sync_threads) out->push_back(FillSyncName(t));
    } else if (IsKnownBenchmark(name)) {
      out->push_back(name);
    } else {
      std::fprintf(stderr,
                   "kvbench: unknown benchmark '%s' (known: fillseq, fillrandom, overwrite, "
                   "readrandom, readseq, fillsync, fillsync/<threads>)\n",
                   name.c_str());
      return false;
    }
  }
  return true;
}

struct MetricLine {
  std::string engine;
  StoreMetrics metrics;
};

// Runs every benchmark on one engine, printing each result as it comes. The store fillseq
// builds is reopened right after, for the metrics.
kv::Status RunEngine(const Flags& flags, const EngineFactory& factory,
                     const std::vector<std::string>& benchmarks,
                     const std::filesystem::path& run_dir, std::vector<MetricLine>* metrics) {
  std::unique_ptr<Engine> engine = factory.make();
  BenchmarkRunner runner(flags.config, engine.get(), run_dir / factory.name);
  for (const std::string& name : benchmarks) {
    Throughput result;
    kv::Status s = runner.Run(name, &result);
    if (!s.ok()) return kv::Status::IOError(name + ": " + s.ToString());
    std::printf("%s %s %.0f\n", name.c_str(), factory.name.c_str(), result.ops_per_sec());
    std::fflush(stdout);
    if (name == kFillSeq) {
      MetricLine line{factory.name, {}};
      s = runner.MeasureReopen(&line.metrics);
      if (!s.ok()) return kv::Status::IOError("reopen after fillseq: " + s.ToString());
      metrics->push_back(std::move(line));
    }
  }
  return kv::Status::OK();
}

int Main(int argc, char** argv) {
  Flags flags;
  CLI::App app{
      "kvbench: db_bench-style benchmarks of the kvfs key-value engine, LevelDB and RocksDB.\n"
      "Prints '<benchmark> <engine> <ops/s>' per result, then index_bytes_per_key and\n"
      "reopen_ms of the store fillseq built."};
  app.add_option("--num", flags.config.num, "Keys in the keyspace, and ops per benchmark")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--value_size", flags.config.value_size, "Bytes per value")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--benchmarks", flags.benchmarks,
                 "Comma-separated: fillseq, fillrandom, overwrite, readrandom, readseq, "
                 "fillsync (= fillsync/<t> for each --sync_threads), fillsync/<threads>")
      ->delimiter(',')
      ->capture_default_str();
  app.add_option("--engines", flags.engines, "Comma-separated: kvfs, leveldb, rocksdb")
      ->delimiter(',')
      ->check(CLI::IsMember(kKnownEngines))
      ->capture_default_str();
  app.add_option("--sync_ops", flags.config.sync_ops, "Synced puts per thread in fillsync")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--sync_threads", flags.sync_threads, "Thread counts that fillsync runs with")
      ->delimiter(',')
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--dir", flags.dir, "Parent of the temporary databases (removed afterwards)")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  std::vector<std::string> benchmarks;
  if (!ExpandBenchmarks(flags, &benchmarks)) return 2;

  std::vector<EngineFactory> engines;
  const std::vector<EngineFactory> built = BuiltEngines();
  for (const std::string& name : flags.engines) {
    bool found = false;
    for (const EngineFactory& factory : built) {
      if (factory.name == name) {
        engines.push_back(factory);
        found = true;
      }
    }
    if (!found) {
      std::fprintf(stderr, "kvbench: %s was not found at build time; skipped\n", name.c_str());
    }
  }

  std::printf(
      "# kvbench: %u cores (%s); %d keys of %zu bytes, %d-byte values (~50%% compressible); "
      "fillsync %d ops/thread\n",
      std::thread::hardware_concurrency(), CpuModel().c_str(), flags.config.num, kKeySize,
      flags.config.value_size, flags.config.sync_ops);
  std::fflush(stdout);

  RunDirectory run_dir;
  if (kv::Status s = run_dir.Create(flags.dir); !s.ok()) {
    std::fprintf(stderr, "kvbench: %s\n", s.ToString().c_str());
    return 1;
  }
  std::vector<MetricLine> metrics;
  for (const EngineFactory& factory : engines) {
    kv::Status s = RunEngine(flags, factory, benchmarks, run_dir.path(), &metrics);
    if (!s.ok()) {
      std::fprintf(stderr, "kvbench: %s: %s\n", factory.name.c_str(), s.message().c_str());
      return 1;
    }
  }
  for (const MetricLine& line : metrics) {
    if (line.metrics.index_bytes_per_key.has_value()) {
      std::printf("index_bytes_per_key %s %.1f\n", line.engine.c_str(),
                  *line.metrics.index_bytes_per_key);
    }
  }
  for (const MetricLine& line : metrics) {
    std::printf("reopen_ms %s %.1f\n", line.engine.c_str(), line.metrics.reopen_ms);
  }
  return 0;
}

}  // namespace
}  // namespace kvbench

int main(int argc, char** argv) { return kvbench::Main(argc, argv); }

// The db_bench-style benchmarks of kvbench (see benchmarks.h).
#include "tools/kvbench/benchmarks.h"

#include <charconv>
#include <chrono>
#include <latch>
#include <system_error>
#include <thread>
#include <utility>

#include "tools/kvbench/workload.h"

namespace kvbench {
namespace {

// Fixed seeds, so that every engine writes and reads the same keys. Values use db_bench's 301.
constexpr uint32_t kValueSeed = 301;
constexpr uint32_t kFillRandomSeed = 1000;
constexpr uint32_t kOverwriteSeed = 2000;
constexpr uint32_t kReadRandomSeed = 3000;
constexpr uint32_t kFillSyncSeed = 4000;  // + thread index

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

kv::Status FromErrorCode(const std::error_code& ec, const std::filesystem::path& path) {
  return kv::Status::IOError(path.string() + ": " + ec.message());
}

}  // namespace

std::string FillSyncName(int threads) {
  return std::string(kFillSync) + "/" + std::to_string(threads);
}

int FillSyncThreads(std::string_view name) {
  std::string_view prefix = kFillSync;
  if (name.size() <= prefix.size() + 1 || !name.starts_with(prefix) || name[prefix.size()] != '/') {
    return 0;
  }
  std::string_view digits = name.substr(prefix.size() + 1);
  int threads = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), threads);
  if (ec != std::errc() || end != digits.data() + digits.size() || threads <= 0) return 0;
  return threads;
}

BenchmarkRunner::BenchmarkRunner(const BenchConfig& config, Engine* engine,
                                 std::filesystem::path parent_dir)
    : config_(config), engine_(engine), parent_dir_(std::move(parent_dir)) {}

BenchmarkRunner::~BenchmarkRunner() {
  engine_->Close();
  std::error_code ec;
  if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);  // best effort
}

kv::Status BenchmarkRunner::Run(std::string_view name, Throughput* result) {
  *result = Throughput();
  if (name == kFillSeq) return FillSeq(result);
  if (name == kFillRandom) {
    KV_RETURN_IF_ERROR(OpenFresh());
    return WriteRandom(kFillRandomSeed, result);
  }
  if (name == kOverwrite) {
    if (!open_) KV_RETURN_IF_ERROR(OpenFresh());
    return WriteRandom(kOverwriteSeed, result);
  }
  if (name == kReadRandom) {
    if (!open_) KV_RETURN_IF_ERROR(OpenFresh());
    return ReadRandom(result);
  }
  if (name == kReadSeq) {
    if (!open_) KV_RETURN_IF_ERROR(OpenFresh());
    return ReadSeq(result);
  }
  if (int threads = FillSyncThreads(name); threads > 0) return FillSync(threads, result);
  return kv::Status::InvalidArgument("unknown benchmark " + std::string(name));
}

kv::Status BenchmarkRunner::MeasureReopen(StoreMetrics* metrics) {
  engine_->Close();
  open_ = false;
  Clock::time_point start = Clock::now();
  KV_RETURN_IF_ERROR(engine_->Open(dir_.string()));
  metrics->reopen_ms = SecondsSince(start) * 1000;
  open_ = true;
  metrics->index_bytes_per_key.reset();
  if (std::optional<IndexMemory> index = engine_->index_memory();
      index.has_value() && index->live_keys > 0) {
    metrics->index_bytes_per_key =
        static_cast<double>(index->bytes) / index->live_keys - static_cast<double>(kKeySize);
  }
  return kv::Status::OK();
}

kv::Status BenchmarkRunner::OpenFresh() {
  engine_->Close();
  open_ = false;
  std::error_code ec;
  if (!dir_.empty()) {
    std::filesystem::remove_all(dir_, ec);
    if (ec) return FromErrorCode(ec, dir_);
  }
  dir_ = parent_dir_ / std::to_string(++generation_);
  std::filesystem::create_directories(dir_, ec);
  if (ec) return FromErrorCode(ec, dir_);
  present_.assign(config_.num, false);
  present_count_ = 0;
  KV_RETURN_IF_ERROR(engine_->Open(dir_.string()));
  open_ = true;
  return kv::Status::OK();
}

void BenchmarkRunner::MarkPresent(int k) {
  if (!present_[k]) {
    present_[k] = true;
    ++present_count_;
  }
}

kv::Status BenchmarkRunner::FillSeq(Throughput* result) {
  KV_RETURN_IF_ERROR(OpenFresh());
  ValueGenerator values(kValueSeed, config_.value_size);
  char buf[kKeySize + 1];
  Clock::time_point start = Clock::now();
  for (int k = 0; k < config_.num; ++k) {
    KV_RETURN_IF_ERROR(engine_->Put(FormatKey(k, buf), values.Next(), /*sync=*/false));
  }
  result->seconds = SecondsSince(start);
  result->ops = config_.num;
  present_.assign(config_.num, true);
  present_count_ = config_.num;
  return kv::Status::OK();
}

kv::Status BenchmarkRunner::WriteRandom(uint32_t seed, Throughput* result) {
  ValueGenerator values(kValueSeed, config_.value_size);
  KeyRandom rnd(seed);
  char buf[kKeySize + 1];
  Clock::time_point start = Clock::now();
  for (int i = 0; i < config_.num; ++i) {
    int k = rnd.Uniform(config_.num);
    KV_RETURN_IF_ERROR(engine_->Put(FormatKey(k, buf), values.Next(), /*sync=*/false));
    MarkPresent(k);  // a bit in a vector: noise next to a put
  }
  result->seconds = SecondsSince(start);
  result->ops = config_.num;
  return kv::Status::OK();
}

kv::Status BenchmarkRunner::ReadRandom(Throughput* result) {
  std::vector<int> existing;
  existing.reserve(present_count_);
  for (int k = 0; k < config_.num; ++k) {
    if (present_[k]) existing.push_back(k);
  }
  if (existing.empty()) return kv::Status::OK();  // nothing to read: 0 ops
  KeyRandom rnd(kReadRandomSeed);
  char buf[kKeySize + 1];
  std::string value;
  const int n = static_cast<int>(existing.size());
  Clock::time_point start = Clock::now();
  for (int i = 0; i < config_.num; ++i) {
    std::string_view key = FormatKey(existing[rnd.Uniform(n)], buf);
    kv::Status s = engine_->Get(key, &value);
    if (s.IsNotFound()) {
      return kv::Status::Corruption("readrandom: written key " + std::string(key) + " not found");
    }
    KV_RETURN_IF_ERROR(s);
    if (value.size() != static_cast<size_t>(config_.value_size)) {
      return kv::Status::Corruption("readrandom: key " + std::string(key) + " has a " +
                                    std::to_string(value.size()) + "-byte value");
    }
  }
  result->seconds = SecondsSince(start);
  result->ops = config_.num;
  return kv::Status::OK();
}

kv::Status BenchmarkRunner::ReadSeq(Throughput* result) {
  uint64_t count = 0;
  uint64_t bytes = 0;
  bool ordered = true;
  std::string previous;
  Clock::time_point start = Clock::now();
  KV_RETURN_IF_ERROR(engine_->Scan([&](std::string_view key, std::string_view value) {
    if (count > 0 && key <= previous) ordered = false;
    previous.assign(key);
    ++count;
    bytes += key.size() + value.size();
  }));
  result->seconds = SecondsSince(start);
  result->ops = count;
  if (!ordered) return kv::Status::Corruption("readseq: keys out of order");
  if (count != present_count_) {
    return kv::Status::Corruption("readseq: saw " + std::to_string(count) + " keys, expected " +
                                  std::to_string(present_count_));
  }
  if (bytes != count * (kKeySize + config_.value_size)) {
    return kv::Status::Corruption("readseq: keys and values of unexpected sizes");
  }
  return kv::Status::OK();
}

kv::Status BenchmarkRunner::FillSync(int threads, Throughput* result) {
  KV_RETURN_IF_ERROR(OpenFresh());
  std::vector<kv::Status> statuses(threads);
  std::vector<std::vector<int>> written(threads);
  std::latch ready(threads);
  std::latch go(1);
  std::vector<std::thread> workers;
  workers.reserve(threads);
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      ValueGenerator values(kValueSeed + t, config_.value_size);
      KeyRandom rnd(kFillSyncSeed + t);
      written[t].reserve(config_.sync_ops);
      char buf[kKeySize + 1];
      ready.count_down();
      go.wait();
      for (int i = 0; i < config_.sync_ops; ++i) {
        int k = rnd.Uniform(config_.num);
        kv::Status s = engine_->Put(FormatKey(k, buf), values.Next(), /*sync=*/true);
        if (!s.ok()) {
          statuses[t] = std::move(s);
          return;
        }
        written[t].push_back(k);
      }
    });
  }
  ready.wait();
  Clock::time_point start = Clock::now();
  go.count_down();
  for (std::thread& worker : workers) worker.join();
  result->seconds = SecondsSince(start);
  for (int t = 0; t < threads; ++t) {
    KV_RETURN_IF_ERROR(statuses[t]);
    for (int k : written[t]) MarkPresent(k);
  }
  result->ops = static_cast<uint64_t>(threads) * config_.sync_ops;
  return kv::Status::OK();
}

}  // namespace kvbench

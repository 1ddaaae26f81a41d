#include "tools/kvfsck/ui.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>

namespace kvfsck {

namespace {

// Redraws at most every 100 ms, and always at 100%.
class ProgressBar {
 public:
  explicit ProgressBar(std::string label) : label_(std::move(label)) {}
  ~ProgressBar() {
    if (drawn_) std::fputc('\n', stderr);
  }
  void Update(uint64_t done, uint64_t total) {
    auto now = std::chrono::steady_clock::now();
    bool finished = total > 0 && done >= total;
    if (drawn_ && !finished && now - last_ < std::chrono::milliseconds(100)) return;
    last_ = now;
    drawn_ = true;
    constexpr int kWidth = 30;
    double f = total == 0 ? 1.0 : std::min(1.0, static_cast<double>(done) / total);
    int filled = static_cast<int>(f * kWidth);
    std::string bar(filled, '#');
    bar.resize(kWidth, ' ');
    std::fprintf(stderr, "\r%s [%s] %3d%%  %s / %s\x1b[K", label_.c_str(), bar.c_str(),
                 static_cast<int>(f * 100), HumanBytes(done).c_str(), HumanBytes(total).c_str());
    std::fflush(stderr);
  }

 private:
  std::string label_;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point last_;
};

}  // namespace

kv::ProgressFn Ui::Progress(std::string label) const {
  if (quiet || !isatty(STDERR_FILENO)) return nullptr;
  auto bar = std::make_shared<ProgressBar>(std::move(label));
  return [bar](uint64_t done, uint64_t total) { bar->Update(done, total); };
}

void Ui::Say(std::string_view line) const {
  if (!json) std::cout << line << '\n';
}

int Ui::Fail(std::string_view message) const {
  std::cerr << "kvfsck: " << message << '\n';
  return kExitError;
}

void Ui::Summary(const nlohmann::json& summary) const {
  if (json) std::cout << summary.dump(2) << '\n';
}

std::string HumanBytes(uint64_t bytes) {
  static const char* const kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int unit = 0;
  while (v >= 1024 && unit < 4) {
    v /= 1024;
    ++unit;
  }
  char buf[32];
  if (unit == 0) {
    std::snprintf(buf, sizeof(buf), "%" PRIu64 " B", bytes);
  } else {
    std::snprintf(buf, sizeof(buf), "%.1f %s", v, kUnits[unit]);
  }
  return buf;
}

std::optional<int64_t> ParseDuration(std::string_view text) {
  if (text.empty()) return std::nullopt;
  int64_t unit = 1'000'000'000;
  switch (text.back()) {
    case 's':
      text.remove_suffix(1);
      break;
    case 'm':
      unit *= 60;
      text.remove_suffix(1);
      break;
    case 'h':
      unit *= 3600;
      text.remove_suffix(1);
      break;
    case 'd':
      unit *= 86400;
      text.remove_suffix(1);
      break;
    default:
      break;
  }
  if (text.empty() || text.size() > 12) return std::nullopt;
  int64_t n = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + (c - '0');
  }
  return n * unit;
}

pid_t LockHolder(const std::string& store) {
  std::string path = store + "/LOCK";
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  pid_t pid = 0;
  if (flock(fd, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK) {
    char buf[32] = {};
    ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
    pid = n > 0 ? static_cast<pid_t>(std::strtol(buf, nullptr, 10)) : 0;
    if (pid <= 0) pid = -1;  // held, but the holder did not write its pid
  }
  close(fd);  // drops our lock, if we took it
  return pid;
}

uint64_t DirectoryBytes(const std::string& dir) {
  uint64_t total = 0;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    std::error_code size_ec;
    if (entry.is_regular_file(size_ec)) total += entry.file_size(size_ec);
  }
  return total;
}

}  // namespace kvfsck

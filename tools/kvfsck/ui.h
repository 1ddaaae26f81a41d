// kvfsck's terminal side: progress bars, the --json summary, one-line errors, and the small
// parsers and checks every command shares.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "kv/progress.h"

namespace kvfsck {

// Exit codes: 0 success (check: clean), 1 check found problems, 2 could not run.
inline constexpr int kExitOk = 0;
inline constexpr int kExitProblems = 1;
inline constexpr int kExitError = 2;

// What every command gets from the command line.
struct Ui {
  bool quiet = false;  // no progress bars
  bool json = false;   // print only the JSON summary on stdout

  // A progress callback drawing "label [#####     ]  45%  1.2 GiB / 2.6 GiB" on stderr,
  // when stderr is a terminal and not quiet; otherwise a no-op.
  kv::ProgressFn Progress(std::string label) const;
  // Human-readable output (suppressed with --json).
  void Say(std::string_view line) const;
  // The one-line error "kvfsck: <message>" on stderr; returns kExitError.
  int Fail(std::string_view message) const;
  // Prints the summary with --json.
  void Summary(const nlohmann::json& summary) const;
};

// "1.5 GiB", "12 KiB", "312 B".
std::string HumanBytes(uint64_t bytes);
// "90" (seconds), "30s", "15m", "24h", "7d" -> nanoseconds; nullopt when malformed.
std::optional<int64_t> ParseDuration(std::string_view text);
// The pid holding the store's writer lock (a mounted daemon or another tool), 0 if none.
pid_t LockHolder(const std::string& store);
// Total bytes of the files directly in `dir`.
uint64_t DirectoryBytes(const std::string& dir);

}  // namespace kvfsck

// kvfsck: check and repair, back up and restore, compact, browse history and reshard a kvfs
// store. `kvfsck --help` and `kvfsck COMMAND --help` describe every command.
#include <CLI/CLI.hpp>
#include <cstdint>
#include <iostream>
#include <optional>
#include <string>

#include "tools/kvfsck/commands.h"
#include "tools/kvfsck/ui.h"

namespace {

constexpr const char* kDescription =
    "kvfsck: maintenance of a kvfs store directory.\n"
    "Exit status: 0 success (check: clean), 1 check found problems, 2 error.\n"
    "check, stats and backup are safe while the store is mounted (they read a crash-\n"
    "consistent view); every other command needs the store unmounted and says\n"
    "\"store is mounted by pid N\" otherwise.";

// CLI11 validator for durations ("90", "30s", "15m", "24h", "7d").
struct DurationValidator : CLI::Validator {
  DurationValidator() {
    name_ = "DURATION";
    func_ = [](const std::string& text) {
      return kvfsck::ParseDuration(text) ? std::string()
                                         : "not a duration (like 90, 30s, 15m, 24h, 7d): " + text;
    };
  }
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app(kDescription, "kvfsck");
  app.require_subcommand(1);
  kvfsck::Ui ui;
  app.add_flag("-q,--quiet", ui.quiet, "no progress bars");
  app.add_flag("--json", ui.json,
               "print a machine-readable JSON summary on stdout instead of text");
  app.fallthrough();

  std::string store, archive, dir, path, base, as, keep_since, keep_trash;
  bool repair = false, force = false;
  uint32_t pages = 0;
  uint64_t version = 0;
  std::optional<uint32_t> keep_versions;
  DurationValidator duration;

  CLI::App* check = app.add_subcommand(
      "check",
      "read every record (checksums, decompression), then check the file system's "
      "invariants; --repair fixes what it can, moving orphans to /lost+found");
  check->add_option("STORE", store, "store directory")->required();
  check->add_flag("--repair", repair, "fix the problems found (store must be unmounted)");

  CLI::App* backup = app.add_subcommand(
      "backup",
      "write a checksummed archive of a consistent state of the store (works while "
      "mounted and being written)");
  backup->add_option("STORE", store, "store directory")->required();
  backup->add_option("ARCHIVE", archive, "archive file to write")->required();
  backup->add_option("--incremental", base, "store only what changed since this base archive");

  CLI::App* restore = app.add_subcommand(
      "restore", "verify an archive (and its bases), then build its store at DIR");
  restore->add_option("ARCHIVE", archive, "archive file")->required();
  restore->add_option("DIR", dir, "store directory to create")->required();
  restore->add_flag("--force", force, "replace DIR even when it is not empty");

  CLI::App* compact = app.add_subcommand(
      "compact",
      "prune versions and expired trash, then reclaim the space of deleted, "
      "overwritten and pruned data page by page (store must be unmounted: a mounted "
      "daemon compacts in the background, or mount with -o compact). The --keep "
      "options become the store's settings, as kvfs -o versions=... would");
  compact->add_option("STORE", store, "store directory")->required();
  compact->add_option("--keep-versions", keep_versions, "versions kept per file (0: off)");
  compact->add_option("--keep-since", keep_since, "also keep every version younger than this")
      ->check(duration);
  compact->add_option("--keep-trash", keep_trash, "how long deleted files stay in the trash")
      ->check(duration);

  CLI::App* history = app.add_subcommand("history", "list the versions of a file");
  history->add_option("STORE", store, "store directory")->required();
  history->add_option("PATH", path, "file path inside the file system")->required();

  CLI::App* revert = app.add_subcommand(
      "revert", "make an old version the file's content again (as a new version)");
  revert->add_option("STORE", store, "store directory")->required();
  revert->add_option("PATH", path, "file path inside the file system")->required();
  revert->add_option("VERSION", version, "version number (see history)")->required();

  CLI::App* undelete = app.add_subcommand(
      "undelete", "restore the most recently deleted file or tree at PATH from the trash");
  undelete->add_option("STORE", store, "store directory")->required();
  undelete->add_option("PATH", path, "the path it had")->required();
  undelete->add_option("--as", as, "restore under this path instead");

  CLI::App* reshard = app.add_subcommand(
      "reshard",
      "rewrite the store with N page files, in the current layout (a store made by an earlier "
      "version moves to it: metadata in page files of its own)");
  reshard->add_option("STORE", store, "store directory")->required();
  reshard->add_option("--pages", pages, "new page count (default: keep the current one)")
      ->check(CLI::Range(1, 65536));

  CLI::App* stats = app.add_subcommand(
      "stats", "keys, live and dead bytes per page, compression, versions, files, directories");
  stats->add_option("STORE", store, "store directory")->required();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help
    std::cerr << "kvfsck: " << e.what() << " (kvfsck --help)\n";
    return kvfsck::kExitError;
  }

  if (check->parsed()) return kvfsck::Check(ui, store, repair);
  if (backup->parsed()) return kvfsck::Backup(ui, store, archive, base);
  if (restore->parsed()) return kvfsck::Restore(ui, archive, dir, force);
  if (compact->parsed()) {
    kvfsck::RetentionArgs retention;
    retention.keep_versions = keep_versions;
    if (!keep_since.empty()) retention.keep_since_ns = kvfsck::ParseDuration(keep_since);
    if (!keep_trash.empty()) retention.keep_trash_ns = kvfsck::ParseDuration(keep_trash);
    return kvfsck::Compact(ui, store, retention);
  }
  if (history->parsed()) return kvfsck::History(ui, store, path);
  if (revert->parsed()) return kvfsck::Revert(ui, store, path, version);
  if (undelete->parsed()) return kvfsck::Undelete(ui, store, path, as);
  if (reshard->parsed()) return kvfsck::Reshard(ui, store, pages);
  if (stats->parsed()) return kvfsck::Stats(ui, store);
  return kvfsck::kExitError;
}

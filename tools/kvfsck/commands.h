// The kvfsck commands. Each returns the process exit code (ui.h) and prints through Ui.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "tools/kvfsck/ui.h"

namespace kvfsck {

// Reads and checks every record, then the file system's invariants; --repair fixes them.
int Check(const Ui& ui, const std::string& store, bool repair);
// A consistent archive of the store (safe while mounted); incremental over `base` if set.
int Backup(const Ui& ui, const std::string& store, const std::string& archive,
           const std::string& base);
// Verifies `archive` (and its bases), then builds the store at `dir`.
int Restore(const Ui& ui, const std::string& archive, const std::string& dir, bool force);

struct RetentionArgs {
  std::optional<uint32_t> keep_versions;
  std::optional<int64_t> keep_since_ns;
  std::optional<int64_t> keep_trash_ns;
};
// Prunes versions and trash by the store's retention (updated by `retention` first), then
// compacts every page.
int Compact(const Ui& ui, const std::string& store, const RetentionArgs& retention);
// The versions of the file at `path`, oldest first.
int History(const Ui& ui, const std::string& store, const std::string& path);
// Makes version `version` the file's current content (a new version; nothing is lost).
int Revert(const Ui& ui, const std::string& store, const std::string& path, uint64_t version);
// Restores the newest trash entry deleted from `path`, as `as` when not empty.
int Undelete(const Ui& ui, const std::string& store, const std::string& path,
             const std::string& as);
// Rewrites the store with `pages` page files.
int Reshard(const Ui& ui, const std::string& store, uint32_t pages);
// Keys, bytes and garbage per page, compression, versions, files and directories.
int Stats(const Ui& ui, const std::string& store);

}  // namespace kvfsck

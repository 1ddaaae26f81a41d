// kvfsck backup, restore, compact, history, revert, undelete and reshard.
#include "tools/kvfsck/commands.h"

#include <fcntl.h>

#include <algorithm>
#include <cstring>
#include <ctime>
#include <memory>
#include <string>
#include <vector>

#include "fs/volume.h"
#include "kv/backup.h"
#include "kv/maintenance.h"
#include "tools/kvfsck/store_access.h"

namespace kvfsck {
namespace {

// "2026-11-23 06:35:59 UTC".
std::string FormatTime(int64_t time_ns) {
  time_t secs = static_cast<time_t>(time_ns / 1'000'000'000);
  struct tm tm;
  gmtime_r(&secs, &tm);
  char buf[64];
  std::strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S UTC", &tm);
  return buf;
}

std::string WithoutLeadingSlash(const std::string& path) {
  size_t start = path.find_first_not_of('/');
  return start == std::string::npos ? "" : path.substr(start);
}

int CloseVolume(const Ui& ui, std::unique_ptr<fs::Volume>* volume, int code) {
  fs::Errno err = (*volume)->Close();
  if (!err.ok()) return ui.Fail("closing the store: " + err.ToString());
  return code;
}

}  // namespace

int Backup(const Ui& ui, const std::string& store, const std::string& archive,
           const std::string& base) {
  kv::BackupOptions options;
  options.base_archive = base;
  options.progress = ui.Progress("backing up");
  kv::BackupStats stats;
  kv::Status s = kv::Backup(store, archive, options, &stats);
  if (!s.ok()) return ui.Fail(s.message());
  ui.Say("backed up " + store + " to " + archive + ": read " + HumanBytes(stats.bytes_read) +
         ", wrote " + HumanBytes(stats.bytes_written) +
         (base.empty() ? "" : " (incremental over " + base + ")"));
  ui.Summary({{"command", "backup"},
              {"store", store},
              {"archive", archive},
              {"base", base},
              {"bytes_read", stats.bytes_read},
              {"bytes_written", stats.bytes_written},
              {"pages", stats.pages}});
  return kExitOk;
}

int Restore(const Ui& ui, const std::string& archive, const std::string& dir, bool force) {
  kv::RestoreOptions options;
  options.force = force;
  options.sharder = fs::Volume::Sharder();
  options.earlier_sharders = fs::Volume::EarlierSharders();
  options.progress = ui.Progress("restoring");
  kv::RestoreStats stats;
  kv::Status s = kv::Restore(archive, dir, options, &stats);
  if (!s.ok()) return ui.Fail(s.message());
  ui.Say("restored " + archive + " to " + dir + ": " + HumanBytes(stats.bytes_written) + " in " +
         std::to_string(stats.pages) + " pages");
  ui.Summary({{"command", "restore"},
              {"archive", archive},
              {"store", dir},
              {"bytes_written", stats.bytes_written},
              {"pages", stats.pages}});
  return kExitOk;
}

int Compact(const Ui& ui, const std::string& store, const RetentionArgs& retention) {
  std::string error;
  std::unique_ptr<fs::Volume> volume;
  uint64_t before = DirectoryBytes(store);
  fs::VolumeOptions options;
  if (retention.keep_versions || retention.keep_since_ns || retention.keep_trash_ns) {
    // The given settings replace the stored ones; the others stay as they are.
    fs::Superblock super;
    if (!ReadSuperblock(store, &super, &error)) return ui.Fail(error);
    options.version_retention = retention.keep_versions.value_or(super.version_retention);
    options.version_min_age_ns = retention.keep_since_ns.value_or(super.version_min_age_ns);
    options.trash_retention_ns = retention.keep_trash_ns.value_or(super.trash_retention_ns);
    options.update_retention = true;
  }
  if (!OpenVolume(store, options, "the daemon compacts in the background", &volume, &error)) {
    return ui.Fail(error);
  }
  fs::Errno err = volume->Compact(ui.Progress("compacting"));
  if (!err.ok()) return ui.Fail("compaction failed: " + err.ToString());
  int code = CloseVolume(ui, &volume, kExitOk);
  if (code != kExitOk) return code;
  uint64_t after = DirectoryBytes(store);
  ui.Say("compacted " + store + ": " + HumanBytes(before) + " -> " + HumanBytes(after));
  ui.Summary(
      {{"command", "compact"}, {"store", store}, {"bytes_before", before}, {"bytes_after", after}});
  return kExitOk;
}

int History(const Ui& ui, const std::string& store, const std::string& path) {
  std::string error;
  std::unique_ptr<fs::Volume> volume;
  if (!OpenVolume(store, fs::VolumeOptions(), "browse MOUNT/.kvfs/history" + path + " instead",
                  &volume, &error)) {
    return ui.Fail(error);
  }
  fs::Ino ino;
  if (!Resolve(volume.get(), path, &ino, &error)) return ui.Fail(error);
  std::vector<fs::FileVersion> versions;
  fs::Errno err = volume->ListVersions(ino, &versions);
  if (!err.ok()) return ui.Fail(path + ": " + err.ToString());
  nlohmann::json list = nlohmann::json::array();
  if (versions.empty()) ui.Say(path + " has no versions");
  for (const fs::FileVersion& v : versions) {
    char line[128];
    std::snprintf(line, sizeof(line), "%6llu  %s  %12llu bytes",
                  static_cast<unsigned long long>(v.number), FormatTime(v.time_ns).c_str(),
                  static_cast<unsigned long long>(v.size));
    ui.Say(line);
    list.push_back({{"version", v.number}, {"time_ns", v.time_ns}, {"size", v.size}});
  }
  ui.Summary({{"command", "history"}, {"store", store}, {"path", path}, {"versions", list}});
  return CloseVolume(ui, &volume, kExitOk);
}

int Revert(const Ui& ui, const std::string& store, const std::string& path, uint64_t version) {
  std::string error;
  std::unique_ptr<fs::Volume> volume;
  if (!OpenVolume(store, fs::VolumeOptions(),
                  "copy MOUNT/.kvfs/history" + path + "/<version> over the file instead", &volume,
                  &error)) {
    return ui.Fail(error);
  }
  fs::Ino ino;
  if (!Resolve(volume.get(), path, &ino, &error)) return ui.Fail(error);
  std::vector<fs::FileVersion> versions;
  fs::Errno err = volume->ListVersions(ino, &versions);
  if (!err.ok()) return ui.Fail(path + ": " + err.ToString());
  auto it = std::find_if(versions.begin(), versions.end(),
                         [&](const fs::FileVersion& v) { return v.number == version; });
  if (it == versions.end()) {
    return ui.Fail(path + " has no version " + std::to_string(version) +
                   " (kvfsck history lists them)");
  }
  // Truncate and rewrite through a handle: the file gets a new version equal to the old
  // one, so the content being replaced stays in the history too.
  uint64_t handle;
  err = volume->Open(ino, O_WRONLY | O_TRUNC, &handle);
  if (!err.ok()) return ui.Fail(path + ": " + err.ToString());
  constexpr size_t kStep = 1 << 20;
  std::string data;
  for (uint64_t offset = 0; offset < it->size && err.ok(); offset += kStep) {
    err = volume->ReadVersion(ino, version, offset, kStep, &data);
    size_t written = 0;
    if (err.ok()) err = volume->Write(handle, offset, data, &written);
  }
  fs::Errno released = volume->Release(handle);
  if (err.ok()) err = released;
  if (!err.ok()) return ui.Fail("reverting " + path + ": " + err.ToString());
  ui.Say("reverted " + path + " to version " + std::to_string(version) + " (" +
         std::to_string(it->size) + " bytes); its previous content is kept as a version too");
  ui.Summary({{"command", "revert"}, {"store", store}, {"path", path}, {"version", version}});
  return CloseVolume(ui, &volume, kExitOk);
}

int Undelete(const Ui& ui, const std::string& store, const std::string& path,
             const std::string& as) {
  std::string error;
  std::unique_ptr<fs::Volume> volume;
  if (!OpenVolume(store, fs::VolumeOptions(), "move it out of MOUNT/.kvfs/trash instead", &volume,
                  &error)) {
    return ui.Fail(error);
  }
  std::vector<fs::TrashEntry> entries;
  fs::Errno err = volume->ListTrash(&entries);
  if (!err.ok()) return ui.Fail(err.ToString());
  const std::string wanted = WithoutLeadingSlash(path);
  const fs::TrashEntry* newest = nullptr;
  for (const fs::TrashEntry& e : entries) {
    if (e.path == wanted && (newest == nullptr || e.time_ns >= newest->time_ns)) newest = &e;
  }
  if (newest == nullptr) return ui.Fail("no deleted " + path + " in the trash");
  const std::string target = as.empty() ? "/" + wanted : as;
  fs::Ino parent;
  std::string name;
  if (!ResolveParent(volume.get(), target, &parent, &name, &error)) {
    return ui.Fail(error + (as.empty() ? " (restore elsewhere with --as PATH)" : ""));
  }
  err = volume->RestoreTrash(newest->name, parent, name);
  if (err.value() == EEXIST) {
    return ui.Fail(target + " exists (restore elsewhere with --as PATH)");
  }
  if (!err.ok()) return ui.Fail("undelete " + path + ": " + err.ToString());
  ui.Say("restored " + path + " (deleted " + FormatTime(newest->time_ns) + ") as " + target);
  ui.Summary({{"command", "undelete"},
              {"store", store},
              {"path", path},
              {"restored_as", target},
              {"deleted_ns", newest->time_ns}});
  return CloseVolume(ui, &volume, kExitOk);
}

int Reshard(const Ui& ui, const std::string& store, uint32_t pages) {
  std::string mounted = MountedMessage(store);
  if (!mounted.empty()) return ui.Fail(mounted + "; unmount it to reshard");
  uint64_t before = DirectoryBytes(store);
  kv::ReshardOptions options;
  options.sharder = fs::Volume::Sharder();
  options.earlier_sharders = fs::Volume::EarlierSharders();
  options.progress = ui.Progress("resharding");
  kv::Status s = kv::ReshardStore(store, pages, options);
  if (!s.ok()) return ui.Fail("reshard: " + s.message());
  std::unique_ptr<kv::Store> resharded;
  std::string error;
  if (!OpenStore(store, Access::kRead, false, &resharded, &error)) return ui.Fail(error);
  pages = resharded->ShardCount();
  ui.Say("resharded " + store + " into " + std::to_string(pages) + " pages (" + HumanBytes(before) +
         " -> " + HumanBytes(DirectoryBytes(store)) + ")");
  ui.Summary({{"command", "reshard"}, {"store", store}, {"pages", pages}});
  return kExitOk;
}

}  // namespace kvfsck

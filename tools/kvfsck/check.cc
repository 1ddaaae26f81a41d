// kvfsck check and kvfsck stats.
#include <sys/stat.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "fs/fsck.h"
#include "fs/inode.h"
#include "kv/maintenance.h"
#include "tools/kvfsck/commands.h"
#include "tools/kvfsck/store_access.h"

namespace kvfsck {
namespace {

struct CheckResult {
  std::vector<fs::FsckProblem> problems;  // record-level first, then file-system problems
  fs::FsckReport fs;
  kv::VerifyReport records;
};

// One pass: verify every record, (repair them), check (and repair) the file system.
// Returns false with *error when the check could not run.
bool RunCheck(const Ui& ui, const std::string& dir, bool repair, CheckResult* result,
              std::string* error) {
  kv::VerifyOptions verify;
  verify.progress = ui.Progress("reading records");
  kv::Status s = kv::VerifyStore(dir, verify, &result->records);
  if (!s.ok()) {
    *error = s.message();
    return false;
  }
  const bool damaged = !result->records.problems.empty();
  if (repair && damaged) {
    kv::RepairOptions options;
    kv::RepairReport repaired;
    s = kv::RepairStore(dir, options, &repaired);
    if (!s.ok()) {
      *error = "repairing records: " + s.message();
      return false;
    }
  }
  std::unique_ptr<kv::Store> store;
  if (!OpenStore(dir, repair ? Access::kWrite : Access::kRead, damaged && !repair, &store, error)) {
    return false;
  }
  fs::FsckOptions options;
  options.repair = repair;
  s = fs::CheckVolume(store.get(), options, &result->fs);
  if (!s.ok()) {
    *error = "checking the file system: " + s.message();
    return false;
  }
  for (const kv::VerifyProblem& p : result->records.problems) {
    // One line per file that lost data (by the damaged record's own key, and the keys the
    // page's hint file placed in the damaged bytes); one line for the store otherwise.
    std::map<std::string, size_t> lost;  // path -> keys
    if (p.has_key) lost[result->fs.PathOfKey(p.key)]++;
    for (const std::string& key : p.lost_keys) lost[result->fs.PathOfKey(key)]++;
    if (lost.empty()) lost["<store>"] = 0;
    for (const auto& [path, keys] : lost) {
      fs::FsckProblem problem;
      problem.path = path;
      problem.message = p.message;
      if (keys > 1) problem.message += " (" + std::to_string(keys) + " of its keys)";
      problem.repaired = repair;
      result->problems.push_back(std::move(problem));
    }
    if (p.lost_keys_capped) {
      result->problems.push_back({"<store>", "more keys lost than listed", repair});
    }
  }
  for (fs::FsckProblem& p : result->fs.problems) result->problems.push_back(std::move(p));
  result->fs.problems.clear();
  if (repair) {
    s = store->Sync();
    if (!s.ok()) {
      *error = s.message();
      return false;
    }
  }
  return true;
}

nlohmann::json ProblemsJson(const std::vector<fs::FsckProblem>& problems) {
  nlohmann::json list = nlohmann::json::array();
  for (const fs::FsckProblem& p : problems) {
    list.push_back({{"path", p.path}, {"problem", p.message}, {"repaired", p.repaired}});
  }
  return list;
}

}  // namespace

int Check(const Ui& ui, const std::string& dir, bool repair) {
  std::string error;
  if (repair) {
    std::string mounted = MountedMessage(dir);
    if (!mounted.empty()) return ui.Fail(mounted + "; unmount it before --repair");
  }
  CheckResult first;
  if (!RunCheck(ui, dir, repair, &first, &error)) return ui.Fail(error);
  for (const fs::FsckProblem& p : first.problems) {
    ui.Say(p.path + ": " + p.message + (p.repaired ? " [repaired]" : ""));
  }
  const fs::FsckReport& fr = first.fs;
  ui.Say(std::to_string(first.records.records) + " records (" + HumanBytes(first.records.bytes) +
         ") in " + std::to_string(first.records.pages) + " pages; " + std::to_string(fr.files) +
         " files, " + std::to_string(fr.directories) + " directories, " +
         std::to_string(fr.symlinks) + " symlinks, " + std::to_string(fr.versions) + " versions, " +
         std::to_string(fr.trash_entries) + " trash entries, " + std::to_string(fr.snapshots) +
         " snapshots");
  nlohmann::json summary = {{"command", "check"},
                            {"store", dir},
                            {"records", first.records.records},
                            {"bytes", first.records.bytes},
                            {"pages", first.records.pages},
                            {"files", fr.files},
                            {"directories", fr.directories},
                            {"symlinks", fr.symlinks},
                            {"versions", fr.versions},
                            {"problems", ProblemsJson(first.problems)}};
  if (first.problems.empty()) {
    ui.Say("clean");
    summary["clean"] = true;
    ui.Summary(summary);
    return kExitOk;
  }
  ui.Say(std::to_string(first.problems.size()) + " problem(s) found");
  summary["clean"] = false;
  if (repair) {
    // A second, read-only pass proves the repair.
    CheckResult second;
    if (!RunCheck(ui, dir, false, &second, &error)) return ui.Fail("after repair: " + error);
    for (const fs::FsckProblem& p : second.problems) {
      ui.Say("after repair: " + p.path + ": " + p.message);
    }
    ui.Say(second.problems.empty()
               ? "repaired: the store now checks clean"
               : std::to_string(second.problems.size()) + " problem(s) remain after repair");
    summary["remaining"] = ProblemsJson(second.problems);
  }
  ui.Summary(summary);
  return kExitProblems;
}

int Stats(const Ui& ui, const std::string& dir) {
  std::unique_ptr<kv::Store> store;
  std::string error;
  if (!OpenStore(dir, Access::kRead, false, &store, &error)) return ui.Fail(error);
  kv::StoreStats stats = store->Stats();
  uint64_t files = 0, directories = 0, symlinks = 0, others = 0, versions = 0, trash = 0;
  kv::ReadOptions keys_only;
  keys_only.keys_only = true;
  std::unique_ptr<kv::Iterator> it = store->NewIterator(kv::ReadOptions(), "I");
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    fs::Inode inode;
    if (!fs::DecodeInode(it->value(), &inode)) continue;
    if (inode.is_dir()) {
      ++directories;
    } else if (inode.is_reg()) {
      ++files;
    } else if (inode.is_symlink()) {
      ++symlinks;
    } else {
      ++others;
    }
  }
  if (!it->status().ok()) return ui.Fail(it->status().message());
  for (auto [prefix, count] : {std::pair{"V", &versions}, std::pair{"T", &trash}}) {
    it = store->NewIterator(keys_only, prefix);
    for (it->SeekToFirst(); it->Valid(); it->Next()) ++*count;
    if (!it->status().ok()) return ui.Fail(it->status().message());
  }

  kv::ShardStats total = stats.Total();
  auto ratio = [](uint64_t stored, uint64_t raw) {
    return raw == 0 ? 1.0 : static_cast<double>(stored) / static_cast<double>(raw);
  };
  nlohmann::json pages = nlohmann::json::array();
  ui.Say("page   keys      records   file bytes   live bytes   garbage   compression");
  for (size_t i = 0; i < stats.shards.size(); ++i) {
    const kv::ShardStats& p = stats.shards[i];
    char line[160];
    std::snprintf(line, sizeof(line), "%4zu %8llu %10llu %12s %12s %9s %8.0f%%", i,
                  static_cast<unsigned long long>(p.live_keys),
                  static_cast<unsigned long long>(p.records), HumanBytes(p.file_bytes).c_str(),
                  HumanBytes(p.live_bytes).c_str(), HumanBytes(p.garbage_bytes).c_str(),
                  100 * ratio(p.stored_value_bytes, p.raw_value_bytes));
    ui.Say(line);
    pages.push_back({{"page", i},
                     {"keys", p.live_keys},
                     {"tombstones", p.tombstones},
                     {"records", p.records},
                     {"file_bytes", p.file_bytes},
                     {"live_bytes", p.live_bytes},
                     {"garbage_bytes", p.garbage_bytes},
                     {"raw_value_bytes", p.raw_value_bytes},
                     {"stored_value_bytes", p.stored_value_bytes},
                     {"compactions", p.compactions}});
  }
  ui.Say("total: " + std::to_string(total.live_keys) + " keys, " + std::to_string(total.records) +
         " records, " + HumanBytes(total.file_bytes) + " on disk, " + HumanBytes(total.live_bytes) +
         " live, " + HumanBytes(total.garbage_bytes) + " garbage; values stored at " +
         std::to_string(
             static_cast<int>(100 * ratio(total.stored_value_bytes, total.raw_value_bytes) + 0.5)) +
         "% of their size");
  const std::string current = fs::Volume::Sharder()->Name();
  ui.Say("layout: " + stats.sharder_name +
         (stats.sharder_name == current
              ? ""
              : " (an earlier one; `kvfsck reshard STORE` moves the store to " + current + ")"));
  ui.Say("file system: " + std::to_string(files) + " files, " + std::to_string(directories) +
         " directories, " + std::to_string(symlinks) + " symlinks, " + std::to_string(others) +
         " other; " + std::to_string(versions) + " versions kept, " + std::to_string(trash) +
         " trash entries; last sequence " + std::to_string(stats.last_sequence));
  ui.Summary({{"command", "stats"},
              {"store", dir},
              {"sharder", stats.sharder_name},
              {"pages", pages},
              {"keys", total.live_keys},
              {"records", total.records},
              {"file_bytes", total.file_bytes},
              {"live_bytes", total.live_bytes},
              {"garbage_bytes", total.garbage_bytes},
              {"compression_ratio", ratio(total.stored_value_bytes, total.raw_value_bytes)},
              {"files", files},
              {"directories", directories},
              {"symlinks", symlinks},
              {"versions", versions},
              {"trash_entries", trash},
              {"last_sequence", stats.last_sequence}});
  return kExitOk;
}

}  // namespace kvfsck

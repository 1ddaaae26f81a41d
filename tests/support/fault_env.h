// FaultInjectionEnv: a kv::Env for tests that wraps a real Env, remembers how much of every
// file is known to be durable, and can fail or stop I/O on demand. It simulates a crash that
// loses unsynced data (DropUnsyncedData) and full disks or failing devices (ENOSPC, EIO,
// short writes), in the manner of LevelDB's FaultInjectionTestEnv.
//
// Durability model: a file's bytes up to its "synced length" survive a crash. The synced
// length is the file's size at the start of its last successful File::Sync (a file that
// existed before this Env first saw it counts as fully synced). It follows the file through
// Rename and through closing and reopening, because it is kept per path, not per handle.
// Directory entries: a file created (or renamed to a new name) since the last SyncDir of its
// directory may vanish in a crash (RemoveFilesCreatedSinceDirSync). Replacing an existing
// name by Rename is treated as durable, which under-approximates what a crash can do.
//
// Thread safety: every method may be called from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "kv/env.h"
#include "kv/status.h"

namespace kvtest {

class FaultInjectionEnv : public kv::Env {
 public:
  // Wraps `base`, which must outlive this object; nullptr means kv::Env::Default().
  explicit FaultInjectionEnv(kv::Env* base = nullptr);
  ~FaultInjectionEnv() override;

  // ---- kv::Env ----
  kv::Status OpenFile(const std::string& path, OpenMode mode,
                      std::unique_ptr<kv::File>* file) override;
  kv::Status Rename(const std::string& from, const std::string& to) override;
  kv::Status RemoveFile(const std::string& path) override;
  kv::Status CreateDir(const std::string& path) override;
  kv::Status SyncDir(const std::string& path) override;
  kv::Status ListDir(const std::string& dir, std::vector<std::string>* names) override;
  bool FileExists(const std::string& path) override;
  kv::Status LockFile(const std::string& path, std::unique_ptr<kv::FileLock>* lock) override;
  kv::Status FreeSpace(const std::string& path, uint64_t* bytes) override;

  // ---- Crash simulation (call with the store closed or the filesystem inactive) ----
  // Truncates every tracked file to its synced length.
  kv::Status DropUnsyncedData();
  // Truncates every tracked file to a length drawn uniformly from [synced length, current
  // length]: the OS wrote back part of the dirty data before the crash.
  kv::Status DropUnsyncedDataRandomly(std::mt19937_64& rng);
  // Removes the files whose directory entries were never made durable by SyncDir.
  kv::Status RemoveFilesCreatedSinceDirSync();

  // While inactive, every mutating call (Append, Sync, Truncate, Reserve, creating opens,
  // Rename, RemoveFile, CreateDir, SyncDir) fails with IOError and changes nothing: the
  // process "died" at that point although its threads run on. Reads and locks still work.
  void SetFilesystemActive(bool active);
  bool IsFilesystemActive() const;
  // Lets `n` more mutating calls through, then makes the filesystem inactive: a crash at a
  // reproducible point, for example between the pages of one batch.
  void DeactivateAfter(uint64_t n);

  // When set, File::Sync and SyncDir only record what they would have made durable and skip
  // the real fdatasync/fsync: tests that never lose power run much faster.
  void SkipRealSyncs(bool skip);

  // ---- Fault injection ----
  // After `n` more successful calls of the kind (optionally only on paths containing
  // `path_filter`), every further such call fails with `code` (kNoSpace: ENOSPC, nothing
  // written; kIOError: EIO) until ClearFaults().
  void FailAppendsAfter(uint64_t n, kv::Status::Code code, std::string path_filter = "");
  void FailSyncsAfter(uint64_t n, kv::Status::Code code, std::string path_filter = "");
  void FailReservesAfter(uint64_t n, kv::Status::Code code, std::string path_filter = "");
  void FailRenamesAfter(uint64_t n, kv::Status::Code code);
  void FailDirSyncsAfter(uint64_t n, kv::Status::Code code);
  // The next Append writes only half of its bytes and then fails with `code`.
  void ShortWriteNext(kv::Status::Code code = kv::Status::Code::kNoSpace);
  // Disarms every injected fault (not SetFilesystemActive).
  void ClearFaults();

  // ---- Counters of calls that reached the base Env successfully ----
  struct Counters {
    uint64_t appends = 0;
    uint64_t syncs = 0;
    uint64_t reserves = 0;
    uint64_t renames = 0;
    uint64_t dir_syncs = 0;
    uint64_t injected_failures = 0;
  };
  Counters counters() const;

  // Synced length tracked for `path`, or -1 when the path is not tracked.
  int64_t SyncedLength(const std::string& path) const;
  // Paths whose directory entries are not yet durable.
  std::vector<std::string> FilesCreatedSinceDirSync() const;

 private:
  friend class FaultFile;

  // Durability state of one path; shared with the open handles of the file.
  struct FileState {
    std::string path;  // current name; empty once removed or replaced
    std::string dir;   // the directory holding `path`
    uint64_t synced_length = 0;
    bool entry_unsynced = false;  // created since its directory's last SyncDir
  };

  struct FaultRule {
    bool armed = false;
    uint64_t remaining = 0;  // calls still allowed before failing
    kv::Status::Code code = kv::Status::Code::kIOError;
    std::string path_filter;
  };

  // Returns non-OK when the filesystem is (or just became) inactive. REQUIRES: mu_ held.
  kv::Status CheckActiveLocked(const char* op, const std::string& path);
  // Returns non-OK when `rule` fires for `path`. REQUIRES: mu_ held.
  kv::Status CheckRuleLocked(FaultRule* rule, const char* op, const std::string& path);
  // Finds or creates the state of `path`. REQUIRES: mu_ held.
  std::shared_ptr<FileState> StateLocked(const std::string& path, uint64_t existing_size);
  kv::Status TruncateTo(const std::string& path, uint64_t length);

  kv::Env* const base_;
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<FileState>> files_;  // GUARDED_BY(mu_)
  bool active_ = true;                                       // GUARDED_BY(mu_)
  bool deactivate_armed_ = false;                            // GUARDED_BY(mu_)
  uint64_t deactivate_remaining_ = 0;                        // GUARDED_BY(mu_)
  FaultRule append_rule_, sync_rule_, reserve_rule_, rename_rule_, dir_sync_rule_;
  bool short_write_next_ = false;  // GUARDED_BY(mu_)
  bool skip_real_syncs_ = false;   // GUARDED_BY(mu_)
  kv::Status::Code short_write_code_ = kv::Status::Code::kNoSpace;
  Counters counters_;  // GUARDED_BY(mu_)
};

// A fresh directory under /tmp, removed with everything in it when destroyed.
class ScopedTempDir {
 public:
  explicit ScopedTempDir(const std::string& tag = "kvtest");
  ~ScopedTempDir();
  ScopedTempDir(const ScopedTempDir&) = delete;
  ScopedTempDir& operator=(const ScopedTempDir&) = delete;

  const std::string& path() const { return path_; }
  // path() + "/" + name
  std::string Sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

}  // namespace kvtest

// FaultInjectionEnv: lost unsynced data, ENOSPC, EIO and short writes for kv/ tests.
#include "tests/support/fault_env.h"

#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <utility>

namespace kvtest {

namespace {

std::string Normalize(const std::string& path) {
  std::string p = std::filesystem::path(path).lexically_normal().string();
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  return p;
}

std::string ParentDir(const std::string& normalized_path) {
  return Normalize(std::filesystem::path(normalized_path).parent_path().string());
}

kv::Status Injected(kv::Status::Code code, const char* op, const std::string& path) {
  std::string msg = std::string("injected fault: ") + op + " " + path;
  if (code == kv::Status::Code::kNoSpace)
    return kv::Status::NoSpace(msg + ": No space left on device");
  return kv::Status::IOError(msg + ": Input/output error");
}

}  // namespace

// A handle that routes mutations through the Env's fault checks and updates the shared
// durability state of its path.
class FaultFile : public kv::File {
 public:
  FaultFile(FaultInjectionEnv* env, std::unique_ptr<kv::File> base,
            std::shared_ptr<FaultInjectionEnv::FileState> state)
      : env_(env), base_(std::move(base)), state_(std::move(state)) {}

  kv::Status Read(uint64_t offset, size_t n, char* buf, size_t* got) const override {
    return base_->Read(offset, n, buf, got);
  }

  kv::Status Append(const char* data, size_t n) override {
    bool short_write = false;
    kv::Status::Code short_code = kv::Status::Code::kNoSpace;
    {
      std::lock_guard<std::mutex> l(env_->mu_);
      const std::string path = state_->path;
      KV_RETURN_IF_ERROR(env_->CheckActiveLocked("append", path));
      if (env_->short_write_next_) {
        env_->short_write_next_ = false;
        env_->counters_.injected_failures++;
        short_write = true;
        short_code = env_->short_write_code_;
      } else {
        KV_RETURN_IF_ERROR(env_->CheckRuleLocked(&env_->append_rule_, "append", path));
      }
    }
    if (short_write) {
      base_->Append(data, n / 2).IgnoreError();
      return Injected(short_code, "short append", state_path());
    }
    KV_RETURN_IF_ERROR(base_->Append(data, n));
    std::lock_guard<std::mutex> l(env_->mu_);
    env_->counters_.appends++;
    return kv::Status::OK();
  }

  kv::Status Sync() override {
    bool skip = false;
    {
      std::lock_guard<std::mutex> l(env_->mu_);
      const std::string path = state_->path;
      KV_RETURN_IF_ERROR(env_->CheckActiveLocked("sync", path));
      KV_RETURN_IF_ERROR(env_->CheckRuleLocked(&env_->sync_rule_, "sync", path));
      skip = env_->skip_real_syncs_;
    }
    // Everything appended before the sync starts is durable once it returns.
    const uint64_t size = base_->Size();
    if (!skip) KV_RETURN_IF_ERROR(base_->Sync());
    std::lock_guard<std::mutex> l(env_->mu_);
    state_->synced_length = std::max(state_->synced_length, size);
    env_->counters_.syncs++;
    return kv::Status::OK();
  }

  kv::Status Truncate(uint64_t size) override {
    {
      std::lock_guard<std::mutex> l(env_->mu_);
      KV_RETURN_IF_ERROR(env_->CheckActiveLocked("truncate", state_->path));
    }
    KV_RETURN_IF_ERROR(base_->Truncate(size));
    std::lock_guard<std::mutex> l(env_->mu_);
    state_->synced_length = std::min(state_->synced_length, size);
    return kv::Status::OK();
  }

  kv::Status Reserve(uint64_t offset, uint64_t len) override {
    {
      std::lock_guard<std::mutex> l(env_->mu_);
      const std::string path = state_->path;
      KV_RETURN_IF_ERROR(env_->CheckActiveLocked("reserve", path));
      KV_RETURN_IF_ERROR(env_->CheckRuleLocked(&env_->reserve_rule_, "reserve", path));
    }
    KV_RETURN_IF_ERROR(base_->Reserve(offset, len));
    std::lock_guard<std::mutex> l(env_->mu_);
    env_->counters_.reserves++;
    return kv::Status::OK();
  }

  uint64_t Size() const override { return base_->Size(); }

 private:
  std::string state_path() const {
    std::lock_guard<std::mutex> l(env_->mu_);
    return state_->path;
  }

  FaultInjectionEnv* const env_;
  const std::unique_ptr<kv::File> base_;
  const std::shared_ptr<FaultInjectionEnv::FileState> state_;
};

FaultInjectionEnv::FaultInjectionEnv(kv::Env* base)
    : base_(base != nullptr ? base : kv::Env::Default()) {}

FaultInjectionEnv::~FaultInjectionEnv() = default;

kv::Status FaultInjectionEnv::CheckActiveLocked(const char* op, const std::string& path) {
  if (active_ && deactivate_armed_) {
    if (deactivate_remaining_ == 0) {
      active_ = false;
      deactivate_armed_ = false;
    } else {
      deactivate_remaining_--;
    }
  }
  if (!active_) {
    return kv::Status::IOError(std::string("filesystem inactive (simulated crash): ") + op + " " +
                               path);
  }
  return kv::Status::OK();
}

kv::Status FaultInjectionEnv::CheckRuleLocked(FaultRule* rule, const char* op,
                                              const std::string& path) {
  if (!rule->armed) return kv::Status::OK();
  if (!rule->path_filter.empty() && path.find(rule->path_filter) == std::string::npos) {
    return kv::Status::OK();
  }
  if (rule->remaining > 0) {
    rule->remaining--;
    return kv::Status::OK();
  }
  counters_.injected_failures++;
  return Injected(rule->code, op, path);
}

std::shared_ptr<FaultInjectionEnv::FileState> FaultInjectionEnv::StateLocked(
    const std::string& path, uint64_t existing_size) {
  auto it = files_.find(path);
  if (it != files_.end()) return it->second;
  auto state = std::make_shared<FileState>();
  state->path = path;
  state->dir = ParentDir(path);
  state->synced_length = existing_size;
  files_[path] = state;
  return state;
}

kv::Status FaultInjectionEnv::OpenFile(const std::string& raw_path, OpenMode mode,
                                       std::unique_ptr<kv::File>* file) {
  const std::string path = Normalize(raw_path);
  const bool existed = base_->FileExists(path);
  const bool mutating =
      mode == OpenMode::kCreateTruncate || (mode == OpenMode::kCreate && !existed);
  if (mutating) {
    std::lock_guard<std::mutex> l(mu_);
    KV_RETURN_IF_ERROR(CheckActiveLocked("open", path));
  }
  std::unique_ptr<kv::File> base_file;
  KV_RETURN_IF_ERROR(base_->OpenFile(path, mode, &base_file));
  std::shared_ptr<FileState> state;
  {
    std::lock_guard<std::mutex> l(mu_);
    // A file this Env has not seen was on disk before it: all of it counts as durable.
    state = StateLocked(path, existed ? base_file->Size() : 0);
    if (!existed) {
      state->synced_length = 0;
      state->entry_unsynced = true;
    } else if (mode == OpenMode::kCreateTruncate) {
      state->synced_length = 0;
    }
  }
  *file = std::make_unique<FaultFile>(this, std::move(base_file), std::move(state));
  return kv::Status::OK();
}

kv::Status FaultInjectionEnv::Rename(const std::string& raw_from, const std::string& raw_to) {
  const std::string from = Normalize(raw_from);
  const std::string to = Normalize(raw_to);
  {
    std::lock_guard<std::mutex> l(mu_);
    KV_RETURN_IF_ERROR(CheckActiveLocked("rename", from));
    KV_RETURN_IF_ERROR(CheckRuleLocked(&rename_rule_, "rename", from));
  }
  const bool to_existed = base_->FileExists(to);
  KV_RETURN_IF_ERROR(base_->Rename(from, to));
  std::lock_guard<std::mutex> l(mu_);
  counters_.renames++;
  auto old_to = files_.find(to);
  if (old_to != files_.end()) {
    old_to->second->path.clear();
    files_.erase(old_to);
  }
  std::shared_ptr<FileState> state;
  auto it = files_.find(from);
  if (it != files_.end()) {
    state = it->second;
    files_.erase(it);
  } else {
    state = std::make_shared<FileState>();
    std::unique_ptr<kv::File> f;
    if (base_->OpenFile(to, OpenMode::kRead, &f).ok()) state->synced_length = f->Size();
  }
  state->path = to;
  state->dir = ParentDir(to);
  // Replacing a name is treated as durable; a brand-new name is not until SyncDir.
  state->entry_unsynced = !to_existed;
  files_[to] = state;
  return kv::Status::OK();
}

kv::Status FaultInjectionEnv::RemoveFile(const std::string& raw_path) {
  const std::string path = Normalize(raw_path);
  {
    std::lock_guard<std::mutex> l(mu_);
    KV_RETURN_IF_ERROR(CheckActiveLocked("remove", path));
  }
  KV_RETURN_IF_ERROR(base_->RemoveFile(path));
  std::lock_guard<std::mutex> l(mu_);
  auto it = files_.find(path);
  if (it != files_.end()) {
    it->second->path.clear();
    files_.erase(it);
  }
  return kv::Status::OK();
}

kv::Status FaultInjectionEnv::CreateDir(const std::string& path) {
  {
    std::lock_guard<std::mutex> l(mu_);
    KV_RETURN_IF_ERROR(CheckActiveLocked("mkdir", path));
  }
  return base_->CreateDir(path);
}

kv::Status FaultInjectionEnv::SyncDir(const std::string& raw_path) {
  const std::string dir = Normalize(raw_path);
  bool skip = false;
  {
    std::lock_guard<std::mutex> l(mu_);
    KV_RETURN_IF_ERROR(CheckActiveLocked("syncdir", dir));
    KV_RETURN_IF_ERROR(CheckRuleLocked(&dir_sync_rule_, "syncdir", dir));
    skip = skip_real_syncs_;
  }
  if (!skip) KV_RETURN_IF_ERROR(base_->SyncDir(raw_path));
  std::lock_guard<std::mutex> l(mu_);
  counters_.dir_syncs++;
  for (auto& [path, state] : files_) {
    if (state->dir == dir) state->entry_unsynced = false;
  }
  return kv::Status::OK();
}

kv::Status FaultInjectionEnv::ListDir(const std::string& dir, std::vector<std::string>* names) {
  return base_->ListDir(dir, names);
}

bool FaultInjectionEnv::FileExists(const std::string& path) { return base_->FileExists(path); }

kv::Status FaultInjectionEnv::LockFile(const std::string& path,
                                       std::unique_ptr<kv::FileLock>* lock) {
  return base_->LockFile(path, lock);
}

kv::Status FaultInjectionEnv::FreeSpace(const std::string& path, uint64_t* bytes) {
  return base_->FreeSpace(path, bytes);
}

kv::Status FaultInjectionEnv::TruncateTo(const std::string& path, uint64_t length) {
  std::unique_ptr<kv::File> f;
  KV_RETURN_IF_ERROR(base_->OpenFile(path, OpenMode::kAppend, &f));
  if (f->Size() <= length) return kv::Status::OK();
  return f->Truncate(length);
}

kv::Status FaultInjectionEnv::DropUnsyncedData() {
  std::vector<std::pair<std::string, uint64_t>> todo;
  {
    std::lock_guard<std::mutex> l(mu_);
    for (const auto& [path, state] : files_) todo.emplace_back(path, state->synced_length);
  }
  for (const auto& [path, synced] : todo) {
    if (!base_->FileExists(path)) continue;
    KV_RETURN_IF_ERROR(TruncateTo(path, synced));
  }
  return kv::Status::OK();
}

kv::Status FaultInjectionEnv::DropUnsyncedDataRandomly(std::mt19937_64& rng) {
  std::vector<std::pair<std::string, uint64_t>> todo;
  {
    std::lock_guard<std::mutex> l(mu_);
    for (const auto& [path, state] : files_) todo.emplace_back(path, state->synced_length);
  }
  for (const auto& [path, synced] : todo) {
    if (!base_->FileExists(path)) continue;
    std::unique_ptr<kv::File> f;
    KV_RETURN_IF_ERROR(base_->OpenFile(path, OpenMode::kRead, &f));
    const uint64_t size = f->Size();
    if (size <= synced) continue;
    const uint64_t keep = std::uniform_int_distribution<uint64_t>(synced, size)(rng);
    KV_RETURN_IF_ERROR(TruncateTo(path, keep));
  }
  return kv::Status::OK();
}

kv::Status FaultInjectionEnv::RemoveFilesCreatedSinceDirSync() {
  std::vector<std::string> doomed = FilesCreatedSinceDirSync();
  for (const auto& path : doomed) {
    if (base_->FileExists(path)) KV_RETURN_IF_ERROR(base_->RemoveFile(path));
    std::lock_guard<std::mutex> l(mu_);
    auto it = files_.find(path);
    if (it != files_.end()) {
      it->second->path.clear();
      files_.erase(it);
    }
  }
  return kv::Status::OK();
}

std::vector<std::string> FaultInjectionEnv::FilesCreatedSinceDirSync() const {
  std::lock_guard<std::mutex> l(mu_);
  std::vector<std::string> out;
  for (const auto& [path, state] : files_) {
    if (state->entry_unsynced) out.push_back(path);
  }
  return out;
}

void FaultInjectionEnv::SetFilesystemActive(bool active) {
  std::lock_guard<std::mutex> l(mu_);
  active_ = active;
  deactivate_armed_ = false;
}

bool FaultInjectionEnv::IsFilesystemActive() const {
  std::lock_guard<std::mutex> l(mu_);
  return active_;
}

void FaultInjectionEnv::DeactivateAfter(uint64_t n) {
  std::lock_guard<std::mutex> l(mu_);
  deactivate_armed_ = true;
  deactivate_remaining_ = n;
}

void FaultInjectionEnv::FailAppendsAfter(uint64_t n, kv::Status::Code code,
                                         std::string path_filter) {
  std::lock_guard<std::mutex> l(mu_);
  append_rule_ = FaultRule{true, n, code, std::move(path_filter)};
}

void FaultInjectionEnv::FailSyncsAfter(uint64_t n, kv::Status::Code code, std::string path_filter) {
  std::lock_guard<std::mutex> l(mu_);
  sync_rule_ = FaultRule{true, n, code, std::move(path_filter)};
}

void FaultInjectionEnv::FailReservesAfter(uint64_t n, kv::Status::Code code,
                                          std::string path_filter) {
  std::lock_guard<std::mutex> l(mu_);
  reserve_rule_ = FaultRule{true, n, code, std::move(path_filter)};
}

void FaultInjectionEnv::FailRenamesAfter(uint64_t n, kv::Status::Code code) {
  std::lock_guard<std::mutex> l(mu_);
  rename_rule_ = FaultRule{true, n, code, ""};
}

void FaultInjectionEnv::FailDirSyncsAfter(uint64_t n, kv::Status::Code code) {
  std::lock_guard<std::mutex> l(mu_);
  dir_sync_rule_ = FaultRule{true, n, code, ""};
}

void FaultInjectionEnv::SkipRealSyncs(bool skip) {
  std::lock_guard<std::mutex> l(mu_);
  skip_real_syncs_ = skip;
}

void FaultInjectionEnv::ShortWriteNext(kv::Status::Code code) {
  std::lock_guard<std::mutex> l(mu_);
  short_write_next_ = true;
  short_write_code_ = code;
}

void FaultInjectionEnv::ClearFaults() {
  std::lock_guard<std::mutex> l(mu_);
  append_rule_ = sync_rule_ = reserve_rule_ = rename_rule_ = dir_sync_rule_ = FaultRule{};
  short_write_next_ = false;
}

FaultInjectionEnv::Counters FaultInjectionEnv::counters() const {
  std::lock_guard<std::mutex> l(mu_);
  return counters_;
}

int64_t FaultInjectionEnv::SyncedLength(const std::string& path) const {
  std::lock_guard<std::mutex> l(mu_);
  auto it = files_.find(Normalize(path));
  if (it == files_.end()) return -1;
  return static_cast<int64_t>(it->second->synced_length);
}

ScopedTempDir::ScopedTempDir(const std::string& tag) {
  std::string tmpl = "/tmp/" + tag + "-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (mkdtemp(buf.data()) == nullptr) abort();
  path_ = buf.data();
}

ScopedTempDir::~ScopedTempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

}  // namespace kvtest

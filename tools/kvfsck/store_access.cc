#include "tools/kvfsck/store_access.h"

#include <sys/stat.h>

#include <cstring>
#include <vector>

namespace kvfsck {

std::string MountedMessage(const std::string& dir) {
  pid_t pid = LockHolder(dir);
  if (pid == 0) return {};
  return "store is mounted by pid " + (pid > 0 ? std::to_string(pid) : std::string("unknown"));
}

bool OpenStore(const std::string& dir, Access access, bool salvage,
               std::unique_ptr<kv::Store>* store, std::string* error) {
  struct stat st;
  if (stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    *error = "no kvfs store at " + dir + (errno == ENOENT ? "" : std::string(": not a directory"));
    return false;
  }
  if (access == Access::kWrite) {
    std::string mounted = MountedMessage(dir);
    if (!mounted.empty()) {
      *error = mounted;
      return false;
    }
  }
  kv::Options options = fs::Volume::StoreOptions();
  options.create_if_missing = false;
  options.read_only = access == Access::kRead;
  options.salvage = salvage;
  // A tool's run is short and decides itself when to compact.
  options.background_compaction = false;
  kv::Status s = kv::OpenPageStore(options, dir, store);
  if (!s.ok()) {
    std::string mounted = s.IsBusy() ? MountedMessage(dir) : "";
    *error = mounted.empty() ? s.message() : mounted;
    return false;
  }
  return true;
}

bool OpenVolume(const std::string& dir, const fs::VolumeOptions& options,
                const std::string& why_offline, std::unique_ptr<fs::Volume>* volume,
                std::string* error) {
  std::string mounted = MountedMessage(dir);
  if (!mounted.empty()) {
    *error = mounted + (why_offline.empty() ? "" : "; " + why_offline);
    return false;
  }
  kv::Options store_options = fs::Volume::StoreOptions();
  store_options.create_if_missing = false;
  std::unique_ptr<kv::Store> store;
  kv::Status s = kv::OpenPageStore(store_options, dir, &store);
  if (!s.ok()) {
    *error = s.message();
    return false;
  }
  fs::VolumeOptions with = options;
  with.space_path = dir;
  with.store_retention = store_options.retention;
  fs::Errno err = fs::Volume::Open(std::move(store), with, volume);
  if (!err.ok()) {
    *error = "cannot open the file system: " + err.ToString();
    return false;
  }
  return true;
}

bool ReadSuperblock(const std::string& dir, fs::Superblock* super, std::string* error) {
  std::unique_ptr<kv::Store> store;
  if (!OpenStore(dir, Access::kRead, false, &store, error)) return false;
  std::string value;
  kv::Status s = store->Get(kv::ReadOptions(), "S", &value);
  if (!s.ok() || !fs::DecodeSuperblock(value, super)) {
    *error = "no file system in store " + dir + (s.ok() ? "" : ": " + s.message());
    return false;
  }
  return true;
}

bool Resolve(fs::Volume* volume, const std::string& path, fs::Ino* ino, std::string* error) {
  fs::Ino cur = fs::kRootIno;
  size_t pos = 0;
  while (pos < path.size()) {
    size_t end = path.find('/', pos);
    if (end == std::string::npos) end = path.size();
    std::string name = path.substr(pos, end - pos);
    pos = end + 1;
    if (name.empty() || name == ".") continue;
    fs::Attr attr;
    fs::Errno err = volume->Lookup(cur, name, &attr);
    if (!err.ok()) {
      *error = path + ": " + std::strerror(err.value());
      return false;
    }
    cur = attr.ino;
  }
  *ino = cur;
  return true;
}

bool ResolveParent(fs::Volume* volume, const std::string& path, fs::Ino* parent, std::string* name,
                   std::string* error) {
  std::string trimmed = path;
  while (trimmed.size() > 1 && trimmed.back() == '/') trimmed.pop_back();
  size_t slash = trimmed.rfind('/');
  *name = slash == std::string::npos ? trimmed : trimmed.substr(slash + 1);
  std::string dir = slash == std::string::npos ? "/" : trimmed.substr(0, slash);
  if (name->empty() || *name == "." || *name == "..") {
    *error = path + ": not a file name";
    return false;
  }
  return Resolve(volume, dir, parent, error);
}

}  // namespace kvfsck

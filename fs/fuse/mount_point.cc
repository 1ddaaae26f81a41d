// Mount point checks: stat, realpath and /proc/self/mountinfo.
#include "fs/fuse/mount_point.h"

#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

namespace fs::fuse {
namespace {

// mountinfo escapes space, tab, newline and backslash as \ooo.
std::string Unescape(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size() && s[i + 1] >= '0' && s[i + 1] <= '3' && s[i + 2] >= '0' &&
        s[i + 2] <= '7' && s[i + 3] >= '0' && s[i + 3] <= '7') {
      out.push_back(
          static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0')));
      i += 3;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

struct MountInfo {
  std::string mountpoint;
  std::string type;
  std::string source;
};

// Every mount of this process's namespace, bottom to top.
std::vector<MountInfo> ReadMounts() {
  std::vector<MountInfo> mounts;
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    // id parent major:minor root MOUNTPOINT options [optional...] - TYPE SOURCE superoptions
    std::istringstream fields(line);
    std::vector<std::string> f;
    std::string word;
    while (fields >> word) f.push_back(word);
    if (f.size() < 5) continue;
    MountInfo m;
    m.mountpoint = Unescape(f[4]);
    for (size_t i = 5; i + 2 < f.size(); ++i) {
      if (f[i] == "-") {
        m.type = f[i + 1];
        m.source = Unescape(f[i + 2]);
        break;
      }
    }
    mounts.push_back(std::move(m));
  }
  return mounts;
}

// The file system type and source of the mount on `path`, if there is one.
bool FindMount(const std::string& path, std::string* type, std::string* source) {
  bool found = false;
  for (const MountInfo& m : ReadMounts()) {
    if (m.mountpoint != path) continue;
    *type = m.type;  // the last match is the mount on top
    *source = m.source;
    found = true;
  }
  return found;
}

}  // namespace

bool CheckMountPoint(const std::string& given, std::string* canonical, std::string* error) {
  struct stat st;
  if (stat(given.c_str(), &st) != 0) {
    int err = errno;
    if (err == ENOENT) {
      *error = "mount point " + given + " does not exist";
    } else if (err == ENOTCONN) {
      *error = "mount point " + given +
               " is a dead FUSE mount (its daemon exited); detach it with: fusermount3 -u " + given;
    } else {
      *error = "mount point " + given + ": " + strerror(err);
    }
    return false;
  }
  if (!S_ISDIR(st.st_mode)) {
    *error = "mount point " + given + " is not a directory";
    return false;
  }
  char real[PATH_MAX];
  if (realpath(given.c_str(), real) == nullptr) {
    *error = "mount point " + given + ": " + strerror(errno);
    return false;
  }
  *canonical = real;
  std::string type, source;
  if (FindMount(*canonical, &type, &source)) {
    *error = "mount point " + *canonical + " is already mounted (" + type + " from " + source + ")";
    return false;
  }
  return true;
}

bool IsStoreMounted(const std::string& store) {
  for (const MountInfo& m : ReadMounts()) {
    if (m.type == "fuse.kvfs" && m.source == store) return true;
  }
  return false;
}

bool SetMountReadahead(const std::string& mountpoint, size_t bytes, std::string* error) {
  struct stat st;
  if (stat(mountpoint.c_str(), &st) != 0) {
    *error = "stat " + mountpoint + ": " + strerror(errno);
    return false;
  }
  const std::string path = "/sys/class/bdi/" + std::to_string(major(st.st_dev)) + ":" +
                           std::to_string(minor(st.st_dev)) + "/read_ahead_kb";
  std::ofstream out(path);
  out << (bytes + 1023) / 1024 << "\n";
  out.close();
  if (!out) {
    *error = "cannot write " + path + " (not root?)";
    return false;
  }
  return true;
}

}  // namespace fs::fuse

// The POSIX Env: plain file descriptors, pwrite, fdatasync, fallocate, flock; reads through
// a read-only shared mapping for files this process writes, pread otherwise.
#include "kv/env.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>  // renameat2
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <memory>
#include <mutex>
#include <vector>

namespace kv {
namespace {

// Retries a system call interrupted by a signal.
template <typename F>
auto RetryOnEintr(F&& f) {
  decltype(f()) r;
  do {
    r = f();
  } while (r < 0 && errno == EINTR);
  return r;
}

// Reads of a file this process writes go through a read-only MAP_SHARED mapping: a point
// read of a hot page is then a memcpy instead of a pread system call (most of a Get's cost).
// The mapping is made larger than the file (pages past the end fill in as the file grows)
// and replaced by a twice larger one when the file outgrows it. Replaced mappings stay
// mapped until the file is closed, because a reader (compaction reads without the page
// lock) may still be copying from one; they only cost address space. Only bytes below
// Size() are ever touched, so a mapping never faults past the end of the file. Files opened
// read-only are not mapped: another process (the store's writer) may truncate them.
class PosixFile final : public File {
 public:
  PosixFile(int fd, std::string path, uint64_t size, bool mappable)
      : fd_(fd), path_(std::move(path)), size_(size), mappable_(mappable) {}
  ~PosixFile() override {
    for (const auto& m : mappings_) ::munmap(const_cast<char*>(m->base), m->length);
    ::close(fd_);
  }

  const char* Map(uint64_t offset, size_t n) const override {
    if (!mappable_ || offset + n > Size()) return nullptr;
    const Mapping* m = mapping_.load(std::memory_order_acquire);
    if (m == nullptr || offset + n > m->length) m = Remap(offset + n);
    return m != nullptr ? m->base + offset : nullptr;
  }

  Status Read(uint64_t offset, size_t n, char* buf, size_t* got) const override {
    if (const char* mapped = Map(offset, n)) {
      std::memcpy(buf, mapped, n);
      *got = n;
      return Status::OK();
    }
    size_t done = 0;
    while (done < n) {
      ssize_t r = RetryOnEintr([&] { return ::pread(fd_, buf + done, n - done, offset + done); });
      if (r < 0) return Status::FromErrno(errno, "read " + path_);
      if (r == 0) break;
      done += static_cast<size_t>(r);
    }
    *got = done;
    return Status::OK();
  }

  Status Append(const char* data, size_t n) override {
    uint64_t offset = size_.load(std::memory_order_relaxed);
    size_t done = 0;
    while (done < n) {
      ssize_t r = RetryOnEintr([&] { return ::pwrite(fd_, data + done, n - done, offset + done); });
      if (r < 0) {
        size_.store(offset + done, std::memory_order_release);
        return Status::FromErrno(errno, "write " + path_);
      }
      done += static_cast<size_t>(r);
    }
    size_.store(offset + n, std::memory_order_release);
    return Status::OK();
  }

  Status Sync() override {
    if (RetryOnEintr([&] { return ::fdatasync(fd_); }) < 0) {
      return Status::FromErrno(errno, "fdatasync " + path_);
    }
    return Status::OK();
  }

  Status Truncate(uint64_t size) override {
    if (RetryOnEintr([&] { return ::ftruncate(fd_, static_cast<off_t>(size)); }) < 0) {
      return Status::FromErrno(errno, "truncate " + path_);
    }
    size_.store(size, std::memory_order_release);
    return Status::OK();
  }

  Status Reserve(uint64_t offset, uint64_t len) override {
    int r = RetryOnEintr([&] {
      return ::fallocate(fd_, FALLOC_FL_KEEP_SIZE, static_cast<off_t>(offset),
                         static_cast<off_t>(len));
    });
    // A file system without fallocate still works; it just cannot promise the space.
    if (r < 0 && errno != EOPNOTSUPP) return Status::FromErrno(errno, "fallocate " + path_);
    return Status::OK();
  }

  uint64_t Size() const override { return size_.load(std::memory_order_acquire); }

  void StartWriteback(uint64_t offset, uint64_t len) override {
    ::sync_file_range(fd_, static_cast<off_t>(offset), static_cast<off_t>(len),
                      SYNC_FILE_RANGE_WRITE);
  }

 private:
  struct Mapping {
    const char* base;
    size_t length;
  };
  static constexpr size_t kMinMapping = size_t{64} << 20;

  // A mapping covering at least `needed` bytes, or nullptr (then reads use pread).
  const Mapping* Remap(uint64_t needed) const {
    std::lock_guard lock(map_mu_);
    const Mapping* m = mapping_.load(std::memory_order_relaxed);
    if (m != nullptr && needed <= m->length) return m;
    const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
    size_t length = std::max<size_t>(kMinMapping, 2 * needed);
    length = (length + page - 1) / page * page;
    void* base = ::mmap(nullptr, length, PROT_READ, MAP_SHARED, fd_, 0);
    if (base == MAP_FAILED) return nullptr;
    mappings_.push_back(std::make_unique<Mapping>(Mapping{static_cast<const char*>(base), length}));
    mapping_.store(mappings_.back().get(), std::memory_order_release);
    return mappings_.back().get();
  }

  const int fd_;
  const std::string path_;
  std::atomic<uint64_t> size_;
  const bool mappable_;
  mutable std::mutex map_mu_;
  mutable std::vector<std::unique_ptr<Mapping>> mappings_;  // GUARDED_BY(map_mu_)
  mutable std::atomic<const Mapping*> mapping_{nullptr};    // the largest, in mappings_
};

class PosixFileLock final : public FileLock {
 public:
  explicit PosixFileLock(int fd) : fd_(fd) {}
  ~PosixFileLock() override { ::close(fd_); }  // closing the descriptor drops the flock

 private:
  const int fd_;
};

class PosixEnv final : public Env {
 public:
  Status OpenFile(const std::string& path, OpenMode mode, std::unique_ptr<File>* file) override {
    int flags = O_CLOEXEC;
    switch (mode) {
      case OpenMode::kRead:
        flags |= O_RDONLY;
        break;
      case OpenMode::kAppend:
        flags |= O_RDWR;
        break;
      case OpenMode::kCreate:
        flags |= O_RDWR | O_CREAT;
        break;
      case OpenMode::kCreateTruncate:
        flags |= O_RDWR | O_CREAT | O_TRUNC;
        break;
    }
    int fd = RetryOnEintr([&] { return ::open(path.c_str(), flags, 0644); });
    if (fd < 0) return Status::FromErrno(errno, "open " + path);
    struct stat st;
    if (::fstat(fd, &st) < 0) {
      Status s = Status::FromErrno(errno, "stat " + path);
      ::close(fd);
      return s;
    }
    *file = std::make_unique<PosixFile>(fd, path, static_cast<uint64_t>(st.st_size),
                                        mode != OpenMode::kRead);
    return Status::OK();
  }

  Status Rename(const std::string& from, const std::string& to) override {
    if (::rename(from.c_str(), to.c_str()) < 0) {
      return Status::FromErrno(errno, "rename " + from + " to " + to);
    }
    return Status::OK();
  }

  Status RemoveFile(const std::string& path) override {
    if (::unlink(path.c_str()) < 0) return Status::FromErrno(errno, "remove " + path);
    return Status::OK();
  }

  Status CreateDir(const std::string& path) override {
    if (::mkdir(path.c_str(), 0755) < 0 && errno != EEXIST) {
      return Status::FromErrno(errno, "mkdir " + path);
    }
    return Status::OK();
  }

  Status SyncDir(const std::string& path) override {
    int fd = RetryOnEintr([&] { return ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); });
    if (fd < 0) return Status::FromErrno(errno, "open directory " + path);
    int r = RetryOnEintr([&] { return ::fsync(fd); });
    int err = errno;
    ::close(fd);
    if (r < 0) return Status::FromErrno(err, "fsync directory " + path);
    return Status::OK();
  }

  Status ListDir(const std::string& dir, std::vector<std::string>* names) override {
    names->clear();
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) return Status::FromErrno(errno, "list " + dir);
    while (struct dirent* e = ::readdir(d)) {
      if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
      names->emplace_back(e->d_name);
    }
    ::closedir(d);
    return Status::OK();
  }

  bool FileExists(const std::string& path) override { return ::access(path.c_str(), F_OK) == 0; }

  Status LockFile(const std::string& path, std::unique_ptr<FileLock>* lock) override {
    int fd = RetryOnEintr([&] { return ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644); });
    if (fd < 0) return Status::FromErrno(errno, "open lock file " + path);
    if (::flock(fd, LOCK_EX | LOCK_NB) < 0) {
      int err = errno;
      char buf[32] = {};
      ssize_t n = ::pread(fd, buf, sizeof(buf) - 1, 0);
      ::close(fd);
      if (err == EWOULDBLOCK) {
        std::string pid = n > 0 ? std::string(buf, static_cast<size_t>(n)) : "unknown";
        while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' ')) pid.pop_back();
        return Status::Busy("store is in use by pid " + pid);
      }
      return Status::FromErrno(err, "lock " + path);
    }
    std::string pid = std::to_string(::getpid()) + "\n";
    if (::ftruncate(fd, 0) < 0 || ::pwrite(fd, pid.data(), pid.size(), 0) < 0) {
      Status s = Status::FromErrno(errno, "write lock file " + path);
      ::close(fd);
      return s;
    }
    *lock = std::make_unique<PosixFileLock>(fd);
    return Status::OK();
  }

  Status FreeSpace(const std::string& path, uint64_t* bytes) override {
    struct statvfs st;
    if (::statvfs(path.c_str(), &st) < 0) return Status::FromErrno(errno, "statvfs " + path);
    *bytes = static_cast<uint64_t>(st.f_bavail) * st.f_frsize;
    return Status::OK();
  }
};

}  // namespace

Env* Env::Default() {
  static PosixEnv env;
  return &env;
}

Status WriteFileAtomically(Env* env, const std::string& path, const std::string& data) {
  const std::string tmp = path + ".tmp";
  {
    std::unique_ptr<File> file;
    KV_RETURN_IF_ERROR(env->OpenFile(tmp, Env::OpenMode::kCreateTruncate, &file));
    KV_RETURN_IF_ERROR(file->Append(data.data(), data.size()));
    KV_RETURN_IF_ERROR(file->Sync());
  }
  KV_RETURN_IF_ERROR(env->Rename(tmp, path));
  auto slash = path.find_last_of('/');
  return env->SyncDir(slash == std::string::npos ? "." : path.substr(0, slash));
}

Status ReadWholeFile(Env* env, const std::string& path, std::string* data) {
  std::unique_ptr<File> file;
  KV_RETURN_IF_ERROR(env->OpenFile(path, Env::OpenMode::kRead, &file));
  data->resize(file->Size());
  size_t got = 0;
  KV_RETURN_IF_ERROR(file->Read(0, data->size(), data->data(), &got));
  data->resize(got);
  return Status::OK();
}

std::string ParentDir(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

Status ExchangeDirectories(const std::string& a, const std::string& b) {
  if (::renameat2(AT_FDCWD, a.c_str(), AT_FDCWD, b.c_str(), RENAME_EXCHANGE) == 0) {
    return Status::OK();
  }
  if (errno == EINVAL || errno == ENOSYS) {
    return Status::NotSupported("the file system cannot exchange " + a + " and " + b);
  }
  return Status::FromErrno(errno, "exchange " + a + " and " + b);
}

}  // namespace kv

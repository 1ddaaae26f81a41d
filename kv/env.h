// Env: the seam through which kv/ touches the file system, so that tests can inject faults
// (ENOSPC, EIO, short writes) and simulate a crash that loses data not yet synced.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "kv/status.h"

namespace kv {

// An open file. Positional reads may run concurrently with each other and with Append;
// Append, Truncate and Reserve must be serialized by the caller.
class File {
 public:
  virtual ~File() = default;
  File() = default;
  File(const File&) = delete;
  File& operator=(const File&) = delete;

  // Reads up to n bytes at offset into buf; *got is less than n only at end of file.
  virtual Status Read(uint64_t offset, size_t n, char* buf, size_t* got) const = 0;
  // Appends all n bytes at the end of the file, or fails. A failed append may leave a
  // partial write behind; the caller truncates it away.
  virtual Status Append(const char* data, size_t n) = 0;
  // Makes every appended byte durable (fdatasync).
  virtual Status Sync() = 0;
  // Sets the file's length.
  virtual Status Truncate(uint64_t size) = 0;
  // Allocates disk space for [offset, offset+len) without changing the file's length, so
  // that later appends into that range cannot fail with ENOSPC.
  virtual Status Reserve(uint64_t offset, uint64_t len) = 0;
  // The current length of the file.
  virtual uint64_t Size() const = 0;
  // Starts writing [offset, offset+len) to disk without waiting for it (a hint: a long
  // sequential writer overlaps its writes with its reads instead of leaving it all to the
  // final Sync).
  virtual void StartWriteback(uint64_t /*offset*/, uint64_t /*len*/) {}
  // When the file is memory-mapped: a pointer to its bytes [offset, offset+n), valid until
  // the file is closed (the bytes may change only where they are rewritten). Otherwise, or
  // past Size(), nullptr: use Read.
  virtual const char* Map(uint64_t /*offset*/, size_t /*n*/) const { return nullptr; }
};

// A held advisory lock; released when destroyed.
class FileLock {
 public:
  virtual ~FileLock() = default;
  FileLock() = default;
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;
};

class Env {
 public:
  virtual ~Env() = default;

  enum class OpenMode {
    kRead,           // existing file, read-only
    kAppend,         // existing file, read and append
    kCreate,         // create or open, read and append
    kCreateTruncate  // create, or open and truncate to zero, read and append
  };

  // Opens `path`. A missing file with kRead/kAppend is NotFound.
  virtual Status OpenFile(const std::string& path, OpenMode mode, std::unique_ptr<File>* file) = 0;
  // Atomically replaces `to` with `from` (rename(2)). Does not sync the directory.
  virtual Status Rename(const std::string& from, const std::string& to) = 0;
  virtual Status RemoveFile(const std::string& path) = 0;
  // Creates a directory; OK when it exists already.
  virtual Status CreateDir(const std::string& path) = 0;
  // Makes the directory's entries durable (fsync of the directory).
  virtual Status SyncDir(const std::string& path) = 0;
  // Names (not paths) of the entries in `dir`, without "." and "..".
  virtual Status ListDir(const std::string& dir, std::vector<std::string>* names) = 0;
  virtual bool FileExists(const std::string& path) = 0;
  // Takes an exclusive flock on `path` (created if missing) and writes our pid into it.
  // When another process holds it, returns Busy naming that process's pid.
  virtual Status LockFile(const std::string& path, std::unique_ptr<FileLock>* lock) = 0;
  // The filesystem's free bytes under `path` (statvfs), for statfs and space checks.
  virtual Status FreeSpace(const std::string& path, uint64_t* bytes) = 0;

  // The process-wide POSIX implementation.
  static Env* Default();
};

// Writes `data` to `path` atomically and durably: write a temporary file, sync it, rename it
// over `path`, sync the directory.
Status WriteFileAtomically(Env* env, const std::string& path, const std::string& data);
// Reads a whole file into *data.
Status ReadWholeFile(Env* env, const std::string& path, std::string* data);
// The directory part of `path`: "." for a bare name, "/" for a child of the root.
std::string ParentDir(const std::string& path);
// Swaps two directory trees atomically (renameat2 RENAME_EXCHANGE), for replacing a whole
// store; the caller syncs their parent directory. NotSupported where the file system
// cannot exchange. Not part of Env: no test needs to fault it.
Status ExchangeDirectories(const std::string& a, const std::string& b);

}  // namespace kv

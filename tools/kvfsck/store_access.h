// How kvfsck opens a store: never creating one, refusing a store a daemon has open unless
// the command only reads, and always with the file system's sharder.
#pragma once

#include <memory>
#include <string>

#include "fs/records.h"
#include "fs/volume.h"
#include "kv/store.h"
#include "tools/kvfsck/ui.h"

namespace kvfsck {

enum class Access {
  kRead,   // read-only, without the lock: safe while a daemon has the store open
  kWrite,  // takes the writer lock; refused while mounted
};

// Opens the page store at `dir`. On failure returns false with a one-line *error.
// `salvage`: read-only, skipping corrupt records (for checking a damaged store).
bool OpenStore(const std::string& dir, Access access, bool salvage,
               std::unique_ptr<kv::Store>* store, std::string* error);
// Opens the store for writing and the volume in it (refused while mounted; `why_offline`
// completes the refusal, e.g. "browse MOUNT/.kvfs/history instead").
bool OpenVolume(const std::string& dir, const fs::VolumeOptions& options,
                const std::string& why_offline, std::unique_ptr<fs::Volume>* volume,
                std::string* error);
// The file system's superblock (S key), read without the lock.
bool ReadSuperblock(const std::string& dir, fs::Superblock* super, std::string* error);
// "store is mounted by pid N" when a daemon (or another tool) holds the store; else empty.
std::string MountedMessage(const std::string& dir);
// Resolves an absolute or root-relative path in the volume. On failure returns the errno
// message in *error.
bool Resolve(fs::Volume* volume, const std::string& path, fs::Ino* ino, std::string* error);
// Splits "/a/b/c" into the parent directory's inode ("/a/b") and the last name ("c").
bool ResolveParent(fs::Volume* volume, const std::string& path, fs::Ino* parent, std::string* name,
                   std::string* error);

}  // namespace kvfsck

// Checks of the mount point before anything is opened, so that the usual mistakes get a
// one-line reason instead of a libfuse or fusermount3 error.
#pragma once

#include <string>

namespace fs::fuse {

// Succeeds when `given` is an existing directory that nothing is mounted on; *canonical
// receives its real path. Otherwise *error says why in one line: missing, not a directory,
// a dead FUSE mount (daemon killed), already mounted.
bool CheckMountPoint(const std::string& given, std::string* canonical, std::string* error);

// Whether a kvfs mount of the store in directory `store` (absolute) exists, by the fsname
// the daemon gives its mounts. Tells a store in use by a live mount from one whose daemon is
// still closing it after an unmount.
bool IsStoreMounted(const std::string& store);

// Sets the kernel's readahead for the FUSE mount on `mountpoint` (the read_ahead_kb of its
// backing device info). The kernel starts every FUSE mount at 128 KiB whatever the daemon's
// max_readahead says, which leaves a sequential reader waiting on one small request after
// another. stat()s the mount point first, which returns only once the session has answered
// the kernel's INIT (whose reply would otherwise reset the value), so it must run beside the
// session loop. Needs root; otherwise *error says why.
bool SetMountReadahead(const std::string& mountpoint, size_t bytes, std::string* error);

}  // namespace fs::fuse

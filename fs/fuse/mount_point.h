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

}  // namespace fs::fuse

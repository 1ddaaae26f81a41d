// A directory read the way the kernel reads one with a small buffer, for fs tests.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "fs/volume.h"

namespace fs {

// The names of `dir` (with "." and ".."), read `per_call` entries per ReadDir call, each call
// resuming at the offset of the last entry taken; `between(n)` runs after the n-th call that
// gave entries (from 0), so that a test can change the directory mid-listing.
inline std::vector<std::string> ListInPieces(Volume* vol, Ino dir, int per_call,
                                             const std::function<void(int)>& between) {
  std::vector<std::string> seen;
  uint64_t offset = 0;
  for (int call = 0;; ++call) {
    int taken = 0;
    Errno err = vol->ReadDir(dir, offset, [&](const DirEntry& e) {
      if (taken == per_call) return false;
      ++taken;
      seen.emplace_back(e.name);
      offset = e.next_offset;
      return true;
    });
    EXPECT_TRUE(err.ok()) << err.ToString();
    if (!err.ok() || taken == 0) return seen;
    between(call);
  }
}

}  // namespace fs

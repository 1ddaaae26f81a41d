#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine, builds kvfs and runs every test: the full suite on a
# normal build, the unit tests under AddressSanitizer+UndefinedBehaviorSanitizer, and the
# concurrency tests under ThreadSanitizer. Exits non-zero when anything fails.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh build test
# The mount tests then run through FUSE over io_uring, kvfs's default where the kernel has
# it; tests/mount/uring_test.sh also covers /dev/fuse.
scripts/enable-fuse-uring.sh || true

jobs=$(nproc)
build() {  # build DIR [cmake args...]
  local dir=$1
  shift
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
  cmake --build "$dir" -j"$jobs"
}

echo "== build and full test suite"
build build
ctest --test-dir build --output-on-failure -j"$jobs"

echo "== unit tests under AddressSanitizer + UndefinedBehaviorSanitizer"
build build-asan -DKVFS_SANITIZE=address
ctest --test-dir build-asan --output-on-failure -L unit -j"$jobs"

echo "== concurrency tests under ThreadSanitizer"
build build-tsan -DKVFS_SANITIZE=thread
ctest --test-dir build-tsan --output-on-failure -L concurrency

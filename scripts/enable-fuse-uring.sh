#!/usr/bin/env bash
# Turns on FUSE over io_uring (Linux 6.14+), which kvfs uses when the kernel offers it: the
# fuse module's enable_uring parameter, off by default. Needs root; does nothing (exit 0)
# on a kernel without the feature or when it is already on. kvfs works either way; with it,
# each request stays on the CPU of the program that made it (fs/fuse/uring.h).
set -euo pipefail
param=/sys/module/fuse/parameters/enable_uring
[[ -e $param ]] || exit 0
[[ $(cat "$param") == Y ]] && exit 0
if [[ -w $param ]] && echo Y >"$param" 2>/dev/null; then
  echo "enabled FUSE over io_uring (fuse.enable_uring=Y)"
else
  echo "note: FUSE over io_uring is off (as root: echo Y > $param)"
fi

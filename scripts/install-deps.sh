#!/usr/bin/env bash
# Installs the Debian 12 packages kvfs needs that this machine lacks (idempotent).
# Usage: scripts/install-deps.sh [build|test|bench]...   (default: build test)
set -euo pipefail

build=(cmake g++ make pkg-config zlib1g-dev libxxhash-dev libfuse3-dev fuse3 liburing-dev
       libcli11-dev nlohmann-json3-dev libgtest-dev)
test=(attr acl rsync git tar coreutils diffutils python3 vim-tiny)
bench=(libleveldb-dev librocksdb-dev fio bindfs hyperfine)

want=()
for set in "${@:-build test}"; do
  for s in $set; do
    case "$s" in
      build) want+=("${build[@]}") ;;
      test) want+=("${build[@]}" "${test[@]}") ;;
      bench) want+=("${build[@]}" "${bench[@]}") ;;
      *) echo "install-deps: unknown set '$s' (build, test, bench)" >&2; exit 2 ;;
    esac
  done
done

missing=()
for pkg in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "install-deps: installing ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

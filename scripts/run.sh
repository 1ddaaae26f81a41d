#!/usr/bin/env bash
# Builds kvfs and mounts a store: the one command to try kvfs on a fresh Debian 12 machine.
#
# Usage: scripts/run.sh [STORE] [MOUNTPOINT] [-- KVFS_OPTIONS...]
#   STORE       store directory, created on first use
#               (default: $KVFS_STORE, else ~/.local/share/kvfs/store)
#   MOUNTPOINT  directory to mount it on, created if missing
#               (default: $KVFS_MOUNT, else ~/kvfs)
#   after --    passed to the daemon, e.g.  -- -o compression=6,allow_other
#
# Installs missing build packages (scripts/install-deps.sh build), builds the Release daemon
# into build/, turns on FUSE over io_uring where the kernel has it
# (scripts/enable-fuse-uring.sh), mounts in the background (the daemon logs to syslog) and
# prints how to use, browse and unmount the file system. A mount point that already holds a live kvfs mount is
# left alone (exit 0); a dead one (its daemon was killed) is detached first.
set -euo pipefail

usage() {
  sed -n '4,9s/^# \{0,1\}//p' "$0"
}

positional=()
extra=()
while (($# > 0)); do
  case $1 in
    --) shift; extra=("$@"); break ;;
    -h | --help) usage; exit 0 ;;
    -*) echo "run.sh: unknown option '$1' (kvfs options go after --)" >&2; usage >&2; exit 2 ;;
    *) positional+=("$1"); shift ;;
  esac
done
if ((${#positional[@]} > 2)); then
  echo "run.sh: too many arguments" >&2
  usage >&2
  exit 2
fi
store=${positional[0]:-${KVFS_STORE:-$HOME/.local/share/kvfs/store}}
mnt=${positional[1]:-${KVFS_MOUNT:-$HOME/kvfs}}

cd "$(dirname "$0")/.."
repo=$(pwd)
kvfs=$repo/build/fs/fuse/kvfs

# The file system type of the mount on $1 ("" when none); dead mounts are listed too.
mount_type() {
  findmnt -n -o FSTYPE --mountpoint "$1" 2>/dev/null | tail -n 1
}

# realpath -m: also for a missing directory or a dead mount, which stat cannot enter.
mnt=$(realpath -m "$mnt")
case $(mount_type "$mnt") in
  "") ;;
  fuse.kvfs)
    if stat "$mnt" >/dev/null 2>&1; then
      src=$(findmnt -n -o SOURCE --mountpoint "$mnt" | tail -n 1)
      echo "kvfs is already mounted on $mnt (store $src); nothing to do."
      echo "Unmount it with: fusermount3 -u $mnt"
      exit 0
    fi
    echo "run.sh: $mnt is a dead kvfs mount (its daemon exited); detaching it"
    fusermount3 -u "$mnt" 2>/dev/null || fusermount3 -u -z "$mnt"
    ;;
  *)
    echo "run.sh: $mnt is already a $(mount_type "$mnt") mount point; choose another" >&2
    exit 1
    ;;
esac

"$repo/scripts/install-deps.sh" build
cmake -S "$repo" -B "$repo/build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$repo/build" -j"$(nproc)" --target kvfs kvfsck

"$repo/scripts/enable-fuse-uring.sh" || true
mkdir -p "$mnt"
# The daemon creates the store directory itself (mode 0700) on first use.
"$kvfs" "$store" "$mnt" "${extra[@]}"

store=$(realpath "$store")
cat <<EOF

kvfs is mounted on $mnt (store: $store).

Use it like any directory:
  cp -a ~/Documents "$mnt"/      copy files in
  cd "$mnt" && ls -la             browse
  df -h "$mnt"                    space used and free
EOF
if [[ -d $mnt/.kvfs ]]; then
  cat <<EOF
  ls "$mnt"/.kvfs/history/FILE/   earlier versions of FILE (cp one back to restore it)
  ls "$mnt"/.kvfs/trash/          deleted files
EOF
fi
cat <<EOF

Unmount it (everything is flushed and synced first):
  fusermount3 -u "$mnt"
Mount it again later with:  scripts/run.sh "$store" "$mnt"
Check, back up or compact the store with kvfsck (README.md, "Maintenance"):
  $repo/build/tools/kvfsck check "$store"
The daemon logs to syslog (journalctl -t kvfs); to watch it, mount in the foreground:
  $kvfs "$store" "$mnt" -f
EOF

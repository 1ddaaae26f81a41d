#!/usr/bin/env bash
# File-system benchmark: runs the same workloads on a kvfs mount, on a plain directory of the
# underlying disk and on bindfs (a passthrough FUSE file system) over another plain directory,
# in one run, and prints one table with the kvfs/plain and kvfs/bindfs ratios.
#
# Usage: scripts/bench.sh [--size SIZE] [--quick] [--dir DIR] [--only LIST] [options]
#   --size SIZE        sequential data set size, e.g. 1G (default), 256M
#   --quick            smaller everything: 128M data sets, 64M/5 s fio, 2,000 files for the
#                      metadata test, 1,000 small files, a smaller source tree
#   --dir DIR          work directory (default /tmp/kvfs-bench); the generated input data is
#                      kept in DIR/data and reused by later runs
#   --only LIST        comma-separated subset of: seq (= seq-random,seq-text), seq-random,
#                      seq-text, fio, meta, small, tree (tar extract/read + git; alias tar, git),
#                      history (versioning on vs off; 100 versions of a 100 MiB file),
#                      kvfsck (backup/restore vs tar c/x of a mixed tree; compact)
#   --kvfs PATH        the daemon (default build-rel/fs/fuse/kvfs, built when missing)
#   --kvfs-opts OPTS   extra -o options for kvfs, e.g. compression=6,chunk_size=128K
#   --fio-runtime S    seconds per fio job (default 15, quick 5)
#   --cold-runs N      times each cold read is run, from cold caches each time; the median
#                      is reported (default 5, quick 1)
#   --keep             keep the per-workload directories and stores (default: delete them)
#
# Needs root (drop_caches), /dev/fuse and `scripts/install-deps.sh bench`. Numbers are
# informative only: the exit status is 0 unless setup fails. Timings of writes that end in
# fsync (seq write, fio randwrite end_fsync) include durability; the metadata, small-file,
# tar and git timings do not (like an ordinary untar). "Cold" reads drop the page cache
# (echo 3 > /proc/sys/vm/drop_caches) and remount both FUSE file systems first; each is run
# --cold-runs times and its median reported, because one cold read says more about the disk
# than about the file system (the same 1 GiB cold read ran at 543 to 1,763 MiB/s).
set -uo pipefail
export LC_ALL=C

usage() { sed -n '6,29s/^# \{0,1\}//p' "$0"; }
die() { echo "bench: $*" >&2; exit 1; }
log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

repo=$(cd "$(dirname "$0")/.." && pwd)
helper=$repo/scripts/bench/fsops.py
python=/usr/bin/python3
[ -x "$python" ] || python=python3

size_arg="" quick=0 work=/tmp/kvfs-bench only="" kvfs="" kvfs_opts="" fio_rt="" cold_runs="" keep=0
while (($# > 0)); do
  case $1 in
    --size) size_arg=${2:?--size needs a value}; shift 2 ;;
    --size=*) size_arg=${1#*=}; shift ;;
    --quick) quick=1; shift ;;
    --dir) work=${2:?--dir needs a value}; shift 2 ;;
    --dir=*) work=${1#*=}; shift ;;
    --only) only=${2:?--only needs a value}; shift 2 ;;
    --only=*) only=${1#*=}; shift ;;
    --kvfs) kvfs=${2:?--kvfs needs a value}; shift 2 ;;
    --kvfs=*) kvfs=${1#*=}; shift ;;
    --kvfs-opts) kvfs_opts=${2?--kvfs-opts needs a value}; shift 2 ;;
    --kvfs-opts=*) kvfs_opts=${1#*=}; shift ;;
    --fio-runtime) fio_rt=${2:?--fio-runtime needs a value}; shift 2 ;;
    --fio-runtime=*) fio_rt=${1#*=}; shift ;;
    --cold-runs) cold_runs=${2:?--cold-runs needs a value}; shift 2 ;;
    --cold-runs=*) cold_runs=${1#*=}; shift ;;
    --keep) keep=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "bench: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
done

# Bytes of "123", "64K", "256M", "1G", "1GiB".
to_bytes() {
  local s=${1%iB} ; s=${s%B}
  case $s in
    *[kK]) echo $((${s%?} << 10)) ;;
    *[mM]) echo $((${s%?} << 20)) ;;
    *[gG]) echo $((${s%?} << 30)) ;;
    *) echo $((s)) ;;
  esac
}

if ((quick)); then
  size_arg=${size_arg:-128M} fio_size=64M fio_rt=${fio_rt:-5} cold_runs=${cold_runs:-1}
  meta_n=2000 small_n=1000
  tree_src=(include/linux include/c++ include/x86_64-linux-gnu)
else
  size_arg=${size_arg:-1G} fio_size=256M fio_rt=${fio_rt:-15} cold_runs=${cold_runs:-5}
  meta_n=20000 small_n=10000
  tree_src=(include)  # /usr/include without boost/ and node/: ~6,000 files, ~80 MB
fi
small_dirs=100
[[ $size_arg =~ ^[0-9]+([kKmMgG](i?B)?)?$ ]] || die "bad --size '$size_arg'"
[[ $cold_runs =~ ^[1-9][0-9]*$ ]] || die "bad --cold-runs '$cold_runs'"
size=$(to_bytes "$size_arg")
((size >= 1 << 20)) || die "--size must be at least 1M"
fio_bytes=$(to_bytes $fio_size)
[[ $fio_rt =~ ^[0-9]+$ ]] && ((fio_rt > 0)) || die "bad --fio-runtime '$fio_rt'"

declare -A want=()
for w in ${only//,/ }; do
  case $w in
    seq) want[seq-random]=1; want[seq-text]=1 ;;
    seq-random | seq-text | fio | meta | small | tree | history | kvfsck) want[$w]=1 ;;
    tar | git) want[tree]=1 ;;
    *) die "unknown workload '$w' in --only (seq, seq-random, seq-text, fio, meta, small, tree, history, kvfsck)" ;;
  esac
done
if [ -z "$only" ]; then
  for w in seq-random seq-text fio meta small tree history kvfsck; do want[$w]=1; done
fi

# ---------------------------------------------------------------------------------------
# Setup: checks, daemon, input data. Failures here exit 1.

[ "$(id -u)" -eq 0 ] || die "needs root (to drop the page cache)"
[ -c /dev/fuse ] || die "/dev/fuse is missing"
"$repo/scripts/install-deps.sh" bench || die "scripts/install-deps.sh bench failed"
# kvfs's default configuration where the kernel has it; bindfs (libfuse 3.14) cannot use it.
"$repo/scripts/enable-fuse-uring.sh" || true
for tool in fio bindfs fusermount3 findmnt git tar dd cmp du awk md5sum; do
  command -v $tool >/dev/null || die "$tool is missing"
done
if [ -z "$kvfs" ]; then
  kvfs=$repo/build-rel/fs/fuse/kvfs
  if [ ! -x "$kvfs" ]; then
    log "building the Release daemon into build-rel/"
    { cmake -S "$repo" -B "$repo/build-rel" -DCMAKE_BUILD_TYPE=Release >/dev/null &&
      cmake --build "$repo/build-rel" -j"$(nproc)" --target kvfs >/dev/null; } ||
      die "building kvfs failed"
  fi
fi
[ -x "$kvfs" ] || die "no kvfs daemon at $kvfs"
kvfsck=$(dirname "$kvfs")/../../tools/kvfsck
if [ -n "${want[kvfsck]:-}" ] && [ ! -x "$kvfsck" ]; then
  log "building kvfsck next to the daemon"
  cmake --build "$(dirname "$kvfs")/../.." -j"$(nproc)" --target kvfsck >/dev/null ||
    die "building kvfsck failed"
fi

mkdir -p "$work" || die "cannot create $work"
work=$(cd "$work" && pwd)
data=$work/data logs=$work/logs
mkdir -p "$data" "$logs"

# Mounts left by an interrupted run of this script in the same work directory.
findmnt -rn -o TARGET | grep -F "$work/" | sort -r | while read -r m; do
  log "detaching leftover mount $m"
  fusermount3 -u -z "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
done
rm -rf "$work/plain" "$work/bindfs" "$work/kvfs" 2>/dev/null

need=$((4 * size + 2 * fio_bytes + (1 << 30)))
avail=$(($(df -P -k "$work" | awk 'NR == 2 { print $4 }') * 1024))
((avail > need)) || die "$work has $((avail >> 20)) MiB free; this run needs about $((need >> 20)) MiB"

random_file=$data/random-$size_arg.bin
text_file=$data/text-$size_arg.txt
tar_file=$data/src-$( ((quick)) && echo quick || echo full).tar

if [ ! -f "$random_file" ] || [ "$(stat -c %s "$random_file")" -ne "$size" ]; then
  log "generating $size_arg of incompressible data"
  head -c "$size" /dev/urandom >"$random_file.tmp" && mv "$random_file.tmp" "$random_file" ||
    die "cannot write $random_file"
fi
if [ ! -f "$text_file" ] || [ "$(stat -c %s "$text_file")" -ne "$size" ]; then
  log "generating $size_arg of text (the files of /usr/include, repeated)"
  "$python" "$helper" gen-text "$text_file" "$size" /usr/include || die "cannot write $text_file"
fi
if [ ! -f "$tar_file" ]; then
  log "making the source tarball $tar_file from /usr/${tree_src[*]}"
  tar --sort=name --mtime='2020-01-01 00:00:00Z' --owner=0 --group=0 --numeric-owner \
    --format=gnu --exclude=include/boost --exclude=include/node \
    -cf "$tar_file.tmp" -C /usr "${tree_src[@]}" && mv "$tar_file.tmp" "$tar_file" ||
    die "cannot make $tar_file"
fi
tar_files=$(tar tvf "$tar_file" | awk '$1 ~ /^-/ { n++ } END { print n + 0 }')
tar_bytes=$(tar tvf "$tar_file" | awk '$1 ~ /^-/ { s += $3 } END { print s + 0 }')
gz_pct=$(head -c $((64 << 20)) "$text_file" | gzip -1 | wc -c |
  awk -v n="$(( size < (64 << 20) ? size : (64 << 20) ))" '{ printf "%.0f", 100 * $1 / n }')

# ---------------------------------------------------------------------------------------
# Mounts. Every workload gets fresh directories: $work/plain/WL, $work/bindfs/WL/{back,mnt},
# $work/kvfs/WL/{store,mnt}. Daemons run in the foreground as children of this script so
# that an unmount can wait for the daemon to close its store.

declare -A mpid=()    # mount point -> daemon pid
declare -A peak_rss=() # fs -> largest VmHWM seen (KiB)
declare -A peak_anon=() # fs -> largest RssAnon seen at an unmount (KiB)
notes=()
note() { notes+=("$*"); log "NOTE: $*"; }

is_mounted() { findmnt -rn --mountpoint "$1" >/dev/null 2>&1; }

fuse_mount() {  # fs wl [extra kvfs -o options]
  local fs=$1 wl=$2 base=$work/$1/$2 pid i opts=$kvfs_opts${3:+${kvfs_opts:+,}$3}
  mkdir -p "$base/mnt"
  if [ "$fs" = kvfs ]; then
    # In a session of its own, as the detached daemon of scripts/run.sh is (-f keeps the pid
    # here; setsid execs without forking in a script): fs/fuse/uring.cc, RunsInOwnAutogroup.
    setsid "$kvfs" "$base/store" "$base/mnt" -f ${opts:+-o "$opts"} >>"$logs/kvfs-$wl.log" 2>&1 &
  else
    mkdir -p "$base/back"
    bindfs -f "$base/back" "$base/mnt" >>"$logs/bindfs-$wl.log" 2>&1 &
  fi
  pid=$!
  for ((i = 0; i < 400; i++)); do
    if is_mounted "$base/mnt"; then mpid[$base/mnt]=$pid; return 0; fi
    kill -0 $pid 2>/dev/null || break
    sleep 0.05
  done
  kill $pid 2>/dev/null
  wait $pid 2>/dev/null
  note "$fs: mounting for $wl failed (see $logs/$fs-$wl.log)"
  return 1
}

fuse_umount() {  # fs wl
  local fs=$1 mnt=$work/$1/$2/mnt pid i rc rss
  pid=${mpid[$mnt]:-}
  [ -n "$pid" ] || return 0
  rss=$(awk '/^VmHWM/ { print $2 }' /proc/$pid/status 2>/dev/null)
  if [ -n "$rss" ] && ((rss > ${peak_rss[$fs]:-0})); then peak_rss[$fs]=$rss; fi
  # kvfs maps its page files: their cached pages count in RSS but are the page cache's.
  rss=$(awk '/^RssAnon/ { print $2 }' /proc/$pid/status 2>/dev/null)
  if [ -n "$rss" ] && ((rss > ${peak_anon[$fs]:-0})); then peak_anon[$fs]=$rss; fi
  for ((i = 0; i < 40; i++)); do
    fusermount3 -u "$mnt" 2>/dev/null && break
    sleep 0.25
  done
  if is_mounted "$mnt"; then
    note "$fs: $mnt stayed busy; detached lazily"
    fusermount3 -u -z "$mnt" 2>/dev/null
  fi
  # The daemon closes its store after the kernel lets go: wait for that (up to 10 min).
  for ((i = 0; i < 6000; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    note "$fs: daemon $pid still running 10 min after unmount; killed"
    kill "$pid"
  fi
  wait "$pid"
  rc=$?
  ((rc == 0)) || note "$fs: daemon exited with status $rc after $2 (see $logs/$fs-$2.log)"
  unset "mpid[$mnt]"
}

cleanup() {
  local mnt pid i
  for mnt in "${!mpid[@]}"; do
    fusermount3 -u "$mnt" 2>/dev/null || fusermount3 -u -z "$mnt" 2>/dev/null
  done
  for mnt in "${!mpid[@]}"; do
    pid=${mpid[$mnt]}
    for ((i = 0; i < 300; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill "$pid" 2>/dev/null
  done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }

# Sets $tgt to the directory the workload uses on fs; creates it fresh and mounts.
fs_prepare() {  # fs wl
  local fs=$1 wl=$2
  fs_wipe "$fs" "$wl"
  case $fs in
    plain) tgt=$work/plain/$wl; mkdir -p "$tgt" ;;
    *) tgt=$work/$fs/$wl/mnt; fuse_mount "$fs" "$wl" ;;
  esac
}
fs_mount() { [ "$1" = plain ] || fuse_mount "$1" "$2"; }
fs_umount() { [ "$1" = plain ] || fuse_umount "$1" "$2"; }
# Cold caches: remount the FUSE file system (its daemon's caches go too), drop the page cache.
fs_cold() {  # fs wl
  if [ "$1" != plain ]; then fuse_umount "$1" "$2" && fuse_mount "$1" "$2" || return 1; fi
  drop_caches
}
# Runs a cold read --cold-runs times, from cold caches each time, and sets $elapsed to the
# median. The command is `timed ...` or `ops ...` (both set $elapsed).
cold() {  # fs wl command...
  local fs=$1 wl=$2 i samples=()
  shift 2
  for ((i = 0; i < cold_runs; i++)); do
    fs_cold "$fs" "$wl" && "$@" || return 1
    samples+=("$elapsed")
  done
  elapsed=$(printf '%s\n' "${samples[@]}" | sort -g | sed -n "$(((cold_runs + 1) / 2))p")
  ((cold_runs == 1)) || log "  $fs: ${*:2:1}: ${samples[*]} s; median $elapsed s"
}
# Bytes allocated on the disk for what the workload stored: the plain directory, bindfs's
# backing directory, kvfs's store directory. Unmounted first, so kvfs has closed its store.
fs_disk_bytes() {  # fs wl
  local dir
  case $1 in
    plain) dir=$work/plain/$2 ;;
    bindfs) dir=$work/bindfs/$2/back ;;
    kvfs) dir=$work/kvfs/$2/store ;;
  esac
  du -s -B1 "$dir" | cut -f1
}
fs_wipe() {  # fs wl
  local base=$work/$1/$2
  [ "$1" = plain ] || fuse_umount "$1" "$2"
  if is_mounted "$base/mnt"; then note "not deleting $base: still mounted"; return; fi
  rm -rf "$base"
}
fs_done() {  # fs wl
  fs_umount "$1" "$2"
  ((keep)) || fs_wipe "$1" "$2"
}

# ---------------------------------------------------------------------------------------
# Results: rows in the order first recorded; one value per file system.

fses=(plain bindfs kvfs)
rows=()
declare -A unit=() val=()
record() {  # row unit fs value
  [ -n "${unit[$1]:-}" ] || rows+=("$1")
  unit[$1]=$2
  val[$1|$3]=$4
}
fail() {  # row unit fs what
  record "$1" "$2" "$3" ERR
  note "$3: $1: $4 failed"
}

# kvfs-only comparisons (history, kvfsck): one value and the baseline it is compared with,
# both measured in this run.
xrows=()
declare -A xunit=() xval=() xbase=() xbname=()
xrecord() {  # row unit value baseline baseline-name
  xrows+=("$1")
  xunit[$1]=$2 xval[$1]=$3 xbase[$1]=$4 xbname[$1]=$5
}

# Runs "$@" and sets $elapsed (seconds); returns the command's status.
elapsed=0
timed() {
  local t0=$EPOCHREALTIME rc
  "$@"
  rc=$?
  elapsed=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.6f", b - a }')
  return $rc
}
mibps() { awk -v b="$1" -v s="$2" 'BEGIN { printf "%.1f", b / 1048576 / s }'; }
pct() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", 100 * a / b }'; }

# ---------------------------------------------------------------------------------------
# Workloads.

wl_seq() {  # random|text
  local kind=$1 src wl=seq-$1 fs row_w row_r row_d
  [ "$kind" = random ] && src=$random_file || src=$text_file
  row_w="seq write $size_arg $kind, fsync" row_r="seq read $size_arg $kind, cold"
  row_d="disk used by $size_arg $kind"
  for fs in "${fses[@]}"; do
    log "$wl on $fs"
    fs_prepare "$fs" "$wl" || { fail "$row_w" MiB/s "$fs" mount; continue; }
    drop_caches
    cat "$src" >/dev/null
    if timed dd if="$src" of="$tgt/data" bs=1M conv=fsync status=none; then
      record "$row_w" MiB/s "$fs" "$(mibps "$size" "$elapsed")"
    else
      fail "$row_w" MiB/s "$fs" "dd write"
    fi
    if cold "$fs" "$wl" timed dd if="$tgt/data" of=/dev/null bs=1M status=none; then
      record "$row_r" MiB/s "$fs" "$(mibps "$size" "$elapsed")"
      cmp -s "$src" "$tgt/data" || note "$fs: $wl: the file read back differs from what was written"
    else
      fail "$row_r" MiB/s "$fs" "dd read"
    fi
    fs_umount "$fs" "$wl"
    record "$row_d" "% of data" "$fs" "$(pct "$(fs_disk_bytes "$fs" "$wl")" "$size")"
    fs_done "$fs" "$wl"
  done
}

fio_job() {  # name rw file extra...
  local name=$1 rw=$2 file=$3 out
  shift 3
  out=$logs/fio-$fs-$name.json
  fio --name="$name" --filename="$file" --size="$fio_bytes" --rw="$rw" --bs=4k --direct=0 \
    --ioengine=psync --iodepth=1 --numjobs=1 --time_based --runtime="$fio_rt" \
    --output-format=json --output="$out" "$@" >>"$logs/fio.log" 2>&1 &&
    "$python" "$helper" fio-iops "$out"
}

wl_fio() {
  local fs wl=fio iops row_r row_w src=$random_file
  row_r="fio 4K randread $fio_size, ${fio_rt}s" row_w="fio 4K randwrite $fio_size, ${fio_rt}s"
  ((size >= fio_bytes)) || src=/dev/urandom
  for fs in "${fses[@]}"; do
    log "fio on $fs"
    fs_prepare "$fs" "$wl" || { fail "$row_r" IOPS "$fs" mount; continue; }
    head -c "$fio_bytes" "$src" | dd of="$tgt/fio.dat" bs=1M iflag=fullblock conv=fsync status=none ||
      note "$fs: fio: laying out the file failed"
    if fs_cold "$fs" "$wl" && iops=$(fio_job randread randread "$tgt/fio.dat"); then
      record "$row_r" IOPS "$fs" "$(printf %.0f "$iops")"
    else
      fail "$row_r" IOPS "$fs" "fio randread"
    fi
    if iops=$(fio_job randwrite randwrite "$tgt/fio.dat" --end_fsync=1); then
      record "$row_w" IOPS "$fs" "$(printf %.0f "$iops")"
    else
      fail "$row_w" IOPS "$fs" "fio randwrite"
    fi
    fs_umount "$fs" "$wl"
    record "disk used by the fio file after randwrite" "% of data" "$fs" \
      "$(pct "$(fs_disk_bytes "$fs" "$wl")" "$fio_bytes")"
    fs_done "$fs" "$wl"
  done
}

# Runs a fsops.py timing command; sets $elapsed to the seconds it reports.
ops() {
  local out
  out=$("$python" "$helper" "$@" 2>>"$logs/fsops.log") || return 1
  elapsed=$out
}

wl_meta() {
  local fs wl=meta n=$meta_n d
  for fs in "${fses[@]}"; do
    log "meta on $fs"
    fs_prepare "$fs" "$wl" || { fail "create $n empty files in 1 dir" s "$fs" mount; continue; }
    d=$tgt/dir
    drop_caches
    ops meta-create "$d" "$n" && record "create $n empty files in 1 dir" s "$fs" "$elapsed" ||
      fail "create $n empty files in 1 dir" s "$fs" create
    cold "$fs" "$wl" ops meta-readdir "$d" && record "readdir of the $n, cold" s "$fs" "$elapsed" ||
      fail "readdir of the $n, cold" s "$fs" readdir
    cold "$fs" "$wl" ops meta-stat "$d" "$n" && record "stat the $n, cold" s "$fs" "$elapsed" ||
      fail "stat the $n, cold" s "$fs" stat
    ops meta-stat "$d" "$n" && record "stat the $n, warm" s "$fs" "$elapsed" ||
      fail "stat the $n, warm" s "$fs" stat
    fs_cold "$fs" "$wl" && ops meta-unlink "$d" "$n" && record "unlink the $n, cold" s "$fs" "$elapsed" ||
      fail "unlink the $n, cold" s "$fs" unlink
    fs_done "$fs" "$wl"
  done
}

wl_small() {
  local fs wl=small n=$small_n row_w row_r row_d bytes=$((small_n * 4096))
  row_w="write $n x 4K files in $small_dirs dirs" row_r="read the $n x 4K files, cold"
  row_d="disk used by $n x 4K files"
  for fs in "${fses[@]}"; do
    log "small files on $fs"
    fs_prepare "$fs" "$wl" || { fail "$row_w" s "$fs" mount; continue; }
    drop_caches
    ops small-write "$tgt/t" "$n" "$small_dirs" && record "$row_w" s "$fs" "$elapsed" ||
      fail "$row_w" s "$fs" write
    cold "$fs" "$wl" ops small-read "$tgt/t" && record "$row_r" s "$fs" "$elapsed" ||
      fail "$row_r" s "$fs" read
    fs_umount "$fs" "$wl"
    record "$row_d" "% of data" "$fs" "$(pct "$(fs_disk_bytes "$fs" "$wl")" "$bytes")"
    fs_done "$fs" "$wl"
  done
}

tar_read() { tar cf - -C "$1" . | wc -c >/dev/null; }  # not "> /dev/null": GNU tar skips reading then
# Digests of the extracted tree: names, types, modes, sizes, link targets and contents; and
# the files' mtimes (tar x restores them). Directory sizes and mtimes vary between file systems.
tree_digest() {
  (cd "$1/src" && { find include \( -type d -printf '%y %m %p\n' \) -o -printf '%y %m %s %p %l\n' |
    sort; find include -type f -print0 | sort -z | xargs -0 cat; } | md5sum | cut -c1-32)
}
mtime_digest() { (cd "$1/src" && find include ! -type d -printf '%T@ %p\n' | sort | md5sum | cut -c1-32); }
gitc() {
  git -C "$tgt/src" -c user.name=kvfs-bench -c user.email=bench@localhost -c gc.auto=0 \
    -c commit.gpgsign=false -c safe.directory='*' -c core.untrackedCache=false "$@"
}
git_commit() { gitc add -A && gitc commit -q -m "bench: import tree"; }
git_status() { gitc status >/dev/null; }

wl_tree() {
  local fs wl=tree ref="" d="" tn="tree of $tar_files files"
  for fs in "${fses[@]}"; do
    log "tree (tar, git) on $fs"
    fs_prepare "$fs" "$wl" || { fail "tar x: $tn" s "$fs" mount; continue; }
    mkdir -p "$tgt/src"
    drop_caches
    cat "$tar_file" >/dev/null
    timed tar xf "$tar_file" -C "$tgt/src" && record "tar x: $tn" s "$fs" "$elapsed" ||
      fail "tar x: $tn" s "$fs" "tar x"
    cold "$fs" "$wl" timed tar_read "$tgt/src" && record "tar c of the tree, cold" s "$fs" "$elapsed" ||
      fail "tar c of the tree, cold" s "$fs" "tar c"
    d="$(tree_digest "$tgt") $(mtime_digest "$tgt")"
    if [ -z "$ref" ]; then
      ref=$d
    elif [ "${d% *}" != "${ref% *}" ]; then
      note "$fs: tree: the extracted tree differs from the one on ${fses[0]} (names, modes, sizes or contents)"
    elif [ "${d#* }" != "${ref#* }" ]; then
      note "$fs: tree: tar x did not restore the files' mtimes as on ${fses[0]}"
    fi
    fs_umount "$fs" "$wl"
    record "disk used by the tree" "% of data" "$fs" "$(pct "$(fs_disk_bytes "$fs" "$wl")" "$tar_bytes")"
    fs_mount "$fs" "$wl" || { fail "git add -A && git commit" s "$fs" mount; continue; }
    gitc init -q
    timed git_commit && record "git add -A && git commit" s "$fs" "$elapsed" ||
      fail "git add -A && git commit" s "$fs" "git commit"
    cold "$fs" "$wl" timed git_status && record "git status, cold" s "$fs" "$elapsed" ||
      fail "git status, cold" s "$fs" "git status"
    timed git_status && record "git status, warm" s "$fs" "$elapsed" ||
      fail "git status, warm" s "$fs" "git status"
    [ -z "$(gitc status --porcelain 2>&1)" ] || note "$fs: tree: git status is not clean after the commit"
    fs_done "$fs" "$wl"
  done
}

# Versioning's cost: the same write-heavy workload with versioning on (default) and off; and
# what 100 versions of a 100 MiB file cost on disk.
wl_history() {
  local mode opts wl t total n=$small_n mib=$((fio_bytes >> 20)) on_s="" on_q="" row_s row_q
  row_s="write $n x 4K files, 3 times over" row_q="rewrite a $mib MiB file 3 times, fsync"
  head -c "$fio_bytes" "$random_file" >/dev/null
  for mode in on off; do
    wl=history-$mode opts=versions=32
    [ $mode = off ] && opts=versions=0
    log "write-heavy workload, versioning $mode"
    fuse_mount kvfs "$wl" "$opts" || continue
    tgt=$work/kvfs/$wl/mnt total=0
    for t in 1 2 3; do
      ops small-write "$tgt/t" "$n" "$small_dirs" || { note "history: small-write failed"; break; }
      total=$(awk -v a="$total" -v b="$elapsed" 'BEGIN { print a + b }')
    done
    [ $mode = on ] && on_s=$total || xrecord "$row_s" s "$on_s" "$total" "versioning off"
    timed bash -c 'for t in 1 2 3; do
        head -c "$2" "$1" | dd of="$3" bs=1M iflag=fullblock conv=notrunc,fsync status=none || exit 1
      done' _ "$random_file" "$fio_bytes" "$tgt/big" || note "history: rewrite failed"
    t=$(mibps $((3 * fio_bytes)) "$elapsed")
    [ $mode = on ] && on_q=$t || xrecord "$row_q" MiB/s "$on_q" "$t" "versioning off"
    fs_done kvfs "$wl"
  done

  local file=$((100 << 20)) chunk=$((64 << 10)) bytes target
  ((size >= file)) || { note "history: --size below 100M, skipping the 100-version test"; return; }
  wl=history-100
  log "100 versions of a 100 MiB file, 4 KiB edits"
  fuse_mount kvfs "$wl" || return
  tgt=$work/kvfs/$wl/mnt
  head -c "$file" "$random_file" >"$tgt/f" || note "history: writing the 100 MiB file failed"
  ops edits "$tgt/f" 99 || note "history: edits failed"
  xrecord "99 edits of 4 KiB, each closed (a version)" "edits/s" \
    "$(awk -v s="$elapsed" 'BEGIN { printf "%.0f", 99 / s }')" "" ""
  [ "$(ls "$tgt/.kvfs/history/f" | wc -l)" -ge 32 ] || note "history: fewer versions listed than kept"
  fs_umount kvfs "$wl"
  bytes=$(du -s -B1 "$work/kvfs/$wl/store" | cut -f1)
  target=$(((file * 12 / 10 + 100 * chunk) >> 20))
  xrecord "store after 100 versions of a 100 MiB file" MiB "$((bytes >> 20))" "$target" \
    "target 1.2 x file + 100 chunks"
  fs_done kvfs "$wl"
}

# kvfsck: backup and restore of a mixed tree (the source tree, random and text data: about
# --size in all) against tar c and tar x of the same tree through a mount; compaction.
wl_kvfsck() {
  local wl=kvfsck base=$work/kvfs/kvfsck half bytes tarball=$work/kvfsck.tar rate tar_c tar_x
  half=$(((size - tar_bytes) / 2))
  ((half > 0)) || half=$((size / 2))
  log "kvfsck: building a mixed tree"
  fuse_mount kvfs "$wl" || return
  tgt=$base/mnt
  mkdir -p "$tgt/src"
  tar xf "$tar_file" -C "$tgt/src" && head -c "$half" "$random_file" >"$tgt/random.bin" &&
    head -c "$half" "$text_file" >"$tgt/text.txt" || { note "kvfsck: building the tree failed"; return; }
  bytes=$(du -s -B1 --apparent-size "$tgt" | cut -f1)
  fs_cold kvfs "$wl"
  timed tar cf - -C "$tgt" . >"$tarball" && tar_c=$(mibps "$bytes" "$elapsed") ||
    note "kvfsck: tar c failed"
  fuse_umount kvfs "$wl"
  rm -f "$work/kvfsck.kvbk"
  drop_caches
  if timed "$kvfsck" --quiet backup "$base/store" "$work/kvfsck.kvbk" >/dev/null; then
    xrecord "backup of a $((bytes >> 20)) MiB mixed tree, cold" MiB/s "$(mibps "$bytes" "$elapsed")" \
      "${tar_c:-}" "tar c through the mount"
  else
    note "kvfsck: backup failed"
  fi
  fuse_mount kvfs kvfsck-x || return
  drop_caches
  timed bash -c 'tar xf "$1" -C "$2" && sync -f "$2"' _ "$tarball" "$work/kvfs/kvfsck-x/mnt" &&
    tar_x=$(mibps "$bytes" "$elapsed") || note "kvfsck: tar x failed"
  fs_done kvfs kvfsck-x
  rm -rf "$work/kvfsck-restored"
  drop_caches
  if timed "$kvfsck" --quiet restore "$work/kvfsck.kvbk" "$work/kvfsck-restored" >/dev/null; then
    xrecord "restore of that archive (synced)" MiB/s "$(mibps "$bytes" "$elapsed")" \
      "${tar_x:-}" "tar x + sync into a mount"
  else
    note "kvfsck: restore failed"
  fi
  "$kvfsck" --quiet check "$work/kvfsck-restored" >/dev/null || note "kvfsck: the restored store does not check clean"
  # Compaction: delete the random half and compact keeping nothing old.
  fuse_mount kvfs "$wl" || return
  rm -f "$base/mnt/random.bin"
  fuse_umount kvfs "$wl"
  local before after
  before=$(du -s -B1 "$base/store" | cut -f1)
  drop_caches
  if timed "$kvfsck" --quiet compact "$base/store" --keep-versions 1 --keep-trash 0 >/dev/null; then
    after=$(du -s -B1 "$base/store" | cut -f1)
    xrecord "compact after deleting $((half >> 20)) MiB (store MiB/s)" MiB/s \
      "$(mibps "$before" "$elapsed")" "" ""
    xrecord "space reclaimed of the deleted bytes" % "$(pct $((before - after)) "$half")" "90" "target"
  else
    note "kvfsck: compact failed"
  fi
  rm -rf "$tarball" "$work/kvfsck.kvbk" "$work/kvfsck-restored"
  fs_done kvfs "$wl"
}

# ---------------------------------------------------------------------------------------

started=$EPOCHREALTIME
log "work dir $work; kvfs $kvfs ${kvfs_opts:+-o $kvfs_opts}"
[ -n "${want[seq-random]:-}" ] && wl_seq random
[ -n "${want[seq-text]:-}" ] && wl_seq text
[ -n "${want[fio]:-}" ] && wl_fio
[ -n "${want[meta]:-}" ] && wl_meta
[ -n "${want[small]:-}" ] && wl_small
[ -n "${want[tree]:-}" ] && wl_tree
[ -n "${want[history]:-}" ] && wl_history
[ -n "${want[kvfsck]:-}" ] && wl_kvfsck
for fs in bindfs kvfs; do
  [ -n "${peak_rss[$fs]:-}" ] && record "FUSE daemon peak RSS (incl. mapped files)" MiB "$fs" "$(awk -v k="${peak_rss[$fs]}" 'BEGIN { printf "%.0f", k / 1024 }')"
  [ -n "${peak_anon[$fs]:-}" ] && record "FUSE daemon anonymous memory at unmount" MiB "$fs" "$(awk -v k="${peak_anon[$fs]}" 'BEGIN { printf "%.0f", k / 1024 }')"
done

fmt() {  # value unit
  case $1 in "" | ERR) echo "${1:--}"; return ;; esac
  case $2 in
    s) awk -v v="$1" 'BEGIN { printf(v < 10 ? "%.3f" : "%.2f", v) }' ;;
    *) echo "$1" ;;
  esac
}
ratio() {  # a b
  case "$1$2" in *ERR* ) echo -; return ;; esac
  [ -n "$1" ] && [ -n "$2" ] || { echo -; return; }
  awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "-"; else printf "%.2f", a / b }'
}

{
  echo
  echo "kvfs file-system benchmark  $(date -u +%Y-%m-%dT%H:%MZ)  $(uname -r)  $(nproc) cores" \
    " commit $(git -C "$repo" rev-parse --short HEAD 2>/dev/null)$(git -C "$repo" diff --quiet HEAD 2>/dev/null || echo +dirty)"
  echo "kvfs options: ${kvfs_opts:-defaults}; bindfs $(bindfs --version 2>/dev/null | awk '{ print $2 }'), defaults;" \
    "plain: $(findmnt -n -o FSTYPE -T "$work") on $(findmnt -n -o SOURCE -T "$work")"
  echo "data: $size_arg random, $size_arg text (gzip -1: ${gz_pct}% of size)," \
    "source tree $tar_files files / $((tar_bytes >> 20)) MiB; total $(awk -v s="$started" -v e="$EPOCHREALTIME" 'BEGIN { printf "%.0f", e - s }') s"
  echo
  w=40
  for r in "${rows[@]}"; do ((${#r} > w)) && w=${#r}; done
  printf "%-${w}s | %-9s | %9s | %9s | %9s | %10s | %11s\n" workload unit plain bindfs kvfs kvfs/plain kvfs/bindfs
  printf '%s\n' "$(printf '%*s' $((w + 80)) '' | tr ' ' -)"
  for r in "${rows[@]}"; do
    u=${unit[$r]} p=${val[$r|plain]:-} b=${val[$r|bindfs]:-} k=${val[$r|kvfs]:-}
    printf "%-${w}s | %-9s | %9s | %9s | %9s | %10s | %11s\n" "$r" "$u" "$(fmt "$p" "$u")" \
      "$(fmt "$b" "$u")" "$(fmt "$k" "$u")" "$(ratio "$k" "$p")" "$(ratio "$k" "$b")"
  done
  echo
  echo "Ratios are kvfs's value over the other's: for MiB/s and IOPS above 1 is better, for s and"
  echo "% of data below 1 is better. s = wall-clock seconds of the phase."
  if ((${#xrows[@]})); then
    w=40
    for r in "${xrows[@]}"; do ((${#r} > w)) && w=${#r}; done
    echo
    printf "%-${w}s | %-7s | %9s | %9s | %6s | %s\n" "kvfs only" unit kvfs baseline ratio "baseline is"
    printf '%s\n' "$(printf '%*s' $((w + 70)) '' | tr ' ' -)"
    for r in "${xrows[@]}"; do
      u=${xunit[$r]}
      printf "%-${w}s | %-7s | %9s | %9s | %6s | %s\n" "$r" "$u" "$(fmt "${xval[$r]}" "$u")" \
        "$(fmt "${xbase[$r]}" "$u")" "$(ratio "${xval[$r]}" "${xbase[$r]}")" "${xbname[$r]}"
    done
  fi
  if ((${#notes[@]})); then
    echo
    echo "Notes:"
    printf '  - %s\n' "${notes[@]}"
  fi
} | tee "$work/results.txt"
exit 0

#!/bin/bash
# tests/mount/uring_test.sh: FUSE over io_uring (fs/fuse/uring.h). With the fuse module's
# enable_uring on, the daemon must serve requests through its per-CPU rings (its log says
# so, and counts them at unmount), and everything must work as through /dev/fuse: large
# reads and writes at max_write, large xattr and directory replies, parallel callers on
# both CPUs, open-unlinked files, renames, SIGTERM. The same store then mounts with
# -o ring_threads=0 and shows the same tree. Without the kernel feature the test checks
# only the /dev/fuse half.
source "$(dirname "$0")/lib.sh" "$@"

PARAM=/sys/module/fuse/parameters/enable_uring
had_param=
if [[ -w $PARAM && $(cat "$PARAM") == N ]]; then
  had_param=N
  echo Y >"$PARAM"
fi
restore_param() { [[ -n $had_param ]] && echo "$had_param" >"$PARAM"; }
rings=0
[[ -r $PARAM && $(cat "$PARAM") == Y ]] && rings=1
((rings)) || log "# the kernel offers no FUSE over io_uring; checking /dev/fuse only"

M=$MNT
start_watchdog

# ---- Through the rings.
mount_kvfs || die "mount failed"
if ((rings)); then
  check "daemon serves through io_uring" grep -q "serving FUSE through io_uring" "$KVFS_LOG"
fi

# ring_policy: the scheduling classes of the daemon's ring threads, e.g. "IDL IDL IDL IDL".
ring_policy() { ps -L -o cls=,comm= -p "$KVFS_PID" | awk '$2 ~ /^kvfs-ring/ { print $1 }' | xargs; }
# every_ring CLASS: CLASS once per ring thread (2 per possible CPU, the default).
every_ring() {
  local cpus=$(($(sed 's/.*[-,]//' /sys/devices/system/cpu/possible) + 1)) i out=()
  for ((i = 0; i < 2 * cpus; i++)); do out+=("$1"); done
  echo "${out[*]}"
}
if ((rings)); then
  # -f from this script: the daemon shares the script's session, so no SCHED_IDLE.
  assert_eq "ring threads at normal priority in a shared session" "$(every_ring TS)" "$(ring_policy)"
fi

# A real tree in and out.
cp -a /usr/include/linux "$M/linux" || fail "cp -a into the mount"
check "cp -a tree matches" diff -r /usr/include/linux "$M/linux"

# Writes and reads at and above max_write (1 MiB), in one request each.
random_file "$WORK/big" $((24 * 1024 * 1024 + 12345))
dd if="$WORK/big" of="$M/big" bs=4M oflag=direct status=none 2>/dev/null ||
  dd if="$WORK/big" of="$M/big" bs=4M status=none
check "4 MiB writes read back with 1 MiB reads" \
  cmp "$WORK/big" <(dd if="$M/big" bs=1M iflag=direct status=none 2>/dev/null || cat "$M/big")
sync
echo 3 >/proc/sys/vm/drop_caches
check "big file cold" cmp "$WORK/big" "$M/big"

# A cold read puts whole chunks straight into the ring's reply buffer: raw and compressed
# chunks, a hole and a short tail read back exactly once a remount has emptied every cache.
head -c $((3 * 1048576)) /dev/urandom >"$WORK/mixed"
seq 1 400000 | head -c $((2 * 1048576)) >>"$WORK/mixed"
truncate -s $((8 * 1048576)) "$WORK/mixed"
head -c 70001 /dev/urandom >>"$WORK/mixed"
cp "$WORK/mixed" "$M/mixed" || fail "cp of a file with a hole"
remount || die "remount failed"
echo 3 >/proc/sys/vm/drop_caches
check "mixed file after a remount, 1 MiB reads" cmp "$WORK/mixed" <(dd if="$M/mixed" bs=1M status=none)
echo 3 >/proc/sys/vm/drop_caches
check "mixed file, 1 MiB reads from an odd offset" \
  cmp <(tail -c +12346 "$WORK/mixed") <(dd if="$M/mixed" bs=1M skip=12345 iflag=skip_bytes status=none)

# Replies of every size: a 64 KiB xattr, a directory of 3,000 names, readlink.
# The leading "v": setfattr reads a value that starts with 0x or 0s as hex or base64.
value=v$(head -c 49152 /dev/urandom | base64 -w0 | head -c 64999)
setfattr -n user.big -v "$value" "$M/big" || fail "setfattr 65000 bytes"
assert_eq "64 KiB xattr" "$value" "$(getfattr --only-values -n user.big "$M/big")"
mkdir "$M/many"
(cd "$M/many" && seq 1 3000 | xargs touch) || fail "create 3000 files"
assert_eq "3000 names listed" 3000 "$(ls -f "$M/many" | grep -vc '^\.')"
assert_eq "3000 stat'able" 3000 "$(find "$M/many" -type f -printf x | wc -c)"
ln -s "$(printf 't%.0s' $(seq 1 1000))" "$M/longlink"
assert_eq "1000-byte link target" 1000 "$(readlink "$M/longlink" | tr -d '\n' | wc -c)"

# Errors travel back through the ring.
expect_errno ls "$M/missing" ENOENT
expect_errno rmdir "$M/many" ENOTEMPTY
expect_errno touch "$M/$(printf 'n%.0s' $(seq 1 256))" ENAMETOOLONG

# Parallel callers, which land on both CPUs' queues.
for i in 1 2 3 4; do
  bg sh -c "for j in \$(seq 1 40); do cp '$WORK/big' '$M/par$i' && cmp '$WORK/big' '$M/par$i' || exit 1; done
            exit 0"
done
status=0
for p in "${BG_PIDS[@]}"; do wait "$p" || status=1; done
BG_PIDS=()
if ((status == 0)); then pass "4 parallel writers and readers"; else fail "parallel copies differ"; fi

# An open, unlinked file; a rename over an existing file.
check "read and write through an unlinked handle" python3 - "$M/unlinked" <<'EOF'
import os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)
os.write(fd, b"x" * 100000)
os.unlink(sys.argv[1])
os.pwrite(fd, b"tail", 100000)
assert os.pread(fd, 100004, 0) == b"x" * 100000 + b"tail"
os.close(fd)
EOF
echo one >"$M/a"
echo two >"$M/b"
mv "$M/a" "$M/b"
assert_eq "rename over a file" one "$(cat "$M/b")"

before=$(tree_sums "$M")
meta=$(tree_meta "$M")
unmount || die "unmount failed"
if ((rings)); then
  served=$(sed -n 's/.* \([0-9][0-9]*\) requests served through io_uring.*/\1/p' "$KVFS_LOG")
  if [[ -n $served && $served -gt 10000 ]]; then
    pass "$served requests came through the rings"
  else
    fail "requests served through io_uring: '${served:-none}'"
    sed 's/^/    | /' "$KVFS_LOG" | tail -n 20
  fi
fi

# ---- In a session of its own (as when detached), the ring threads run as SCHED_IDLE.
if ((rings)); then
  printf '#!/bin/sh\nexec setsid "%s" "$@"\n' "$KVFS" >"$WORK/kvfs-setsid"
  chmod +x "$WORK/kvfs-setsid"
  real_kvfs=$KVFS
  KVFS=$WORK/kvfs-setsid
  mount_kvfs || die "mount in a session of its own failed"
  KVFS=$real_kvfs
  assert_eq "ring threads SCHED_IDLE in a session of their own" "$(every_ring IDL)" "$(ring_policy)"
  check "a big file through SCHED_IDLE rings" cmp "$WORK/big" "$M/big"
  unmount || die "unmount failed"
fi

# ---- The same store through /dev/fuse only.
mount_kvfs -o ring_threads=0 || die "mount with ring_threads=0 failed"
check "no rings with ring_threads=0" bash -c "! grep -q io_uring '$KVFS_LOG'"
assert_eq "same contents through /dev/fuse" "$before" "$(tree_sums "$M")"
assert_eq "same metadata through /dev/fuse" "$meta" "$(tree_meta "$M")"
unmount || die "unmount failed"

# ---- SIGTERM with the rings serving a busy mount: a clean unmount, nothing lost.
mount_kvfs || die "mount failed"
exec 7<"$M/big"   # keeps the mount busy
head -c 3000000 /dev/urandom >"$WORK/late"
cp "$WORK/late" "$M/late"
exec 7<&-
term_unmount && pass "SIGTERM unmounts with the rings running"
mount_kvfs -o ring_threads=0 || die "remount failed"
check "file written just before SIGTERM" cmp "$WORK/late" "$M/late"
unmount

# ---- A bad ring_threads is refused with one line.
out=$("$KVFS" "$STORE" "$MNT" -f -o ring_threads=65 2>&1 </dev/null)
rc=$?
if ((rc == 2)) && [[ $(printf '%s\n' "$out" | head -n 1) == *"bad option 'ring_threads=65' (expected 0..64)"* ]]; then
  pass "ring_threads=65 refused: $(printf '%s\n' "$out" | head -n 1)"
else
  fail "ring_threads=65: exit $rc, $out"
fi

restore_param
finish

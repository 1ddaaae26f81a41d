# tests/mount/lib.sh: shared harness of the kvfs mount tests (sourced by every *_test.sh).
#
# Usage in a test:   source "$(dirname "$0")/lib.sh" "$@"
# The kvfs binary is the first argument or $KVFS. The harness gives each test a private
# work directory $WORK (under /tmp) holding the store $STORE and the mount point $MNT, mounts
# kvfs in the foreground in the background of the script, and always unmounts and cleans up on
# exit, even after a failure, a signal or a hung mount (a watchdog kills the daemon after
# $KVFS_TEST_TIMEOUT seconds so that blocked file-system calls return and cleanup can run).
#
# Checks never stop the test: each one prints "ok - ..." or "FAIL - ...", and `finish` prints
# "N passed, M failed" and exits non-zero when anything failed. `die` is for broken
# preconditions after which nothing meaningful can be checked.
#
# Environment: KVFS (daemon binary), KVFS_TEST_TIMEOUT (watchdog seconds, 0 = none),
# KVFS_TEST_KEEP=1 (keep $WORK after the test for debugging).

set -u -o pipefail
export LC_ALL=C TZ=UTC

KVFS=${KVFS:-${1:-}}
TEST_NAME=$(basename "$0" .sh)
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
MAIN_PID=$$
PASSED=0
FAILED=0
KVFS_PID=
KVFS_OPTS=()      # extra daemon arguments used by every mount, e.g. (-o allow_other)
BG_PIDS=()        # background workers killed by cleanup
EXTRA_MOUNTS=()   # other mounts (tmpfs, second mount points) removed by cleanup, last first
MOUNT_COUNT=0
WATCHDOG_PID=

log() { printf '%s\n' "$*"; }

if [[ $EUID -ne 0 ]]; then
  log "SKIP: $TEST_NAME needs root (mounts, chown, setpriv)"
  exit 77
fi
if [[ ! -c /dev/fuse ]] || ! command -v fusermount3 >/dev/null; then
  log "SKIP: $TEST_NAME needs /dev/fuse and fusermount3"
  exit 77
fi
if [[ -z $KVFS || ! -x $KVFS ]]; then
  log "FATAL: kvfs binary not given or not executable: '$KVFS'"
  exit 1
fi
KVFS=$(readlink -f "$KVFS")

WORK=$(mktemp -d "/tmp/kvfs-${TEST_NAME}.XXXXXX") || exit 1
chmod 755 "$WORK"   # other users (setpriv tests) must be able to reach $MNT
STORE=$WORK/store
MNT=$WORK/mnt
mkdir "$MNT"

# ---------------------------------------------------------------------------------------------
# Results.

pass() {
  PASSED=$((PASSED + 1))
  log "ok - $*"
}

fail() {
  FAILED=$((FAILED + 1))
  log "FAIL - $*"
}

# die MSG: a precondition failed; the rest of the test would be meaningless.
die() {
  fail "$*"
  log "aborting $TEST_NAME"
  exit 1
}

# check DESC CMD...: passes when CMD exits 0; on failure shows its output.
check() {
  local desc=$1 out rc
  shift
  out=$("$@" 2>&1)
  rc=$?
  if ((rc == 0)); then
    pass "$desc"
  else
    fail "$desc (exit $rc: $*)"
    [[ -n $out ]] && printf '%s\n' "$out" | head -n 40 | sed 's/^/    | /'
  fi
  return $rc
}

# assert_eq DESC EXPECTED ACTUAL
assert_eq() {
  if [[ "$2" == "$3" ]]; then
    pass "$1"
  else
    fail "$1: expected '$2', got '$3'"
    return 1
  fi
}

# assert_same_file DESC EXPECTED_FILE ACTUAL_FILE: text comparison with a diff on failure.
assert_same_file() {
  local out
  if out=$(diff -u "$2" "$3" 2>&1); then
    pass "$1"
  else
    fail "$1"
    printf '%s\n' "$out" | head -n 40 | sed 's/^/    | /'
    return 1
  fi
}

# errno_msg NAME: the strerror text the tools print for an errno name (ENOENT -> "No such...").
errno_msg() {
  python3 -c 'import errno, os, sys; print(os.strerror(getattr(errno, sys.argv[1])))' "$1"
}

# expect_errno CMD... ERRNO_NAME: CMD must fail and its message must carry strerror(ERRNO_NAME).
expect_errno() {
  local name=${*: -1}
  local cmd=("${@:1:$#-1}")
  local msg out rc
  msg=$(errno_msg "$name")
  out=$(timeout 60 "${cmd[@]}" 2>&1)
  rc=$?
  if ((rc != 0)) && [[ $out == *"$msg"* ]]; then
    pass "$name: ${cmd[*]}"
  else
    fail "$name: ${cmd[*]}: expected failure with '$msg', got exit $rc and: $(printf '%s' "$out" | head -c 400)"
    return 1
  fi
}

FINISHED=0
finish() {
  FINISHED=1
  log "$TEST_NAME: $PASSED passed, $FAILED failed"
  if ((FAILED > 0)); then exit 1; fi
  exit 0
}

# ---------------------------------------------------------------------------------------------
# The daemon.

# is_mounted DIR: DIR is a mount point in the mount table (without touching a possibly dead mount).
is_mounted() {
  awk -v m="$1" '$2 == m { found = 1 } END { exit !found }' /proc/self/mounts
}

# mount_kvfs [ARGS...]: start `kvfs $STORE $MNT -f` with $KVFS_OPTS and ARGS, wait until the
# mount answers. Returns 1 (with the daemon's log shown) when it does not come up in 30 s.
mount_kvfs() {
  MOUNT_COUNT=$((MOUNT_COUNT + 1))
  local logf=$WORK/kvfs.$MOUNT_COUNT.log i
  KVFS_LOG=$logf
  # env restores SIGINT, which bash ignores in background jobs of a script (libfuse would then
  # leave it ignored and SIGINT could not unmount).
  env --default-signal=INT,QUIT "$KVFS" "$STORE" "$MNT" -f "${KVFS_OPTS[@]}" "$@" >"$logf" 2>&1 </dev/null &
  KVFS_PID=$!
  echo "$KVFS_PID" >"$WORK/daemon.pid"
  for ((i = 0; i < 300; i++)); do
    if is_mounted "$MNT"; then
      if timeout 30 stat "$MNT" >/dev/null; then
        return 0
      fi
      break
    fi
    if ! kill -0 "$KVFS_PID" 2>/dev/null; then
      wait "$KVFS_PID"
      log "kvfs exited with status $? before mounting; its log:"
      sed 's/^/    | /' "$logf"
      KVFS_PID=
      return 1
    fi
    sleep 0.1
  done
  log "kvfs did not mount $MNT within 30 s; its log:"
  sed 's/^/    | /' "$logf"
  return 1
}

# wait_daemon SECONDS: wait for $KVFS_PID to exit; sets DAEMON_STATUS (255 if it had to be killed).
wait_daemon() {
  local i limit=$(($1 * 10))
  DAEMON_STATUS=0
  [[ -n $KVFS_PID ]] || return 0
  for ((i = 0; i < limit; i++)); do
    kill -0 "$KVFS_PID" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$KVFS_PID" 2>/dev/null; then
    log "kvfs pid $KVFS_PID still running ${1}s after unmount; killing it"
    kill -9 "$KVFS_PID" 2>/dev/null
    wait "$KVFS_PID" 2>/dev/null
    DAEMON_STATUS=255
  else
    wait "$KVFS_PID"
    DAEMON_STATUS=$?
  fi
  KVFS_PID=
  return 0
}

# unmount: fusermount3 -u (retried while busy), then the daemon must exit with status 0.
unmount() {
  local i out
  for ((i = 0; i < 50; i++)); do
    out=$(fusermount3 -u "$MNT" 2>&1) && break
    sleep 0.2
  done
  if is_mounted "$MNT"; then
    fail "unmount $MNT: $out"
    return 1
  fi
  wait_daemon 60
  if ((DAEMON_STATUS != 0)); then
    fail "kvfs exited with status $DAEMON_STATUS after unmount"
    sed 's/^/    | /' "$KVFS_LOG" | tail -n 20
    return 1
  fi
  return 0
}

# term_unmount [SIGNAL]: SIGTERM (or SIGNAL) the daemon; it must unmount and exit 0.
term_unmount() {
  local sig=${1:-TERM}
  kill -s "$sig" "$KVFS_PID"
  wait_daemon 60
  if ((DAEMON_STATUS != 0)); then
    fail "kvfs exited with status $DAEMON_STATUS after SIG$sig"
    sed 's/^/    | /' "$KVFS_LOG" | tail -n 20
  fi
  if is_mounted "$MNT"; then
    fail "$MNT still mounted after SIG$sig to kvfs"
    fusermount3 -u -z "$MNT"
    return 1
  fi
  ((DAEMON_STATUS == 0))
}

# remount: unmount cleanly, then mount again.
remount() {
  unmount || return 1
  mount_kvfs "$@"
}

# kill9: kill -9 the daemon (a crash), then detach its dead mount.
kill9() {
  [[ -n $KVFS_PID ]] || return 0
  kill -9 "$KVFS_PID"
  wait "$KVFS_PID" 2>/dev/null
  KVFS_PID=
  fusermount3 -u -z "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null
  if is_mounted "$MNT"; then
    fail "dead mount $MNT could not be detached"
    return 1
  fi
}

# ---------------------------------------------------------------------------------------------
# Helpers over trees.

# tree_sums DIR: "sha256  ./path" of every regular file under DIR, sorted by path.
tree_sums() {
  (cd "$1" && find . -type f -print0 | sort -z | xargs -0 -r sha256sum)
}

# tree_meta DIR: one line per entry: path type mode uid gid size(not for dirs) mtime(ns) target.
tree_meta() {
  (cd "$1" && find . \( -type d -printf '%p|%y|%m|%U|%G|-|%T@|\n' \) -o \
    -printf '%p|%y|%m|%U|%G|%s|%T@|%l\n' | sort)
}

# random_file PATH BYTES: incompressible data outside the mount.
random_file() {
  head -c "$2" /dev/urandom >"$1"
}

bg() {  # bg CMD...: run a background worker that cleanup will stop
  "$@" &
  BG_PIDS+=($!)
}

# ---------------------------------------------------------------------------------------------
# Cleanup and watchdog.

cleanup() {
  local rc=$? p m
  trap - EXIT TERM INT HUP
  if ((FINISHED == 0)); then
    log "$TEST_NAME: $PASSED passed, $((FAILED > 0 ? FAILED : 1)) failed (aborted with status $rc)"
  fi
  for p in "${BG_PIDS[@]}"; do
    pkill -9 -P "$p" 2>/dev/null
    kill -9 "$p" 2>/dev/null
  done
  if is_mounted "$MNT"; then
    timeout 20 fusermount3 -u "$MNT" 2>/dev/null || fusermount3 -u -z "$MNT" 2>/dev/null
  fi
  if [[ -n $KVFS_PID ]]; then
    wait_daemon 30
  fi
  for ((p = ${#EXTRA_MOUNTS[@]} - 1; p >= 0; p--)); do
    m=${EXTRA_MOUNTS[p]}
    if is_mounted "$m"; then
      fusermount3 -u -z "$m" 2>/dev/null || umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
    fi
  done
  if [[ -n $WATCHDOG_PID ]]; then
    kill "$WATCHDOG_PID" 2>/dev/null
    wait "$WATCHDOG_PID" 2>/dev/null
  fi
  if [[ -s $WORK/watchdog.log ]]; then
    sed 's/^/    | /' "$WORK/watchdog.log"
  fi
  # Never recurse into a mount that is still there.
  while read -r _ m _; do
    [[ $m == "$WORK"/* ]] && umount -l "$m" 2>/dev/null
  done </proc/mounts
  if [[ ${KVFS_TEST_KEEP:-0} == 1 || ( $rc -ne 0 && ${KVFS_TEST_KEEP:-0} == failed ) ]]; then
    log "kept $WORK"
  else
    rm -rf --one-file-system "$WORK"
  fi
  exit $rc
}
trap cleanup EXIT
trap 'log "interrupted"; exit 143' TERM INT HUP

start_watchdog() {
  local limit=${KVFS_TEST_TIMEOUT:-0}
  ((limit > 0)) || return 0
  (
    trap 'kill $sp 2>/dev/null; exit 0' TERM
    sleep "$limit" &
    sp=$!
    wait $sp
    echo "WATCHDOG: $TEST_NAME ran longer than ${limit}s; killing kvfs to release blocked calls"
    p=$(cat "$WORK/daemon.pid" 2>/dev/null)
    [[ -n $p ]] && kill -9 "$p" 2>/dev/null
    fusermount3 -u -z "$MNT" 2>/dev/null
    kill -TERM "$MAIN_PID"
  ) >"$WORK/watchdog.log" 2>&1 &
  WATCHDOG_PID=$!
}
start_watchdog

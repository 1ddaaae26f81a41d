#!/bin/bash
# tests/mount/crash_test.sh: kill -9 the daemon in the middle of a write workload, remount, and
# check that everything completed before the kill (files closed, renames done, data fsynced) is
# intact and that no half-done operation is visible. Two crash rounds on the same store, then a
# clean unmount and a last check of both rounds.
source "$(dirname "$0")/lib.sh" "$@"

M=$MNT
PY=$(command -v /usr/bin/python3 || command -v python3)
TOOL=$HERE/crash_tool.py
BASE=$WORK/base64k      # content of every small file (after a per-file header)
PATTERN=$WORK/pattern8m # content of the big file, repeated
random_file "$BASE" 65536
random_file "$PATTERN" $((8 * 1024 * 1024))

# Workers; each logs, outside the mount, what it completed, and stops at its first error.
# Small file i is "file %06d\n" + $BASE, prepared outside the mount; cp (unlike a shell
# redirection) reports a failed close, so a file is logged only once close(2) succeeded.
mkdir "$WORK/small"
for ((i = 1; i <= 500; i++)); do
  { printf 'file %06d\n' "$i" && cat "$BASE"; } >"$WORK/small/f$i"
done
small_writer() {  # small_writer ROUND LOGDIR: 500 files of 64 KiB + 12 bytes, each 5th hard-linked
  local r=$1 l=$2 i
  for ((i = 1; i <= 500; i++)); do
    cp "$WORK/small/f$i" "$r/d/f$i" || break
    echo "$i" >>"$l/small.log"
    if ((i % 5 == 0)); then ln "$r/d/f$i" "$r/d/h$i" || break; fi
  done
}
state_writer() {  # state_writer ROUND LOGDIR: rewrite `state` by write-temp-then-rename
  local r=$1 l=$2 g
  for ((g = 1; g <= 20000; g++)); do
    # A failed close of state.tmp would go unnoticed here, but then the daemon is gone and
    # the mv fails: a generation is logged only when its rename succeeded.
    { printf 'gen %06d\n' "$g" && head -c 8000 "$BASE" && printf 'end %06d\n' "$g"; } >"$r/state.tmp" || break
    mv "$r/state.tmp" "$r/state" || break
    echo "$g" >>"$l/state.log"
  done
}

count_lines() { if [[ -f $1 ]]; then wc -l <"$1"; else echo 0; fi; }

# crash_round N KILL_AFTER: run the workload in $M/roundN, kill -9 the daemon once KILL_AFTER
# small files are closed, remount, verify.
crash_round() {
  local n=$1 after=$2 r=$M/round$1 l=$WORK/round$1 i p pids=()
  mkdir -p "$r/d" "$l"
  small_writer "$r" "$l" &
  pids+=($!)
  state_writer "$r" "$l" &
  pids+=($!)
  "$PY" "$TOOL" bigwriter "$r/big" "$PATTERN" "$l/big.log" $((1024 * 1024 * 1024)) &
  pids+=($!)
  BG_PIDS+=("${pids[@]}")
  for ((i = 0; i < 1200; i++)); do
    (($(count_lines "$l/small.log") >= after)) && break
    kill -0 "${pids[0]}" 2>/dev/null || break
    sleep 0.1
  done
  log "round $n: killing kvfs after $(count_lines "$l/small.log") closed files," \
    "$(count_lines "$l/state.log") renames, $(tail -n 1 "$l/big.log" 2>/dev/null) bytes fsynced"
  kill9 || die "could not detach the dead mount"
  pass "round $n: kill -9 during the workload"
  # The workers fail fast once the connection is gone; give them 30 s.
  for p in "${pids[@]}"; do
    for ((i = 0; i < 300; i++)); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null
    wait "$p" 2>/dev/null
  done
  ((after <= $(count_lines "$l/small.log"))) || fail "round $n: the workload did not reach $after files before the kill"
  mount_kvfs || die "round $n: the store does not mount after the crash"
  pass "round $n: store opens after kill -9"
  verify_round "$n" "after crash $n"
}

verify_round() {  # verify_round N WHEN
  local out
  out=$("$PY" "$TOOL" verify "$M/round$1" "$WORK/round$1" "$BASE" "$PATTERN" 2>&1)
  local rc=$?
  printf '%s\n' "$out"
  if ((rc == 0)); then
    pass "round $1 $2: closed files intact, listing and link counts consistent, renames atomic, fsynced data kept"
  else
    fail "round $1 $2: see problems above"
  fi
  check "round $1 $2: find walks the whole tree" find "$M/round$1" -printf ''
}

mount_kvfs || die "mount failed"
crash_round 1 150
# The recovered file system is usable: create, write, rename, delete.
check "write after recovery" bash -c "seq 1 1000 >'$M/after-crash.txt'"
check "rename after recovery" mv "$M/after-crash.txt" "$M/after-crash-renamed.txt"
assert_eq "read after recovery" 1000 "$(wc -l <"$M/after-crash-renamed.txt")"
check "delete after recovery" rm "$M/after-crash-renamed.txt"
crash_round 2 300
verify_round 1 "after crash 2"
check "rm -rf of round 1 after two crashes" rm -rf "$M/round1"
remount || die "clean remount failed"
verify_round 2 "after a clean remount"
check "round 1 removal persisted" test ! -e "$M/round1"
assert_eq "mount root" "round2" "$(ls -A "$M" | tr '\n' ' ' | sed 's/ $//')"

log "# sync(1) reaches no FUSE daemon: what it wrote back of a file still open is committed within a second"
"$PY" "$TOOL" synced "$M/held" "$WORK/held.sha256" &
held=$!
BG_PIDS+=("$held")
for ((i = 0; i < 300; i++)); do
  [[ -e $WORK/held.sha256 ]] && break
  kill -0 "$held" 2>/dev/null || break
  sleep 0.1
done
check "the writer synced its random writes" test -e "$WORK/held.sha256"
sleep 2.5  # the commit interval (1 s), with room
kill9 || die "could not detach the dead mount"
kill -9 "$held" 2>/dev/null
wait "$held" 2>/dev/null
mount_kvfs || die "the store does not mount after the crash"
assert_eq "synced writes to a file open at the crash are kept" "$(cat "$WORK/held.sha256")" \
  "$(sha256sum <"$M/held" | cut -d' ' -f1)"
unmount
finish

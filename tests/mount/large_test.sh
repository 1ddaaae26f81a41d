#!/bin/bash
# tests/mount/large_test.sh: a 2 GiB file (written with dd, read back after a remount, checked by
# sha256) and a directory of 100,000 entries (created, listed, counted, removed with rm -rf).
source "$(dirname "$0")/lib.sh" "$@"

M=$MNT
GIB2=$((2 * 1024 * 1024 * 1024))
NENT=100000

# 2 GiB of incompressible data: 64 MiB from /dev/urandom repeated 32 times, each copy stamped
# with its index so that no two 64 MiB ranges of the file are equal (a chunk written at the
# wrong offset would show).
random_file "$WORK/rand64" $((64 * 1024 * 1024))
stream() {
  local i
  for ((i = 0; i < 32; i++)); do
    printf 'copy %02d ' "$i"
    tail -c +9 "$WORK/rand64"
  done
}
want=$(stream | sha256sum | cut -d' ' -f1)

mount_kvfs || die "mount failed"
free0=$(stat -f -c '%f*%S' "$M")

log "# 2 GiB file"
t0=$SECONDS
check "dd 2 GiB into the mount" bash -c "set -o pipefail; $(declare -f stream); WORK='$WORK'; stream | dd of='$M/big' bs=1M iflag=fullblock status=none"
log "  written in $((SECONDS - t0)) s"
assert_eq "size" $GIB2 "$(stat -c %s "$M/big")"
free1=$(stat -f -c '%f*%S' "$M")
used=$(((free0) - (free1)))
check "statfs shows the space used ($((used >> 20)) MiB)" test $used -ge $((GIB2 - GIB2 / 20))
check "du shows the space used" test "$(du -k "$M/big" | cut -f1)" -ge $(((GIB2 - GIB2 / 20) / 1024))
t0=$SECONDS
remount || die "remount failed"
log "  unmount+remount in $((SECONDS - t0)) s"
t0=$SECONDS
assert_eq "sha256 of 2 GiB read back after remount" "$want" "$(sha256sum <"$M/big" | cut -d' ' -f1)"
log "  read back in $((SECONDS - t0)) s"
assert_eq "size after remount" $GIB2 "$(stat -c %s "$M/big")"
# Reads at offsets past 2^31 and across the last byte.
check "read at offset 2 GiB - 1 MiB" cmp -i $((GIB2 - 1048576)):$((64 * 1024 * 1024 - 1048576)) -n 1048576 "$M/big" "$WORK/rand64"
assert_eq "read at the last byte" "$(tail -c 1 "$WORK/rand64" | od -An -tx1)" "$(dd if="$M/big" bs=1 skip=$((GIB2 - 1)) count=1 status=none | od -An -tx1)"
check "overwrite 1 MiB in the middle (past 2^31)" dd if="$WORK/rand64" of="$M/big" bs=1M count=1 seek=2047 conv=notrunc status=none
check "overwritten range reads back" cmp -i $((2047 * 1048576)):0 -n 1048576 "$M/big" "$WORK/rand64"
check "rm the 2 GiB file" rm "$M/big"
rm -f "$WORK/rand64"

log "# directory of $NENT entries"
D=$M/many
mkdir "$D"
t0=$SECONDS
check "create $NENT files (seq | xargs touch)" bash -c "cd '$D' && seq -f 'entry-%06g' 1 $NENT | xargs touch"
log "  created in $((SECONDS - t0)) s"
seq -f 'entry-%06g' 1 $NENT >"$WORK/names"
assert_eq "ls | wc -l" $NENT "$(ls "$D" | wc -l)"
assert_eq "ls -f counts . and .." $((NENT + 2)) "$(ls -f "$D" | wc -l)"
assert_eq "find count" $NENT "$(find "$D" -mindepth 1 -type f | wc -l)"
ls "$D" >"$WORK/listed"
assert_same_file "listing names exactly the created entries" "$WORK/names" "$WORK/listed"
assert_eq "lookup of one entry" "regular empty file" "$(stat -c %F "$D/entry-054321")"
remount || die "remount failed"
assert_eq "ls | wc -l after remount" $NENT "$(ls "$D" | wc -l)"
ls "$D" >"$WORK/listed"
assert_same_file "listing after remount" "$WORK/names" "$WORK/listed"
assert_eq "stat every entry after remount (find -printf)" $NENT "$(find "$D" -mindepth 1 -printf '%s\n' | grep -c '^0$')"
t0=$SECONDS
check "rm -rf of all $NENT entries" find "$D" -mindepth 1 -maxdepth 1 -exec rm -rf {} +
log "  removed in $((SECONDS - t0)) s"
assert_eq "directory empty after rm -rf" "" "$(ls -A "$D")"
check "rmdir of the emptied directory" rmdir "$D"
check "directory gone" test ! -e "$D"
# And the plain form: rm -rf of the directory itself (re-created with 20,000 entries).
mkdir "$D"
(cd "$D" && seq -f 'again-%05g' 1 20000 | xargs touch)
check "rm -rf of a 20,000-entry directory" rm -rf "$D"
check "gone" test ! -e "$D"
remount || die "remount failed"
assert_eq "mount root empty after remount" "" "$(ls -A "$M")"
unmount
finish

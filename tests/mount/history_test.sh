#!/bin/bash
# tests/mount/history_test.sh: file history, trash and snapshots through a real mount.
#   - every close is a version, read back byte-exact from .kvfs/history/<path>/
#   - a version costs the chunks it changed (a 50 MiB file edited 4 KiB at a time)
#   - editor-style saves (write a temp file and rename it over; sed -i) keep the history
#   - truncate and extend are versions; history survives remount and kill -9
#   - the trash gives back a deleted file and a deleted tree (mv and cp -a)
#   - a snapshot taken before rm -rf gives the tree back byte-exact (cp -a)
#   - retention keeps the newest N versions, and compaction reclaims the rest
#   - a user who may not read a file may read neither its history nor its trash entry
#   - .kvfs is hidden, and read-only but for snapshot mkdir/rmdir
source "$(dirname "$0")/lib.sh" "$@"

KVFS_OPTS=(-o allow_other)  # the permission checks run as another user
NOBODY=(setpriv --reuid=65534 --regid=65534 --clear-groups)
M=$MNT
H=$M/.kvfs/history
TRASH=$M/.kvfs/trash
SNAPS=$M/.kvfs/snapshots
VERSION_RE='^[0-9]{4,}_[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}-[0-9]{2}-[0-9]{2}\.[0-9]{3}Z$'

# versions PATH: the version names of file PATH (relative to the mount), oldest first.
versions() { ls "$H/$1"; }
# nth_version PATH N: the path of the N-th version file (1 = oldest).
nth_version() { printf '%s/%s\n' "$H/$1" "$(versions "$1" | sed -n "${2}p")"; }
# history_sums PATH: "sha256  name" of every version of PATH.
history_sums() { (cd "$H/$1" && sha256sum -- *); }
store_bytes() { du -sb "$STORE" | cut -f1; }

mount_kvfs || die "mount failed"
chmod 755 "$M"

log "# .kvfs is reachable by name, not listed, and read-only"
check ".kvfs is a directory" test -d "$M/.kvfs"
assert_eq "ls -a of the root does not show .kvfs" "" "$(ls -a "$M" | grep -x '.kvfs')"
assert_eq ".kvfs lists its views" "history snapshots stats trash" "$(ls "$M/.kvfs" | xargs)"
expect_errno touch "$M/.kvfs/new" EROFS
expect_errno mkdir "$M/.kvfs/history/new" EROFS
expect_errno rm "$M/.kvfs/stats" EROFS
check "stats is text with counters" grep -q '^versions_kept ' "$M/.kvfs/stats"

log "# every close is a version, byte-exact"
sizes=(100 5000 70000 1 300000)
for i in 1 2 3 4 5; do
  random_file "$WORK/five.$i" "${sizes[i - 1]}"
  cp "$WORK/five.$i" "$M/five.bin"
done
assert_eq "five versions listed" 5 "$(versions five.bin | wc -l)"
bad_names=$(versions five.bin | grep -Evc "$VERSION_RE")
assert_eq "version names are <number>_<UTC time>" 0 "$bad_names"
assert_eq "ls sorts them oldest first" "0001 0002 0003 0004 0005" "$(versions five.bin | cut -c1-4 | xargs)"
for i in 1 2 3 4 5; do
  v=$(nth_version five.bin "$i")
  check "version $i reads back byte-exact" cmp "$WORK/five.$i" "$v"
  assert_eq "ls -l size of version $i" "${sizes[i - 1]}" "$(stat -c %s "$v")"
done
assert_eq "versions are read-only files" "-r--r--r--" "$(stat -c %A "$(nth_version five.bin 1)")"
expect_errno sh -c "echo x >'$(nth_version five.bin 1)'" EROFS
m1=$(stat -c %Y "$(nth_version five.bin 1)")
m5=$(stat -c %Y "$(nth_version five.bin 5)")
check "ls -l shows each version's mtime" test "$m1" -le "$m5" -a "$m1" -gt 0
check "cp restores a version" cp "$(nth_version five.bin 2)" "$M/five.bin"
check "restored content" cmp "$WORK/five.2" "$M/five.bin"

log "# a 50 MiB file edited 4 KiB at a time costs the changed chunks"
random_file "$WORK/big" $((50 * 1024 * 1024))
cp "$WORK/big" "$M/big.bin"
sync
before=$(store_bytes)
cp "$WORK/big" "$WORK/big.cur"
sha256sum <"$WORK/big.cur" | cut -d' ' -f1 >"$WORK/big.sums"
for i in $(seq 1 20); do
  random_file "$WORK/patch" 4096
  off=$((i * 611))  # 4 KiB blocks, spread over the file
  dd if="$WORK/patch" of="$M/big.bin" bs=4096 seek=$off conv=notrunc status=none
  dd if="$WORK/patch" of="$WORK/big.cur" bs=4096 seek=$off conv=notrunc status=none
  sha256sum <"$WORK/big.cur" | cut -d' ' -f1 >>"$WORK/big.sums"
done
sync
after=$(store_bytes)
grown=$((after - before))
log "    store grew by $grown bytes for 20 versions of a 50 MiB file"
check "store grew by less than 8 MiB (20 changed chunks), not 20 x 50 MiB" test "$grown" -lt $((8 * 1024 * 1024))
assert_eq "21 versions of big.bin" 21 "$(versions big.bin | wc -l)"
for n in 1 2 11 21; do
  want=$(sed -n "${n}p" "$WORK/big.sums")
  got=$(sha256sum <"$(nth_version big.bin "$n")" | cut -d' ' -f1)
  assert_eq "big.bin version $n byte-exact" "$want" "$got"
done

log "# editor-style saves keep the history under the path"
printf 'line1\n' >"$M/notes.txt"
# vim: write the new text to a temporary file, fsync, rename it over the original
python3 - "$M" <<'EOF'
import os, sys
d = sys.argv[1]
tmp = os.path.join(d, '4913')
with open(tmp, 'w') as f:
    f.write('line1\nline2\n')
    f.flush()
    os.fsync(f.fileno())
os.rename(tmp, os.path.join(d, 'notes.txt'))
EOF
sed -i 's/line1/LINE1/' "$M/notes.txt"
sed -i 's/line2/LINE2/' "$M/notes.txt"
assert_eq "4 versions after a vim-style save and two sed -i" 4 "$(versions notes.txt | wc -l)"
assert_eq "numbering continues across renames" "0001 0002 0003 0004" "$(versions notes.txt | cut -c1-4 | xargs)"
assert_eq "version 1" "line1" "$(cat "$(nth_version notes.txt 1)")"
assert_eq "version 2 (vim)" "line1 line2" "$(xargs <"$(nth_version notes.txt 2)")"
assert_eq "version 3 (sed -i)" "LINE1 line2" "$(xargs <"$(nth_version notes.txt 3)")"
assert_eq "version 4 (sed -i)" "LINE1 LINE2" "$(xargs <"$(nth_version notes.txt 4)")"
assert_eq "replaced files do not litter the trash" "" "$(ls "$TRASH")"

log "# truncate and extend are versions"
printf 'hello world\n' >"$M/t.txt"
truncate -s 5 "$M/t.txt"
truncate -s 8 "$M/t.txt"
assert_eq "three versions of t.txt" 3 "$(versions t.txt | wc -l)"
assert_eq "before truncate" "hello world" "$(cat "$(nth_version t.txt 1)")"
assert_eq "truncated" "hello" "$(cat "$(nth_version t.txt 2)")"
assert_eq "extended with zeros" "68656c6c6f000000" "$(od -An -tx1 "$(nth_version t.txt 3)" | tr -d ' \n')"

log "# history survives unmount and kill -9"
for f in five.bin notes.txt t.txt; do history_sums "$f" >"$WORK/hist.$f"; done
remount || die "remount failed"
for f in five.bin notes.txt t.txt; do
  assert_same_file "history of $f after remount" "$WORK/hist.$f" <(history_sums "$f")
done
printf 'after remount\n' >"$M/notes.txt"
history_sums notes.txt >"$WORK/hist.notes.txt"
kill9 || die "kill -9 failed"
mount_kvfs || die "mount after kill -9 failed"
for f in five.bin notes.txt t.txt; do
  assert_same_file "history of $f after kill -9" "$WORK/hist.$f" <(history_sums "$f")
done
assert_eq "the version written before kill -9" "after remount" "$(cat "$(nth_version notes.txt 5)")"

log "# trash: restore a file and a tree"
printf 'important\n' >"$M/doc.txt"
rm "$M/doc.txt"
entry=$(ls "$TRASH" | grep '__doc\.txt$')
check "deleted file listed with deletion time and path" \
  grep -Eq '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}-[0-9]{2}-[0-9]{2}\.[0-9]{3}Z__doc\.txt$' <<<"$entry"
expect_errno sh -c "echo x >>'$TRASH/$entry'" EROFS
check "mv out of the trash restores it" mv "$TRASH/$entry" "$M/doc.txt"
assert_eq "restored file" "important" "$(cat "$M/doc.txt")"
assert_eq "trash empty again" "" "$(ls "$TRASH")"
# Over a file that took the name meanwhile: mv replaces it, and it goes to the trash.
rm "$M/doc.txt"
entry=$(ls "$TRASH" | grep '__doc\.txt$')
printf 'rewritten\n' >"$M/doc.txt"
check "mv -n out of the trash keeps the file that took the name" mv -n "$TRASH/$entry" "$M/doc.txt"
assert_eq "mv -n replaced nothing" "rewritten" "$(cat "$M/doc.txt")"
check "mv out of the trash over the file that took the name" mv "$TRASH/$entry" "$M/doc.txt"
assert_eq "restored over it" "important" "$(cat "$M/doc.txt")"
replaced=$(ls "$TRASH" | grep '__doc\.txt$')
assert_eq "the replaced file is in the trash" "rewritten" "$(cat "$TRASH/$replaced")"
check "and moves out again" mv "$TRASH/$replaced" "$M/doc.rewritten"
assert_eq "trash empty again" "" "$(ls "$TRASH")"

mkdir -p "$M/proj/src/deep" "$M/proj/empty"
random_file "$M/proj/src/main.c" 12345
random_file "$M/proj/src/deep/blob" 200000
printf 'readme\n' >"$M/proj/README"
ln -s src/main.c "$M/proj/link"
chmod 700 "$M/proj/src/deep"
rm "$M/proj/src/main.c"
check "nested path in the trash name" test -n "$(ls "$TRASH" | grep '__proj__src__main\.c$')"
mv "$TRASH"/*__proj__src__main.c "$M/proj/src/main.c"
tree_sums "$M/proj" >"$WORK/proj.sums"
tree_meta "$M/proj" >"$WORK/proj.meta"
rm -rf "$M/proj"
assert_eq "rm -rf leaves one trash entry for the tree" 1 "$(ls "$TRASH" | grep -c '__proj$')"
tentry=$(ls "$TRASH" | grep '__proj$')
assert_same_file "trashed tree is browsable" "$WORK/proj.sums" <(tree_sums "$TRASH/$tentry")
check "cp -a out of the trash" cp -a "$TRASH/$tentry" "$M/proj.copy"
assert_same_file "cp -a copy of the trashed tree" "$WORK/proj.sums" <(tree_sums "$M/proj.copy")
check "mv of the tree out of the trash" mv "$TRASH/$tentry" "$M/proj"
assert_same_file "restored tree contents" "$WORK/proj.sums" <(tree_sums "$M/proj")
assert_same_file "restored tree metadata" "$WORK/proj.meta" <(tree_meta "$M/proj")
assert_eq "trash empty after the restore" "" "$(ls "$TRASH")"
check "restored tree is writable again" sh -c "echo more >>'$M/proj/README'"

log "# a snapshot taken before rm -rf gives the tree back"
mkdir -p "$M/data/a/b" "$M/data/c"
random_file "$M/data/a/b/one" 1000000
random_file "$M/data/c/two" 77
printf 'text\n' >"$M/data/three"
ln -s a/b/one "$M/data/sym"
setfattr -n user.note -v kept "$M/data/three"
chmod 640 "$M/data/three"
chown 1234:5678 "$M/data/c/two"
touch -d '2001-02-03 04:05:06.789' "$M/data/c"
tree_sums "$M/data" >"$WORK/data.sums"
tree_meta "$M/data" >"$WORK/data.meta"
check "mkdir .kvfs/snapshots/before" mkdir "$SNAPS/before"
printf 'changed\n' >"$M/data/three"
rm -rf "$M/data"
assert_same_file "snapshot shows the old tree" "$WORK/data.sums" <(tree_sums "$SNAPS/before/data")
check "cp -a out of the snapshot" cp -a "$SNAPS/before/data" "$M/data"
assert_same_file "restored contents byte-exact" "$WORK/data.sums" <(tree_sums "$M/data")
assert_same_file "restored metadata" "$WORK/data.meta" <(tree_meta "$M/data")
assert_eq "restored xattr" "kept" "$(getfattr --absolute-names --only-values -n user.note "$M/data/three")"
assert_eq ".kvfs never appears inside a snapshot" "" "$(ls -a "$SNAPS/before" | grep -x '.kvfs')"
expect_errno touch "$SNAPS/before/data/new" EROFS
expect_errno rm "$SNAPS/before/data/three" EROFS
remount || die "remount failed"
assert_same_file "snapshot survives remount" "$WORK/data.sums" <(tree_sums "$SNAPS/before/data")
check "rmdir drops the snapshot" rmdir "$SNAPS/before"
assert_eq "no snapshots left" "" "$(ls "$SNAPS")"

log "# permissions: no read access, no history, no trash"
printf 'secret\n' >"$M/secret.txt"
printf 'secret 2\n' >"$M/secret.txt"
chmod 600 "$M/secret.txt"
printf 'public\n' >"$M/public.txt"
assert_eq "other user reads a public file's history" "public" \
  "$("${NOBODY[@]}" cat "$(nth_version public.txt 1)" 2>&1)"
expect_errno "${NOBODY[@]}" cat "$M/secret.txt" EACCES
expect_errno "${NOBODY[@]}" cat "$(nth_version secret.txt 1)" EACCES
expect_errno "${NOBODY[@]}" ls "$H/secret.txt" EACCES
rm "$M/secret.txt"
sentry=$(ls "$TRASH" | grep '__secret\.txt$')
expect_errno "${NOBODY[@]}" cat "$TRASH/$sentry" EACCES
expect_errno "${NOBODY[@]}" cp -a "$TRASH/$sentry" /tmp/kvfs-history-should-not-exist EACCES
expect_errno "${NOBODY[@]}" mkdir "$SNAPS/mine" EACCES

log "# retention: N versions kept, compaction reclaims the rest"
unmount || die "unmount failed"
STORE=$WORK/store-retention
mount_kvfs -o versions=3 || die "mount of a new store failed"
for i in $(seq 1 8); do
  random_file "$WORK/ret.$i" $((2 * 1024 * 1024))
  cp "$WORK/ret.$i" "$M/r.bin"
done
assert_eq "newest 3 of 8 versions listed" "0006 0007 0008" "$(versions r.bin | cut -c1-4 | xargs)"
unmount || die "unmount failed"
before=$(store_bytes)
mount_kvfs -o compact || die "mount with compaction failed"
after=$(store_bytes)
log "    store: $before -> $after bytes"
assert_eq "exactly 3 versions after compaction" 3 "$(versions r.bin | wc -l)"
for n in 1 2 3; do
  check "retained version $n byte-exact" cmp "$WORK/ret.$((n + 5))" "$(nth_version r.bin "$n")"
done
check "5 dropped versions of 2 MiB reclaimed (>= 9 MiB)" test $((before - after)) -ge $((9 * 1024 * 1024))
check "3 versions still stored (>= 6 MiB)" test "$after" -ge $((6 * 1024 * 1024))
assert_eq "stats count the kept versions" "versions_kept 3" "$(grep '^versions_kept ' "$M/.kvfs/stats")"

unmount
finish

#!/bin/bash
# tests/mount/persist_test.sh: everything a tree records (names, types, modes, owners, sizes,
# mtimes and ctimes in ns, link counts, inode numbers, link targets, contents, xattrs) is
# identical after unmount + remount, after SIGTERM + remount, and after changes made on a
# remounted store (new inode numbers never reuse old ones).
source "$(dirname "$0")/lib.sh" "$@"

M=$MNT
T=$M/t

# snapshot DIR OUT: the full observable state of the tree under DIR.
snapshot() {
  (
    cd "$1" || exit 1
    echo "## find"
    find . -printf '%p|%y|%m|%U|%G|%s|%T@|%C@|%n|%i|%l\n' | sort
    echo "## sha256"
    find . -type f ! -name empty-file -print0 | sort -z | xargs -0 -r sha256sum
    echo "## xattrs"
    find . ! -type l -print0 | sort -z | xargs -0 -r getfattr -h -d -m - -e hex 2>&1
  ) >"$2"
}

mount_kvfs || die "mount failed"
chmod 755 "$M"
mkdir -p "$T"/{a/b/c/d,empty,private,sticky,owned}
random_file "$WORK/r1" $((1024 * 1024 + 333))
random_file "$WORK/r5" $((5 * 1024 * 1024))
cp "$WORK/r1" "$T/a/one-chunk-plus.bin"
cp "$WORK/r5" "$T/a/b/five-mib.bin"
printf 'small inline file\n' >"$T/small.txt"
: >"$T/empty-file"
printf 'deep\n' >"$T/a/b/c/d/deep.txt"
printf 'spaces\n' >"$T/name with spaces"
printf 'utf8\n' >"$T/ünïcödé-名前"
long=$(printf 'n%.0s' $(seq 1 255))
printf 'long name\n' >"$T/$long"
seq 1 100000 >"$T/numbers.txt"
dd if="$WORK/r1" of="$T/sparse" bs=4096 count=2 seek=10000 status=none
# modes and owners
chmod 0640 "$T/small.txt"
chmod 4755 "$T/a/one-chunk-plus.bin"
chmod 2750 "$T/a/b"
chmod 0700 "$T/private"
chmod 1777 "$T/sticky"
chmod 0 "$T/empty-file"
chown 1234:5678 "$T/owned" "$T/numbers.txt"
chown 65534:65534 "$T/name with spaces"
# symlinks
ln -s small.txt "$T/rel-link"
ln -s "$T/a/b" "$T/abs-link"
ln -s ../nowhere "$T/a/dangling"
ln -s a/b/c "$T/dir-link"
chown -h 1234:5678 "$T/rel-link"
# hard links (nlink 3 across directories)
ln "$T/small.txt" "$T/a/small-hard"
ln "$T/small.txt" "$T/owned/small-hard2"
# xattrs
setfattr -n user.kind -v text "$T/small.txt"
setfattr -n user.bin -v 0x0001feff "$T/a/b/five-mib.bin"
setfattr -n user.empty "$T/empty-file"
setfattr -n user.dir -v yes "$T/a"
setfattr -n user.big -v "$(head -c 2000 /dev/zero | tr '\0' z)" "$T/numbers.txt"
# times, set last (children before parents, so that nothing disturbs them afterwards)
touch -d '2001-02-03 04:05:06.123456789' "$T/small.txt"
touch -d '1999-12-31 23:59:59.999999999' "$T/a/b/five-mib.bin"
touch -d '1970-01-02 00:00:00' "$T/empty-file"
touch -d '2038-01-19 03:14:08' "$T/numbers.txt"
touch -h -d '2010-10-10 10:10:10.5' "$T/rel-link"
touch -d '2020-02-29 12:00:00.000000001' "$T/a/b/c/d/deep.txt" "$T/a/b/c/d" "$T/a/b/c"
touch -d '2015-06-15 15:15:15' "$T/empty"
touch -a -d '2003-03-03 03:03:03' "$T/empty-file"   # never read (relatime): its atime is checked
atime_before=$(stat -c %.9X "$T/empty-file")
snapshot "$T" "$WORK/snap0"
root_before=$(stat -c '%a %u %g %h %i' "$M")
log "snapshot: $(grep -c '|' "$WORK/snap0") entries"

remount || die "remount failed"
snapshot "$T" "$WORK/snap1"
assert_same_file "identical after unmount + remount" "$WORK/snap0" "$WORK/snap1"
assert_eq "mount root attributes after remount" "$root_before" "$(stat -c '%a %u %g %h %i' "$M")"
assert_eq "explicit atime after remount" "$atime_before" "$(stat -c %.9X "$T/empty-file")"
assert_eq "255-byte name after remount" "long name" "$(cat "$T/$long")"
assert_eq "hard link count" 3 "$(stat -c %h "$T/owned/small-hard2")"

# Changes on the remounted store persist as well, and new inodes do not reuse old numbers.
mv "$T/a/b/five-mib.bin" "$T/moved.bin"
rm "$T/a/small-hard"
printf 'appended\n' >>"$T/numbers.txt"
setfattr -x user.kind "$T/small.txt"
setfattr -n user.new -v 1 "$T/small.txt"
truncate -s 1000 "$T/a/one-chunk-plus.bin"
rmdir "$T/empty"
mkdir "$T/new-dir"  # after a remount: the next inode number must have been persisted
for i in $(seq 1 20); do printf 'new %d\n' "$i" >"$T/new-dir/f$i"; done
old_inos=$(find "$T" -path "$T/new-dir" -prune -o -printf '%i\n' | sort -u)
new_inos=$(find "$T/new-dir" -printf '%i\n' | sort -u)
assert_eq "new inodes do not reuse existing numbers" "" "$(comm -12 <(echo "$old_inos") <(echo "$new_inos"))"
assert_eq "old files unchanged by new creations" "$(grep 'deep.txt$' "$WORK/snap0" | grep -v '|')" \
  "$(cd "$T" && sha256sum ./a/b/c/d/deep.txt)"
touch -d '2011-11-11 11:11:11' "$T/new-dir"
snapshot "$T" "$WORK/snap2"

term_unmount TERM && pass "SIGTERM unmounts cleanly"
mount_kvfs || die "mount after SIGTERM failed"
snapshot "$T" "$WORK/snap3"
assert_same_file "identical after SIGTERM + remount" "$WORK/snap2" "$WORK/snap3"

term_unmount INT && pass "SIGINT unmounts cleanly"
mount_kvfs || die "mount after SIGINT failed"
snapshot "$T" "$WORK/snap4"
assert_same_file "identical after SIGINT + remount" "$WORK/snap2" "$WORK/snap4"

# A third plain cycle with nothing changed in between must also be a no-op.
remount || die "remount failed"
snapshot "$T" "$WORK/snap5"
assert_same_file "identical after another remount" "$WORK/snap2" "$WORK/snap5"
unmount
finish

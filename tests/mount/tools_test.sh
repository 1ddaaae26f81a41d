#!/bin/bash
# tests/mount/tools_test.sh: everyday tools through a real kvfs mount (cp -a, tar, rsync, git,
# mv, ln, chmod/chown/touch, truncate, sparse dd, xattrs, O_APPEND, open-unlinked files, mmap,
# fsx, make and cc, sed -i and vi),
# then a remount and a second look at what was written.
source "$(dirname "$0")/lib.sh" "$@"

M=$MNT
PY=$(command -v /usr/bin/python3 || command -v python3)

# The source tree: /usr/share/doc (thousands of files and symlinks; the large nodejs docs left
# out to keep the test quick) plus a few things it lacks: hard links, odd names, modes, owners,
# an empty directory, an xattr, a multi-chunk file.
SRC=$WORK/src
mkdir -p "$SRC"
tar -C /usr/share -cf - --exclude=doc/nodejs doc | tar -C "$SRC" -xf - || die "cannot build source tree"
mkdir -p "$SRC/extra/empty dir" "$SRC/extra/deep/a/b/c/d"
random_file "$SRC/extra/multi-chunk.bin" $((5 * 1024 * 1024 + 17))
printf 'one\n' >"$SRC/extra/deep/a/b/c/d/leaf"
printf 'shared\n' >"$SRC/extra/hard1"
ln "$SRC/extra/hard1" "$SRC/extra/hard2"
ln "$SRC/extra/hard1" "$SRC/extra/deep/hard3"
printf 'x\n' >"$SRC/extra/name with spaces & ünïcödé"
: >"$SRC/extra/empty"
ln -s ../extra/deep "$SRC/extra/link-to-dir"
ln -s /nonexistent/target "$SRC/extra/dangling"
chmod 0600 "$SRC/extra/empty"
chmod 4755 "$SRC/extra/hard1"
chown 1234:5678 "$SRC/extra/deep/a/b/c/d/leaf"
chown -h 4321:8765 "$SRC/extra/dangling"
setfattr -n user.origin -v source "$SRC/extra/multi-chunk.bin"
touch -d '2001-02-03 04:05:06.123456789' "$SRC/extra/deep/a/b/c/d/leaf" "$SRC/extra/deep/a/b/c/d"
NFILES=$(find "$SRC" -type f | wc -l)
NLINKS=$(find "$SRC" -type l | wc -l)
log "source tree: $NFILES files, $NLINKS symlinks, $(du -sm "$SRC" | cut -f1) MiB"
tree_sums "$SRC" >"$WORK/src.sums"
tree_meta "$SRC" >"$WORK/src.meta"

mount_kvfs || die "mount failed"

# ---------------------------------------------------------------------------------------------
log "# cp -a in and out"
check "cp -a into the mount" cp -a "$SRC" "$M/cp"
check "diff -r source vs mount" diff -r --no-dereference "$SRC" "$M/cp"
tree_sums "$M/cp" >"$WORK/cp.sums"
assert_same_file "sha256 of every file after cp -a in" "$WORK/src.sums" "$WORK/cp.sums"
tree_meta "$M/cp" >"$WORK/cp.meta"
assert_same_file "modes, owners, sizes, mtimes, link targets after cp -a in" "$WORK/src.meta" "$WORK/cp.meta"
assert_eq "hard links kept by cp -a (nlink)" 3 "$(stat -c %h "$M/cp/extra/hard2")"
assert_eq "hard links share an inode" "$(stat -c %i "$M/cp/extra/hard1")" "$(stat -c %i "$M/cp/extra/deep/hard3")"
assert_eq "xattr kept by cp -a" source "$(getfattr --absolute-names --only-values -n user.origin "$M/cp/extra/multi-chunk.bin" 2>&1)"
check "cp -a out of the mount" cp -a "$M/cp" "$WORK/out"
check "diff -r source vs copy out" diff -r --no-dereference "$SRC" "$WORK/out"
tree_sums "$WORK/out" >"$WORK/out.sums"
assert_same_file "sha256 of every file after cp -a out" "$WORK/src.sums" "$WORK/out.sums"
tree_meta "$WORK/out" >"$WORK/out.meta"
assert_same_file "metadata after cp -a out" "$WORK/src.meta" "$WORK/out.meta"
rm -rf "$WORK/out"

# ---------------------------------------------------------------------------------------------
log "# listings of inodes the kernel holds"
# READDIRPLUS sends a bare name for an inode the kernel already holds (fs/fuse/kernel_inodes.h);
# names, inode numbers and types from readdir must not change, and attributes must be whole
# again once the kernel has forgotten the inodes.
L=$M/held
mkdir -p "$L/dir"
printf 'data\n' >"$L/file"
ln "$L/file" "$L/hard"
ln -s file "$L/link"
mkfifo "$L/fifo"
scandir() {  # what readdir alone says: name, d_ino, d_type
  "$PY" -c 'import os, sys
for e in sorted(os.scandir(sys.argv[1]), key=lambda e: e.name):
    print(e.name, e.inode(), e.is_dir(follow_symlinks=False), e.is_symlink(), e.is_file(follow_symlinks=False))' "$1"
}
statdir() {  # the same from lstat
  "$PY" -c 'import os, stat, sys
for n in sorted(os.listdir(sys.argv[1])):
    st = os.lstat(os.path.join(sys.argv[1], n))
    print(n, st.st_ino, stat.S_ISDIR(st.st_mode), stat.S_ISLNK(st.st_mode), stat.S_ISREG(st.st_mode))' "$1"
}
expected=$(statdir "$L")
assert_eq "readdir of looked-up inodes: names, inode numbers, types" "$expected" "$(scandir "$L")"
long=$(ls -l --time-style=+%s.%N "$L")
sync
echo 2 >/proc/sys/vm/drop_caches  # the kernel forgets the inodes
assert_eq "readdir after the kernel forgot them" "$expected" "$(scandir "$L")"
assert_eq "ls -l after the kernel forgot them" "$long" "$(ls -l --time-style=+%s.%N "$L")"

# ---------------------------------------------------------------------------------------------
log "# tar"
check "tar create into the mount" tar --format=posix -C "$SRC" -cf "$M/src.tar" .
check "tar -t of the archive in the mount" bash -c "tar -tf '$M/src.tar' >/dev/null"
mkdir "$M/untar"
check "tar extract inside the mount" tar -C "$M/untar" -xpf "$M/src.tar"
check "diff -r source vs extracted" diff -r --no-dereference "$SRC" "$M/untar"
tree_meta "$M/untar" >"$WORK/untar.meta"
assert_same_file "metadata after tar extract in the mount" "$WORK/src.meta" "$WORK/untar.meta"
mkdir "$WORK/tarout"
check "tar of a mount tree, extracted outside" bash -c "tar --format=posix -C '$M/cp' -cf - . | tar -C '$WORK/tarout' -xpf -"
check "diff -r source vs tar from mount" diff -r --no-dereference "$SRC" "$WORK/tarout"
tree_meta "$WORK/tarout" >"$WORK/tarout.meta"
assert_same_file "metadata after tar from the mount" "$WORK/src.meta" "$WORK/tarout.meta"
rm -rf "$WORK/tarout"

# ---------------------------------------------------------------------------------------------
log "# rsync"
check "rsync -a into the mount" rsync -a "$SRC/" "$M/rsync/"
out=$(rsync -a --checksum --dry-run --itemize-changes "$SRC/" "$M/rsync/" 2>&1)
assert_eq "rsync -a --checksum --dry-run finds nothing to do" "" "$out"
out=$(rsync -a --dry-run --itemize-changes "$SRC/" "$M/rsync/" 2>&1)
assert_eq "rsync -a --dry-run (size+mtime) finds nothing to do" "" "$out"
echo changed >>"$M/rsync/extra/deep/a/b/c/d/leaf"
out=$(rsync -a --checksum --dry-run --itemize-changes "$SRC/" "$M/rsync/" 2>&1)
assert_eq "rsync sees exactly the one changed file" ">fcst...... extra/deep/a/b/c/d/leaf" "$out"
check "rsync -a repairs it" rsync -a "$SRC/" "$M/rsync/"
check "rsync repaired content" cmp "$SRC/extra/deep/a/b/c/d/leaf" "$M/rsync/extra/deep/a/b/c/d/leaf"

# ---------------------------------------------------------------------------------------------
log "# git"
export HOME=$WORK/home GIT_CONFIG_NOSYSTEM=1 GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@example.com \
  GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@example.com
mkdir -p "$HOME"
R=$M/repo
mkdir "$R"
check "git init" git -C "$R" init -q
cp -a "$SRC/git" "$SRC/extra" "$R/" 2>/dev/null || cp -a "$SRC/extra" "$R/"
check "git add -A" git -C "$R" add -A
check "git commit" git -C "$R" commit -q -m first
assert_eq "git status clean after commit" "" "$(git -C "$R" status --porcelain 2>&1)"
echo "more" >>"$R/extra/deep/a/b/c/d/leaf"
git -C "$R" mv extra/empty extra/renamed-empty
assert_eq "git status sees the edits" " M extra/deep/a/b/c/d/leaf|R  extra/empty -> extra/renamed-empty|" \
  "$(git -C "$R" status --porcelain 2>&1 | sort | tr '\n' '|')"
check "git commit -a" git -C "$R" commit -q -a -m second
assert_eq "git status clean after second commit" "" "$(git -C "$R" status --porcelain 2>&1)"
assert_eq "git log has two commits" 2 "$(git -C "$R" log --oneline 2>&1 | wc -l)"
check "git fsck --full" git -C "$R" fsck --full --no-progress
check "git gc" git -C "$R" gc -q
check "git fsck after gc" git -C "$R" fsck --full --no-progress
assert_eq "git status clean after gc" "" "$(git -C "$R" status --porcelain 2>&1)"
check "git checkout of the first commit's file" git -C "$R" checkout -q HEAD~1 -- extra/deep/a/b/c/d/leaf
check "checked-out content" cmp "$SRC/extra/deep/a/b/c/d/leaf" "$R/extra/deep/a/b/c/d/leaf"
check "git reset --hard" git -C "$R" reset -q --hard
check "git clone inside the mount" git clone -q "$R" "$M/clone"
check "clone matches" diff -r --no-dereference -x .git -x "empty dir" "$R" "$M/clone"

# ---------------------------------------------------------------------------------------------
log "# mv"
D=$M/mv
mkdir -p "$D/a/sub" "$D/b" "$D/b/empty" "$D/a/d2" "$D/b/full"
echo one >"$D/a/f"
ino=$(stat -c %i "$D/a/f")
check "mv across directories" mv "$D/a/f" "$D/b/f"
check "source name gone" test ! -e "$D/a/f"
assert_eq "moved content" one "$(cat "$D/b/f")"
assert_eq "inode kept by rename" "$ino" "$(stat -c %i "$D/b/f")"
echo new >"$D/a/g"
echo old >"$D/b/g"
check "mv over an existing file" mv -f "$D/a/g" "$D/b/g"
assert_eq "replaced content" new "$(cat "$D/b/g")"
check "replaced source gone" test ! -e "$D/a/g"
echo keep >"$D/b/h"
ln "$D/b/h" "$D/b/h2"
echo repl >"$D/a/h"
check "mv over one name of a hard-linked file" mv -f "$D/a/h" "$D/b/h"
assert_eq "new content under the replaced name" repl "$(cat "$D/b/h")"
assert_eq "other link keeps old content" keep "$(cat "$D/b/h2")"
assert_eq "other link's nlink drops to 1" 1 "$(stat -c %h "$D/b/h2")"
echo deep >"$D/a/sub/x"
check "mv a directory across directories" mv "$D/a/sub" "$D/b/sub"
assert_eq "content under the moved directory" deep "$(cat "$D/b/sub/x")"
check "old directory name gone" test ! -e "$D/a/sub"
check "lookup through the moved directory's .." test -f "$D/b/sub/../f"
touch "$D/a/d2/y" "$D/b/full/z"
check "mv a directory over an empty directory" mv -T "$D/a/d2" "$D/b/empty"
check "its content arrives" test -f "$D/b/empty/y"
expect_errno mv -T "$D/b/sub" "$D/b/full" ENOTEMPTY
check "mv within a directory" mv "$D/b/f" "$D/b/f.renamed"
assert_eq "directory listing after the moves" "empty f.renamed full g h h2 sub" "$(ls "$D/b" | tr '\n' ' ' | sed 's/ $//')"
assert_eq "source directory listing after the moves" "" "$(ls -A "$D/a")"

# ---------------------------------------------------------------------------------------------
log "# ln, ln -s, readlink"
L=$M/ln
mkdir "$L"
echo content >"$L/f"
check "ln" ln "$L/f" "$L/hard"
assert_eq "nlink after ln" 2 "$(stat -c %h "$L/f")"
assert_eq "same inode" "$(stat -c %i "$L/f")" "$(stat -c %i "$L/hard")"
echo appended >>"$L/hard"
assert_eq "write through one link visible through the other" "content appended" "$(tr '\n' ' ' <"$L/f" | sed 's/ $//')"
rm "$L/f"
assert_eq "nlink after removing one link" 1 "$(stat -c %h "$L/hard")"
assert_eq "content survives removal of the other link" "content appended" "$(tr '\n' ' ' <"$L/hard" | sed 's/ $//')"
check "ln -s" ln -s hard "$L/sym"
assert_eq "readlink" hard "$(readlink "$L/sym")"
assert_eq "read through symlink" "content appended" "$(tr '\n' ' ' <"$L/sym" | sed 's/ $//')"
assert_eq "symlink type" "symbolic link" "$(stat -c %F "$L/sym")"
assert_eq "symlink size is target length" 4 "$(stat -c %s "$L/sym")"
check "ln -s dangling" ln -s /does/not/exist "$L/dangling"
assert_eq "readlink dangling" /does/not/exist "$(readlink "$L/dangling")"
expect_errno cat "$L/dangling" ENOENT
long=$(printf 'x/%.0s' $(seq 1 1500))target
check "ln -s with a 3006-byte target" ln -s "$long" "$L/longlink"
assert_eq "readlink long target" "$long" "$(readlink "$L/longlink")"
mkdir "$L/dir"
echo indir >"$L/dir/file"
ln -s dir "$L/dirlink"
assert_eq "path through a directory symlink" indir "$(cat "$L/dirlink/file")"
check "ln -sf replaces a symlink" ln -sfn /other "$L/sym"
assert_eq "readlink after ln -sfn" /other "$(readlink "$L/sym")"

# ---------------------------------------------------------------------------------------------
log "# chmod, chown, touch -d"
A=$M/attr
mkdir "$A"
echo data >"$A/f"
ln -s f "$A/sym"
for mode in 751 4755 2711 1777 0 644; do
  chmod "$mode" "$A/f"
  assert_eq "chmod $mode" "$mode" "$(stat -c %a "$A/f")"
done
chmod 1777 "$A"
assert_eq "chmod 1777 on a directory" 1777 "$(stat -c %a "$A")"
chmod 755 "$A"
check "chown 1234:5678" chown 1234:5678 "$A/f"
assert_eq "owner after chown" 1234:5678 "$(stat -c %u:%g "$A/f")"
check "chown -h on a symlink" chown -h 4321:8765 "$A/sym"
assert_eq "symlink owner" 4321:8765 "$(stat -c %u:%g "$A/sym")"
assert_eq "target owner unchanged by chown -h" 1234:5678 "$(stat -c %u:%g "$A/f")"
check "chgrp" chgrp 99 "$A/f"
assert_eq "group after chgrp" 1234:99 "$(stat -c %u:%g "$A/f")"
check "touch -d" touch -d '2001-02-03 04:05:06.123456789' "$A/f"
assert_eq "mtime from touch -d (ns)" 981173106.123456789 "$(stat -c %.9Y "$A/f")"
check "touch -a -d" touch -a -d '1999-12-31 23:59:59.5' "$A/f"
assert_eq "atime from touch -a -d" 946684799.500000000 "$(stat -c %.9X "$A/f")"
assert_eq "mtime untouched by touch -a" 981173106.123456789 "$(stat -c %.9Y "$A/f")"
check "touch -h -d on a symlink" touch -h -d '2010-01-01 00:00:00' "$A/sym"
assert_eq "symlink mtime" 1262304000 "$(stat -c %Y "$A/sym")"
assert_eq "target mtime unchanged by touch -h" 981173106 "$(stat -c %Y "$A/f")"
check "touch -d on a directory" touch -d '2005-05-05 05:05:05' "$A"
assert_eq "directory mtime" 1115269505 "$(stat -c %Y "$A")"
c1=$(stat -c %.9Z "$A/f")
sleep 0.05
chmod 600 "$A/f"
c2=$(stat -c %.9Z "$A/f")
check "chmod advances ctime ($c1 -> $c2)" "$PY" -c "import sys; sys.exit(not float('$c2') > float('$c1'))"
now=$(date +%s)
echo more >>"$A/f"
m=$(stat -c %Y "$A/f")
check "a write sets mtime to now ($m vs $now)" test $((m - now)) -ge -2 -a $((m - now)) -le 5
touch "$A/new"
m=$(stat -c %Y "$A/new")
check "touch creates with current time" test $((m - now)) -ge -2 -a $((m - now)) -le 5

# ---------------------------------------------------------------------------------------------
log "# truncate"
T=$M/trunc
random_file "$WORK/t.src" $((3 * 1024 * 1024))
cp "$WORK/t.src" "$T"
check "truncate down" truncate -s 100000 "$T"
assert_eq "size after truncate down" 100000 "$(stat -c %s "$T")"
check "content kept below the cut" cmp -n 100000 "$WORK/t.src" "$T"
check "truncate up" truncate -s 5000000 "$T"
assert_eq "size after truncate up" 5000000 "$(stat -c %s "$T")"
check "content kept after growing" cmp -n 100000 "$WORK/t.src" "$T"
check "grown region reads as zeros (no stale data)" cmp -i 100000:0 -n 4900000 "$T" /dev/zero
cp "$WORK/t.src" "$T"
truncate -s 70001 "$T"
truncate -s 2000000 "$T"
check "cut inside a chunk then grown: tail is zeros" cmp -i 70001:0 -n 1929999 "$T" /dev/zero
check "and the head is intact" cmp -n 70001 "$WORK/t.src" "$T"
check "truncate -s +1000" truncate -s +1000 "$T"
assert_eq "size after +1000" 2001000 "$(stat -c %s "$T")"
check "truncate -s 0" truncate -s 0 "$T"
assert_eq "size after truncate 0" 0 "$(stat -c %s "$T")"
assert_eq "empty content" 0 "$(wc -c <"$T")"
head -c 100000 "$WORK/t.src" >"$WORK/t.expect"
cp "$WORK/t.src" "$T"
truncate -s 100000 "$T"

# ---------------------------------------------------------------------------------------------
log "# sparse files"
random_file "$WORK/blk" 65536
HOLE=$((256 * 1024 * 1024))
check "dd with seek past a 256 MiB hole" dd if="$WORK/blk" of="$M/sparse" bs=64K seek=4096 conv=notrunc status=none
assert_eq "sparse size" $((HOLE + 65536)) "$(stat -c %s "$M/sparse")"
check "the hole reads as zeros" cmp -n $HOLE "$M/sparse" /dev/zero
check "data after the hole" cmp -i $HOLE:0 "$M/sparse" "$WORK/blk"
du_k=$(du -k "$M/sparse" | cut -f1)
check "du of the sparse file stays small (${du_k} KiB)" test "$du_k" -lt 8192
check "apparent size from du" test "$(du -k --apparent-size "$M/sparse" | cut -f1)" -eq $(((HOLE + 65536) / 1024))
dd if="$WORK/blk" of="$M/sparse2" bs=4k count=1 status=none
dd if="$WORK/blk" of="$M/sparse2" bs=4k count=1 seek=25600 conv=notrunc status=none
check "hole in the middle reads as zeros" cmp -i 4096:0 -n $((25600 * 4096 - 4096)) "$M/sparse2" /dev/zero
check "data before the hole" cmp -n 4096 "$WORK/blk" "$M/sparse2"
check "data after the hole" cmp -i $((25600 * 4096)):0 "$M/sparse2" "$WORK/blk" -n 4096

# ---------------------------------------------------------------------------------------------
log "# xattrs"
X=$M/xattr
mkdir "$X"
echo x >"$X/f"
check "setfattr" setfattr -n user.color -v blue "$X/f"
assert_eq "getfattr" blue "$(getfattr --absolute-names --only-values -n user.color "$X/f" 2>&1)"
check "setfattr overwrite" setfattr -n user.color -v red "$X/f"
assert_eq "getfattr after overwrite" red "$(getfattr --absolute-names --only-values -n user.color "$X/f" 2>&1)"
check "binary value" setfattr -n user.bin -v 0x00ff00fe7f "$X/f"
assert_eq "binary value read back" 'user.bin=0x00ff00fe7f' "$(getfattr -e hex -n user.bin --absolute-names "$X/f" 2>&1 | grep '^user')"
check "empty value" setfattr -n user.empty "$X/f"
bigv=$(head -c 4000 /dev/zero | tr '\0' v)
check "4000-byte value" setfattr -n user.big -v "$bigv" "$X/f"
assert_eq "4000-byte value read back" 4000 "$(getfattr --absolute-names --only-values -n user.big "$X/f" | wc -c)"
assert_eq "getfattr -d lists all" "user.big|user.bin|user.color|user.empty|" \
  "$(getfattr -d --absolute-names "$X/f" 2>&1 | grep -o '^user\.[a-z]*' | sort | tr '\n' '|')"
check "setfattr -x" setfattr -x user.color "$X/f"
out=$(getfattr -n user.color "$X/f" 2>&1)
check "removed attribute is gone ($out)" grep -q 'No such attribute' <<<"$out"
out=$(setfattr -x user.nope "$X/f" 2>&1)
check "removing a missing attribute fails ($out)" grep -q 'No such attribute' <<<"$out"
check "xattr on a directory" setfattr -n user.dir -v yes "$X"
assert_eq "directory xattr read back" yes "$(getfattr --absolute-names --only-values -n user.dir "$X" 2>&1)"
for i in $(seq 1 50); do setfattr -n "user.many$i" -v "value$i" "$X/f"; done
assert_eq "50 more attributes listed" 50 "$(getfattr --absolute-names -d "$X/f" 2>/dev/null | grep -c '^user\.many')"
mv "$X/f" "$X/g"
assert_eq "xattr follows rename" value17 "$(getfattr --absolute-names --only-values -n user.many17 "$X/g" 2>&1)"
ln "$X/g" "$X/g2"
assert_eq "xattr visible through a hard link" value3 "$(getfattr --absolute-names --only-values -n user.many3 "$X/g2" 2>&1)"
getfattr -d -e hex --absolute-names "$X/g" >"$WORK/xattr.before" 2>&1

# ---------------------------------------------------------------------------------------------
log "# O_APPEND writers"
AP=$M/append.log
PAD=$(printf 'p%.0s' $(seq 1 60))
: >"$AP"
appender() {  # appender TAG COUNT: one O_APPEND descriptor, one write(2) per line
  local i
  {
    for ((i = 1; i <= $2; i++)); do printf '%s %06d %s\n' "$1" "$i" "$PAD"; done
  } >>"$AP"
}
appender_reopen() {  # appender_reopen TAG COUNT: open O_APPEND, write, close for every line
  local i
  for ((i = 1; i <= $2; i++)); do printf '%s %06d %s\n' "$1" "$i" "$PAD" >>"$AP"; done
}
appender A 5000 &
pa=$!
appender B 5000 &
pb=$!
appender_reopen C 500 &
pc=$!
BG_PIDS+=($pa $pb $pc)
wait $pa $pb $pc
check_append() {
  assert_eq "$1: total lines" 10500 "$(wc -l <"$AP")"
  assert_eq "$1: no torn lines" 0 "$(grep -Evc "^[ABC] [0-9]{6} $PAD\$" "$AP")"
  assert_eq "$1: size" $((10500 * 70)) "$(stat -c %s "$AP")"
  for t in A:5000 B:5000 C:500; do
    assert_eq "$1: writer ${t%:*} complete and in order" "$(seq -f '%06g' 1 "${t#*:}" | sha256sum)" \
      "$(grep "^${t%:*} " "$AP" | cut -d' ' -f2 | sha256sum)"
  done
}
check_append "O_APPEND"

# ---------------------------------------------------------------------------------------------
log "# delete files right after writing them, then syncfs"
# The kernel writes a closed file's times back later (writeback cache); the file may be in
# the trash by then, which must not fail the write-back (regression: sync -f said EROFS).
for i in 1 2 3; do printf 'data\n' >"$M/short-lived-$i"; done
check "rm of just-written files" rm "$M"/short-lived-*
check "sync -f after deleting just-written files" sync -f "$M"

log "# open, unlink, then use the handle"
U=$M/unlinked
printf 'hello\n' >"$U"
exec 3<>"$U"
check "rm of an open file" rm "$U"
check "name is gone" test ! -e "$U"
assert_eq "name not listed" "" "$(ls "$M" | grep -x unlinked)"
read -r line <&3
assert_eq "read through the handle after unlink" hello "$line"
printf 'world\n' >&3
assert_eq "pread sees old and new data" "hello|world|" \
  "$("$PY" -c 'import os,sys; sys.stdout.write(os.pread(3, 100, 0).decode())' | tr '\n' '|')"
random_file "$WORK/unl.big" $((2 * 1024 * 1024 + 5))
check "2 MiB pwrite through the handle" "$PY" -c "
import os
data = open('$WORK/unl.big', 'rb').read()
os.pwrite(3, data, 1 << 20)
os.fsync(3)
got = os.pread(3, len(data), 1 << 20)
assert got == data, 'pread mismatch'
assert os.fstat(3).st_size == (1 << 20) + len(data), os.fstat(3).st_size
assert os.fstat(3).st_nlink == 0, os.fstat(3).st_nlink
"
check "reopen via /proc/self/fd" cmp -i $((1 << 20)):0 "/proc/$$/fd/3" "$WORK/unl.big"
exec 3>&-
check "still gone after close" test ! -e "$U"

# ---------------------------------------------------------------------------------------------
log "# shared writable mmap"
check "mmap write, msync, read back" "$PY" "$HERE/mmap_check.py" write "$M/mmap.bin"

# ---------------------------------------------------------------------------------------------
log "# fsx: random writes, reads, truncates, mappings and fallocate against a model"
# Three files at once, each checked byte for byte after every operation and after closing
# (which drops the kernel's cached pages).
fsx_pids=()
for seed in 1 2 3; do
  "$PY" "$HERE/fsx.py" "$M/fsx$seed" 3000 "$seed" >"$WORK/fsx$seed.log" 2>&1 &
  fsx_pids+=($!)
done
for i in "${!fsx_pids[@]}"; do
  if wait "${fsx_pids[$i]}"; then
    pass "fsx seed $((i + 1)): $(tail -n 1 "$WORK/fsx$((i + 1)).log")"
  else
    fail "fsx seed $((i + 1)): $(cat "$WORK/fsx$((i + 1)).log")"
  fi
done
rm -f "$M"/fsx[123]

# ---------------------------------------------------------------------------------------------
log "# directory listings the kernel keeps between opens stay exact"
L=$M/listing
mkdir "$L"
listing() { ls -A "$L" | tr '\n' ' '; }
assert_eq "empty" "" "$(listing)"
touch "$L/a"
assert_eq "after create" "a " "$(listing)"
mv "$L/a" "$L/b"
assert_eq "after rename" "b " "$(listing)"
ln "$L/b" "$L/c"
ln -s b "$L/s"
mkdir "$L/d"
assert_eq "after link, symlink, mkdir" "b c d s " "$(listing)"
rm "$L/b"
rmdir "$L/d"
assert_eq "after unlink, rmdir" "c s " "$(listing)"
echo moved >"$M/from-elsewhere"
mv "$M/from-elsewhere" "$L/"
assert_eq "after a rename into it" "c from-elsewhere s " "$(listing)"
mv "$L/from-elsewhere" "$M/"
assert_eq "after a rename out of it" "c s " "$(listing)"
echo one >"$L/v"
before=$(ls "$M/.kvfs/history/listing/v" | wc -l)
echo two >"$L/v"
after=$(ls "$M/.kvfs/history/listing/v" | wc -l)
check "the history view lists the new version ($before, then $after)" test "$after" -gt "$before"
rm -rf "$L" "$M/from-elsewhere"
# A listing must survive the kernel dropping its page cache midway (a directory listing the
# kernel cached once resumed on another handle at an offset only the first one knew: EINVAL).
mkdir "$M/big-dir"
(cd "$M/big-dir" && seq 1 20000 | xargs touch)
find "$M/big-dir" >/dev/null
( for i in $(seq 1 300); do echo 1 >/proc/sys/vm/drop_caches; sleep 0.02; done ) &
dropper=$!
short=0
for i in $(seq 1 60); do
  n=$(find "$M/big-dir" -type f 2>>"$WORK/listing.err" | wc -l)
  [[ $n == 20000 ]] || short=$((short + 1))
done
kill "$dropper" 2>/dev/null
wait "$dropper" 2>/dev/null
assert_eq "60 listings of 20000 names while the page cache is dropped: short ones ($(sort -u "$WORK/listing.err" | head -c 200))" 0 "$short"
rm -rf "$M/big-dir"

# ---------------------------------------------------------------------------------------------
log "# editors and compilers"
E=$M/edit
mkdir "$E"
cat >"$E/main.c" <<'EOF_C'
#include <stdio.h>
#include "msg.h"
int main(void) { puts(MSG); return 0; }
EOF_C
echo '#define MSG "built in kvfs"' >"$E/msg.h"
printf 'hello: main.o\n\t$(CC) -o $@ main.o\nmain.o: main.c msg.h\n\t$(CC) -c -o $@ main.c\n' >"$E/Makefile"
check "make builds a C program in the mount" make -s -C "$E"
assert_eq "the program runs from the mount" "built in kvfs" "$("$E/hello" 2>&1)"
assert_eq "make with nothing changed" "make: 'hello' is up to date." "$(make -C "$E" --no-print-directory 2>&1)"
echo '#define MSG "rebuilt"' >"$E/msg.h"
assert_eq "make rebuilds what depends on an edited header" \
  "cc -c -o main.o main.c|cc -o hello main.o|" "$(make -C "$E" --no-print-directory 2>&1 | tr '\n' '|')"
assert_eq "the rebuilt program runs" "rebuilt" "$("$E/hello" 2>&1)"
printf 'alpha\nbeta\n' >"$E/notes.txt"
chmod 0640 "$E/notes.txt"
check "sed -i" sed -i 's/beta/gamma/' "$E/notes.txt"
assert_eq "sed -i: content" "alpha|gamma|" "$(tr '\n' '|' <"$E/notes.txt")"
assert_eq "sed -i: mode kept" "640" "$(stat -c %a "$E/notes.txt")"
setfattr -n user.tag -v kept "$E/notes.txt"
# vi saves through a swap file and a backup (renamed or copied, as it judges best) and must
# keep the file's mode and xattrs; nothing of its own may be left behind.
check "vi edits and saves" vi -N -u NONE -i NONE -es -c '%s/alpha/delta/' -c 'wq' "$E/notes.txt"
assert_eq "vi: content" "delta|gamma|" "$(tr '\n' '|' <"$E/notes.txt")"
assert_eq "vi: mode kept" "640" "$(stat -c %a "$E/notes.txt")"
assert_eq "vi: xattr kept" "kept" "$(getfattr --absolute-names --only-values -n user.tag "$E/notes.txt" 2>&1)"
assert_eq "vi left no swap or backup files" "Makefile hello main.c main.o msg.h notes.txt " \
  "$(ls -A "$E" | tr '\n' ' ')"
rm -rf "$E"

# ---------------------------------------------------------------------------------------------
log "# after a remount"
sha_sparse=$(sha256sum <"$M/sparse2")
remount || die "remount failed"
tree_sums "$M/cp" >"$WORK/cp2.sums"
assert_same_file "sha256 of the cp -a tree after remount" "$WORK/src.sums" "$WORK/cp2.sums"
tree_meta "$M/cp" >"$WORK/cp2.meta"
assert_same_file "metadata of the cp -a tree after remount" "$WORK/src.meta" "$WORK/cp2.meta"
check "diff -r extracted tar tree after remount" diff -r --no-dereference "$SRC" "$M/untar"
check "mmap file after remount" "$PY" "$HERE/mmap_check.py" verify "$M/mmap.bin"
check_append "O_APPEND after remount"
check "truncated file after remount" cmp "$WORK/t.expect" "$M/trunc"
check "sparse hole after remount" cmp -n $HOLE "$M/sparse" /dev/zero
check "sparse data after remount" cmp -i $HOLE:0 "$M/sparse" "$WORK/blk"
assert_eq "second sparse file after remount" "$sha_sparse" "$(sha256sum <"$M/sparse2")"
du_k=$(du -k "$M/sparse" | cut -f1)
check "du of the sparse file still small after remount (${du_k} KiB)" test "$du_k" -lt 8192
getfattr -d -e hex --absolute-names "$X/g" >"$WORK/xattr.after" 2>&1
assert_same_file "xattrs after remount" "$WORK/xattr.before" "$WORK/xattr.after"
assert_eq "git status clean after remount" "" "$(git -C "$R" status --porcelain 2>&1)"
check "git fsck after remount" git -C "$R" fsck --full --no-progress
assert_eq "unlinked file did not come back" "" "$(ls -A "$M" | grep -x unlinked)"
check "rm -rf of everything" rm -rf "$M/cp" "$M/untar" "$M/rsync" "$M/repo" "$M/clone" "$M/src.tar"
unmount
finish

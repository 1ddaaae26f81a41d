#!/bin/bash
# tests/mount/kvfsck_test.sh: the kvfsck maintenance tool on stores made through real mounts.
#   1. corruption corpus: a bit flip in a chunk's value, in a record header, a truncated and a
#      missing page file; and valid records that break the file system (dangling entry, wrong
#      link count, orphan inode, orphan chunks, a chunk past the end, a broken history link):
#      check finds and names the file, --repair fixes, the store then checks clean, mounts,
#      and the intact files read back byte-exact (store_damage.py does the damage)
#   2. backup/restore of a tree with hard links, symlinks, xattrs, a sparse file, versions,
#      a snapshot and a trash entry: the restored mount equals the source in every respect
#   3. backup while a writer keeps rewriting files: the restore checks clean and every file is
#      one complete write
#   4. damaged archives (truncated, bit flip, wrong magic, newer format) are refused and leave
#      the target untouched; an incremental backup is smaller and restores the newer tree
#   5. compact reclaims deleted data; kill -9 during compaction loses nothing
#   6. reshard 16 -> 4 -> 64 pages (and again without --pages) keeps every file and version
#   7. history, revert and undelete; errors for unknown paths and for a mounted store
# Arguments: the kvfs daemon, then kvfsck (default: tools/kvfsck of the daemon's build).
source "$(dirname "$0")/lib.sh" "$@"

KVFSCK=${2:-${KVFSCK:-$(dirname "$KVFS")/../../tools/kvfsck}}
[[ -x $KVFSCK ]] || die "kvfsck binary not found or not executable: '$KVFSCK'"
KVFSCK=$(readlink -f "$KVFSCK")
DAMAGE=(python3 "$HERE/store_damage.py")
M=$MNT
CHUNK=65536

# fsck ARGS...: run kvfsck --quiet; sets RC, OUT (stdout) and ERR (stderr).
fsck() {
  OUT=$(timeout 300 "$KVFSCK" --quiet "$@" 2>"$WORK/fsck.err")
  RC=$?
  ERR=$(cat "$WORK/fsck.err")
}

# show: kvfsck's output of the last run, indented (after a failed check).
show() {
  { printf '%s\n' "$OUT" | head -n 20; printf '%s\n' "$ERR" | head -n 10; } | sed 's/^/    | /'
}

# expect_rc DESC RC ARGS...: kvfsck ARGS must exit RC.
expect_rc() {
  local desc=$1 want=$2
  shift 2
  fsck "$@"
  if ((RC == want)); then
    pass "$desc"
  else
    fail "$desc: kvfsck $* exited $RC, expected $want"
    show
    return 1
  fi
}

# expect_error DESC PATTERN ARGS...: kvfsck ARGS must exit 2 with exactly one stderr line
# "kvfsck: ..." that contains PATTERN (a glob; empty: any).
expect_error() {
  local desc=$1 pattern=$2
  shift 2
  fsck "$@"
  local lines
  lines=$(printf '%s' "$ERR" | grep -c '')
  if ((RC == 2)) && ((lines == 1)) && [[ $ERR == "kvfsck: "* && $ERR == *$pattern* ]]; then
    pass "$desc"
  else
    fail "$desc: kvfsck $* exited $RC with $lines stderr line(s), expected 2 and one 'kvfsck: ...*$pattern*' line"
    show
    return 1
  fi
}

# contains DESC NEEDLE HAYSTACK
contains() {
  if [[ $3 == *"$2"* ]]; then
    pass "$1"
  else
    fail "$1: '$2' not in:"
    printf '%s\n' "$3" | head -n 20 | sed 's/^/    | /'
    return 1
  fi
}

store_bytes() { du -sb "$1" | cut -f1; }
page_count() { ls "$1"/page-*.kv 2>/dev/null | wc -l; }
# json EXPR: evaluate a Python expression over the JSON document in $OUT (as `j`).
json() { python3 -c 'import json, sys; j = json.loads(sys.argv[1]); print(eval(sys.argv[2]))' "$OUT" "$1"; }

# A second mount (of another store) next to $MNT, for side-by-side comparisons.
MNT2=$WORK/mnt2
KVFS2_PID=
mount_second() {
  local store=$1 i
  mkdir -p "$MNT2"
  env --default-signal=INT,QUIT "$KVFS" "$store" "$MNT2" -f >"$WORK/kvfs-second.log" 2>&1 </dev/null &
  KVFS2_PID=$!
  EXTRA_MOUNTS+=("$MNT2")
  for ((i = 0; i < 300; i++)); do
    if is_mounted "$MNT2"; then
      timeout 30 stat "$MNT2" >/dev/null && return 0
      break
    fi
    kill -0 "$KVFS2_PID" 2>/dev/null || break
    sleep 0.1
  done
  log "second kvfs did not mount $store; its log:"
  sed 's/^/    | /' "$WORK/kvfs-second.log"
  return 1
}
unmount_second() {
  local i
  for ((i = 0; i < 50; i++)); do
    fusermount3 -u "$MNT2" 2>/dev/null && break
    sleep 0.2
  done
  if is_mounted "$MNT2"; then
    fail "unmount $MNT2"
    fusermount3 -u -z "$MNT2"
  fi
  if [[ -n $KVFS2_PID ]]; then
    wait "$KVFS2_PID" || fail "second kvfs exited with status $?"
  fi
  KVFS2_PID=
}

# full_state DIR: everything observable of the tree under DIR (not its atimes).
full_state() {
  (
    cd "$1" || exit 1
    echo "## find"
    find . -printf '%p|%y|%m|%U|%G|%s|%T@|%C@|%n|%i|%l\n' | sort
    echo "## sha256"
    find . -type f -print0 | sort -z | xargs -0 -r sha256sum
    echo "## xattrs"
    find . ! -type l -print0 | sort -z | xargs -0 -r getfattr -h -d -m - -e hex 2>&1
  )
}

# history_state MOUNT: every version of every regular file: "path/version size sha256".
history_state() {
  (
    cd "$1" || exit 1
    find . -path ./lost+found -prune -o -type f -printf '%P\n' | sort | while read -r p; do
      for v in .kvfs/history/"$p"/*; do
        [[ -e $v ]] || continue
        printf '%s/%s %s %s\n' "$p" "$(basename "$v")" "$(stat -c %s "$v")" \
          "$(sha256sum <"$v" | cut -d' ' -f1)"
      done
    done
  )
}

# =============================================================================================
log "# 1. corruption corpus"
# A small known tree; d/big.bin has 5 chunks, chunk 2 of it is damaged in each round.
SRC=$WORK/corpus-src
mkdir -p "$SRC/d/sub" "$SRC/e/f"
random_file "$SRC/d/big.bin" 300000
random_file "$SRC/other.bin" 150000
random_file "$SRC/e/f/g.bin" 5000
printf 'hello\n' >"$SRC/d/a.txt"
printf 'top\n' >"$SRC/top.txt"
seq 1 2000 >"$SRC/d/sub/deep.txt"
ln -s d/a.txt "$SRC/link"

for damage in flip-value flip-header truncate remove; do
  log "## $damage"
  STORE=$WORK/corpus-$damage
  mount_kvfs || die "mount of a new store failed"
  cp -a "$SRC/." "$M/"
  ino=$(stat -c %i "$M/d/big.bin")
  (cd "$M" && find . -printf '%i %p\n') >"$WORK/corpus.inos"
  tree_sums "$M" >"$WORK/corpus.sums"
  unmount || die "unmount failed"
  expect_rc "$damage: the undamaged store checks clean" 0 check "$STORE"

  mapfile -t dmg < <("${DAMAGE[@]}" "$damage" "$STORE" "$ino" 2)
  affected=" ${dmg[1]:-} "
  log "    damaged ${dmg[0]:-?}; keys of inodes [${dmg[1]:-}] affected"

  expect_rc "$damage: check finds the damage" 1 check "$STORE"
  contains "$damage: check names the damaged file" "/d/big.bin" "$OUT"
  fsck --json check "$STORE"
  assert_eq "$damage: check --json reports it (exit 1, clean: false)" "1 False" \
    "$RC $(json 'j["clean"]' 2>&1)"
  check "$damage: check --json lists problems with path and message" python3 -c '
import json, sys
j = json.loads(sys.argv[1])
assert j["problems"], "no problems listed"
for p in j["problems"]:
    assert p["path"] and p["problem"] and p["repaired"] is False, p' "$OUT"

  expect_rc "$damage: check --repair exits 1 (problems were found)" 1 check --repair "$STORE"
  contains "$damage: --repair marks problems repaired" "[repaired]" "$OUT"
  contains "$damage: --repair re-checks" "repaired: the store now checks clean" "$OUT"
  expect_rc "$damage: check after the repair exits 0" 0 check "$STORE"
  contains "$damage: ... and says clean" "clean" "$OUT"

  mount_kvfs || { fail "$damage: repaired store does not mount"; continue; }
  # Intact: the file and every directory above it have no key in the damaged range.
  declare -A INO=()
  while read -r i p; do INO[$p]=$i; done <"$WORK/corpus.inos"
  intact=0
  while read -r sum p; do
    chain=${INO[$p]} d=$(dirname "$p")
    while [[ $d != . ]]; do
      chain+=" ${INO[$d]}"
      d=$(dirname "$d")
    done
    chain+=" ${INO[.]}"
    hit=0
    for i in $chain; do [[ $affected == *" $i "* ]] && hit=1; done
    ((hit)) && continue
    intact=$((intact + 1))
    got=$(sha256sum <"$M/$p" 2>&1 | cut -d' ' -f1)
    assert_eq "$damage: intact file $p reads back" "$sum" "$got"
  done <"$WORK/corpus.sums"
  check "$damage: some files were intact ($intact)" test "$intact" -gt 0
  if [[ $damage == flip-* ]]; then
    # Only chunk 2 was damaged: the rest of the file is as written.
    check "$damage: damaged file reads without error" sh -c "cat '$M/d/big.bin' >/dev/null"
    assert_eq "$damage: damaged file keeps its size" 300000 "$(stat -c %s "$M/d/big.bin")"
    check "$damage: chunks 0-1 of the damaged file intact" \
      cmp -n $((2 * CHUNK)) "$SRC/d/big.bin" "$M/d/big.bin"
    check "$damage: chunks 3-4 of the damaged file intact" \
      cmp -i $((3 * CHUNK)) "$SRC/d/big.bin" "$M/d/big.bin"
  fi
  check "$damage: the repaired mount takes writes" sh -c "echo new >'$M/new.txt' && test \"\$(cat '$M/new.txt')\" = new"
  unmount || die "unmount failed"
  expect_rc "$damage: still clean after use" 0 check "$STORE"
done

log "## file-system damage (valid records the daemon would never write)"
# fs_case KIND NAMED GONE ARGS...: damage a fresh copy of the corpus tree with
# `store_damage.py fs STORE KIND ARGS`; check must name NAMED; after the repair every file
# but GONE (a path relative to the root, or -) must read back byte-exact.
fs_case() {
  local kind=$1 named=$2 gone=$3 sum p
  shift 3
  log "## $kind"
  check "$kind: damage" "${DAMAGE[@]}" fs "$STORE" "$kind" "$@" || return 1
  expect_rc "$kind: check finds the damage" 1 check "$STORE"
  contains "$kind: check names it" "$named" "$OUT"
  expect_rc "$kind: check --repair" 1 check --repair "$STORE"
  contains "$kind: --repair fixes it" "repaired: the store now checks clean" "$OUT"
  expect_rc "$kind: check after the repair exits 0" 0 check "$STORE"
  mount_kvfs || { fail "$kind: repaired store does not mount"; return 1; }
  while read -r sum p; do
    [[ $p == "./$gone" ]] && continue
    assert_eq "$kind: $p reads back" "$sum" "$(sha256sum <"$M/$p" 2>&1 | cut -d' ' -f1)"
  done <"$WORK/corpus.sums"
  return 0
}
# fs_store: a fresh store with the corpus tree; sets ino_<name> for its files.
fs_store() {
  STORE=$WORK/fs-$1
  mount_kvfs || die "mount of a new store failed"
  cp -a "$SRC/." "$M/"
  ino_top=$(stat -c %i "$M/top.txt")
  ino_a=$(stat -c %i "$M/d/a.txt")
  ino_d=$(stat -c %i "$M/d")
  ino_big=$(stat -c %i "$M/d/big.bin")
  ino_other=$(stat -c %i "$M/other.bin")
  unmount || die "unmount failed"
}
fs_store dangling
if fs_case dangling-entry "/top.txt" top.txt "$ino_top"; then
  check "dangling-entry: the entry is gone" test ! -e "$M/top.txt"
  unmount
fi
fs_store nlink
if fs_case nlink "/d/a.txt" - "$ino_a" 2; then
  assert_eq "nlink: link count corrected" 1 "$(stat -c %h "$M/d/a.txt")"
  unmount
fi
fs_store orphan
if fs_case orphan-inode "inode $ino_other" other.bin 1 other.bin; then
  check "orphan-inode: it is in /lost+found as #<ino>" cmp "$SRC/other.bin" "$M/lost+found/#$ino_other"
  unmount
fi
fs_store chunks
if fs_case orphan-chunks "inode $ino_big" d/big.bin "$ino_d" big.bin "$ino_big"; then
  check "orphan-chunks: the file is gone" test ! -e "$M/d/big.bin"
  unmount
fi
fs_store past-eof
if fs_case chunk-past-eof "/d/big.bin" - "$ino_big" 9; then
  assert_eq "chunk-past-eof: size unchanged" 300000 "$(stat -c %s "$M/d/big.bin")"
  unmount
fi
fs_store history
if fs_case broken-history "/d/a.txt" - "$ino_a"; then
  assert_eq "broken-history: the file's own version is listed" 1 "$(ls "$M/.kvfs/history/d/a.txt" | wc -l)"
  unmount
fi

# =============================================================================================
log "# 2. backup and restore of a full-featured tree"
STORE=$WORK/rich
mount_kvfs || die "mount of a new store failed"
T=$M/t
mkdir -p "$T/dir/sub" "$T/empty" "$T/links"
random_file "$T/dir/big.bin" $((3 * 1024 * 1024 + 17))
random_file "$T/dir/sub/mid.bin" 70000
printf 'small\n' >"$T/small.txt"
ln "$T/small.txt" "$T/links/hard1"
ln "$T/small.txt" "$T/dir/hard2"
ln "$T/dir/sub/mid.bin" "$T/links/mid-hard"
ln -s ../small.txt "$T/links/sym"
ln -s /nowhere/at/all "$T/links/dangling"
ln -s dir/sub "$T/dirlink"
setfattr -n user.kind -v text "$T/small.txt"
setfattr -n user.bin -v 0x00ff10 "$T/dir/big.bin"
setfattr -n user.dir -v yes "$T/dir"
setfattr -n user.empty "$T/empty"
dd if=/dev/urandom of="$T/sparse" bs=4096 count=3 seek=1500 status=none
truncate -s 8M "$T/sparse"
for v in 1 2 3 4; do
  random_file "$WORK/ver.$v" $((v * 40000))
  cp "$WORK/ver.$v" "$T/versioned.bin"
done
for v in one two three; do printf '%s\n' "$v" >"$T/notes.txt"; done
chmod 640 "$T/small.txt"
chmod 2750 "$T/dir/sub"
chown 1234:5678 "$T/dir/sub/mid.bin"
chown -h 4321:8765 "$T/links/sym"
printf 'to be deleted\n' >"$T/deleted.txt"
mkdir -p "$T/gone/inner"
random_file "$T/gone/inner/data" 9000
touch -d '2001-02-03 04:05:06.123456789' "$T/small.txt"
touch -d '1999-12-31 23:59:59' "$T/dir/sub"
check "snapshot s1" mkdir "$M/.kvfs/snapshots/s1"
printf 'after the snapshot\n' >>"$T/notes.txt"
rm "$T/deleted.txt"
rm -rf "$T/gone"
assert_eq "two trash entries" 2 "$(ls "$M/.kvfs/trash" | wc -l)"
unmount || die "unmount failed"
check "backup of the rich tree" "$KVFSCK" --quiet backup "$STORE" "$WORK/rich.bkp"
expect_rc "restore into a new directory" 0 restore "$WORK/rich.bkp" "$WORK/rich-restored"
contains "restore says what it did" "restored" "$OUT"
expect_rc "the restored store checks clean" 0 check "$WORK/rich-restored"
mount_kvfs || die "remount of the source failed"
mount_second "$WORK/rich-restored" || die "mount of the restored store failed"
check "diff -r of the trees" diff -r --no-dereference "$M" "$MNT2"
check "diff -r of snapshot s1" diff -r --no-dereference "$M/.kvfs/snapshots/s1" "$MNT2/.kvfs/snapshots/s1"
assert_same_file "names, modes, owners, sizes, times, links, inodes, xattrs" \
  <(full_state "$M") <(full_state "$MNT2")
assert_same_file "snapshot s1: the same in every respect" \
  <(full_state "$M/.kvfs/snapshots/s1") <(full_state "$MNT2/.kvfs/snapshots/s1")
assert_same_file "trash listing" <(ls "$M/.kvfs/trash") <(ls "$MNT2/.kvfs/trash")
for e in "$M/.kvfs/trash"/*; do
  e=$(basename "$e")
  check "trash entry $e" diff -r --no-dereference "$M/.kvfs/trash/$e" "$MNT2/.kvfs/trash/$e"
done
history_state "$M" >"$WORK/rich.history"
assert_same_file "every version of every file (size, sha256)" "$WORK/rich.history" <(history_state "$MNT2")
assert_eq "versioned.bin has its 4 versions" 4 "$(ls "$MNT2/.kvfs/history/t/versioned.bin" | wc -l)"
for v in 1 2 3 4; do
  check "restored version $v byte-exact" cmp "$WORK/ver.$v" \
    "$MNT2/.kvfs/history/t/versioned.bin/$(ls "$MNT2/.kvfs/history/t/versioned.bin" | sed -n "${v}p")"
done
assert_eq "hard link identity" "$(stat -c %i "$MNT2/t/small.txt")" "$(stat -c %i "$MNT2/t/links/hard1")"
assert_eq "nlink of a triple link" 3 "$(stat -c %h "$MNT2/t/small.txt")"
check "the restored store takes writes" sh -c "echo x >'$MNT2/t/restored-new' && rm '$MNT2/t/restored-new'"
unmount_second
unmount || die "unmount failed"

# =============================================================================================
log "# 3. backup while a writer is busy"
STORE=$WORK/busy
mount_kvfs || die "mount of a new store failed"
# The writer replaces f00..f15 in turn, each by writing a temporary file and renaming it over
# (so that every name always holds one complete write): write i has the content "%08d" % i
# repeated to size(i) bytes and goes to f<i % 16>.
WRITER=$(cat <<'EOF'
import os, sys
d, stop = sys.argv[1], sys.argv[2]
i = 0
while not os.path.exists(stop):
    i += 1
    size = (i * 7919) % 100000 + 8
    data = (b"%08d" % i) * (size // 8 + 1)
    tmp = os.path.join(d, "tmp%02d" % (i % 16))
    with open(tmp, "wb") as f:
        f.write(data[:size])
    os.rename(tmp, os.path.join(d, "f%02d" % (i % 16)))
with open(stop + ".last", "w") as f:
    f.write("%d\n" % i)
EOF
)
# verify.py MOUNT LAST: every f<k> and every version in its history (its first 5 and last 40:
# the history of a file replaced by rename is long) is one complete write.
cat >"$WORK/verify.py" <<'EOF'
import os, sys
d, last = sys.argv[1], int(sys.argv[2])
bad = files = versions = 0
def complete(data, k):
    i = int(data[:8]) if data[:8].isdigit() else -1
    size = (i * 7919) % 100000 + 8
    return 0 < i <= last and i % 16 == k and data == ((b"%08d" % i) * (size // 8 + 1))[:size]
for n in sorted(n for n in os.listdir(d) if n.startswith("f")):
    k = int(n[1:])
    files += 1
    data = open(os.path.join(d, n), "rb").read()
    if not complete(data, k):
        print("%s: not one complete write (%d bytes, starts %r)" % (n, len(data), data[:16]))
        bad += 1
    h = os.path.join(d, ".kvfs", "history", n)
    listed = sorted(os.listdir(h))
    for v in listed[:5] + listed[5:][-40:]:
        versions += 1
        data = open(os.path.join(h, v), "rb").read()
        if not complete(data, k):
            print("%s version %s: not one complete write (%d bytes, starts %r)" % (n, v, len(data), data[:16]))
            bad += 1
print("%d files, %d versions, %d bad" % (files, versions, bad))
sys.exit(1 if bad or files == 0 else 0)
EOF
bg python3 -c "$WRITER" "$M" "$WORK/writer.stop"
sleep 1.5
check "backup 1 while writing" "$KVFSCK" --quiet backup "$STORE" "$WORK/busy1.bkp"
sleep 2.5
check "backup 2 while writing" "$KVFSCK" --quiet backup "$STORE" "$WORK/busy2.bkp"
check "incremental backup 3 while writing" \
  "$KVFSCK" --quiet backup "$STORE" "$WORK/busy3.bkp" --incremental "$WORK/busy2.bkp"
expect_rc "check (read-only) of the mounted store while it is written" 0 check "$STORE"
touch "$WORK/writer.stop"
for ((i = 0; i < 100; i++)); do [[ -e $WORK/writer.stop.last ]] && break; sleep 0.1; done
last=$(cat "$WORK/writer.stop.last" 2>/dev/null || echo 0)
log "    the writer made $last writes"
check "the writer made writes" test "$last" -gt 16
check "the live tree: each file one complete write" python3 "$WORK/verify.py" "$M" "$last"
unmount || die "unmount failed"
for n in 1 2 3; do
  expect_rc "restore backup $n taken while writing" 0 restore "$WORK/busy$n.bkp" "$WORK/busy$n"
  expect_rc "restored store $n checks clean" 0 check "$WORK/busy$n"
  mount_second "$WORK/busy$n" || { fail "restored store $n does not mount"; continue; }
  check "restored store $n: every file is one complete write" python3 "$WORK/verify.py" "$MNT2" "$last"
  check "restored store $n: has files" test -e "$MNT2/f01"
  unmount_second
done

# =============================================================================================
log "# 4. damaged archives are refused; incremental backups"
A=$WORK/rich.bkp
size=$(stat -c %s "$A")
mkdir -p "$WORK/bad"
mkdir "$WORK/existing"
printf 'keep me\n' >"$WORK/existing/file"
existing_state() { (cd "$WORK/existing" && find . -printf '%p %s %T@\n' | sort && cat file); }
existing_state >"$WORK/existing.state"
bad_cases=()
for n in 1 2 3 4; do
  cut=$(python3 -c "import random; print(random.randrange(1, $size))")
  head -c "$cut" "$A" >"$WORK/bad/truncated-$cut"
  bad_cases+=("truncated-$cut")
done
head -c 10 "$A" >"$WORK/bad/truncated-10"
bad_cases+=(truncated-10)
head -c $((size - 1)) "$A" >"$WORK/bad/truncated-last-byte"
bad_cases+=(truncated-last-byte)
cp "$A" "$WORK/bad/appended"
printf 'x' >>"$WORK/bad/appended"
bad_cases+=(appended)
for n in 1 2 3; do
  off=$(python3 -c "import random; print(random.randrange(0, $size))")
  cp "$A" "$WORK/bad/flip-$off"
  "${DAMAGE[@]}" flip "$WORK/bad/flip-$off" "$off" $((n + 2))
  bad_cases+=("flip-$off")
done
cp "$A" "$WORK/bad/magic"
printf 'X' | dd of="$WORK/bad/magic" bs=1 seek=0 conv=notrunc status=none
bad_cases+=(magic)
cp "$A" "$WORK/bad/newer-format"
"${DAMAGE[@]}" set-u32 "$WORK/bad/newer-format" 8 2
bad_cases+=(newer-format)
: >"$WORK/bad/empty"
bad_cases+=(empty)
for c in "${bad_cases[@]}"; do
  expect_error "archive $c: refused" "" restore "$WORK/bad/$c" "$WORK/new-target"
  check "archive $c: new target still absent" test ! -e "$WORK/new-target"
  check "archive $c: no temporary directory left" test ! -e "$WORK/new-target.restore-tmp"
  expect_error "archive $c: refused with --force over an existing directory" "" \
    restore --force "$WORK/bad/$c" "$WORK/existing"
  assert_same_file "archive $c: existing directory unchanged" "$WORK/existing.state" <(existing_state)
  check "archive $c: no temporary directory left (existing)" test ! -e "$WORK/existing.restore-tmp"
done
expect_error "newer format: the message says so" "newer" restore "$WORK/bad/newer-format" "$WORK/new-target"
expect_error "a missing archive" "" restore "$WORK/no-such.bkp" "$WORK/new-target"
expect_error "restore refuses a non-empty directory without --force" "" restore "$A" "$WORK/existing"
assert_same_file "refused restore: existing directory unchanged" "$WORK/existing.state" <(existing_state)
expect_rc "restore --force replaces a non-empty directory" 0 restore --force "$A" "$WORK/existing"
check "the replaced directory is the store" test -e "$WORK/existing/SUPERBLOCK" -a ! -e "$WORK/existing/file"
expect_rc "... and checks clean" 0 check "$WORK/existing"
expect_error "backup of a directory that is no store" "" backup "$WORK/bad" "$WORK/x.bkp"
check "... and writes no archive" test ! -e "$WORK/x.bkp"

log "## incremental"
STORE=$WORK/rich
mount_kvfs || die "mount failed"
printf 'added later\n' >"$M/t/later.txt"
printf 'four\n' >"$M/t/notes.txt"
setfattr -n user.later -v 1 "$M/t/later.txt"
rm "$M/t/links/hard1"
unmount || die "unmount failed"
expect_rc "incremental backup over the full one" 0 backup "$STORE" "$WORK/rich-inc.bkp" --incremental "$A"
full_size=$(stat -c %s "$A")
inc_size=$(stat -c %s "$WORK/rich-inc.bkp")
log "    full archive $full_size bytes, incremental $inc_size bytes"
check "the incremental archive is smaller than half the full one" test "$inc_size" -lt $((full_size / 2))
expect_rc "restore of the incremental archive" 0 restore "$WORK/rich-inc.bkp" "$WORK/rich-inc"
expect_rc "the restored store checks clean" 0 check "$WORK/rich-inc"
mount_kvfs || die "mount failed"
mount_second "$WORK/rich-inc" || die "mount of the incremental restore failed"
check "diff -r: incremental restore equals the mount" diff -r --no-dereference "$M" "$MNT2"
assert_same_file "incremental restore: the same in every respect" <(full_state "$M") <(full_state "$MNT2")
assert_same_file "incremental restore: every version" <(history_state "$M") <(history_state "$MNT2")
check "incremental restore: snapshot s1" diff -r --no-dereference "$M/.kvfs/snapshots/s1" "$MNT2/.kvfs/snapshots/s1"
unmount_second
unmount || die "unmount failed"
mv "$A" "$A.moved"
expect_error "incremental restore without its base archive" "" restore "$WORK/rich-inc.bkp" "$WORK/new-target"
check "... leaves no target" test ! -e "$WORK/new-target" -a ! -e "$WORK/new-target.restore-tmp"
mv "$A.moved" "$A"

# =============================================================================================
log "# 5. compact reclaims space; kill -9 during compaction loses nothing"
STORE=$WORK/big
mount_kvfs || die "mount of a new store failed"
for i in $(seq 1 16); do random_file "$M/f$i" $((4 * 1024 * 1024)); done
for i in $(seq 1 2 16); do rm "$M/f$i"; done
deleted=$((8 * 4 * 1024 * 1024))
tree_sums "$M" >"$WORK/big.sums"
unmount || die "unmount failed"
before=$(store_bytes "$STORE")
expect_error "compact refuses an unknown duration" "" compact "$STORE" --keep-trash 5x
# How long does it take? (On a copy.)
cp -a "$STORE" "$WORK/big-copy"
t0=$(date +%s%N)
expect_rc "compact of a copy" 0 compact "$WORK/big-copy" --keep-versions 1 --keep-trash 0
ms=$((($(date +%s%N) - t0) / 1000000))
log "    compaction takes ${ms} ms"
rm -rf "$WORK/big-copy"
# Each round kills a compaction of a fresh copy of the store at a random point, until three
# were killed midway (a compaction can run faster than the timed one and finish first).
killed=0 rounds=0
for round in 1 2 3 4 5 6 7 8; do
  ((killed < 3)) || break
  rounds=$round
  R=$WORK/big-round
  rm -rf "$R"
  cp -a "$STORE" "$R"
  delay=$(python3 -c "import random; print('%.3f' % random.uniform(0.02, max(0.05, 0.6 * $ms / 1000.0)))")
  "$KVFSCK" --quiet compact "$R" --keep-versions 1 --keep-trash 0 >/dev/null 2>&1 &
  pid=$!
  sleep "$delay"
  kill -9 "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  if (($? == 137)); then
    killed=$((killed + 1))
    what="killed after ${delay}s"
  else
    what="done before the kill at ${delay}s"
  fi
  log "    round $round: $what ($before -> $(store_bytes "$R") bytes)"
  expect_rc "round $round: check after kill -9 during compaction" 0 check "$R"
  STORE=$R
  if mount_kvfs; then
    assert_same_file "round $round: every remaining file byte-exact" "$WORK/big.sums" <(tree_sums "$M")
    unmount || die "unmount failed"
  else
    fail "round $round: store does not mount"
  fi
  STORE=$WORK/big
done
check "kill -9 interrupted compactions ($killed in $rounds rounds)" test "$killed" -ge 2
expect_rc "an interrupted compaction can be run again" 0 compact "$R" --keep-versions 1 --keep-trash 0
expect_rc "... and the store checks clean" 0 check "$R"
check "... and reclaims the space" test $((before - $(store_bytes "$R"))) -ge $((deleted * 9 / 10))
rm -rf "$R"
expect_rc "compact --keep-versions 1 --keep-trash 0" 0 compact "$STORE" --keep-versions 1 --keep-trash 0
after=$(store_bytes "$STORE")
fsck compact "$STORE"
contains "compact prints what it did" "compacted $STORE: " "$OUT"
log "    store: $before -> $after bytes, $deleted bytes deleted"
check "the store shrank by at least 90% of the deleted bytes" test $((before - after)) -ge $((deleted * 9 / 10))
expect_rc "check after compaction" 0 check "$STORE"
mount_kvfs || die "mount after compaction failed"
assert_same_file "remaining files byte-exact after compaction" "$WORK/big.sums" <(tree_sums "$M")
assert_eq "the trash is empty (--keep-trash 0)" "" "$(ls "$M/.kvfs/trash")"
expect_error "compact refuses a mounted store" "store is mounted by pid $KVFS_PID" compact "$STORE"
unmount || die "unmount failed"

# =============================================================================================
log "# 6. reshard 16 -> 4 -> 64 -> 64 pages"
STORE=$WORK/rich
mount_kvfs || die "mount failed"
full_state "$M" >"$WORK/rich.state"
history_state "$M" >"$WORK/rich.history"
full_state "$M/.kvfs/snapshots/s1" >"$WORK/rich.s1"
unmount || die "unmount failed"
fsck history "$STORE" /t/versioned.bin
hist_before=$OUT
assert_eq "the store starts with 16 pages" 16 "$(page_count "$STORE")"
for pages in 4 64 same; do
  if [ "$pages" = same ]; then  # without --pages the page count stays
    pages=64
    expect_rc "reshard keeping the page count" 0 reshard "$STORE"
    check "...says so" grep -q "into 64 pages" <<<"$OUT"
  else
    expect_rc "reshard to $pages pages" 0 reshard "$STORE" --pages "$pages"
  fi
  assert_eq "$pages page files" "$pages" "$(page_count "$STORE")"
  check "no reshard leftovers" test ! -e "$STORE.reshard-tmp"
  expect_rc "check after reshard to $pages" 0 check "$STORE"
  fsck history "$STORE" /t/versioned.bin
  assert_eq "kvfsck history unchanged after reshard to $pages" "$hist_before" "$OUT"
  mount_kvfs || die "mount after reshard failed"
  assert_same_file "every file, name and attribute after reshard to $pages" "$WORK/rich.state" <(full_state "$M")
  assert_same_file "every version after reshard to $pages" "$WORK/rich.history" <(history_state "$M")
  assert_same_file "snapshot s1 after reshard to $pages" "$WORK/rich.s1" <(full_state "$M/.kvfs/snapshots/s1")
  unmount || die "unmount failed"
done
mount_kvfs || die "mount failed"
expect_error "reshard refuses a mounted store" "store is mounted by pid $KVFS_PID" reshard "$STORE" --pages 8
check "...and leaves it alone" test "$(page_count "$STORE")" = 64
unmount || die "unmount failed"

# =============================================================================================
log "# 7. history, revert, undelete"
STORE=$WORK/hist
mount_kvfs || die "mount of a new store failed"
for v in 1 2 3; do
  random_file "$WORK/h.$v" $((v * 30000 + v))
  cp "$WORK/h.$v" "$M/h.bin"
done
mkdir -p "$M/tree/sub"
random_file "$M/tree/sub/a" 100000
printf 'b\n' >"$M/tree/b"
printf 'gone\n' >"$M/gone.txt"
tree_sums "$M/tree" >"$WORK/tree.sums"
ls "$M/.kvfs/history/h.bin" | cut -c1-4 | sed 's/^0*//' >"$WORK/h.numbers"
rm "$M/gone.txt"
rm -rf "$M/tree"
expect_error "history refuses a mounted store" "store is mounted by pid $KVFS_PID" history "$STORE" /h.bin
expect_error "revert refuses a mounted store" "store is mounted by pid $KVFS_PID" revert "$STORE" /h.bin 1
expect_error "undelete refuses a mounted store" "store is mounted by pid $KVFS_PID" undelete "$STORE" /gone.txt
expect_error "check --repair refuses a mounted store" "store is mounted by pid $KVFS_PID" check --repair "$STORE"
expect_rc "check of a mounted store is allowed" 0 check "$STORE"
expect_rc "stats of a mounted store is allowed" 0 --json stats "$STORE"
unmount || die "unmount failed"

expect_rc "kvfsck history" 0 history "$STORE" /h.bin
assert_eq "three versions listed" 3 "$(printf '%s\n' "$OUT" | grep -c ' bytes$')"
check "lines are NUMBER  DATE TIME UTC  SIZE bytes" python3 -c '
import re, sys
for l in sys.argv[1].splitlines():
    assert re.fullmatch(r" *\d+  \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC +\d+ bytes", l), l' "$OUT"
assert_eq "sizes as written" "30001 60002 90003" "$(printf '%s\n' "$OUT" | awk '{print $(NF-1)}' | xargs)"
fsck --json history "$STORE" /h.bin
assert_eq "--json: version numbers as in .kvfs/history" "$(xargs <"$WORK/h.numbers")" \
  "$(json '" ".join(str(v["version"]) for v in j["versions"])')"
assert_eq "--json: sizes" "30001 60002 90003" "$(json '" ".join(str(v["size"]) for v in j["versions"])')"
check "--json: times ascending and recent" python3 -c '
import json, sys, time
t = [v["time_ns"] for v in json.loads(sys.argv[1])["versions"]]
assert t == sorted(t) and abs(t[-1] / 1e9 - time.time()) < 600, t' "$OUT"
first=$(json 'j["versions"][0]["version"]')

expect_rc "revert to version $first" 0 revert "$STORE" /h.bin "$first"
expect_rc "history after revert" 0 history "$STORE" /h.bin
assert_eq "revert adds one version" 4 "$(printf '%s\n' "$OUT" | grep -c ' bytes$')"
expect_error "revert to a version that does not exist" "" revert "$STORE" /h.bin 999
expect_error "history of an unknown path" "" history "$STORE" /no/such/file
expect_error "revert of an unknown path" "" revert "$STORE" /no-such-file 1
expect_error "undelete of a path never deleted" "" undelete "$STORE" /never-was
expect_error "a store that does not exist" "" check "$WORK/no-such-store"

expect_rc "undelete a file" 0 undelete "$STORE" /gone.txt
expect_rc "undelete a tree" 0 undelete "$STORE" /tree
expect_error "a second undelete finds nothing" "" undelete "$STORE" /gone.txt
expect_rc "check after revert and undelete" 0 check "$STORE"
mount_kvfs || die "mount failed"
check "reverted content is version $first" cmp "$WORK/h.1" "$M/h.bin"
assert_eq "history lists 4 versions" 4 "$(ls "$M/.kvfs/history/h.bin" | wc -l)"
for v in 1 2 3; do
  check "old version $v unchanged" cmp "$WORK/h.$v" \
    "$M/.kvfs/history/h.bin/$(ls "$M/.kvfs/history/h.bin" | sed -n "${v}p")"
done
check "the newest version is the reverted content" cmp "$WORK/h.1" \
  "$M/.kvfs/history/h.bin/$(ls "$M/.kvfs/history/h.bin" | sed -n 4p)"
assert_eq "undeleted file" "gone" "$(cat "$M/gone.txt")"
assert_same_file "undeleted tree" "$WORK/tree.sums" <(tree_sums "$M/tree")
assert_eq "trash empty" "" "$(ls "$M/.kvfs/trash")"
rm "$M/gone.txt"
printf 'new gone\n' >"$M/gone.txt"
unmount || die "unmount failed"
expect_error "undelete does not replace an existing file" "exists" undelete "$STORE" /gone.txt
expect_rc "undelete --as" 0 undelete "$STORE" /gone.txt --as /restored.txt
mount_kvfs || die "mount failed"
assert_eq "restored under the new name" "gone" "$(cat "$M/restored.txt")"
assert_eq "existing file untouched" "new gone" "$(cat "$M/gone.txt")"
unmount || die "unmount failed"
fsck --json stats "$STORE"
assert_eq "stats --json counts files and directories" "0 5 3" \
  "$RC $(json 'j["files"]') $(json 'j["directories"]')"
assert_eq "stats --json: one entry per page" 16 "$(json 'len(j["pages"])')"
assert_eq "stats --json: a new store has the current layout" kvfs-inode-v2-stripe16-meta1of4 \
  "$(json 'j["sharder"]')"
fsck stats "$STORE"
check "stats names the layout" grep -qx "layout: kvfs-inode-v2-stripe16-meta1of4" <<<"$OUT"

finish

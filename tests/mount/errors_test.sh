#!/bin/bash
# tests/mount/errors_test.sh: bad input and faults through a real mount: ENOENT, EEXIST,
# ENOTEMPTY, ENOTDIR, EISDIR, ENAMETOOLONG, EINVAL/ELOOP, EACCES/EPERM for another user under
# default_permissions, ENOSPC when the store's own disk fills (then recovery), and the daemon's
# one-line refusals (store in use, unusable mount point or store).
source "$(dirname "$0")/lib.sh" "$@"

M=$MNT
PY=$(command -v /usr/bin/python3 || command -v python3)
KVFS_OPTS=(-o allow_other)
mount_kvfs || die "mount failed"
chmod 755 "$M"

log "# ENOENT, EEXIST, ENOTEMPTY, ENOTDIR, EISDIR"
mkdir "$M/dir"
echo data >"$M/dir/file"
echo data >"$M/file"
expect_errno cat "$M/missing" ENOENT
expect_errno ls "$M/missing" ENOENT
expect_errno rm "$M/missing" ENOENT
expect_errno stat "$M/dir/missing" ENOENT
expect_errno mkdir "$M/missing/sub" ENOENT
expect_errno mv "$M/missing" "$M/other" ENOENT
expect_errno touch "$M/missing/file" ENOENT
rm "$M/dir/file"
expect_errno cat "$M/dir/file" ENOENT
echo data >"$M/dir/file"
expect_errno mkdir "$M/dir" EEXIST
expect_errno mkdir "$M/file" EEXIST
expect_errno ln "$M/file" "$M/dir/file" EEXIST
expect_errno ln -s target "$M/file" EEXIST
expect_errno "$PY" -c "import os; os.open('$M/file', os.O_CREAT | os.O_EXCL | os.O_WRONLY)" EEXIST
expect_errno "$PY" -c "import os; os.mkfifo('$M/dir')" EEXIST
expect_errno rmdir "$M/dir" ENOTEMPTY
mkdir -p "$M/full/sub" "$M/empty"
expect_errno "$PY" -c "import os; os.rename('$M/empty', '$M/full')" ENOTEMPTY
expect_errno cat "$M/file/x" ENOTDIR
expect_errno mkdir "$M/file/x" ENOTDIR
expect_errno touch "$M/file/x" ENOTDIR
expect_errno ls "$M/file/" ENOTDIR
expect_errno rmdir "$M/file" ENOTDIR
expect_errno "$PY" -c "import os; os.rename('$M/empty', '$M/file')" ENOTDIR
expect_errno bash -c "echo x >'$M/dir'" EISDIR
expect_errno cat "$M/dir" EISDIR
expect_errno "$PY" -c "import os; os.unlink('$M/dir')" EISDIR
expect_errno "$PY" -c "import os; os.rename('$M/file', '$M/dir')" EISDIR
expect_errno "$PY" -c "import os; os.rename('$M/full', '$M/full/sub/into-myself')" EINVAL
ln -s loop1 "$M/loop2"
ln -s loop2 "$M/loop1"
expect_errno cat "$M/loop1" ELOOP
check "nothing changed by the failed calls" test "$(cat "$M/file")" = data -a -d "$M/dir" -a -d "$M/full/sub" -a -f "$M/dir/file"

log "# renameat2 flags"
RENAMEAT2=("$PY" "$HERE/renameat2.py")
echo a >"$M/xa"
echo b >"$M/xb"
expect_errno "${RENAMEAT2[@]}" "$M/xa" "$M/xb" noreplace EEXIST
check "RENAME_NOREPLACE to a new name" "${RENAMEAT2[@]}" "$M/xa" "$M/xc" noreplace
check "RENAME_EXCHANGE" "${RENAMEAT2[@]}" "$M/xc" "$M/xb" exchange
assert_eq "exchanged contents" "b a" "$(cat "$M/xc") $(cat "$M/xb")"
mkdir "$M/xdir"
echo inside >"$M/xdir/f"
check "RENAME_EXCHANGE of a file and a directory" "${RENAMEAT2[@]}" "$M/xc" "$M/xdir" exchange
assert_eq "exchanged file and directory" "inside b" "$(cat "$M/xc/f") $(cat "$M/xdir")"
expect_errno "${RENAMEAT2[@]}" "$M/xb" "$M/nothing" exchange ENOENT

log "# ENAMETOOLONG"
n255=$(printf 'a%.0s' $(seq 1 255))
n256=${n255}b
u255=$(printf '\xe2\x82\xac%.0s' $(seq 1 85))   # 85 x U+20AC: 255 bytes
check "255-byte name: create" touch "$M/$n255"
check "255-byte name: write and read" bash -c "echo ok >'$M/$n255' && test \"\$(cat '$M/$n255')\" = ok"
assert_eq "255-byte name: listed" "$n255" "$(ls "$M" | grep "^a*\$")"
check "255-byte name: mkdir" mkdir "$M/d${n255:1}"
check "255-byte name: symlink" ln -s "$n255" "$M/s${n255:1}"
check "255-byte name: rename" mv "$M/$n255" "$M/r${n255:1}"
check "255-byte UTF-8 name (85 three-byte characters)" touch "$M/$u255"
expect_errno touch "$M/$n256" ENAMETOOLONG
expect_errno mkdir "$M/$n256" ENAMETOOLONG
expect_errno ln -s x "$M/$n256" ENAMETOOLONG
expect_errno ln "$M/file" "$M/$n256" ENAMETOOLONG
expect_errno mv "$M/file" "$M/$n256" ENAMETOOLONG
expect_errno touch "$M/${u255}x" ENAMETOOLONG
expect_errno stat "$M/$n256" ENAMETOOLONG
expect_errno bash -c "echo > '$M/dir/$n256'" ENAMETOOLONG
check "file survives the failed rename" test -f "$M/file"

log "# EACCES and EPERM for another user (default_permissions, allow_other)"
NOBODY=(setpriv --reuid=65534 --regid=65534 --clear-groups)
echo secret >"$M/secret"
chmod 600 "$M/secret"
echo public >"$M/public"
chmod 644 "$M/public"
mkdir -m 700 "$M/private"
mkdir -m 755 "$M/nobodys"
chown 65534:65534 "$M/nobodys"
mkdir -m 1777 "$M/sticky"
echo root >"$M/sticky/rootfile"
assert_eq "other user reads a 0644 file (allow_other works)" public "$("${NOBODY[@]}" cat "$M/public" 2>&1)"
expect_errno "${NOBODY[@]}" cat "$M/secret" EACCES
expect_errno runuser -u nobody -- cat "$M/secret" EACCES
expect_errno "${NOBODY[@]}" bash -c "echo x >>'$M/public'" EACCES
expect_errno "${NOBODY[@]}" touch "$M/new-by-nobody" EACCES
expect_errno "${NOBODY[@]}" ls "$M/private" EACCES
expect_errno "${NOBODY[@]}" rm -f "$M/public" EACCES
expect_errno "${NOBODY[@]}" chmod 666 "$M/public" EPERM
expect_errno "${NOBODY[@]}" chown 65534 "$M/public" EPERM
expect_errno "${NOBODY[@]}" rm -f "$M/sticky/rootfile" EPERM
check "other user creates in its own directory" "${NOBODY[@]}" bash -c "echo mine >'$M/nobodys/f'"
assert_eq "new file belongs to that user" 65534:65534 "$(stat -c %u:%g "$M/nobodys/f")"
check "other user writes in a 1777 directory" "${NOBODY[@]}" touch "$M/sticky/nobodyfile"
assert_eq "secret unchanged" secret "$(cat "$M/secret")"
assert_eq "public unchanged" public "$(cat "$M/public")"

log "# setuid, setgid and capabilities dropped as Linux drops them (by kvfs: HANDLE_KILLPRIV_V2)"
mode_after() {  # mode_after NAME MODE CMD...: NAME made with MODE, CMD run, its mode printed
  local f=$M/$1
  echo x >"$f" && chmod "$2" "$f" || return 1
  shift 2
  "$@" "$f" >/dev/null 2>&1
  stat -c %a "$f"
}
append() { echo y >>"$1"; }
overwrite() { echo z >"$1"; }
export -f append overwrite
assert_eq "another user's write drops setuid" 777 "$(mode_after p1 4777 "${NOBODY[@]}" bash -c 'append "$0"')"
assert_eq "the written bytes are there" "$(printf 'x\ny')" "$(cat "$M/p1")"
assert_eq "...and setgid of a group-executable file" 777 "$(mode_after p2 2777 "${NOBODY[@]}" bash -c 'append "$0"')"
assert_eq "...and setgid when not in the group" 767 "$(mode_after p3 2767 "${NOBODY[@]}" bash -c 'append "$0"')"
assert_eq "another user's truncate drops setuid" 777 "$(mode_after p4 4777 "${NOBODY[@]}" truncate -s 0)"
assert_eq "another user's O_TRUNC open drops setuid" 777 "$(mode_after p5 4777 "${NOBODY[@]}" bash -c 'overwrite "$0"')"
assert_eq "root's write keeps setuid" 4755 "$(mode_after p6 4755 bash -c 'append "$0"')"
assert_eq "root's truncate keeps setuid and setgid" 6755 "$(mode_after p7 6755 truncate -s 0)"
assert_eq "chown drops setuid" 755 "$(mode_after p8 4755 chown 65534)"
assert_eq "chown keeps setgid without group execute" 2745 "$(mode_after p9 2745 chown 65534)"
assert_eq "chown drops setgid with group execute" 755 "$(mode_after p10 2755 chown 65534)"
echo x >"$M/p11"
chmod 666 "$M/p11"
setfattr -n security.capability -v 0x0100000200000000000000000000000000000000 "$M/p11"
"${NOBODY[@]}" bash -c "echo y >>'$M/p11'"
check "another user's write drops security.capability" \
  bash -c "! getfattr -n security.capability '$M/p11' >/dev/null 2>&1"

log "# a mount only root can enter: no default_permissions; access(2) answered by the daemon"
KVFS_OPTS=()
remount || die "remount without allow_other failed"
check "the root-only mount has no default_permissions" \
  bash -c "! findmnt -n -o OPTIONS '$M' | grep -q default_permissions"
printf '#!/bin/sh\necho ran\n' >"$M/script"
chmod 644 "$M/script"
check "test -x refuses a file without x bits" bash -c "! test -x '$M/script'"
expect_errno "$M/script" EACCES
chmod 700 "$M/script"
check "test -x allows a file with an x bit" test -x "$M/script"
assert_eq "root runs a 0700 script" ran "$("$M/script" 2>&1)"
chmod 000 "$M/secret"
check "root reads and writes a 0000 file" \
  bash -c "test -r '$M/secret' && test -w '$M/secret' && cat '$M/secret' >/dev/null"
mkdir -m 000 "$M/closed"
check "root enters a 0000 directory" bash -c "test -x '$M/closed' && cd '$M/closed'"
KVFS_OPTS=(-o allow_other)
remount || die "remount with allow_other failed"
check "allow_other brings default_permissions back" \
  bash -c "findmnt -n -o OPTIONS '$M' | grep -q default_permissions"

log "# the daemon refuses a store in use and unusable mount points"
mkdir "$WORK/mnt2"
EXTRA_MOUNTS+=("$WORK/mnt2")
# refuse DESC PATTERN KVFS-ARGS...: kvfs must exit non-zero (not hang) with one line naming PATTERN.
refuse() {
  local desc=$1 pattern=$2 out rc lines
  shift 2
  out=$(timeout 30 "$KVFS" "$@" 2>&1 </dev/null)
  rc=$?
  lines=$(printf '%s' "$out" | grep -c .)
  if ((rc != 0 && rc != 124)) && [[ $lines -eq 1 && $out == *"$pattern"* ]]; then
    pass "$desc: exit $rc: $out"
  else
    fail "$desc: expected a non-zero exit with one line containing '$pattern', got exit $rc and $lines lines: $(printf '%s' "$out" | head -c 300)"
  fi
  if is_mounted "$WORK/mnt2"; then
    fail "$desc: $WORK/mnt2 got mounted"
    fusermount3 -u -z "$WORK/mnt2"
  fi
}
refuse "second kvfs on the same store (-f)" "in use by pid $KVFS_PID" "$STORE" "$WORK/mnt2" -f
refuse "second kvfs on the same store (daemonizing)" "in use by pid $KVFS_PID" "$STORE" "$WORK/mnt2"
refuse "missing mount point" "$WORK/missing" "$WORK/store2" "$WORK/missing" -f
touch "$WORK/plainfile"
refuse "mount point is a regular file" "$WORK/plainfile" "$WORK/store3" "$WORK/plainfile" -f
refuse "store path through a regular file" "$WORK/plainfile/store" "$WORK/plainfile/store" "$WORK/mnt2" -f
# refuse_option DESC OPTION: a usage error (exit 2) whose first line names the option.
refuse_option() {
  local out rc
  out=$(timeout 30 "$KVFS" "$WORK/store4" "$WORK/mnt2" -f -o "$2" 2>&1 </dev/null)
  rc=$?
  if ((rc == 2)) && [[ $(head -n 1 <<<"$out") == "kvfs: bad option '$2'"* ]]; then
    pass "$1: $(head -n 1 <<<"$out")"
  else
    fail "$1: expected exit 2 and \"kvfs: bad option '$2'\", got exit $rc: $(head -c 300 <<<"$out")"
  fi
}
# 1e20 s overflowed the nanoseconds it becomes: the trash was silently turned off.
refuse_option "a retention past what nanoseconds count" trash_retention=1e20
refuse_option "a negative commit interval" commit_interval=-1
refuse_option "a write buffer that is not a size" write_buffer=lots
check "refused options created no store" test ! -e "$WORK/store4"
if is_mounted "$WORK/mnt2"; then fail "a refused option mounted $WORK/mnt2"; fi
check "the first mount still works" test "$(cat "$M/public")" = public
unmount

log "# ENOSPC: the store's own disk fills"
SMALL=$WORK/small
mkdir "$SMALL"
mount -t tmpfs -o size=64m tmpfs "$SMALL" || die "cannot mount a tmpfs"
EXTRA_MOUNTS+=("$SMALL")
STORE=$SMALL/store
KVFS_OPTS=()
random_file "$WORK/rand" $((100 * 1024 * 1024))
mount_kvfs || die "mount on the small disk failed"
mkdir "$M/fill"
written=0
err=
for ((i = 0; i < 100; i++)); do
  if ! err=$(dd if="$WORK/rand" of="$M/fill/f$i" bs=1M skip=$i count=1 conv=fsync status=none 2>&1); then
    break
  fi
  written=$((written + 1))
done
log "wrote $written MiB before the failure: $err"
check "the disk filled before 100 MiB" test "$written" -lt 100
check "the failing write reports ENOSPC ($err)" grep -q "$(errno_msg ENOSPC)" <<<"$err"
check "some files were written before ENOSPC" test "$written" -ge 8
verify_fill() {  # verify_fill WHEN FIRST: files FIRST..written-1 match their source MiB
  local bad=0 j
  for ((j = $2; j < written; j++)); do
    cmp -s -i $((j * 1048576)):0 -n 1048576 "$WORK/rand" "$M/fill/f$j" || { bad=$((bad + 1)); log "  f$j differs"; }
    [[ $(stat -c %s "$M/fill/f$j") == 1048576 ]] || { bad=$((bad + 1)); log "  f$j has the wrong size"; }
  done
  assert_eq "$1: files written before ENOSPC are intact" 0 "$bad"
}
verify_fill "while full" 0
check "listing works while full" ls -l "$M/fill"
check "remove the partial file" rm -f "$M/fill/f$written"
check "remove a file while full" rm "$M/fill/f0"
check "removed file is gone" test ! -e "$M/fill/f0"
unmount && pass "clean unmount of a full store"
if mount_kvfs; then pass "remount of a full store"; else die "the full store does not mount again"; fi
check "removed file still gone after remount" test ! -e "$M/fill/f0"
check "partial file still gone after remount" test ! -e "$M/fill/f$written"
verify_fill "after remount" 1
assert_eq "listing after remount" $((written - 1)) "$(ls "$M/fill" | wc -l)"
unmount
finish

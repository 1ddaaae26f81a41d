#!/bin/bash
# tests/mount/acl_test.sh: POSIX ACLs through a real mount (-o acl): setfacl/getfacl, the
# kernel enforcing them for another user, chmod and the mask, default ACLs inherited by new
# files and directories (and the umask ignored there), cp -a keeping ACLs, and the store
# keeping ACLs on after a remount without the option. Without -o acl, ACLs are refused.
source "$(dirname "$0")/lib.sh" "$@"

command -v setfacl >/dev/null || die "setfacl missing (scripts/install-deps.sh test installs acl)"
M=$MNT
NOBODY=(setpriv --reuid=65534 --regid=65534 --clear-groups)
STRANGER=(setpriv --reuid=4321 --regid=4321 --clear-groups)
KVFS_OPTS=(-o allow_other)

# acl PATH: the ACL entries of PATH on one line ("user::rw- user:nobody:r-- ...").
acl() { getfacl -cpE "$1" 2>&1 | grep -v '^$' | tr '\n' ' '; }

log "# without -o acl, ACLs are refused as on a file system without them"
mount_kvfs || die "mount failed"
echo x >"$M/plain"
expect_errno setfacl -m u:nobody:r "$M/plain" EOPNOTSUPP
assert_eq "no ACL xattr listed" "" "$(getfattr -d -m - "$M/plain" 2>&1)"
unmount

log "# access ACLs"
mount_kvfs -o acl || die "mount with -o acl failed"
chmod 755 "$M"
echo secret >"$M/f"
chmod 600 "$M/f"
expect_errno "${NOBODY[@]}" cat "$M/f" EACCES
check "setfacl -m u:nobody:r" setfacl -m u:nobody:r "$M/f"
assert_eq "getfacl" "user::rw- user:nobody:r-- group::--- mask::r-- other::--- " "$(acl "$M/f")"
assert_eq "ls -l shows the ACL and the mask as group bits" "-rw-r-----+" "$(ls -l "$M/f" | cut -d' ' -f1)"
assert_eq "nobody reads through its entry" secret "$("${NOBODY[@]}" cat "$M/f" 2>&1)"
expect_errno "${NOBODY[@]}" bash -c "echo x >>'$M/f'" EACCES
expect_errno "${STRANGER[@]}" cat "$M/f" EACCES
check "chmod 600 clears the mask" chmod 600 "$M/f"
assert_eq "getfacl after chmod" "user::rw- user:nobody:r-- group::--- mask::--- other::--- " "$(acl "$M/f")"
expect_errno "${NOBODY[@]}" cat "$M/f" EACCES
check "chmod 640 sets the mask again" chmod 640 "$M/f"
assert_eq "nobody reads again" secret "$("${NOBODY[@]}" cat "$M/f" 2>&1)"
check "setfacl -m g:4321:rw" setfacl -m g:4321:rw "$M/f"
check "group 4321 writes through its entry" "${STRANGER[@]}" bash -c "echo more >>'$M/f'"
check "setfacl -b removes the ACL" setfacl -b "$M/f"
assert_eq "mode after setfacl -b (the owning group's entry)" "-rw-------" "$(ls -l "$M/f" | cut -d' ' -f1)"
assert_eq "no ACL xattr left" "" "$(getfattr -m system.posix_acl -d "$M/f" 2>&1)"
expect_errno "${NOBODY[@]}" cat "$M/f" EACCES
check "a minimal ACL is only a mode" setfacl --set u::rw,g::r,o::r "$M/f"
assert_eq "mode from the minimal ACL" "-rw-r--r--" "$(ls -l "$M/f" | cut -d' ' -f1)"
assert_eq "and nothing stored" "" "$(getfattr -m system.posix_acl -d "$M/f" 2>&1)"

log "# a file's versions keep its ACL"
echo one >"$M/guarded"
chgrp 4321 "$M/guarded"
chmod 640 "$M/guarded"
setfacl -m g::-,u:nobody:r "$M/guarded"
echo two >"$M/guarded"
expect_errno "${STRANGER[@]}" cat "$M/guarded" EACCES
v2=$M/.kvfs/history/guarded/$(ls "$M/.kvfs/history/guarded" | sed -n 2p)
assert_eq "the version's ACL, read-only" "user::r-- user:nobody:r-- group::--- mask::r-- other::--- " \
  "$(acl "$v2")"
assert_eq "root reads the version" two "$(cat "$v2" 2>&1)"
expect_errno "${STRANGER[@]}" cat "$v2" EACCES
assert_eq "nobody lists the history through its entry" 2 \
  "$("${NOBODY[@]}" ls "$M/.kvfs/history/guarded" 2>&1 | wc -l)"
assert_eq "and reads the version" two "$("${NOBODY[@]}" cat "$v2" 2>&1)"
expect_errno "${STRANGER[@]}" ls "$M/.kvfs/history/guarded" EACCES

log "# setgid goes when the setter is outside the file's group"
echo x >"$M/sgid"
chown 65534:0 "$M/sgid"
chmod 2770 "$M/sgid"
check "the owner (not in group 0) sets an ACL" "${NOBODY[@]}" setfacl -m u:1234:r "$M/sgid"
assert_eq "setgid cleared" "-rwxrwx---+" "$(ls -l "$M/sgid" | cut -d' ' -f1)"
chmod 2770 "$M/sgid"
check "root sets an ACL" setfacl -m u:1235:r "$M/sgid"
assert_eq "setgid kept" "-rwxrws---+" "$(ls -l "$M/sgid" | cut -d' ' -f1)"

log "# default ACLs"
mkdir "$M/shared"
check "setfacl -d" setfacl -d -m u:nobody:rwx "$M/shared"
(
  umask 077
  echo made >"$M/shared/file"
  mkdir "$M/shared/sub"
  mkfifo "$M/shared/fifo"
  ln -s file "$M/shared/link"
  mkdir "$M/own"
  echo made >"$M/own/file"
)
assert_eq "new file: inherited ACL, umask ignored" \
  "user::rw- user:nobody:rwx group::r-x mask::rw- other::r-- " \
  "$(acl "$M/shared/file")"
assert_eq "new file's mode" "-rw-rw-r--+" "$(ls -l "$M/shared/file" | cut -d' ' -f1)"
assert_eq "nobody writes the new file" "" "$("${NOBODY[@]}" bash -c "echo by-nobody >>'$M/shared/file'" 2>&1)"
assert_eq "new directory: access and default ACL" \
  "user::rwx user:nobody:rwx group::r-x mask::rwx other::r-x default:user::rwx default:user:nobody:rwx default:group::r-x default:mask::rwx default:other::r-x " \
  "$(acl "$M/shared/sub")"
assert_eq "new fifo inherits too" "prw-rw-r--+" "$(ls -l "$M/shared/fifo" | cut -d' ' -f1)"
assert_eq "a symlink has no ACL" "lrwxrwxrwx" "$(ls -l "$M/shared/link" | cut -d' ' -f1)"
assert_eq "without a default ACL the umask applies" "drwx------ -rw-------" \
  "$(stat -c %A "$M/own" "$M/own/file" | tr '\n' ' ' | sed 's/ $//')"
check "setfacl -k removes the default ACL" setfacl -k "$M/shared"
(umask 022 && echo later >"$M/shared/later")
assert_eq "then new files get none" "-rw-r--r--" "$(ls -l "$M/shared/later" | cut -d' ' -f1)"

log "# cp -a keeps ACLs"
check "cp -a of a tree with ACLs" cp -a "$M/shared" "$M/copy"
assert_eq "copied file's ACL" "$(acl "$M/shared/file")" "$(acl "$M/copy/file")"
assert_eq "copied directory's ACLs" "$(acl "$M/shared/sub")" "$(acl "$M/copy/sub")"
if setfacl -m u:nobody:r "$WORK/outside" 2>/dev/null || { echo o >"$WORK/outside" && setfacl -m u:nobody:r "$WORK/outside" 2>/dev/null; }; then
  check "cp -a of a file with an ACL from another file system" cp -a "$WORK/outside" "$M/outside"
  assert_eq "its ACL arrived" "$(acl "$WORK/outside")" "$(acl "$M/outside")"
fi

log "# the store keeps ACLs on"
before_f=$(acl "$M/copy/file")
before_d=$(acl "$M/copy/sub")
remount || die "remount failed"
assert_eq "file ACL after a remount without -o acl" "$before_f" "$(acl "$M/copy/file")"
assert_eq "directory ACLs after a remount" "$before_d" "$(acl "$M/copy/sub")"
check "still enforced: nobody writes through its entry" "${NOBODY[@]}" bash -c "echo again >>'$M/copy/file'"
expect_errno "${STRANGER[@]}" bash -c "echo x >>'$M/copy/file'" EACCES
(umask 077 && echo new >"$M/copy/sub/new")
assert_eq "default ACLs still inherited" "-rw-rw-r--+" "$(ls -l "$M/copy/sub/new" | cut -d' ' -f1)"
unmount
finish

#!/usr/bin/env python3
"""tests/mount/crash_tool.py: the big-file writer and the checker of crash_test.sh.

  crash_tool.py bigwriter FILE PATTERN LOG LIMIT
      write FILE sequentially in 1 MiB writes with the content PATTERN repeated, fsync every
      4 MiB and append "SIZE" to LOG (outside the mount) after each fsync returned; stops at
      LIMIT bytes or at the first error (the daemon was killed).
  crash_tool.py verify ROUND LOGDIR BASE PATTERN
      check a round directory after a crash (layout and logs as written by crash_test.sh):
        - every small file logged as closed is complete and exact;
        - every name listed can be stat'ed, names are the expected ones, and a file's nlink
          equals the number of names found for its inode (no half-done link or unlink);
        - `state` (rewritten by write-temp-then-rename) is one complete generation, not older
          than the last generation logged;
        - `big` holds at least the fsynced size, exact up to it; past it every 4 KiB block is
          either the expected data or zeros.
      Prints a summary; exits 1 with one line per problem.
  crash_tool.py synced FILE EXPECT
      make FILE 4 MiB of zeros (fsynced), overwrite 200 random 4 KiB blocks, call sync(2)
      (which writes the kernel's dirty pages back to the file system but sends no fsync),
      write the SHA-256 of the content to EXPECT (outside the mount), then sleep with FILE
      still open until killed.
"""
import hashlib
import os
import random
import sys
import time

SMALL_HEADER = "file {:06d}\n"
BLOCK = 4096


def read_file(path):
    with open(path, "rb", buffering=0) as f:
        out = bytearray()
        while True:
            b = f.read(1 << 20)
            if not b:
                return bytes(out)
            out.extend(b)


def bigwriter(path, pattern_path, log, limit):
    pattern = read_file(pattern_path)
    limit = int(limit)
    step = 1 << 20
    written = 0
    try:
        fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
        while written < limit:
            off = written % len(pattern)
            chunk = pattern[off:off + step]
            n = os.write(fd, chunk)
            written += n
            if written % (4 * step) == 0:
                os.fsync(fd)
                with open(log, "a") as f:
                    f.write(f"{written}\n")
        os.close(fd)
        with open(log, "a") as f:
            f.write(f"closed {written}\n")
    except OSError:
        pass  # the daemon was killed under us


def last_int(path):
    try:
        with open(path) as f:
            lines = [l.split()[-1] for l in f if l.strip()]
        return int(lines[-1]) if lines else 0
    except FileNotFoundError:
        return 0


def verify(rnd, logdir, base_path, pattern_path):
    problems = []
    base = read_file(base_path)
    pattern = read_file(pattern_path)

    # Small files.
    d = os.path.join(rnd, "d")
    try:
        with open(os.path.join(logdir, "small.log")) as f:
            closed = [int(l) for l in f if l.strip()]
    except FileNotFoundError:
        closed = []
    names = set(os.listdir(d)) if os.path.isdir(d) else set()
    for i in closed:
        name = f"f{i}"
        want = SMALL_HEADER.format(i).encode() + base
        try:
            got = read_file(os.path.join(d, name))
        except OSError as e:
            problems.append(f"closed file {name}: {e}")
            continue
        if got != want:
            problems.append(f"closed file {name}: {len(got)} bytes, content differs from the "
                            f"{len(want)} written")
        if name not in names:
            problems.append(f"closed file {name} readable but not listed")
    # Every listed name resolves; link counts match the names found.
    by_ino = {}
    for name in sorted(names):
        p = os.path.join(d, name)
        try:
            st = os.lstat(p)
        except OSError as e:
            problems.append(f"listed name {name} cannot be stat'ed: {e}")
            continue
        if not (name.startswith("f") or name.startswith("h")) or not name[1:].isdigit():
            problems.append(f"unexpected name {name}")
        by_ino.setdefault(st.st_ino, []).append((name, st.st_nlink))
    for ino, entries in by_ino.items():
        nlinks = {n for _, n in entries}
        if len(nlinks) != 1 or nlinks.pop() != len(entries):
            problems.append(f"inode {ino}: names {entries} disagree with nlink")
    for i in closed:
        h, f = os.path.join(d, f"h{i}"), os.path.join(d, f"f{i}")
        if os.path.exists(h) and os.path.exists(f) and os.stat(h).st_ino != os.stat(f).st_ino:
            problems.append(f"h{i} is not a link of f{i}")

    # The renamed state file.
    gen_logged = last_int(os.path.join(logdir, "state.log"))
    state = os.path.join(rnd, "state")
    gen_found = 0
    if os.path.exists(state):
        got = read_file(state)
        head, _, rest = got.partition(b"\n")
        try:
            gen_found = int(head.split()[1])
        except (IndexError, ValueError):
            problems.append(f"state: malformed header {head[:40]!r}")
        want = (f"gen {gen_found:06d}\n".encode() + base[:8000] +
                f"end {gen_found:06d}\n".encode())
        if got != want:
            problems.append(f"state: torn or mixed generation ({len(got)} bytes, header gen "
                            f"{gen_found})")
        if gen_found < gen_logged:
            problems.append(f"state: generation {gen_found} older than the {gen_logged} "
                            "renamed into place before the crash")
    elif gen_logged:
        problems.append(f"state missing although generation {gen_logged} was renamed into place")

    # The big file.
    synced = last_int(os.path.join(logdir, "big.log"))
    big = os.path.join(rnd, "big")
    size = 0
    assert len(pattern) % BLOCK == 0 and len(pattern) % (1 << 20) == 0
    if os.path.exists(big):
        size = os.path.getsize(big)
        if size < synced:
            problems.append(f"big: {size} bytes, but {synced} were fsynced before the crash")
        zero = bytes(BLOCK)
        bad_synced = bad_tail = 0
        with open(big, "rb", buffering=0) as f:
            off = 0
            while True:
                g = f.read(BLOCK)
                if not g:
                    break
                p0 = off % len(pattern)
                w = pattern[p0:p0 + len(g)]  # BLOCK divides len(pattern)
                if g != w:
                    if off + len(g) <= synced:
                        bad_synced += 1
                    elif g != zero[:len(g)]:
                        bad_tail += 1
                off += len(g)
        if off != size:
            problems.append(f"big: read {off} bytes of a {size}-byte file")
        if bad_synced:
            problems.append(f"big: {bad_synced} blocks of fsynced data differ")
        if bad_tail:
            problems.append(f"big: {bad_tail} blocks past the fsynced size are neither the "
                            "data written nor zeros")
    elif synced:
        problems.append("big: missing although it was fsynced")

    print(f"  small: {len(closed)} closed and verified, {len(names)} names listed; "
          f"state: gen {gen_found} (last renamed {gen_logged}); big: {size} bytes "
          f"(fsynced {synced})")
    for p in problems:
        print(f"  problem: {p}")
    return 1 if problems else 0


def synced(path, expect):
    size = 4 << 20
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    os.pwrite(fd, bytes(size), 0)
    os.fsync(fd)
    content = bytearray(size)
    rng = random.Random(1)
    for _ in range(200):
        offset = rng.randrange(size // BLOCK) * BLOCK
        block = rng.randbytes(BLOCK)
        os.pwrite(fd, block, offset)
        content[offset:offset + BLOCK] = block
    os.sync()
    with open(expect + ".tmp", "w") as f:
        f.write(hashlib.sha256(content).hexdigest() + "\n")
    os.rename(expect + ".tmp", expect)
    while True:
        time.sleep(60)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "synced":
        synced(*sys.argv[2:])
    elif len(sys.argv) == 6 and sys.argv[1] == "bigwriter":
        bigwriter(*sys.argv[2:])
    elif len(sys.argv) == 6 and sys.argv[1] == "verify":
        sys.exit(verify(*sys.argv[2:]))
    else:
        sys.exit(__doc__)

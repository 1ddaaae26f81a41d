#!/usr/bin/env python3
"""File-system operations timed by scripts/bench.sh (stdlib only).

Each timing command prints the elapsed wall-clock seconds of its loop (interpreter start-up
excluded) on stdout, and exits non-zero on the first failed operation.

  gen-text OUT BYTES DIR        reproducible text: every regular file under DIR in sorted
                                order, concatenated and repeated until BYTES
  meta-create DIR N             create N empty files f000000.. in DIR (open O_CREAT|O_EXCL)
  meta-readdir DIR              list DIR (scandir, names and d_type only)
  meta-stat DIR N               lstat the N files
  meta-unlink DIR N             unlink the N files
  small-write DIR N NDIRS       N files of 4 KiB (distinct pseudo-random bytes) spread
                                round-robin over NDIRS subdirectories d000..
  small-read DIR                read back every file under DIR (sorted walk)
  edits FILE N                  N times: open FILE, write 4 KiB of new bytes at a random
                                4 KiB-aligned offset, close (each close seals a version)
  fio-iops JSON                 IOPS of the first job in a fio --output-format=json file
"""
import json
import os
import random
import sys
import time

FILE_SIZE = 4096


def gen_text(out, size, src):
    files = []
    for root, dirs, names in os.walk(src):
        dirs.sort()
        for n in sorted(names):
            p = os.path.join(root, n)
            if os.path.isfile(p) and not os.path.islink(p):
                files.append(p)
    files.sort()
    written = 0
    with open(out + ".tmp", "wb") as f:
        while written < size:
            before = written
            for p in files:
                try:
                    with open(p, "rb") as g:
                        data = g.read(size - written)
                except OSError:
                    continue
                f.write(data)
                written += len(data)
                if written >= size:
                    break
            if written == before:
                sys.exit("gen-text: no readable files under " + src)
    os.rename(out + ".tmp", out)


def name(i):
    return "f%06d" % i


def meta_create(d, n):
    os.makedirs(d, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    t = time.perf_counter()
    for i in range(n):
        os.close(os.open(os.path.join(d, name(i)), flags, 0o644))
    return time.perf_counter() - t


def meta_readdir(d):
    t = time.perf_counter()
    with os.scandir(d) as it:
        count = sum(1 for _ in it)
    el = time.perf_counter() - t
    print("entries", count, file=sys.stderr)
    return el


def meta_stat(d, n):
    t = time.perf_counter()
    for i in range(n):
        os.lstat(os.path.join(d, name(i)))
    return time.perf_counter() - t


def meta_unlink(d, n):
    t = time.perf_counter()
    for i in range(n):
        os.unlink(os.path.join(d, name(i)))
    return time.perf_counter() - t


def small_write(d, n, ndirs):
    rng = random.Random(42)
    data = rng.randbytes(FILE_SIZE * n)
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    t = time.perf_counter()
    for j in range(ndirs):
        os.makedirs(os.path.join(d, "d%03d" % j), exist_ok=True)
    for i in range(n):
        p = os.path.join(d, "d%03d" % (i % ndirs), name(i))
        fd = os.open(p, flags, 0o644)
        try:
            view = memoryview(data)[i * FILE_SIZE:(i + 1) * FILE_SIZE]
            while view:
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)
    return time.perf_counter() - t


def small_read(d):
    total = 0
    t = time.perf_counter()
    for root, dirs, names in os.walk(d):
        dirs.sort()
        for n in sorted(names):
            fd = os.open(os.path.join(root, n), os.O_RDONLY)
            try:
                while True:
                    b = os.read(fd, 65536)
                    if not b:
                        break
                    total += len(b)
            finally:
                os.close(fd)
    el = time.perf_counter() - t
    print("bytes", total, file=sys.stderr)
    return el


def edits(path, n):
    rng = random.Random(7)
    blocks = os.stat(path).st_size // FILE_SIZE
    t = time.perf_counter()
    for _ in range(n):
        fd = os.open(path, os.O_WRONLY)
        try:
            os.pwrite(fd, rng.randbytes(FILE_SIZE), rng.randrange(blocks) * FILE_SIZE)
        finally:
            os.close(fd)
    return time.perf_counter() - t


def fio_iops(path):
    with open(path) as f:
        text = f.read()
    j = json.loads(text[text.index("{"):])  # fio may print notes before the JSON
    job = j["jobs"][0]
    if job.get("error"):
        sys.exit("fio error %s" % job["error"])
    return max(job["read"]["iops"], job["write"]["iops"])


def main(argv):
    if len(argv) < 2:
        sys.exit(__doc__)
    cmd, a = argv[1], argv[2:]
    if cmd == "gen-text":
        gen_text(a[0], int(a[1]), a[2])
        return
    if cmd == "meta-create":
        r = meta_create(a[0], int(a[1]))
    elif cmd == "meta-readdir":
        r = meta_readdir(a[0])
    elif cmd == "meta-stat":
        r = meta_stat(a[0], int(a[1]))
    elif cmd == "meta-unlink":
        r = meta_unlink(a[0], int(a[1]))
    elif cmd == "small-write":
        r = small_write(a[0], int(a[1]), int(a[2]))
    elif cmd == "small-read":
        r = small_read(a[0])
    elif cmd == "edits":
        r = edits(a[0], int(a[1]))
    elif cmd == "fio-iops":
        r = fio_iops(a[0])
    else:
        sys.exit("fsops: unknown command " + cmd)
    print("%.6f" % r)


if __name__ == "__main__":
    main(sys.argv)

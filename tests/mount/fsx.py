#!/usr/bin/env python3
"""tests/mount/fsx.py: a file-system exerciser in the manner of fsx (xfstests).

  fsx.py FILE OPS SEED [MAXLEN]

Runs OPS random operations on FILE and checks every byte read against a model kept in
memory: write, read, truncate up and down, writes and reads through a shared mapping,
fallocate (extend, keep size, punch hole, zero range), fsync, close and reopen (so that the
kernel's cached pages go and the file system's own data is read). MAXLEN (default 4 MiB)
bounds the file size. The first mismatch prints the operations that led to it and exits 1.
"""
import ctypes
import ctypes.util
import mmap
import os
import random
import sys

FALLOC_FL_KEEP_SIZE = 0x01
FALLOC_FL_PUNCH_HOLE = 0x02
FALLOC_FL_ZERO_RANGE = 0x10

libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]


def fallocate(fd, mode, offset, length):
    if libc.fallocate(fd, mode, offset, length) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


class Exerciser:
    def __init__(self, path, seed, maxlen):
        self.path = path
        self.rng = random.Random(seed)
        self.maxlen = maxlen
        self.model = bytearray()
        self.log = []
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)

    def fail(self, what):
        print(f"fsx: {what}", file=sys.stderr)
        print("fsx: the last operations:", file=sys.stderr)
        for line in self.log[-30:]:
            print(f"  {line}", file=sys.stderr)
        sys.exit(1)

    def span(self, within=None):
        """A random (offset, length), mostly small, sometimes chunk-sized or larger."""
        limit = self.maxlen if within is None else within
        if limit == 0:
            return 0, 0
        offset = self.rng.randrange(limit)
        size = self.rng.choice([1, 7, 512, 4096, 5000, 65536, 70000, 200000])
        size = self.rng.randrange(1, size + 1)
        return offset, min(size, limit - offset)

    def check(self, offset, size, data, how):
        """data, read at offset for size bytes, must be what the model holds there."""
        want = bytes(self.model[offset:offset + size])
        if len(data) != len(want):
            self.fail(f"{how} at {offset}: got {len(data)} bytes, expected {len(want)}")
        if data != want:
            at = next(i for i in range(len(data)) if data[i] != want[i])
            self.fail(f"{how} at {offset}+{len(data)}: byte {offset + at} is "
                      f"{data[at:at + 1]!r}, expected {want[at:at + 1]!r}")

    def op_write(self):
        offset, size = self.span()
        data = self.rng.randbytes(size)
        self.log.append(f"write {offset}+{size}")
        os.pwrite(self.fd, data, offset)
        if offset > len(self.model):
            self.model.extend(bytes(offset - len(self.model)))
        self.model[offset:offset + size] = data

    def op_read(self):
        offset, size = self.span(len(self.model))
        self.log.append(f"read {offset}+{size}")
        self.check(offset, size, os.pread(self.fd, size, offset), "read")

    def op_truncate(self):
        size = self.rng.randrange(self.maxlen)
        self.log.append(f"truncate {size}")
        os.ftruncate(self.fd, size)
        if size < len(self.model):
            del self.model[size:]
        else:
            self.model.extend(bytes(size - len(self.model)))

    def op_mapwrite(self):
        offset, size = self.span()
        end = offset + size
        data = self.rng.randbytes(size)
        self.log.append(f"mapwrite {offset}+{size}")
        if end > len(self.model):  # like fsx: the mapping needs the file that long first
            os.ftruncate(self.fd, end)
            self.model.extend(bytes(end - len(self.model)))
        with mmap.mmap(self.fd, end, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE) as m:
            m[offset:end] = data
            if self.rng.random() < 0.5:
                m.flush()
        self.model[offset:end] = data

    def op_mapread(self):
        offset, size = self.span(len(self.model))
        if size == 0:
            return
        self.log.append(f"mapread {offset}+{size}")
        with mmap.mmap(self.fd, offset + size, mmap.MAP_SHARED, mmap.PROT_READ) as m:
            self.check(offset, size, m[offset:offset + size], "mapread")

    def op_fallocate(self):
        offset, size = self.span()
        if size == 0:
            return
        mode = self.rng.choice([0, FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                                FALLOC_FL_ZERO_RANGE])
        self.log.append(f"fallocate mode {mode:#x} {offset}+{size}")
        try:
            fallocate(self.fd, mode, offset, size)
        except OSError as e:
            self.log.append(f"  -> {e}")
            return
        end = offset + size
        if mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE):
            stop = min(end, len(self.model)) if mode & FALLOC_FL_KEEP_SIZE else end
            if stop > len(self.model):
                self.model.extend(bytes(stop - len(self.model)))
            if stop > offset:
                self.model[offset:stop] = bytes(stop - offset)
        elif not mode & FALLOC_FL_KEEP_SIZE and end > len(self.model):
            self.model.extend(bytes(end - len(self.model)))

    def op_fsync(self):
        self.log.append("fsync")
        os.fsync(self.fd)

    def op_reopen(self):
        self.log.append("close, drop cached pages, reopen")
        os.close(self.fd)
        # The kernel's cached pages of the file go (the file is closed): reads after this
        # come from the file system, not from the page cache.
        fd = os.open(self.path, os.O_RDONLY)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        os.close(fd)
        self.fd = os.open(self.path, os.O_RDWR)

    def check_size(self):
        size = os.fstat(self.fd).st_size
        if size != len(self.model):
            self.fail(f"size is {size}, expected {len(self.model)}")

    def run(self, ops):
        table = [(self.op_write, 30), (self.op_read, 25), (self.op_truncate, 6),
                 (self.op_mapwrite, 8), (self.op_mapread, 8), (self.op_fallocate, 8),
                 (self.op_fsync, 3), (self.op_reopen, 5)]
        funcs = [f for f, _ in table]
        weights = [w for _, w in table]
        for _ in range(ops):
            self.rng.choices(funcs, weights)[0]()
            self.check_size()
        self.op_reopen()
        self.check(0, len(self.model) + 1, os.pread(self.fd, len(self.model) + 1, 0), "final read")
        os.close(self.fd)


if __name__ == "__main__":
    if len(sys.argv) not in (4, 5):
        sys.exit(__doc__)
    maxlen = int(sys.argv[4]) if len(sys.argv) == 5 else 4 << 20
    Exerciser(sys.argv[1], int(sys.argv[3]), maxlen).run(int(sys.argv[2]))
    print(f"fsx: {sys.argv[2]} operations, seed {sys.argv[3]}: no mismatch")

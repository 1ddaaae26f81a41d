#!/usr/bin/env python3
"""tests/mount/mmap_check.py: shared writable mmap through a kvfs mount.

  mmap_check.py write PATH   create PATH, change it through a MAP_SHARED mapping (including
                             pages past the old end of file after ftruncate), msync, unmap,
                             close, then read it back with read(2) and compare
  mmap_check.py verify PATH  read PATH with read(2) and compare with the expected final content
                             (used after a remount)

The content is derived from a fixed seed, so `verify` needs no state. Exits 1 with a message on
any mismatch.
"""
import mmap
import os
import random
import sys

PAGE = mmap.PAGESIZE
INITIAL = 64 * PAGE + 123  # a partial last page
GROWN = 80 * PAGE + 7      # grown by ftruncate, then written through a new mapping


def expected():
    rnd = random.Random(4242)
    data = bytearray(rnd.randbytes(INITIAL))
    data.extend(bytes(GROWN - INITIAL))
    edits = []
    # A write at the start, one straddling a page boundary, one inside the partial last page,
    # one in the grown region, and one at the very end.
    for off, n in ((0, 100), (5 * PAGE - 50, 300), (INITIAL - 60, 60),
                   (70 * PAGE + 11, 2 * PAGE), (GROWN - 5, 5)):
        edits.append((off, rnd.randbytes(n)))
    for off, chunk in edits:
        data[off:off + len(chunk)] = chunk
    return bytes(data[:INITIAL]), edits, bytes(data)


def read_all(path):
    with open(path, "rb", buffering=0) as f:
        out = bytearray()
        while True:
            b = f.read(1 << 20)
            if not b:
                return bytes(out)
            out.extend(b)


def compare(what, want, got):
    if want == got:
        return
    if len(want) != len(got):
        sys.exit(f"{what}: size {len(got)}, expected {len(want)}")
    first = next(i for i in range(len(want)) if want[i] != got[i])
    sys.exit(f"{what}: first difference at byte {first}")


def write(path):
    initial, edits, final = expected()
    with open(path, "wb") as f:
        f.write(initial)
    fd = os.open(path, os.O_RDWR)
    try:
        m = mmap.mmap(fd, INITIAL, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        for off, chunk in edits[:3]:
            m[off:off + len(chunk)] = chunk
        m.flush()  # msync(MS_SYNC)
        m.close()
        os.ftruncate(fd, GROWN)
        m = mmap.mmap(fd, GROWN, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        if m[:INITIAL] != final[:INITIAL]:
            sys.exit("second mapping does not show the first mapping's writes")
        if m[INITIAL:GROWN] != bytes(GROWN - INITIAL):
            sys.exit("the region added by ftruncate does not read as zeros")
        for off, chunk in edits[3:]:
            m[off:off + len(chunk)] = chunk
        m.flush()
        m.close()
    finally:
        os.close(fd)
    compare("read back after munmap+close", final, read_all(path))
    st = os.stat(path)
    if st.st_size != GROWN:
        sys.exit(f"stat size {st.st_size}, expected {GROWN}")


def verify(path):
    compare("read back", expected()[2], read_all(path))


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("write", "verify"):
        sys.exit(__doc__)
    {"write": write, "verify": verify}[sys.argv[1]](sys.argv[2])

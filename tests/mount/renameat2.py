#!/usr/bin/env python3
"""tests/mount/renameat2.py OLD NEW noreplace|exchange: renameat2(2) with one flag.

Exits 0 on success; on failure prints "renameat2: <strerror>" and exits 1."""
import ctypes
import os
import sys

FLAGS = {"noreplace": 1, "exchange": 2}  # RENAME_NOREPLACE, RENAME_EXCHANGE
AT_FDCWD = -100

if len(sys.argv) != 4 or sys.argv[3] not in FLAGS:
    sys.exit(__doc__)
libc = ctypes.CDLL(None, use_errno=True)
if libc.renameat2(AT_FDCWD, os.fsencode(sys.argv[1]), AT_FDCWD, os.fsencode(sys.argv[2]),
                  FLAGS[sys.argv[3]]) != 0:
    sys.exit("renameat2: " + os.strerror(ctypes.get_errno()))

#!/usr/bin/env python3
"""tests/mount/store_damage.py: find and damage records of a kvfs store's page files, for
kvfsck_test.sh. Works on an unmounted store, on the formats of kv/README.md (page header of
40 bytes; records of a 56-byte header, the key, then the stored value) and the key schema of
fs/README.md (chunk key: 'C' ino(8 BE) stripe(8 BE) slot(1), chunk i = stripe i/16, slot i%16).

  store_damage.py records STORE
      list every record: page file, offset, length, type, sequence, key (hex)
  store_damage.py chunk STORE INO INDEX
      "PAGEFILE OFFSET LENGTH" of the newest record of chunk INDEX of inode INO
  store_damage.py flip-value STORE INO INDEX
      flip one bit in the middle of that record's stored value (the data CRC then fails)
  store_damage.py flip-header STORE INO INDEX
      flip one bit of that record's write time (header byte 24: the header CRC then fails)
  store_damage.py truncate STORE INO INDEX
      cut that record's page file in the middle of the record
  store_damage.py remove STORE INO INDEX
      delete the page file that holds the record (its hint file stays)
  store_damage.py fs STORE KIND ARGS...
      append valid records (checksums, batch framing, version chains, the next sequence
      numbers: each record a batch of its own, as the daemon could have written them) that
      break a file-system invariant, each to the page that already holds keys of the same
      shard (so no hash is needed):
        dangling-entry INO            delete I<INO>: its directory entry names nothing
        nlink INO DELTA               rewrite I<INO> with nlink + DELTA
        orphan-inode PARENT NAME      delete the entry NAME of directory PARENT
        orphan-chunks PARENT NAME INO delete the entry and I<INO>: its chunks and versions
                                      belong to no inode
        chunk-past-eof INO INDEX      put chunk INDEX of INO (past its size; stripe of an
                                      existing chunk)
        broken-history INO            put H<INO> linking to an inode that does not exist
  store_damage.py flip FILE OFFSET [BIT]
      flip bit BIT (default 0) of the byte at OFFSET of any file
  store_damage.py set-u32 FILE OFFSET VALUE
      overwrite the little-endian u32 at OFFSET
Every damaging command prints the damaged page file's name and the offset from which its
records may be affected, then the inode numbers that keys in the affected range belong to
(I, C, X, V, H, O keys: their inode; D keys: the directory and the child the entry names),
so the test knows which files must survive intact.
"""
import os
import struct
import sys
import time
import zlib

PAGE_HEADER = 40
RECORD_HEADER = 56


def page_files(store):
    return sorted(n for n in os.listdir(store) if n.startswith("page-") and n.endswith(".kv"))


def records(path):
    """Yields (offset, length, type, seq, key, value) for the records of one intact page."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"KVFSPAGE":
        raise SystemExit(f"{path}: not a page file")
    off = PAGE_HEADER
    while off + RECORD_HEADER <= len(data):
        hdr = data[off:off + RECORD_HEADER]
        rtype = hdr[8]
        if rtype not in (1, 2):
            break  # zeros past the end of the written records
        (key_len,) = struct.unpack_from("<H", hdr, 10)
        (val_len,) = struct.unpack_from("<I", hdr, 12)
        (seq,) = struct.unpack_from("<Q", hdr, 16)
        length = RECORD_HEADER + key_len + val_len
        if off + length > len(data):
            break
        key = data[off + RECORD_HEADER:off + RECORD_HEADER + key_len]
        value = data[off + RECORD_HEADER + key_len:off + length]
        yield off, length, rtype, seq, key, value
        off += length


def chunk_key(ino, index):
    return b"C" + struct.pack(">QQB", ino, index // 16, index % 16)


def find_chunk(store, ino, index):
    """(page file name, offset, length, key length) of the newest put of the chunk."""
    want = chunk_key(ino, index)
    best = None
    for name in page_files(store):
        for off, length, rtype, seq, key, _ in records(os.path.join(store, name)):
            if key == want and rtype == 1 and (best is None or seq > best[0]):
                best = (seq, name, off, length, len(key))
    if best is None:
        raise SystemExit(f"no record of chunk {index} of inode {ino} in {store}")
    return best[1:]


def key_inodes(key, value, rtype):
    """The inode numbers a key (and for a dentry, its value) concerns."""
    if len(key) < 9:
        return set()
    tag = key[:1]
    (ino,) = struct.unpack_from(">Q", key, 1)
    if tag in b"ICXVHOW":
        out = {ino}
        if tag == b"W" and len(key) >= 17:
            out.add(struct.unpack_from(">Q", key, len(key) - 8)[0])
        return out
    if tag == b"D":
        out = {ino}
        if rtype == 1 and len(value) >= 8:
            out.add(struct.unpack_from(">Q", value, 0)[0])
        return out
    if tag == b"T" and len(key) >= 17:
        return {struct.unpack_from(">Q", key, 9)[0]}
    return set()


def affected(path, start, end=None):
    """Inodes that keys of records overlapping [start, end) of the page file concern."""
    inos = set()
    for off, length, rtype, _, key, value in records(path):
        if off + length > start and (end is None or off < end):
            inos |= key_inodes(key, value, rtype)
    return inos


def _crc32c_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


CRC_TABLE = _crc32c_table()


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = CRC_TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


assert crc32c(b"123456789") == 0xE3069283


class Appender:
    """Appends single-record batches to the pages of an unmounted, cleanly closed store."""

    def __init__(self, store):
        self.store = store
        self.seq = 0
        self.newest = {}  # key -> (page name, offset, type, flags, value) of its newest record
        for name in page_files(store):
            for off, length, rtype, seq, key, value in records(os.path.join(store, name)):
                self.seq = max(self.seq, seq)
                with open(os.path.join(store, name), "rb") as f:
                    f.seek(off + 9)
                    flags = f.read(1)[0]
                self.newest[key] = (name, off, rtype, flags, value)

    def page_of(self, prefix):
        """The page holding a key that starts with prefix (the same shard)."""
        for key, (name, *_rest) in self.newest.items():
            if key.startswith(prefix):
                return name
        raise SystemExit(f"no key starting with {prefix.hex()} in {self.store}")

    def value(self, key):
        name, _, rtype, flags, value = self.newest[key]
        if rtype != 1:
            raise SystemExit(f"key {key.hex()} is deleted")
        return zlib.decompress(value, -15) if flags & 1 else value

    def append(self, key, value, anchor):
        """Put (value bytes) or delete (value None) key in the page of `anchor`'s keys."""
        name = self.page_of(anchor)
        path = os.path.join(self.store, name)
        prev = 2**64 - 1
        if key in self.newest and self.newest[key][0] == name:
            prev = self.newest[key][1]
        self.seq += 1
        rtype = 2 if value is None else 1
        value = b"" if value is None else value
        tail = struct.pack("<BBHIQQQIIII", rtype, 0, len(key), len(value), self.seq,
                           time.time_ns(), prev, len(value), 1, 1, 0)
        data_crc = crc32c(key + value)
        body = struct.pack("<I", data_crc) + tail
        record = struct.pack("<I", crc32c(body)) + body + key + value
        assert len(body) + 4 == RECORD_HEADER
        offset = os.path.getsize(path)
        with open(path, "r+b") as f:
            f.seek(offset)
            f.write(record)
            f.flush()
            os.fsync(f.fileno())
        self.newest[key] = (name, offset, rtype, 0, value)


def ino_key(tag, ino):
    return tag + struct.pack(">Q", ino)


def fs_damage(store, kind, args):
    a = Appender(store)
    if kind == "dangling-entry":
        ino = int(args[0])
        a.append(ino_key(b"I", ino), None, ino_key(b"I", ino))
    elif kind == "nlink":
        ino, delta = int(args[0]), int(args[1])
        v = bytearray(a.value(ino_key(b"I", ino)))
        (nlink,) = struct.unpack_from(">I", v, 14)
        struct.pack_into(">I", v, 14, nlink + delta)
        a.append(ino_key(b"I", ino), bytes(v), ino_key(b"I", ino))
    elif kind in ("orphan-inode", "orphan-chunks"):
        parent, name = int(args[0]), args[1].encode()
        a.append(ino_key(b"D", parent) + name, None, ino_key(b"I", parent))
        if kind == "orphan-chunks":
            ino = int(args[2])
            a.append(ino_key(b"I", ino), None, ino_key(b"I", ino))
    elif kind == "chunk-past-eof":
        ino, index = int(args[0]), int(args[1])
        key = chunk_key(ino, index)
        a.append(key, os.urandom(1000), key[:17])
    elif kind == "broken-history":
        ino = int(args[0])
        a.append(ino_key(b"H", ino), struct.pack(">QQ", 0x7FFFFFFF, 5), ino_key(b"I", ino))
    else:
        raise SystemExit(f"unknown fs damage {kind}")


def report(name, start, inos):
    print(name, start)
    print(" ".join(str(i) for i in sorted(inos)))


def flip(path, offset, bit=0):
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)
        if len(b) != 1:
            raise SystemExit(f"{path}: no byte at offset {offset}")
        f.seek(offset)
        f.write(bytes([b[0] ^ (1 << bit)]))


def main(argv):
    if len(argv) < 2:
        raise SystemExit(__doc__)
    cmd = argv[1]
    if cmd == "records":
        store = argv[2]
        for name in page_files(store):
            for off, length, rtype, seq, key, _ in records(os.path.join(store, name)):
                print(name, off, length, rtype, seq, key.hex())
    elif cmd in ("chunk", "flip-value", "flip-header", "truncate", "remove"):
        store, ino, index = argv[2], int(argv[3]), int(argv[4])
        name, off, length, key_len = find_chunk(store, ino, index)
        path = os.path.join(store, name)
        if cmd == "chunk":
            print(name, off, length)
        elif cmd == "flip-value":
            value_start = off + RECORD_HEADER + key_len
            value_len = length - RECORD_HEADER - key_len
            inos = affected(path, off, off + length)
            flip(path, value_start + value_len // 2, 3)
            report(name, off, inos)
        elif cmd == "flip-header":
            inos = affected(path, off, off + length)
            flip(path, off + 24, 5)
            report(name, off, inos)
        elif cmd == "truncate":
            inos = affected(path, off)
            os.truncate(path, off + length // 2)
            report(name, off, inos)
        else:
            inos = affected(path, 0)
            os.unlink(path)
            report(name, 0, inos)
    elif cmd == "fs":
        fs_damage(argv[2], argv[3], argv[4:])
    elif cmd == "flip":
        flip(argv[2], int(argv[3]), int(argv[4]) if len(argv) > 4 else 0)
    elif cmd == "set-u32":
        with open(argv[2], "r+b") as f:
            f.seek(int(argv[3]))
            f.write(struct.pack("<I", int(argv[4])))
    else:
        raise SystemExit(f"unknown command {cmd}\n{__doc__}")


if __name__ == "__main__":
    main(sys.argv)

#!/usr/bin/env python3
"""Writes fuzz/corpus-seed/TARGET/: a few real inputs per fuzz target (committed; re-run to refresh).

image_loaders: built-in guests from the `guests` crate's build output (Multiboot ELF, a.out kludge,
ROMs, a boot sector), each behind the target's first byte (name .elf/.bin/.rom, boot method).
decode_and_step: small real-mode and 64-bit code. moo_reader: the first tests of two SingleStepTests
files, plain and gzipped, into fuzz/corpus/moo_reader (not committed). virtqueue, pci_config: hand-made well-formed cases.
Usage: fuzz/make-seeds.py [GUESTS_OUT_DIR]  (default: the newest target/*/build/guests-*/out)
"""
import glob, gzip, os, struct, sys

here = os.path.dirname(os.path.abspath(__file__))
root = os.path.dirname(here)
seed = os.path.join(here, "corpus-seed")


def put(target, name, data):
    d = os.path.join(seed, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def guests_out():
    if len(sys.argv) > 1:
        return sys.argv[1]
    dirs = glob.glob(os.path.join(root, "target/*/build/guests-*/out"))
    dirs = [d for d in dirs if os.path.exists(os.path.join(d, "hello64.elf"))]
    if not dirs:
        sys.exit("no guests build output: run `cargo build -p guests` first")
    return max(dirs, key=os.path.getmtime)


# image_loaders: first byte bits 0-1 = name (.elf .bin .rom .ROM), bit 2 = firmware boot.
out = guests_out()
for file, pick in [("hello64.elf", 0), ("hello32.elf", 4), ("hello-aout.bin", 1),
                   ("hello-real.rom", 2), ("firmware.rom", 2), ("bootdisk.bin", 1),
                   ("triple-fault.elf", 8)]:
    with open(os.path.join(out, file), "rb") as f:
        put("image_loaders", file, bytes([pick]) + f.read())

# decode_and_step: first byte = Mode::ALL index (0 real, 1 pm16, 2 pm32, 3 long, 4 ring3).
put("decode_and_step", "real-loop", bytes([0]) + bytes.fromhex("31d231c9bb00068ed2fe07b001bb0c7c4183f90275f1e6f4f4"))
put("decode_and_step", "pm32-string", bytes([2]) + bytes.fromhex("fcb9080000008d7300f3a4" "0fa2" "cd03"))
put("decode_and_step", "long-alu", bytes([3]) + bytes.fromhex("4801d84831c948ffc14883f91075f70f0b"))
put("decode_and_step", "ring3-syscall", bytes([4]) + bytes.fromhex("4889c80f05e6f4"))

# moo_reader: the header chunk with its count patched, then the first three TEST chunks —
# written to fuzz/corpus/moo_reader (not committed: the SingleStepTests files are outside data
# that stays in ../shared/testdata; scripts/test.sh makes these seeds there at run time).
sst = os.path.join(root, "..", "shared", "testdata", "sst-80286-real")
moo_out = sys.argv[2] if len(sys.argv) > 2 else os.path.join(here, "corpus", "moo_reader")
for name in ["00.MOO.gz", "88.MOO.gz"]:
    path = os.path.join(sst, name)
    if not os.path.exists(path):
        print(f"skipping {path}: not there", file=sys.stderr)
        continue
    data = gzip.open(path).read()
    pos, chunks, tests = 0, [], 0
    while pos < len(data) and tests < 3:
        tag, n = data[pos:pos + 4], struct.unpack_from("<I", data, pos + 4)[0]
        chunk = bytearray(data[pos:pos + 8 + n])
        if tag == b"MOO ":
            struct.pack_into("<I", chunk, 12, 3)
        tests += tag == b"TEST"
        chunks.append(bytes(chunk))
        pos += 8 + n
    small = b"".join(chunks)
    base = name.split(".")[0]
    os.makedirs(moo_out, exist_ok=True)
    for file, blob in [(base + ".moo", small), (base + ".moo.gz", gzip.compress(small, mtime=0))]:
        with open(os.path.join(moo_out, file), "wb") as f:
            f.write(blob)

# virtqueue: 12 header bytes (size, desc/avail/used addresses, features, rounds, stride,
# written length), then RAM: a two-descriptor chain (readable 0x1000+16, writable 0x1100+64)
# on a queue of 8 at desc 0x0, avail 0x200, used 0x400.
def vq(size, desc, avail, used, features, indirect=False):
    ram = bytearray(0x1200)
    if indirect:
        struct.pack_into("<QIHH", ram, 0, 0x800, 32, 4, 0)  # INDIRECT to a 2-entry table
        struct.pack_into("<QIHH", ram, 0x800, 0x1000, 16, 1, 1)
        struct.pack_into("<QIHH", ram, 0x810, 0x1100, 64, 2, 0)
    else:
        struct.pack_into("<QIHH", ram, 0, 0x1000, 16, 1, 1)  # NEXT
        struct.pack_into("<QIHH", ram, 16, 0x1100, 64, 2, 0)  # WRITE
    struct.pack_into("<HHHH", ram, avail, 0, 2, 0, 0)  # flags, idx 2, heads 0 and 0
    head = struct.pack("<HHHHBBBB", size, desc, avail, used, features, 4, 0, 3)
    return head + bytes(ram)
put("virtqueue", "chain", vq(8, 0, 0x200, 0x400, 0))
put("virtqueue", "chain-event-idx", vq(8, 0, 0x200, 0x400, 2))
put("virtqueue", "indirect", vq(8, 0, 0x200, 0x400, 1, indirect=True))

# pci_config: 6-byte operations (kind | size << 6, selector, value u32).
def op(kind, size, sel, value):
    return bytes([kind | {1: 0, 2: 1, 4: 2}[size] << 6, sel]) + struct.pack("<I", value)
ids = b"".join(op(0, 4, slot, reg) + op(3, 4, 0, 0) for slot in range(4) for reg in (0, 8, 0x10, 0x34))
put("pci_config", "read-ids", ids)
bar = (op(0, 4, 1, 0x10) + op(1, 4, 0, 0xFFFFFFFF) + op(3, 4, 0, 0) + op(1, 4, 0, 0xE0010000)
       + op(0, 4, 1, 0x04) + op(1, 2, 0, 0x7) + op(5, 4, 1, 0x10014) + op(5, 1, 0, 0x10000))
put("pci_config", "size-and-move-bar", bar)
caps = b"".join(op(0, 4, 1, reg) + op(3, 1, reg & 3, 0) + op(2, 2, 2, 0xFFFF) for reg in range(0x34, 0x80, 5))
put("pci_config", "capabilities", caps)
print(f"seeds written to {seed}")

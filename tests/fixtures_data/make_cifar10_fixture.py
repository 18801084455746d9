#!/usr/bin/env python3
"""Builds tests/fixtures_data/cifar10_test_20.bin from the CIFAR-10 PNGs shipped in foolbox 3.3.4.

foolbox 3.3.4 (PyPI, MIT licence) ships the first 20 images of the official CIFAR-10 test batch
as `foolbox/data/cifar10_NN_L.png` (NN = index in the test batch, L = label). This script decodes
them with a small pure-Python PNG reader (zlib only: no Pillow needed) and writes them as 20
records of the official CIFAR-10 binary format: 1 label byte, then 1024 red, 1024 green and 1024
blue bytes, each plane row-major 32x32.

Usage:
    pip download --no-deps foolbox==3.3.4 -d /tmp/fb
    python3 tests/fixtures_data/make_cifar10_fixture.py /tmp/fb/foolbox-3.3.4-py3-none-any.whl

It prints the values that tests/data.rs checks: the labels, some pixels and the FNV-1a 64-bit
hash of all 20 x 3072 pixel bytes in file order.
"""
import hashlib
import re
import struct
import sys
import zipfile
import zlib
from pathlib import Path


def decode_png_rgb8(data: bytes):
    """Returns (width, height, rows) for an 8-bit, non-interlaced RGB or RGBA PNG; rows are RGB."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    pos, idat, ihdr = 8, b"", None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, color, _comp, _filt, interlace = ihdr
    if depth != 8 or color not in (2, 6) or interlace != 0:
        raise ValueError(f"unsupported PNG: depth {depth}, colour type {color}, interlace {interlace}")
    bpp = 3 if color == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * bpp
    rows, prev = [], bytearray(stride)
    for y in range(height):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if f == 0:
                p = 0
            elif f == 1:
                p = a
            elif f == 2:
                p = b
            elif f == 3:
                p = (a + b) // 2
            elif f == 4:
                pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                p = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
            else:
                raise ValueError(f"bad PNG filter {f}")
            line[i] = (line[i] + p) & 0xFF
        rows.append(bytes(line[x * bpp + k] for x in range(width) for k in range(3)))
        prev = line
    return width, height, rows


def fnv1a64(data: bytes) -> int:
    h = 0xCBF29CE484222325
    for byte in data:
        h = ((h ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def main():
    wheel = Path(sys.argv[1])
    out = Path(__file__).with_name("cifar10_test_20.bin")
    print("wheel", wheel.name, "sha256", hashlib.sha256(wheel.read_bytes()).hexdigest())
    pattern = re.compile(r"foolbox/data/cifar10_(\d\d)_(\d)\.png$")
    found = {}
    with zipfile.ZipFile(wheel) as z:
        for name in z.namelist():
            m = pattern.match(name)
            if m:
                found[int(m.group(1))] = (int(m.group(2)), z.read(name))
    assert sorted(found) == list(range(20)), sorted(found)
    records, labels, pixels = bytearray(), [], bytearray()
    for i in range(20):
        label, png = found[i]
        w, h, rows = decode_png_rgb8(png)
        assert (w, h) == (32, 32)
        planes = bytearray()
        for ch in range(3):
            for y in range(32):
                planes += bytes(rows[y][x * 3 + ch] for x in range(32))
        records += bytes([label]) + planes
        labels.append(label)
        pixels += planes
    out.write_bytes(records)
    print("wrote", out, len(records), "bytes, sha256", hashlib.sha256(records).hexdigest())
    print("labels", labels)
    print("pixel FNV-1a 64", hex(fnv1a64(bytes(pixels))))
    print("pixel sum", sum(pixels))
    # A few pixels, as (image, channel, y, x) -> value.
    for (i, c, y, x) in [(0, 0, 0, 0), (0, 2, 31, 31), (1, 1, 16, 5), (7, 0, 10, 20), (19, 2, 3, 29)]:
        print("pixel", (i, c, y, x), pixels[i * 3072 + c * 1024 + y * 32 + x])


if __name__ == "__main__":
    main()

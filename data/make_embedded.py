#!/usr/bin/env python3
"""Builds the embedded default data set of wgpu-nas: a balanced subset of Fashion-MNIST.

Input: the four gzipped IDX files of Fashion-MNIST as installed by Debian's
`dataset-fashion-mnist` package (`apt-get install dataset-fashion-mnist`), by default from
/usr/share/datasets/fashion-mnist/.

Selection (deterministic, no randomness): walking each source file in file order, keep the first
600 images of every class from the training file and the first 100 images of every class from the
test (t10k) file. The kept images stay in their original relative order (classes interleaved as
in the source). Output: data/embedded/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz, IDX
format, gzip level 9 with a zero timestamp and no file name so that reruns are byte-identical.

Usage: python3 data/make_embedded.py [SOURCE_DIR]
"""
import gzip
import hashlib
import struct
import sys
from pathlib import Path

PER_CLASS = {"train": 600, "t10k": 100}
CLASSES = 10


def read_idx(path: Path, magic: int):
    raw = gzip.decompress(path.read_bytes())
    (got,) = struct.unpack(">I", raw[:4])
    assert got == magic, f"{path}: magic {got}, expected {magic}"
    ndim = raw[3]
    dims = struct.unpack(">" + "I" * ndim, raw[4 : 4 + 4 * ndim])
    body = raw[4 + 4 * ndim :]
    return dims, body


def write_idx_gz(path: Path, magic: int, dims, body: bytes):
    header = struct.pack(">I", magic) + struct.pack(">" + "I" * len(dims), *dims)
    with open(path, "wb") as f:
        # mtime=0 and an empty file name make the output depend on the content only.
        with gzip.GzipFile(filename="", mode="wb", fileobj=f, compresslevel=9, mtime=0) as g:
            g.write(header + body)


def main():
    src = Path(sys.argv[1] if len(sys.argv) > 1 else "/usr/share/datasets/fashion-mnist")
    out = Path(__file__).resolve().parent / "embedded"
    out.mkdir(exist_ok=True)
    for split, per_class in PER_CLASS.items():
        img_path = src / f"{split}-images-idx3-ubyte.gz"
        lab_path = src / f"{split}-labels-idx1-ubyte.gz"
        for p in (img_path, lab_path):
            print(f"input  {hashlib.sha256(p.read_bytes()).hexdigest()}  {p}")
        (n, rows, cols), pixels = read_idx(img_path, 2051)
        (n_labels,), labels = read_idx(lab_path, 2049)
        assert n == n_labels and len(pixels) == n * rows * cols and len(labels) == n
        size = rows * cols
        counts = [0] * CLASSES
        keep = []
        for i, label in enumerate(labels):
            if counts[label] < per_class:
                counts[label] += 1
                keep.append(i)
        assert counts == [per_class] * CLASSES, counts
        sel_pixels = b"".join(pixels[i * size : (i + 1) * size] for i in keep)
        sel_labels = bytes(labels[i] for i in keep)
        write_idx_gz(out / f"{split}-images-idx3-ubyte.gz", 2051, (len(keep), rows, cols), sel_pixels)
        write_idx_gz(out / f"{split}-labels-idx1-ubyte.gz", 2049, (len(keep),), sel_labels)
        print(f"{split}: kept {len(keep)} of {n} images (last source index {keep[-1]})")
    for p in sorted(out.glob("*.gz")):
        print(f"output {hashlib.sha256(p.read_bytes()).hexdigest()}  {p.name}  {p.stat().st_size} bytes")


if __name__ == "__main__":
    main()

"""Rebuild the bundled samples from a folder holding the full datasets.

Run: python src/mlrepro/data/samples/make_samples.py /path/to/data
The data folder needs mnist/, fashion-mnist/ (IDX files, raw or .gz) and cifar-10-jpeg/ (the
image-folder layout, loose or as cifar-10-jpeg.tar.gz). Output is byte-for-byte reproducible:
gzip and tar timestamps are zeroed and members are written in sorted order.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
IDX_COUNTS = {"train": 2000, "test": 1000}  # first N of each split
CIFAR_PER_CLASS = {"train": 30, "test": 10}  # first N file names of each class folder
IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def _read(path_without_gz: Path) -> bytes:
    for path in (path_without_gz, path_without_gz.with_name(path_without_gz.name + ".gz")):
        if path.is_file():
            data = path.read_bytes()
            return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data
    raise SystemExit(f"missing {path_without_gz}[.gz]")


def _gzip(data: bytes) -> bytes:
    out = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, compresslevel=9, mtime=0) as f:
        f.write(data)
    return out.getvalue()


def idx_head(data: bytes, n: int) -> bytes:
    """The first n items of an IDX file, with the count in the header rewritten."""
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    item = 1
    for d in dims[1:]:
        item *= d
    item *= {0x08: 1, 0x09: 1, 0x0B: 2, 0x0C: 4, 0x0D: 4, 0x0E: 8}[data[2]]
    header = data[:4] + n.to_bytes(4, "big") + data[8 : 4 + 4 * ndim]
    start = 4 + 4 * ndim
    return header + data[start : start + n * item]


def make_idx(data_dir: Path, name: str) -> dict[str, str]:
    """Write samples/<name>/*.gz; return sha256 of each decompressed sample file."""
    out_dir = HERE / name
    out_dir.mkdir(exist_ok=True)
    sums = {}
    for split, files in IDX_FILES.items():
        for file_name in files:
            head = idx_head(_read(data_dir / name / file_name), IDX_COUNTS[split])
            (out_dir / (file_name + ".gz")).write_bytes(_gzip(head))
            sums[file_name] = hashlib.sha256(head).hexdigest()
    return sums


def _cifar_members(data_dir: Path) -> dict[str, bytes]:
    """Every image in the JPEG copy as {"<split>/<class>/<file>": bytes}."""
    root = data_dir / "cifar-10-jpeg"
    if (root / "train").is_dir():
        return {str(p.relative_to(root)): p.read_bytes() for p in root.glob("*/*/*") if p.is_file()}
    members = {}
    with tarfile.open(root / "cifar-10-jpeg.tar.gz", "r:gz") as tar:
        for m in tar:
            parts = m.name.split("/")
            if m.isfile() and len(parts) >= 3:
                f = tar.extractfile(m)
                if f is not None:
                    members["/".join(parts[-3:])] = f.read()
    return members


def make_cifar(data_dir: Path) -> str:
    """Write samples/cifar-10-jpeg/cifar-10-jpeg.tar.gz; return its sha256."""
    members = _cifar_members(data_dir)
    chosen = []
    for split, per_class in CIFAR_PER_CLASS.items():
        classes = sorted({k.split("/")[1] for k in members if k.startswith(split + "/")})
        for cls in classes:
            names = sorted(k for k in members if k.startswith(f"{split}/{cls}/"))
            chosen += names[:per_class]
    tar_bytes = io.BytesIO()
    with tarfile.open(fileobj=tar_bytes, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for key in sorted(chosen):
            info = tarfile.TarInfo(f"cifar-10-jpeg/{key}")
            info.size, info.mode, info.mtime = len(members[key]), 0o644, 0
            tar.addfile(info, io.BytesIO(members[key]))
    out = HERE / "cifar-10-jpeg" / "cifar-10-jpeg.tar.gz"
    out.parent.mkdir(exist_ok=True)
    out.write_bytes(_gzip(tar_bytes.getvalue()))
    return hashlib.sha256(out.read_bytes()).hexdigest()


def main() -> None:
    """Rebuild every sample and checksums.json."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", type=Path, help="folder with the full datasets")
    data_dir = parser.parse_args().data_dir
    sums = {
        # The loaders check these instead of the full files' sums: a sample is a subset.
        "idx_decompressed_sha256": {n: make_idx(data_dir, n) for n in ("mnist", "fashion-mnist")},
        "file_sha256": {"cifar-10-jpeg/cifar-10-jpeg.tar.gz": make_cifar(data_dir)},
    }
    (HERE / "checksums.json").write_text(json.dumps(sums, indent=2) + "\n")
    total = sum(p.stat().st_size for p in HERE.rglob("*") if p.is_file())
    print(f"samples written to {HERE} ({total / 1e6:.2f} MB in all)")


if __name__ == "__main__":
    main()

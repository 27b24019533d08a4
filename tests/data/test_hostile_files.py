"""Damaged and hostile data files, through the real command line.

Each case is a data folder handed to `mlrepro run mnist-mlp --quick` (or `fast-cifar10 --quick`)
with --data-dir. Every one must end as one `mlrepro: error: ...` line with exit status 2, stay
within a memory bound (the files are small; their headers claim gigabytes), leave no run folder,
no cache entry and the data folder as it was, and run nothing a pickle asks for.

The cases run in children forked from one process that imported torch once (cli_harness.py), so
the suite costs seconds, not a torch import per case.
"""

from __future__ import annotations

import builtins
import gzip
import json
import os
import pickle
import subprocess
import sys
import tarfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from datafiles import (
    CLASSES,
    binary_batch,
    cifar_arrays,
    cifar_splits,
    idx_bytes,
    pickle_batch,
    pickle_meta,
    png_bytes,
    write_binary_batches,
    write_idx,
    write_pickle_batches,
)

HERE = Path(__file__).resolve().parent
MiB, GiB = 1 << 20, 1 << 30
MEMORY_MARGIN_KIB = 200 * 1024  # above the baseline: a torch import alone is several hundred MB
SMALL_CIFAR = {"batch_rows": 4, "md5": {}}  # generated batches, no published checksums


# --- building blocks ---


class _RunsACommand:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


class _Execs:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return builtins.exec, (f"open({str(self.marker)!r}, 'w').close()",)


def _zeros_gz(n: int = 16 * MiB) -> bytes:
    return gzip.compress(bytes(n), compresslevel=9)


_ZEROS_GZ = {}


def bomb(head: bytes, inflated: int) -> bytes:
    """A ~1 MB .gz that inflates to `inflated` bytes: `head`, then zeros, as 16 MiB gzip members."""
    if "member" not in _ZEROS_GZ:
        _ZEROS_GZ["member"] = _zeros_gz()
    first = gzip.compress(head + bytes(16 * MiB - len(head)), compresslevel=9)
    return first + _ZEROS_GZ["member"] * (inflated // (16 * MiB) - 1)


def idx_header(*dims: int) -> bytes:
    return bytes([0, 0, 8, len(dims)]) + b"".join(d.to_bytes(4, "big") for d in dims)


def sparse(path: Path, size: int) -> None:
    """A file of `size` bytes that takes no disk."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.truncate(size)


def tar_header(name: str, size: int, kind: bytes = tarfile.REGTYPE, **fields) -> bytes:
    info = tarfile.TarInfo(name)
    info.size, info.type = size, kind
    for key, value in fields.items():
        setattr(info, key, value)
    return info.tobuf(format=tarfile.GNU_FORMAT)


def tar_member(name: str, data: bytes = b"", kind: bytes = tarfile.REGTYPE, **fields) -> bytes:
    """One member as tar writes it: header, data, zeros to the next 512-byte block."""
    return tar_header(name, len(data), kind, **fields) + data + bytes(-len(data) % 512)


def tar_of(*members: bytes) -> bytes:
    return b"".join(members) + bytes(1024)  # two zero blocks end an archive


def _p2(*parts: bytes) -> bytes:
    return b"\x80\x02" + b"".join(parts) + b"."


_BIG_ARRAY = (
    b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85U\x01b\x87R"
    b"(K\x01J\xe0\x93\x04\x00M\x00\x0c\x86cnumpy\ndtype\nU\x02u1K\x00K\x01\x87R"
    b"(K\x03U\x01|NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb\x89U\x00tb"
)


# --- MNIST-format folders ---


def mnist_files(folder: Path, n: int = 10, split: str = "train") -> None:
    stem = "train" if split == "train" else "t10k"
    write_idx(folder / "mnist" / f"{stem}-images-idx3-ubyte.gz", np.zeros((n, 28, 28), np.uint8))
    write_idx(folder / "mnist" / f"{stem}-labels-idx1-ubyte.gz", np.arange(n, dtype=np.uint8) % 10)


def idx_junk(d: Path):
    for i in range(20):
        (d / f"file{i}.gz").write_bytes(os.urandom(512))
    (d / "mnist").mkdir()
    (d / "mnist" / "train-images").write_bytes(os.urandom(4096))
    (d / "MNIST" / "raw").mkdir(parents=True)
    return "missing train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz]"


def idx_in_place_of(kind: str):
    def build(d: Path):
        mnist_files(d)
        path = d / "mnist" / "train-images-idx3-ubyte.gz"
        path.unlink()
        if kind == "directory":
            path.mkdir()
            return f"{path} is a directory, expected a file"
        if kind == "broken-link":
            path.symlink_to(d / "gone")
            return f"{path} is a broken symbolic link"
        if kind == "fifo":
            os.mkfifo(path)
            return f"{path} is not a regular file"
        path.symlink_to("/dev/zero")
        return f"{path} is not a regular file"

    return build


def idx_labels_1gib(d: Path):
    write_idx(d / "mnist" / "train-images-idx3-ubyte", np.zeros((10, 28, 28), np.uint8))
    sparse(d / "mnist" / "train-labels-idx1-ubyte", GiB)
    return "train-labels-idx1-ubyte is 1,073,741,824 bytes, more than the"


def idx_images_bomb(d: Path):
    (d / "mnist").mkdir()
    (d / "mnist" / "train-images-idx3-ubyte.gz").write_bytes(bomb(idx_header(60000, 28, 28), GiB))
    write_idx(d / "mnist" / "train-labels-idx1-ubyte.gz", np.zeros(60000, np.uint8))
    return "expected 47040016 bytes for 60000x28x28, got more"


def idx_labels_bomb(d: Path):
    write_idx(d / "mnist" / "train-images-idx3-ubyte.gz", np.zeros((10, 28, 28), np.uint8))
    # Small enough on disk (~100 kB) to pass the size check; inflates to 96 MiB.
    (d / "mnist" / "train-labels-idx1-ubyte.gz").write_bytes(bomb(idx_header(10), 96 * MiB))
    return "expected 18 bytes for 10, got more"


def idx_header_claims(dims: tuple[int, ...], expected: str, gz: bool):
    def build(d: Path):
        (d / "mnist").mkdir()
        data = idx_header(*dims) + bytes(64)
        name = "train-images-idx3-ubyte" + (".gz" if gz else "")
        (d / "mnist" / name).write_bytes(gzip.compress(data) if gz else data)
        write_idx(d / "mnist" / "train-labels-idx1-ubyte.gz", np.zeros(10, np.uint8))
        return expected

    return build


def idx_truncated_gz(d: Path):
    mnist_files(d, n=200)
    path = d / "mnist" / "train-images-idx3-ubyte.gz"
    path.write_bytes(
        gzip.compress(
            idx_bytes(np.random.default_rng(0).integers(0, 256, (200, 28, 28), dtype=np.uint8))
        )[:5000]
    )
    return "train-images-idx3-ubyte.gz: truncated gzip stream"


def idx_train_only(d: Path):
    shared = _shared_mnist()
    (d / "mnist").mkdir()
    for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"):
        (d / "mnist" / name).symlink_to(shared / name)
    return f"{d / 'mnist'} has the train files but not the test files"


def _shared_mnist() -> Path | None:
    sys.path.insert(0, str(HERE))
    from conftest import full_data_dir

    folder = full_data_dir()
    return folder / "mnist" if folder and (folder / "mnist").is_dir() else None


# --- CIFAR-10 pickle batches, loose and archived ---


def pickle_folder(d: Path, data_batch_1: bytes) -> Path:
    folder = write_pickle_batches(d / "cifar-10-batches-py", cifar_splits())
    (folder / "data_batch_1").write_bytes(data_batch_1)
    return folder


def pickle_loose(payload, expected: str):
    def build(d: Path):
        pickle_folder(d, payload(d / "MARKER") if callable(payload) else payload)
        return expected

    return build


def pickle_1gib(d: Path):
    folder = pickle_folder(d, b"")
    sparse(folder / "data_batch_1", GiB)
    return "data_batch_1 is 1,073,741,824 bytes, more than the"


def python_archive(d: Path, data_batch_1: bytes) -> Path:
    members = {
        f"cifar-10-batches-py/{n}": pickle_batch(*b, n.encode()) for n, b in cifar_splits().items()
    }
    members["cifar-10-batches-py/batches.meta"] = pickle_meta()
    members["cifar-10-batches-py/data_batch_1"] = data_batch_1
    path = d / "cifar-10-python.tar.gz"
    path.write_bytes(gzip.compress(tar_of(*[tar_member(n, b) for n, b in members.items()])))
    return path


def pickle_archive(payload, expected: str):
    def build(d: Path):
        python_archive(d, payload(d / "MARKER"))
        return expected

    return build


def pickle_archive_bomb(d: Path):
    head = tar_header("cifar-10-batches-py/readme.html", 4 * GiB - 1)
    (d / "cifar-10-python.tar.gz").write_bytes(bomb(head, GiB))
    return "cifar-10-python.tar.gz (unpacked) holds more than the"


def archive_with_headers(name: str, headers: bytes, expected: str):
    def build(d: Path):
        path = d / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(gzip.compress(headers))
        return expected

    return build


# --- CIFAR-10 binary batches ---


def binary_folder(d: Path, data_batch_1: bytes | None) -> Path:
    folder = write_binary_batches(d / "cifar-10-batches-bin", cifar_splits())
    if data_batch_1 is not None:
        (folder / "data_batch_1.bin").write_bytes(data_batch_1)
    return folder


def binary_loose(make, expected: str):
    def build(d: Path):
        folder = binary_folder(d, None)
        make(folder / "data_batch_1.bin")
        return expected

    return build


def binary_archive(changes: dict[str, bytes], expected: str, links: dict | None = None):
    def build(d: Path):
        members = {
            f"cifar-10-batches-bin/{n}.bin": binary_batch(*b) for n, b in cifar_splits().items()
        }
        members.update(changes)
        for name in links or {}:
            members.pop(name)
        raw = tar_of(
            *[tar_member(name, data) for name, data in members.items()],
            *[
                tar_member(name, b"", tarfile.SYMTYPE, linkname=target)
                for name, target in (links or {}).items()
            ],
        )
        (d / "cifar-10-binary.tar.gz").write_bytes(gzip.compress(raw))
        return expected

    return build


# --- image folders, loose and archived ---


def png_bomb_idat(width: int, height: int, full: bool) -> bytes:
    """A PNG whose header claims width x height; with `full`, its pixel stream (all zeros,
    compressed ~1000:1) really inflates to that size."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            len(body).to_bytes(4, "big") + kind + body + zlib.crc32(kind + body).to_bytes(4, "big")
        )

    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + b"\x08\x02\x00\x00\x00"
    if full:
        z = zlib.compressobj(9)
        row = bytes(1 + 3 * width)
        idat = b"".join(z.compress(row) for _ in range(height)) + z.flush()
    else:
        idat = zlib.compress(bytes(1024))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def image_dir(d: Path, name: str, make) -> Path:
    for c in CLASSES:
        folder = d / "cifar-10-jpeg" / "train" / c
        folder.mkdir(parents=True)
        (folder / "0000.png").write_bytes(png_bytes())
    target = d / "cifar-10-jpeg" / "train" / "cat" / name
    make(target)
    return target


def image_loose(name: str, make, expected: str):
    def build(d: Path):
        image_dir(d, name, make)
        return expected

    return build


def image_archive(extra: bytes, expected: str):
    """The image-folder archive of one PNG per class, then `extra` (tar members or headers)."""

    def build(d: Path):
        good = [tar_member(f"cifar-10-jpeg/train/{c}/0000.png", png_bytes()) for c in CLASSES]
        path = d / "cifar-10-jpeg" / "cifar-10-jpeg.tar.gz"
        path.parent.mkdir(parents=True)
        path.write_bytes(gzip.compress(tar_of(*good, extra)))
        return expected

    return build


def image_archive_bomb(d: Path):
    head = tar_header("cifar-10-jpeg/readme.txt", 8 * GiB - 1)
    path = d / "cifar-10-jpeg" / "cifar-10-jpeg.tar.gz"
    path.parent.mkdir(parents=True)
    path.write_bytes(bomb(head, GiB + 64 * MiB))
    return "cifar-10-jpeg.tar.gz (unpacked) holds more than the 1,073,741,824 bytes it can"


def _bytes_of(data: bytes):
    return lambda path: path.write_bytes(data)


# id -> (experiment, builder(data folder) -> expected text, CIFAR checksum table or None)
MNIST, CIFAR = "mnist-mlp", "fast-cifar10"
CASES = {
    "idx-empty-folder": (
        MNIST,
        lambda d: "mnist train: missing train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz]",
        None,
    ),
    "idx-junk-folder": (MNIST, idx_junk, None),
    "idx-directory-for-file": (MNIST, idx_in_place_of("directory"), None),
    "idx-broken-link": (MNIST, idx_in_place_of("broken-link"), None),
    "idx-fifo": (MNIST, idx_in_place_of("fifo"), None),
    "idx-link-to-dev-zero": (MNIST, idx_in_place_of("dev-zero"), None),
    "idx-labels-1gib": (MNIST, idx_labels_1gib, None),
    "idx-gzip-bomb-images": (MNIST, idx_images_bomb, None),
    "idx-gzip-bomb-labels": (MNIST, idx_labels_bomb, None),
    "idx-dims-overflow": (
        MNIST,
        idx_header_claims(
            (2**32 - 1,) * 3, "expected 28x28 images, got 4294967295x4294967295", gz=False
        ),
        None,
    ),
    "idx-claims-4g-images-gz": (
        MNIST,
        idx_header_claims((2**32 - 1, 28, 28), "the header claims 4,294,967,295 images", gz=True),
        None,
    ),
    "idx-truncated-gzip": (MNIST, idx_truncated_gz, None),
    "idx-train-without-test": (MNIST, idx_train_only, None),
    "pickle-os-system": (
        CIFAR,
        pickle_loose(
            lambda m: pickle.dumps({b"data": _RunsACommand(m)}, protocol=2),
            "refusing to unpickle posix.system",
        ),
        SMALL_CIFAR,
    ),
    "pickle-exec": (
        CIFAR,
        pickle_loose(
            lambda m: pickle.dumps({b"data": _Execs(m)}, protocol=2),
            "refusing to unpickle __builtin__.exec",
        ),
        SMALL_CIFAR,
    ),
    "pickle-bytearray-2gib": (
        CIFAR,
        pickle_loose(
            _p2(b"c__builtin__\nbytearray\n\x8a\x05\x00\x00\x00\x80\x00\x85R"),
            "refusing to unpickle __builtin__.bytearray",
        ),
        SMALL_CIFAR,
    ),
    "pickle-ndarray-300000-rows": (
        CIFAR,
        pickle_loose(
            _p2(b"cnumpy\nndarray\nJ\xe0\x93\x04\x00M\x00\x0c\x86\x85R"),
            "numpy.ndarray called directly",
        ),
        SMALL_CIFAR,
    ),
    "pickle-uninitialised-array": (
        CIFAR,
        pickle_loose(
            _p2(b"}(U\x04data", _BIG_ARRAY, b"u"), "holds more than the 12,288 items a batch can"
        ),
        SMALL_CIFAR,
    ),
    # Official-sized batches (no md5 known): 600 kB passes the size check, the count does not.
    "pickle-300000-labels": (
        CIFAR,
        pickle_loose(
            _p2(b"}(U\x04data", _BIG_ARRAY, b"U\x06labels](", b"K\x01" * 300_000, b"eu"),
            "more than 164,096 pickle opcodes",
        ),
        {"batch_rows": 10_000, "md5": {}},
    ),
    # numpy.ndarray((300000, 3072), uint8) called directly: 921 MB of uninitialised memory with
    # 300,000 labels, which a loader that trusts numpy's constructors would train on.
    "pickle-uninitialised-ndarray-call": (
        CIFAR,
        pickle_loose(
            _p2(
                b"}(U\x04datacnumpy\nndarray\nJ\xe0\x93\x04\x00M\x00\x0c\x86cnumpy\ndtype\n"
                b"U\x02u1K\x00K\x01\x87R(K\x03U\x01|NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb\x86R",
                b"U\x06labels](",
                b"K\x00" * 300_000,
                b"eu",
            ),
            "more than 164,096 pickle opcodes",
        ),
        {"batch_rows": 10_000, "md5": {}},
    ),
    "pickle-memo-index": (
        CIFAR,
        pickle_loose(_p2(b"N", b"r\xff\xff\xff\xff"), "pickle memo index 4294967295 out of range"),
        SMALL_CIFAR,
    ),
    "pickle-official-md5": (
        CIFAR,
        pickle_loose(
            lambda m: pickle.dumps({b"data": _RunsACommand(m)}, protocol=2), "data_batch_1: md5 is"
        ),
        None,
    ),
    "pickle-1gib": (CIFAR, pickle_1gib, None),
    "pickle-archive-official-md5": (
        CIFAR,
        pickle_archive(
            lambda m: pickle.dumps({b"data": _RunsACommand(m)}, protocol=2),
            "cifar-10-python.tar.gz: md5 is",
        ),
        None,
    ),
    "pickle-archive-exec": (
        CIFAR,
        pickle_archive(
            lambda m: pickle.dumps({b"data": _Execs(m)}, protocol=2),
            "refusing to unpickle __builtin__.exec",
        ),
        SMALL_CIFAR,
    ),
    "pickle-archive-gzip-bomb": (CIFAR, pickle_archive_bomb, SMALL_CIFAR),
    "pickle-archive-member-claims-4gib": (
        CIFAR,
        archive_with_headers(
            "cifar-10-python.tar.gz",
            tar_header("cifar-10-batches-py/data_batch_1", 4 * GiB),
            "data_batch_1 is 4,294,967,296 bytes, more than the",
        ),
        SMALL_CIFAR,
    ),
    "pickle-archive-pax-1gib": (
        CIFAR,
        archive_with_headers(
            "cifar-10-python.tar.gz",
            tar_header("././@PaxHeader", GiB, tarfile.XHDTYPE),
            "extended header of 1,073,741,824 bytes",
        ),
        SMALL_CIFAR,
    ),
    "binary-not-whole-records": (
        CIFAR,
        binary_loose(_bytes_of(bytes(5000)), "data_batch_1.bin: 5000 bytes is not a whole number"),
        None,
    ),
    "binary-wrong-count": (
        CIFAR,
        binary_loose(
            _bytes_of(binary_batch(*cifar_arrays(3, 0))),
            "data_batch_1.bin: 3 records, expected 10,000",
        ),
        None,
    ),
    "binary-1gib": (
        CIFAR,
        binary_loose(
            lambda p: sparse(p, GiB), "data_batch_1.bin is 1,073,741,824 bytes, more than the"
        ),
        None,
    ),
    "binary-directory-for-file": (
        CIFAR,
        binary_loose(
            lambda p: (p.unlink(), p.mkdir()), "data_batch_1.bin is a directory, expected a file"
        ),
        None,
    ),
    "binary-archive-official-md5": (
        CIFAR,
        binary_archive({}, "cifar-10-binary.tar.gz: md5 is"),
        None,
    ),
    "binary-archive-wrong-count": (
        CIFAR,
        binary_archive(
            {"cifar-10-batches-bin/data_batch_1.bin": binary_batch(*cifar_arrays(3, 0))},
            "data_batch_1.bin: 3 records, expected 4",
        ),
        SMALL_CIFAR,
    ),
    "binary-archive-symlink-member": (
        CIFAR,
        binary_archive(
            {},
            "data_batch_1.bin is not a regular file in the archive",
            links={"cifar-10-batches-bin/data_batch_1.bin": "/etc/passwd"},
        ),
        SMALL_CIFAR,
    ),
    "image-folder-png-bomb": (
        CIFAR,
        image_loose(
            "0001.png",
            _bytes_of(png_bomb_idat(4000, 4000, full=True)),
            "0001.png: image is 4000x4000, expected 32x32",
        ),
        None,
    ),
    "image-folder-1gib-file": (
        CIFAR,
        image_loose(
            "0001.jpg", lambda p: sparse(p, GiB), "0001.jpg is 1,073,741,824 bytes, more than the"
        ),
        None,
    ),
    "image-folder-not-an-image": (
        CIFAR,
        image_loose("0001.jpg", _bytes_of(os.urandom(3000)), "0001.jpg: not a readable image"),
        None,
    ),
    "image-folder-fifo": (
        CIFAR,
        image_loose("0001.jpg", os.mkfifo, "0001.jpg is not a regular file"),
        None,
    ),
    "image-archive-gzip-bomb": (CIFAR, image_archive_bomb, None),
    "image-archive-png-bomb": (
        CIFAR,
        image_archive(
            tar_member("cifar-10-jpeg/train/cat/0001.png", png_bomb_idat(100_000, 100_000, False)),
            "0001.png: not a readable image",
        ),
        None,
    ),
    "image-archive-member-claims-2gib": (
        CIFAR,
        image_archive(
            tar_header("cifar-10-jpeg/train/cat/0001.jpg", 2 * GiB),
            "0001.jpg is 2,147,483,648 bytes, more than the 65,536 bytes it can be",
        ),
        None,
    ),
    "image-archive-symlink-member": (
        CIFAR,
        image_archive(
            tar_member(
                "cifar-10-jpeg/train/cat/0001.jpg", b"", tarfile.SYMTYPE, linkname="/etc/shadow"
            ),
            "0001.jpg is not a regular file in the archive",
        ),
        None,
    ),
}
BASELINES = {"baseline-mnist": MNIST, "baseline-cifar": CIFAR}


def _tree(folder: Path) -> list[tuple[str, int, int]]:
    """What is in a folder (path, size, mtime), without following or reading anything."""
    out = []
    for p in sorted(folder.rglob("*")):
        st = p.lstat()
        out.append((str(p.relative_to(folder)), st.st_size, st.st_mtime_ns))
    return out


def _argv(experiment: str, data_dir: Path, case_dir: Path) -> list[str]:
    return [
        "run",
        experiment,
        "--quick",
        "--data-dir",
        str(data_dir),
        "--out",
        str(case_dir / "runs"),
        "--device",
        "cpu",
        "-q",
    ]


def _env(case_dir: Path) -> dict:
    return {
        "MLREPRO_CACHE": str(case_dir / "cache"),
        "MLREPRO_OFFLINE": "1",
        "MLREPRO_DATA": None,
        "HOME": str(case_dir / "home"),
        "XDG_DATA_HOME": None,
        "XDG_CACHE_HOME": None,
    }


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    """Build every case, run them all through the harness once; {id: (result, case folder,
    expected text, tree of the data folder before)}."""
    root = tmp_path_factory.mktemp("hostile")
    cases, built = [], {}
    for case_id, (experiment, build, checksums) in CASES.items():
        case_dir = root / case_id
        data = case_dir / "data"
        data.mkdir(parents=True)
        if case_id == "idx-train-without-test" and _shared_mnist() is None:
            continue
        expected = build(data)
        built[case_id] = (case_dir, expected, _tree(data))
        cases.append(
            {
                "id": case_id,
                "argv": _argv(experiment, data, case_dir),
                "cwd": str(case_dir),
                "env": _env(case_dir),
                "cifar_checksums": checksums,
                "timeout_s": 60,
            }
        )
    for case_id, experiment in BASELINES.items():
        case_dir = root / case_id
        case_dir.mkdir()
        cases.append(
            {
                "id": case_id,
                "argv": _argv(experiment, case_dir / "absent", case_dir),
                "cwd": str(case_dir),
                "env": _env(case_dir),
                "timeout_s": 60,
            }
        )
    (root / "cases.json").write_text(json.dumps(cases))
    subprocess.run(
        [
            sys.executable,
            str(HERE / "cli_harness.py"),
            str(root / "cases.json"),
            str(root / "results.json"),
        ],
        check=True,
        timeout=600,
    )
    results = {r["id"]: r for r in json.loads((root / "results.json").read_text())}
    baseline = max(results[b]["maxrss_kib"] for b in BASELINES)
    for b in BASELINES:
        assert results[b]["code"] == 2 and "is not a folder" in results[b]["stderr"], results[b]
    return {case_id: (results[case_id], *built[case_id]) for case_id in built}, baseline


def test_there_are_enough_cases():
    assert len(CASES) >= 25
    kinds = {case_id.split("-")[0] for case_id in CASES}
    assert kinds == {"idx", "pickle", "binary", "image"}
    assert any("archive" in c for c in CASES if c.startswith(("pickle", "binary", "image")))


@pytest.mark.parametrize("case_id", list(CASES))
def test_hostile_data_is_one_line_and_leaves_nothing(outcomes, case_id):
    results, baseline = outcomes
    if case_id not in results:
        pytest.skip("needs the full MNIST files")
    result, case_dir, expected, data_before = results[case_id]
    err = result["stderr"]
    assert not result["timed_out"], f"{case_id} ran past 60 s"
    assert result["code"] == 2, err
    assert err.startswith("mlrepro: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err and expected in err, err
    grew = result["maxrss_kib"] - baseline
    assert grew < MEMORY_MARGIN_KIB, f"peak {result['maxrss_kib']:,} KiB, {grew:,} over baseline"
    # Nothing executed, nothing written: no marker, no run folder, the data folder as it was.
    assert not (case_dir / "data" / "MARKER").exists()
    assert not (case_dir / "runs").exists(), _tree(case_dir / "runs")
    assert _tree(case_dir / "data") == data_before
    cache = case_dir / "cache"
    cached = [p for p in cache.rglob("*") if p.is_file()] if cache.exists() else []
    if case_id == "idx-train-without-test":  # the train split is real, verified and cached
        cached = [p for p in cached if not p.name.startswith("mnist-train-")]
    assert not cached, cached


def test_the_command_line_itself(tmp_path):
    """Two cases through `python -m mlrepro` proper, peak memory from RUSAGE_CHILDREN."""
    measure = (
        "import resource, subprocess, sys; "
        "rc = subprocess.run(sys.argv[1:]).returncode; "
        "print(rc, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("MLREPRO_DATA", "XDG_DATA_HOME")}
    env.update(
        MLREPRO_CACHE=str(tmp_path / "cache"),
        MLREPRO_OFFLINE="1",
        OMP_NUM_THREADS="1",
        HOME=str(tmp_path / "home"),
    )

    def run(data_dir: Path) -> tuple[int, str, int]:
        cmd = [
            sys.executable,
            "-c",
            measure,
            sys.executable,
            "-m",
            "mlrepro",
            "run",
            "mnist-mlp",
            "--quick",
            "--data-dir",
            str(data_dir),
            "--out",
            str(tmp_path / "runs"),
            "-q",
        ]
        proc = subprocess.run(
            cmd, check=False, capture_output=True, text=True, env=env, timeout=300
        )
        *lines, last = proc.stderr.splitlines()
        code, rss = map(int, last.split())
        return code, "\n".join(lines) + "\n", rss

    _, _, baseline = run(tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    (tmp_path / "bomb" / "mnist").mkdir(parents=True)
    (tmp_path / "bomb" / "mnist" / "train-images-idx3-ubyte.gz").write_bytes(
        bomb(idx_header(60000, 28, 28), GiB)
    )
    write_idx(tmp_path / "bomb" / "mnist" / "train-labels-idx1-ubyte.gz", np.zeros(60000, np.uint8))
    for folder, expected in (
        (tmp_path / "empty", "missing train-images-idx3-ubyte[.gz]"),
        (tmp_path / "bomb", "60000x28x28, got more"),
    ):
        code, err, rss = run(folder)
        assert code == 2 and err.startswith("mlrepro: error: ") and err.count("\n") == 1, err
        assert expected in err and "Traceback" not in err
        assert rss - baseline < MEMORY_MARGIN_KIB, (rss, baseline)
    assert not (tmp_path / "runs").exists() and not list((tmp_path / "cache").rglob("*.*"))

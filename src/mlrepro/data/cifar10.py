"""CIFAR-10 (Krizhevsky, 2009): 50,000 train / 10,000 test 32x32 colour images, 10 classes.

Reads the three layouts people have: the official Python pickle batches, the official binary
batches, and an image folder (``<split>/<class>/*.jpg``), each loose or as its .tar.gz.

Every file's size is checked before it is read and archives are read in one bounded pass. Files
with a published checksum (`OFFICIAL`) must match it; the pickle batches are checked before they
are unpickled, and then unpickled by a loader that can build nothing but strings, lists, dicts
and integer arrays whose shape and size it checked first.
"""

from __future__ import annotations

import codecs
import contextlib
import hashlib
import io
import os
import pickle
import pickletools
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from mlrepro.data.core import (
    SAMPLES_DIR,
    SPLITS,
    ImageDataset,
    check_labels,
    check_split,
    download_files,
    load_cached,
    locate_data_dir,
    not_found_hint,
    sample_checksums,
    source_key,
    store_cached,
    to_dataset,
    warn_sample,
)
from mlrepro.data.files import (
    IMAGE_SUFFIXES,
    DigestReader,
    KiB,
    MiB,
    TarStream,
    list_image_files,
    manifest_sha256,
    one_line,
    open_data_file,
    problem_with,
)
from mlrepro.data.provenance import FileRecord, Provenance
from mlrepro.errors import DataError

NAME = "cifar10"
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
MEAN = (0.4914, 0.4822, 0.4465)  # of the original train set; the JPEG copy differs by < 0.002
STD = (0.2470, 0.2435, 0.2616)
SHAPE = (3, 32, 32)
URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"

PY_DIR, PY_ARCHIVE = "cifar-10-batches-py", "cifar-10-python.tar.gz"
BIN_DIR, BIN_ARCHIVE = "cifar-10-batches-bin", "cifar-10-binary.tar.gz"
JPEG_DIR, JPEG_ARCHIVE = "cifar-10-jpeg", "cifar-10-jpeg.tar.gz"
META = "batches.meta"
ROW_BYTES = 3 * 32 * 32  # R, G, B planes, each row-major
RECORD_BYTES = 1 + ROW_BYTES  # binary batches: label byte, then the pixels

# Image folders. CIFAR-10 has 60,000 images in all, so no folder or archive of it holds more; a
# 32x32 image file is 1-3 kB (64 KiB leaves room for metadata). The JPEG copy's archive is 19 MB
# and unpacks to 93 MB; the bounds below are generous and only stop absurd files.
MAX_IMAGES = 60_000
MAX_IMAGE_BYTES = 64 * KiB
MAX_IMAGE_ARCHIVE_BYTES = 512 * MiB
MAX_IMAGE_TAR_BYTES = 1024 * MiB


@dataclass(frozen=True)
class Checksums:
    """What the official CIFAR-10 files hold: images per batch, and published md5 sums by file
    name. A file whose name is listed must match; files not listed are read unverified (and
    recorded so). Tests swap `OFFICIAL` for their own small files' numbers."""

    batch_rows: int
    md5: Mapping[str, str]

    @property
    def pickle_max_bytes(self) -> int:
        # Pixels, plus the labels and file names (about 32 bytes a row in the official files).
        return self.batch_rows * (ROW_BYTES + 256) + 64 * KiB

    @property
    def binary_bytes(self) -> int:
        return self.batch_rows * RECORD_BYTES

    @property
    def archive_max_bytes(self) -> int:
        # Six batches, the meta file and a readme, with tar's headers; the archives are gzip
        # of this (170 MB for the official ones).
        return 7 * self.pickle_max_bytes + MiB


OFFICIAL = Checksums(
    batch_rows=10_000,
    md5={
        # Per file: torchvision's datasets/cifar.py. The archives: the CIFAR-10 page. No md5 is
        # published for the loose binary batches (data_batch_1.bin ...), so those are unverified
        # unless read from the archive.
        "data_batch_1": "c99cafc152244af753f735de768cd75f",
        "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
        "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
        "data_batch_4": "634d18415352ddfa80567beed471001a",
        "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
        "test_batch": "40351d587109b95175f43aff81a1287e",
        META: "5ff9c542aee3614f3951f8cda6e48888",
        PY_ARCHIVE: "c58f30108f718f92721af3b95e74349a",
        BIN_ARCHIVE: "c32a1d4ab5d03f1284b67883e8d87530",
    },
)


def load_cifar10(
    split: str = "train",
    data_dir: str | os.PathLike | None = None,
    *,
    download: bool = True,
    allow_sample: bool = True,
) -> ImageDataset:
    """Load a CIFAR-10 split as uint8 (N, 3, 32, 32) images and int64 labels.

    The bundled sample stands in only when no data folder was named (no `data_dir`, no
    $MLREPRO_DATA) and the user data folder has no CIFAR-10 files.
    """
    check_split(NAME, split)
    root, origin = locate_data_dir(data_dir)
    found, missing, problem = _find(root, split)
    why = "download=False"
    if found is None and problem is None and download:
        why = download_cifar(root) or "download did not complete"
        found, missing, problem = _find(root, split)
    if found is not None:
        return _load(split, *found, data_dir=str(root), origin=origin, is_sample=False)
    if problem is not None:
        raise DataError(f"{NAME} {split}: {problem}")

    message = f"{NAME} {split}: no CIFAR-10 files in {root}; missing {' or '.join(missing)}; {why}"
    other = "test" if split == "train" else "train"
    has_other = _find(root, other)[0]
    if has_other is not None:
        # Full train data with the sample's test set would be a silently wrong result.
        message += f"; {has_other[1]} has the {other} files but not the {split} files"
    sample = SAMPLES_DIR / JPEG_DIR / JPEG_ARCHIVE
    if origin != "default" or has_other is not None or not allow_sample or not sample.is_file():
        raise DataError(f"{message}; {not_found_hint(root, origin)}")
    dataset = _load(
        split,
        "image-archive",
        sample,
        data_dir=str(SAMPLES_DIR),
        origin="bundled-sample",
        is_sample=True,
    )
    warn_sample(NAME, split, len(dataset), f"full data not found in {root} ({why})", stacklevel=3)
    return dataset


def download_cifar(root: Path) -> str | None:
    """Fetch the official Python-pickle archive into root; return why not, or None when done."""
    expected = OFFICIAL.md5.get(PY_ARCHIVE)

    def check(path: Path) -> str | None:
        if expected is None:
            return f"no md5 is known for {PY_ARCHIVE}"
        h = hashlib.md5(usedforsecurity=False)
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(MiB), b""):
                h.update(chunk)
        return None if h.hexdigest() == expected else f"md5 {h.hexdigest()}, expected {expected}"

    return download_files([([URL], PY_ARCHIVE, check)], root)


def _batch_names(split: str) -> list[str]:
    return [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]


def _find(root: Path, split: str) -> tuple[tuple[str, Path] | None, list[str], str | None]:
    """The first layout present, as (format, path); what each layout was missing; and what
    stood where a file or folder was expected (a folder, a broken link), if anything."""
    names = _batch_names(split)
    missing, problems = [], []
    for folder, archive, suffix, kind in (
        (PY_DIR, PY_ARCHIVE, "", "cifar-pickle"),
        (BIN_DIR, BIN_ARCHIVE, ".bin", "cifar-binary"),
    ):
        absent = [
            root / folder / (n + suffix)
            for n in names
            if not (root / folder / (n + suffix)).is_file()
        ]
        if not absent:
            return (kind, root / folder), [], None
        if (root / archive).is_file():
            return (kind + "-archive", root / archive), [], None
        problems += [problem_with(p) for p in (*absent, root / archive) if os.path.lexists(p)]
        missing.append(
            f"{root / folder}/{{{','.join(p.name for p in absent)}}} (or {root / archive})"
        )
    split_dir = root / JPEG_DIR / split
    if split_dir.is_dir():
        return ("image-folder", split_dir), [], None
    archives = (root / JPEG_DIR / JPEG_ARCHIVE, root / JPEG_ARCHIVE)
    for packed in archives:
        if packed.is_file():
            return ("image-archive", packed), [], None
    if os.path.lexists(split_dir):
        problems.append(problem_with(split_dir) or f"{split_dir} is a file, expected a folder")
    problems += [problem_with(p) for p in archives if os.path.lexists(p)]
    missing.append(f"{split_dir}/<class>/*.jpg (or {archives[0]})")
    return None, missing, problems[0] if problems else None


def _load(
    split: str, kind: str, path: Path, *, data_dir: str, origin: str, is_sample: bool
) -> ImageDataset:
    fields = {
        "classes": CLASSES,
        "name": NAME,
        "split": split,
        "source": str(path),
        "is_sample": is_sample,
        "mean": MEAN,
        "std": STD,
    }
    if kind == "cifar-pickle":
        sources = [path / n for n in _batch_names(split)]
        sources += [path / META] if (path / META).is_file() else []
    elif kind == "cifar-binary":
        sources = [path / (n + ".bin") for n in _batch_names(split)]
    elif kind == "image-folder":
        sources = list_image_files(path, MAX_IMAGES + 1000)  # room for a stray non-image file
    else:
        sources = [path]
    record_paths = [str(path)] if kind == "image-folder" else [str(p) for p in sources]

    def provenance(split: str, n: int, lossy: bool, files) -> Provenance:
        return Provenance(
            dataset=NAME,
            split=split,
            format=kind,
            lossy=lossy,
            data_dir=data_dir,
            data_dir_from=origin,
            sample=is_sample,
            n=n,
            files=tuple(files),
        )

    key = source_key(NAME, split, sources)
    cached = load_cached(NAME, split, key, SHAPE, record_paths)
    if cached is not None:
        images, labels, meta = cached
        return to_dataset(
            images,
            labels,
            **fields,
            provenance=provenance(split, len(labels), meta["lossy"], meta["files"]),
        )

    lossy = False
    if kind == "image-archive":
        expected = (
            sample_checksums()["file_sha256"][f"{JPEG_DIR}/{JPEG_ARCHIVE}"] if is_sample else None
        )
        decoded, record, lossy = _read_image_archive(path, expected)
        if split not in decoded:
            raise DataError(f"{path}: no images under {split}/<class>/")
        # One pass over the archive decodes both splits; caching both saves a second pass.
        for other, (images, labels) in decoded.items():
            if other != split:
                store_cached(
                    NAME,
                    other,
                    source_key(NAME, other, sources),
                    images,
                    labels,
                    {"source": str(path), "format": kind, "lossy": lossy, "files": [record]},
                )
        (images, labels), files = decoded[split], [record]
    elif kind == "image-folder":
        images, labels, record, lossy = _read_image_dir(path, sources)
        files = [record]
    elif kind.startswith("cifar-pickle"):
        images, labels, files = _read_pickle_batches(path, split, archive=kind.endswith("archive"))
    else:
        images, labels, files = _read_binary_batches(path, split, archive=kind.endswith("archive"))
    store_cached(
        NAME,
        split,
        key,
        images,
        labels,
        {"source": str(path), "format": kind, "lossy": lossy, "files": files},
    )
    return to_dataset(
        images, labels, **fields, provenance=provenance(split, len(labels), lossy, files)
    )


def _verified(where: str, name: str, md5: str) -> bool:
    """Whether a published md5 vouches for the file `name`; a mismatch is a DataError."""
    expected = OFFICIAL.md5.get(name)
    if expected is None:
        return False
    if md5 != expected:
        raise DataError(
            f"{where}: md5 is {md5}, expected {expected} (corrupt, or not the "
            f"official CIFAR-10 file)"
        )
    return True


def _read_file(path: Path, max_bytes: int, what: str, check_size=None) -> tuple[bytes, FileRecord]:
    """A whole (size-checked) file, its md5 checked when one is published, and its record;
    `check_size(size)` may refuse the file before it is read."""
    f, size = open_data_file(path, max_bytes, what)
    with f:
        if check_size is not None:
            check_size(size)
        reader = DigestReader(f, path, max_bytes, md5=True)
        data = reader.read_all()
    verified = reader.md5 is not None and _verified(str(path), path.name, reader.md5)
    return data, FileRecord(
        path=str(path), size=reader.count, sha256=reader.sha256, verified=verified, md5=reader.md5
    )


def _read_archive(path: Path, wanted: Mapping[str, int]) -> tuple[dict[str, bytes], FileRecord]:
    """The members whose base name is in `wanted` (name -> max bytes), in one bounded pass, with
    the archive's md5 checked before any member is used."""
    found = {}
    with TarStream(
        path,
        max_file_bytes=OFFICIAL.archive_max_bytes,
        max_tar_bytes=OFFICIAL.archive_max_bytes,
        md5=True,
    ) as tar:
        for member in tar:  # in file order: seeking back in a .gz restarts decompression
            base = member.name.rsplit("/", 1)[-1]
            if base in wanted and base not in found:
                found[base] = tar.read(member, wanted[base])
        tar.finish()
    verified = _verified(str(path), path.name, tar.raw.md5)
    return found, FileRecord(
        path=str(path),
        size=tar.raw.count,
        sha256=tar.raw.sha256,
        verified=verified,
        md5=tar.raw.md5,
    )


# --- format 1: Python pickle batches ---


def _read_pickle_batches(
    path: Path, split: str, archive: bool
) -> tuple[np.ndarray, np.ndarray, list[FileRecord]]:
    names, rows = _batch_names(split), OFFICIAL.batch_rows
    bound = OFFICIAL.pickle_max_bytes
    if archive:
        blobs, record = _read_archive(path, {**dict.fromkeys(names, bound), META: 64 * KiB})
        absent = [n for n in names if n not in blobs]
        if absent:
            raise DataError(f"{path}: archive lacks {', '.join(absent)}")
        sources = {n: f"{path}:{n}" for n in blobs}
        for n, blob in blobs.items():  # the archive's md5 may be unknown; the members' are not
            _verified(sources[n], n, hashlib.md5(blob, usedforsecurity=False).hexdigest())
        files = [record]
    else:
        blobs, sources, files = {}, {}, []
        what = f"a CIFAR-10 batch of {rows:,} images can be"
        for n in [*names, *([META] if (path / META).is_file() else [])]:
            blobs[n], record = _read_file(path / n, 64 * KiB if n == META else bound, what)
            sources[n] = str(path / n)
            files.append(record)
    if META in blobs:
        meta = unpickle_batch(blobs[META], sources[META], max_rows=0)
        label_names = _get(meta, "label_names")
        label_names = tuple(_text(n) for n in label_names) if isinstance(label_names, list) else ()
        if label_names != CLASSES:
            raise DataError(
                f"{sources[META]}: label_names are {list(label_names)}, expected {list(CLASSES)}"
            )
    images, labels = [], []
    for n in names:
        batch = unpickle_batch(blobs.pop(n), sources[n], max_rows=rows)
        data, batch_labels = _get(batch, "data"), _get(batch, "labels")
        if not (
            isinstance(data, np.ndarray)
            and data.dtype == np.uint8
            and data.shape == (rows, ROW_BYTES)
        ):
            got = (
                f"{data.dtype} {data.shape}"
                if isinstance(data, np.ndarray)
                else type(data).__name__
            )
            raise DataError(
                f"{sources[n]}: expected 'data' as uint8 (N, 3072) with N = {rows}, got {got}"
            )
        if not isinstance(batch_labels, (list, np.ndarray)) or len(batch_labels) != rows:
            found = len(batch_labels) if isinstance(batch_labels, list) else type(batch_labels)
            raise DataError(
                f"{sources[n]}: expected 'labels' as a list of {rows} integers, got {found}"
            )
        try:
            batch_labels = np.asarray(batch_labels, dtype=np.int64)
        except (TypeError, ValueError, OverflowError):
            raise DataError(f"{sources[n]}: 'labels' is not a list of integers") from None
        images.append(data)
        labels.append(check_labels(batch_labels, rows, len(CLASSES), sources[n]))
    # Each row is the R, G, B planes one after another, so rows reshape straight to (3, 32, 32).
    return np.concatenate(images).reshape(-1, *SHAPE), np.concatenate(labels), files


def _get(batch: dict, key: str):
    # Python 2 wrote str keys, which encoding="bytes" turns into bytes; Python 3 writes str.
    return batch.get(key.encode(), batch.get(key))


def _text(value) -> str:
    return value.decode("latin1") if isinstance(value, bytes) else str(value)


# The restricted unpickler. A CIFAR batch is a protocol-2 pickle of a dict of byte strings, lists
# of ints and one numpy array (Python 2 wrote it; Python 3 spells byte strings with
# _codecs.encode). Opcodes are checked before anything is built, so no opcode that makes
# objects of other kinds, reads external state or reserves memory from a length it declares
# (protocol 4-5's BYTEARRAY8, FRAME...) ever runs. The four names a batch uses resolve to stubs:
# numpy.ndarray cannot be called, and an array is built only by BUILD, from bytes already in the
# pickle, after its shape, dtype and length were checked.
_OPCODES = frozenset(
    {
        "PROTO",
        "STOP",
        "MARK",
        "POP",
        "POP_MARK",
        "EMPTY_DICT",
        "DICT",
        "EMPTY_LIST",
        "LIST",
        "EMPTY_TUPLE",
        "TUPLE",
        "TUPLE1",
        "TUPLE2",
        "TUPLE3",
        "APPEND",
        "APPENDS",
        "SETITEM",
        "SETITEMS",
        "PUT",
        "BINPUT",
        "LONG_BINPUT",
        "GET",
        "BINGET",
        "LONG_BINGET",
        "NONE",
        "NEWTRUE",
        "NEWFALSE",
        "INT",
        "BININT",
        "BININT1",
        "BININT2",
        "LONG1",
        "BINFLOAT",
        "SHORT_BINSTRING",
        "BINSTRING",
        "SHORT_BINBYTES",
        "BINBYTES",
        "BINUNICODE",
        "GLOBAL",
        "REDUCE",
        "BUILD",
    }
)
_MEMO_OPCODES = frozenset({"PUT", "BINPUT", "LONG_BINPUT"})
_INT_DTYPES = frozenset({"u1", "i1", "u2", "i2", "u4", "i4", "u8", "i8"})


class _NdarrayName:
    """What `numpy.ndarray` resolves to: a token for `_reconstruct`, not a constructor."""

    def __call__(self, *args, **kwargs):
        raise pickle.UnpicklingError("numpy.ndarray called directly")


_NDARRAY = _NdarrayName()


class _Dtype:
    """numpy.dtype(spec) for the integer types a batch may hold; BUILD sets the byte order."""

    def __init__(self, spec, align=False, copy=True):
        spec = spec.decode("latin1") if isinstance(spec, bytes) else spec
        if spec not in _INT_DTYPES:
            raise pickle.UnpicklingError(f"numpy.dtype({spec!r}) is not an integer type")
        self.dtype = np.dtype(spec)

    def __setstate__(self, state):
        if not (
            isinstance(state, tuple)
            and len(state) in (8, 9)
            and state[0] in (3, 4)
            and all(s is None for s in state[2:5])
        ):
            raise pickle.UnpicklingError("unexpected numpy.dtype state")
        order = state[1].decode("latin1") if isinstance(state[1], bytes) else state[1]
        if order not in ("|", "<", ">", "="):
            raise pickle.UnpicklingError(f"numpy.dtype byte order {order!r}")
        if order in "<>":
            self.dtype = self.dtype.newbyteorder(order)


class _Array:
    """An ndarray to be: BUILD's state is checked, then viewed as an array without copying."""

    def __init__(self, max_items: int):
        self.max_items, self.array = max_items, None

    def __setstate__(self, state):
        if not isinstance(state, tuple) or len(state) not in (4, 5):
            raise pickle.UnpicklingError("unexpected numpy array state")
        shape, dtype, fortran, raw = state[-4:]
        if not (
            isinstance(shape, tuple)
            and 1 <= len(shape) <= 2
            and all(type(d) is int and d >= 0 for d in shape)
        ):
            raise pickle.UnpicklingError(f"numpy array of shape {shape!r}")
        count = 1
        for d in shape:
            count *= d
        if count > self.max_items:
            raise pickle.UnpicklingError(
                f"numpy array of shape {shape} holds more than the "
                f"{self.max_items:,} items a batch can"
            )
        if not isinstance(dtype, _Dtype) or not isinstance(raw, bytes):
            raise pickle.UnpicklingError("numpy array without an integer dtype and raw bytes")
        if len(raw) != count * dtype.dtype.itemsize:
            raise pickle.UnpicklingError(
                f"numpy array of shape {shape}: {len(raw)} bytes of "
                f"data, expected {count * dtype.dtype.itemsize}"
            )
        self.array = np.frombuffer(raw, dtype=dtype.dtype, count=count).reshape(
            shape, order="F" if fortran else "C"
        )


def _latin1_encode(text, encoding="latin1"):
    # Protocol-2 pickles written by Python 3 spell every bytes object as
    # _codecs.encode(text, "latin1"); other codecs (zlib, bz2, ...) are not needed, so refuse them.
    if encoding not in ("latin1", "latin-1") or not isinstance(text, str):
        raise pickle.UnpicklingError(f"_codecs.encode with encoding {encoding!r}")
    return codecs.encode(text, "latin1")


_GLOBALS = frozenset(
    {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),
    }
)


class BatchUnpickler(pickle.Unpickler):
    """Unpickles CIFAR batches and refuses every global they don't need (pickle runs code)."""

    def __init__(self, file, source: str, max_items: int = 0):
        super().__init__(file, encoding="bytes")  # CIFAR's batches are Python 2 pickles
        self.source, self.max_items = source, max_items

    def find_class(self, module: str, name: str):
        """Stubs for numpy array reconstruction and latin-1 bytes; anything else is refused."""
        if (module, name) not in _GLOBALS:
            raise DataError(f"refusing to unpickle {module}.{name} from {self.source}")
        return {
            "_reconstruct": self._reconstruct,
            "ndarray": _NDARRAY,
            "dtype": _Dtype,
            "encode": _latin1_encode,
        }[name]

    def _reconstruct(self, cls, shape, typecode):
        # numpy pickles an array as _reconstruct(ndarray, (0,), b"b") and then BUILDs its state.
        if cls is not _NDARRAY or shape != (0,) or typecode not in (b"b", "b"):
            raise pickle.UnpicklingError("unexpected numpy _reconstruct arguments")
        return _Array(self.max_items)


def _check_opcodes(data: bytes, source: str, max_ops: int) -> None:
    """Walk the pickle's opcodes without running any: only the allowed ones, few enough for a
    batch, memo indices in range, and only the globals a batch names."""
    try:
        for i, (op, arg, pos) in enumerate(pickletools.genops(data)):
            if i >= max_ops:
                raise DataError(
                    f"{source}: more than {max_ops:,} pickle opcodes, more than a "
                    f"CIFAR-10 batch has"
                )
            if op.name not in _OPCODES:
                raise DataError(f"{source}: refusing pickle opcode {op.name} at byte {pos}")
            if op.name == "PROTO" and isinstance(arg, int) and arg > 3:
                raise DataError(f"{source}: pickle protocol {arg}; CIFAR-10 batches are protocol 2")
            if op.name in _MEMO_OPCODES and not (isinstance(arg, int) and 0 <= arg < max_ops):
                raise DataError(f"{source}: pickle memo index {arg} out of range")
            if op.name == "GLOBAL":
                module, _, name = str(arg).partition(" ")
                if (module, name) not in _GLOBALS:
                    raise DataError(f"refusing to unpickle {module}.{name} from {source}")
    except DataError:
        raise
    except Exception as e:  # noqa: BLE001 (genops parses untrusted bytes: any failure means unreadable)
        raise DataError(
            f"{source}: not a readable pickle ({type(e).__name__}: {one_line(e)})"
        ) from None


def unpickle_batch(data: bytes, source: str, max_rows: int | None = None) -> dict:
    """Load one pickled batch (or batches.meta, max_rows=0: no arrays) with the restricted
    unpickler; arrays may hold at most max_rows x 3072 items (default: OFFICIAL.batch_rows)."""
    rows = OFFICIAL.batch_rows if max_rows is None else max_rows
    # A batch is about 3 opcodes per row (labels, file names, memo) plus a few dozen.
    _check_opcodes(data, source, max_ops=16 * rows + 4096)
    try:
        batch = BatchUnpickler(io.BytesIO(data), source, max_items=rows * ROW_BYTES).load()
    except DataError:
        raise
    except (
        pickle.UnpicklingError,
        EOFError,
        AttributeError,
        IndexError,
        KeyError,
        TypeError,
        ValueError,
        OverflowError,
        MemoryError,
    ) as e:  # the ways a damaged pickle fails
        raise DataError(
            f"{source}: not a readable pickle ({type(e).__name__}: {one_line(e)})"
        ) from None
    if not isinstance(batch, dict):
        raise DataError(f"{source}: expected a dict, got {type(batch).__name__}")
    out = {}
    for key, value in batch.items():
        if isinstance(value, _Array):
            if value.array is None:
                raise DataError(f"{source}: array {key!r} has no data")
            value = value.array
        out[key] = value
    return out


# --- format 2: binary batches ---


def _check_records(where: str, size: int, rows: int) -> None:
    if size % RECORD_BYTES or not size:
        raise DataError(
            f"{where}: {size} bytes is not a whole number of {RECORD_BYTES}-byte "
            f"records (1 label + 3072 pixels)"
        )
    if size != rows * RECORD_BYTES:
        raise DataError(
            f"{where}: {size // RECORD_BYTES:,} records, expected {rows:,} (one per "
            f"image of a batch)"
        )


def _read_binary_batches(
    path: Path, split: str, archive: bool
) -> tuple[np.ndarray, np.ndarray, list[FileRecord]]:
    names = [n + ".bin" for n in _batch_names(split)]
    rows = OFFICIAL.batch_rows
    if archive:
        blobs, record = _read_archive(path, dict.fromkeys(names, OFFICIAL.binary_bytes))
        absent = [n for n in names if n not in blobs]
        if absent:
            raise DataError(f"{path}: archive lacks {', '.join(absent)}")
        parts = [(f"{path}:{n}", blobs[n]) for n in names]
        files = [record]
    else:
        parts, files = [], []
        for n in names:
            where = str(path / n)
            blob, record = _read_file(
                path / n,
                OFFICIAL.binary_bytes,
                f"{rows:,} records of {RECORD_BYTES} bytes take",
                lambda size, where=where: _check_records(where, size, rows),
            )
            parts.append((where, blob))
            files.append(record)
    for where, blob in parts:
        _check_records(where, len(blob), rows)
    records = np.frombuffer(b"".join(blob for _, blob in parts), np.uint8)
    records = records.reshape(-1, RECORD_BYTES)  # (N, 3073)
    images = np.ascontiguousarray(records[:, 1:]).reshape(-1, *SHAPE)
    labels = check_labels(records[:, 0], len(records), len(CLASSES), f"{path} ({split})")
    return images, labels, files


# --- format 3: image folder <split>/<class>/*.jpg, loose or in a .tar.gz ---


def _check_classes(found: set[str], where: str) -> None:
    if tuple(sorted(found)) != CLASSES:
        raise DataError(
            f"{where}: class folders are {sorted(found)}, expected the CIFAR-10 "
            f"classes {list(CLASSES)}"
        )


@contextlib.contextmanager
def _bombs_are_errors():
    # PIL warns (on stderr) about images over 89 M pixels and raises over twice that; either
    # way the file is not a CIFAR-10 image. Set once per folder, not per image (it is slow).
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        yield


def _decode(blob: bytes, where: str) -> tuple[np.ndarray, bool]:
    """One 32x32 image as (32, 32, 3) uint8, and whether it was a JPEG. The size is checked from
    the header, before any pixel is decoded, so a decompression bomb stops there. Call it inside
    `_bombs_are_errors()`."""
    try:
        im = Image.open(io.BytesIO(blob), formats=("JPEG", "PNG"))
        if im.size != (32, 32):
            raise DataError(f"{where}: image is {im.size[0]}x{im.size[1]}, expected 32x32")
        im.load()
        jpeg = im.format == "JPEG"
        # A copy that owns its memory: asarray would keep the whole decoded image object alive
        # per picture (about 25 kB each, 1.5 GB for CIFAR-10).
        pixels = np.array(im if im.mode == "RGB" else im.convert("RGB"), dtype=np.uint8)
    except DataError:
        raise
    except (
        OSError,
        SyntaxError,
        ValueError,
        EOFError,
        Image.DecompressionBombError,
        Image.DecompressionBombWarning,
    ) as e:  # how PIL reports damaged files
        raise DataError(f"{where}: not a readable image ({one_line(e)})") from None
    return pixels, jpeg


def _stack(items: list[tuple[str, str, np.ndarray]], where: str) -> tuple[np.ndarray, np.ndarray]:
    """(class, file name, pixels) items as (N, 3, 32, 32) images and labels, sorted by class
    then file name."""
    _check_classes({c for c, _, _ in items}, where)
    index = {c: i for i, c in enumerate(CLASSES)}
    items.sort(key=lambda e: (index[e[0]], e[1]))
    images = np.stack([pixels for _, _, pixels in items])  # (N, 32, 32, 3)
    labels = np.array([index[c] for c, _, _ in items], np.int64)
    return np.ascontiguousarray(images.transpose(0, 3, 1, 2)), labels


def _read_image_dir(
    split_dir: Path, files: list[Path]
) -> tuple[np.ndarray, np.ndarray, FileRecord, bool]:
    if len(files) > MAX_IMAGES:
        raise DataError(
            f"{split_dir}: {len(files):,} images, more than the {MAX_IMAGES:,} CIFAR-10 has"
        )
    items, manifest, lossy = [], [], False
    with _bombs_are_errors():
        for path in files:
            pixels, jpeg, entry = _read_image_file(path, split_dir)
            lossy |= jpeg
            items.append((path.parent.name, path.name, pixels))
            manifest.append(entry)
    images, labels = _stack(items, str(split_dir))
    manifest.sort()
    record = FileRecord(
        path=str(split_dir),
        size=sum(m[1] for m in manifest),
        sha256=manifest_sha256(manifest),
        verified=False,
        count=len(manifest),
    )
    return images, labels, record, lossy


def _read_image_file(path: Path, split_dir: Path) -> tuple[np.ndarray, bool, tuple[str, int, str]]:
    """(pixels, is JPEG, manifest entry) of one loose image file."""
    f, _ = open_data_file(path, MAX_IMAGE_BYTES, "a 32x32 image file can be")
    with f:
        reader = DigestReader(f, path, MAX_IMAGE_BYTES)
        blob = reader.read_all()
    pixels, jpeg = _decode(blob, str(path))
    return pixels, jpeg, (path.relative_to(split_dir).as_posix(), reader.count, reader.sha256)


def _read_image_archive(
    archive: Path, expected_sha256: str | None
) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], FileRecord, bool]:
    """Every split in a <split>/<class>/<image> archive, decoded in one pass; nothing is unpacked
    to disk. Returns ({split: (images, labels)}, the archive's record, whether any was JPEG)."""
    entries: dict[str, list[tuple[str, str, np.ndarray]]] = {}
    count, lossy = 0, False
    with (
        TarStream(
            archive, max_file_bytes=MAX_IMAGE_ARCHIVE_BYTES, max_tar_bytes=MAX_IMAGE_TAR_BYTES
        ) as tar,
        _bombs_are_errors(),
    ):
        for member in tar:
            parts = member.name.split("/")
            if not (
                len(parts) >= 3
                and parts[-3] in SPLITS
                and Path(parts[-1]).suffix.lower() in IMAGE_SUFFIXES
            ):
                continue
            count += 1
            if count > MAX_IMAGES:
                raise DataError(f"{archive}: more than the {MAX_IMAGES:,} images CIFAR-10 has")
            pixels, jpeg = _decode(tar.read(member, MAX_IMAGE_BYTES), f"{archive}:{member.name}")
            lossy |= jpeg
            entries.setdefault(parts[-3], []).append((parts[-2], parts[-1], pixels))
        tar.finish()
    verified = False
    if expected_sha256 is not None:
        if tar.raw.sha256 != expected_sha256:
            raise DataError(
                f"{archive}: sha256 is {tar.raw.sha256}, expected {expected_sha256} "
                f"(the bundled sample is damaged; reinstall mlrepro)"
            )
        verified = True
    decoded = {split: _stack(items, f"{archive}:{split}/") for split, items in entries.items()}
    record = FileRecord(
        path=str(archive), size=tar.raw.count, sha256=tar.raw.sha256, verified=verified
    )
    return decoded, record, lossy

"""Where a dataset split came from: the folder, the format, and every file read with its digests.

`ImageDataset.provenance_dict()` gives it as plain JSON, for example (one MNIST split)::

    {"dataset": "mnist", "split": "test", "format": "idx-gzip", "lossy": false,
     "data_dir": "/data", "data_dir_from": "argument", "sample": false, "n": 10000,
     "files": [{"path": "/data/mnist/t10k-images-idx3-ubyte.gz", "size": 1616508,
                "sha256": "…", "decompressed_sha256": "0fa7…", "verified": true}, …]}

It holds no time stamps, so loading the same files again (from the cache or not) gives an equal
record; `verify_provenance` checks a record against the files on disk without decoding them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from mlrepro.data.files import (
    DigestReader,
    list_image_files,
    manifest_sha256,
    open_data_file,
    problem_with,
)
from mlrepro.errors import DataError

# Where the data folder was named: the `data_dir` argument, the environment variable, or nowhere
# (the user data folder); "bundled-sample" when the sample shipped with the package served.
DATA_DIR_FROM = ("argument", "MLREPRO_DATA", "default", "bundled-sample")
FORMATS = (
    "idx",
    "idx-gzip",
    "cifar-pickle",
    "cifar-pickle-archive",
    "cifar-binary",
    "cifar-binary-archive",
    "image-folder",
    "image-archive",
)
MAX_FOLDER_FILES = 120_000  # an image folder's manifest check lists at most this many entries


@dataclass(frozen=True)
class FileRecord:
    """One file a load read: its path, size and sha256 as read, and whether a known checksum
    vouched for it.

    `decompressed_sha256` is set for gzip files (the IDX checksums are of the decompressed
    content), `md5` for CIFAR-10's files (its published checksums are md5). A folder of loose
    images is one record: `path` is the folder, `count` its files, `size` their total bytes and
    `sha256` that of its manifest (see `files.manifest_sha256`).
    """

    path: str
    size: int
    sha256: str
    verified: bool
    decompressed_sha256: str | None = None
    md5: str | None = None
    count: int | None = None

    def to_dict(self) -> dict:
        out = {"path": self.path, "size": self.size, "sha256": self.sha256}
        for key in ("decompressed_sha256", "md5", "count"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        out["verified"] = self.verified
        return out

    @classmethod
    def from_dict(cls, d: Mapping) -> FileRecord:
        return cls(
            path=str(d["path"]),
            size=int(d["size"]),
            sha256=str(d["sha256"]),
            verified=bool(d["verified"]),
            decompressed_sha256=d.get("decompressed_sha256"),
            md5=d.get("md5"),
            count=d.get("count"),
        )


@dataclass(frozen=True)
class Provenance:
    """What a dataset split was read from; `to_dict()` is its JSON form."""

    dataset: str
    split: str
    format: str  # one of FORMATS
    lossy: bool  # JPEG-compressed pixels (the image-folder copy of CIFAR-10)
    data_dir: str  # the data folder, absolute (the samples' folder for a bundled sample)
    data_dir_from: str  # one of DATA_DIR_FROM
    sample: bool
    n: int
    files: tuple[FileRecord, ...]

    def to_dict(self) -> dict:
        return {
            "dataset": self.dataset,
            "split": self.split,
            "format": self.format,
            "lossy": self.lossy,
            "data_dir": self.data_dir,
            "data_dir_from": self.data_dir_from,
            "sample": self.sample,
            "n": self.n,
            "files": [f.to_dict() for f in self.files],
        }


def verify_provenance(record: Mapping, data_dir: str | os.PathLike | None = None) -> str | None:
    """What differs between a recorded provenance and the files on disk now, or None.

    Checks that each recorded file is still a regular file of the recorded size and sha256 (a
    folder of images: the same manifest), without decoding anything. With `data_dir`, files
    recorded under the record's `data_dir` are looked for under this folder instead (a moved
    copy). Never raises for a damaged record: it says what is wrong with it.
    """
    files = record.get("files") if isinstance(record, Mapping) else None
    if not isinstance(files, list) or not files:
        return "the record lists no files"
    for entry in files:
        try:
            recorded = FileRecord.from_dict(entry)
        except (KeyError, TypeError, ValueError):
            return f"a damaged file entry in the record: {entry!r}"
        path = _rebase(Path(recorded.path), record.get("data_dir"), data_dir)
        try:
            problem = (
                _check_folder(path, recorded)
                if recorded.count is not None
                else _check_file(path, recorded)
            )
        except DataError as e:
            problem = str(e)
        if problem:
            return problem
    return None


def _rebase(path: Path, old_root, new_root) -> Path:
    if new_root is None or not old_root:
        return path
    try:
        return Path(new_root).expanduser().absolute() / path.relative_to(old_root)
    except ValueError:  # not under the recorded folder (a bundled sample): as recorded
        return path


def _check_file(path: Path, recorded: FileRecord) -> str | None:
    problem = problem_with(path)
    if problem:
        return problem
    f, size = open_data_file(path, 1 << 62)
    with f:
        if size != recorded.size:
            return f"{path}: {size:,} bytes now, {recorded.size:,} when recorded"
        reader = DigestReader(f, path, recorded.size)
        reader.drain()
    if reader.count != recorded.size:
        return f"{path}: {reader.count:,} bytes now, {recorded.size:,} when recorded"
    if reader.sha256 != recorded.sha256:
        return f"{path}: sha256 is {reader.sha256} now, {recorded.sha256} when recorded"
    return None


def _check_folder(path: Path, recorded: FileRecord) -> str | None:
    if not path.is_dir():
        return f"{path} is missing" if not path.exists() else f"{path} is not a folder"
    entries = []
    for image in list_image_files(path, MAX_FOLDER_FILES):
        f, size = open_data_file(image, 1 << 30)
        with f:
            reader = DigestReader(f, image, size)
            reader.drain()
        entries.append((image.relative_to(path).as_posix(), reader.count, reader.sha256))
    total = sum(size for _, size, _ in entries)
    if len(entries) != recorded.count or total != recorded.size:
        return (
            f"{path}: {len(entries):,} images of {total:,} bytes now, {recorded.count:,} of "
            f"{recorded.size:,} when recorded"
        )
    now = manifest_sha256(entries)
    if now != recorded.sha256:
        return f"{path}: the images' manifest sha256 is {now} now, {recorded.sha256} when recorded"
    return None

"""Reading data files that may be damaged or hostile, with bounded memory.

Only regular files are read, and only after their size is checked against what the format can
hold; decompression never produces more than the format allows; the digests are of exactly the
bytes that were read (no second pass that could see a different file).
"""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import hashlib
import io
import os
import stat
import tarfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, cast

from mlrepro.errors import DataError

KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30
# Pax and GNU long-name headers are read into memory whole; real ones are a few hundred bytes.
MAX_TAR_HEADER_BYTES = 64 * KiB
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def one_line(text: object) -> str:
    """Collapse whitespace so an error message stays on one line."""
    return " ".join(str(text).split())


def gzip_bound(max_bytes: int) -> int:
    """The largest .gz file that can hold max_bytes of content (deflate adds < 0.1 % to random
    data; 64 KiB covers the header's optional name, comment and extra fields)."""
    return max_bytes + max_bytes // 64 + 64 * KiB


def problem_with(path: Path) -> str | None:
    """Why `path` cannot be read as a data file (a folder, a broken link, missing...), or None."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return f"{path} is a broken symbolic link" if os.path.islink(path) else f"{path} is missing"
    except OSError as e:
        return f"{path}: cannot read ({one_line(e.strerror or e)})"
    if stat.S_ISDIR(st.st_mode):
        return f"{path} is a directory, expected a file"
    if not stat.S_ISREG(st.st_mode):
        return f"{path} is not a regular file"
    return None


def open_data_file(path: Path, max_bytes: int, what: str = "this file") -> tuple[BinaryIO, int]:
    """Open a regular file for reading, refusing it if it holds more than max_bytes.

    Returns (buffered binary file, size in bytes). `what` completes "more than the N bytes ..." in
    the error, e.g. "an MNIST labels file can hold".
    """
    try:
        # O_NONBLOCK: opening a FIFO must not hang waiting for a writer; fstat below refuses it.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        if os.path.islink(path):
            raise DataError(f"{path} is a broken symbolic link") from None
        raise DataError(f"{path}: cannot read (No such file or directory)") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read ({one_line(e.strerror or e)})") from None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise DataError(f"{path} is a directory, expected a file")
        if not stat.S_ISREG(st.st_mode):
            raise DataError(f"{path} is not a regular file")
        if st.st_size > max_bytes:
            raise DataError(
                f"{path} is {st.st_size:,} bytes, more than the {max_bytes:,} bytes {what}"
            )
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
        return os.fdopen(fd, "rb"), st.st_size
    except BaseException:
        os.close(fd)
        raise


class DigestReader:
    """Reads a file through sha256 (and md5 when asked), refusing to read past `limit` bytes."""

    def __init__(self, f: BinaryIO, path: Path, limit: int, md5: bool = False):
        self.f, self.path, self.limit, self.count = f, path, limit, 0
        self._sha256 = hashlib.sha256()
        self._md5 = hashlib.md5(usedforsecurity=False) if md5 else None

    def read(self, n: int | None = -1) -> bytes:
        left = self.limit - self.count + 1  # one byte more tells a file that grew while read
        data = self.f.read(left if n is None or n < 0 else min(n, left))
        self.count += len(data)
        if self.count > self.limit:
            raise DataError(f"{self.path} grew past {self.limit:,} bytes while being read")
        self._sha256.update(data)
        if self._md5 is not None:
            self._md5.update(data)
        return data

    def read_all(self) -> bytes:
        chunks = []
        while chunk := self.read(MiB):
            chunks.append(chunk)
        return b"".join(chunks)

    def drain(self) -> None:
        """Read (and hash) what is left of the file."""
        while self.read(MiB):
            pass

    @property
    def sha256(self) -> str:
        return self._sha256.hexdigest()

    @property
    def md5(self) -> str | None:
        return None if self._md5 is None else self._md5.hexdigest()


def is_gzip(f: BinaryIO) -> bool:
    """Whether a buffered file starts with gzip's magic bytes (told by content, not by name)."""
    return peek(f, 2) == b"\x1f\x8b"


def peek(f: BinaryIO, n: int) -> bytes:
    """The next n bytes of a buffered file (an io.BufferedReader), without consuming them."""
    return cast(io.BufferedReader, f).peek(n)[:n]


class BoundedStream:
    """At most `limit` bytes of a (decompressing) stream; reading one more is a DataError."""

    def __init__(self, stream, limit: int, what: str):
        self.stream, self.limit, self.what, self.count = stream, limit, what, 0

    def read(self, n: int | None = -1) -> bytes:
        left = self.limit - self.count + 1
        data = self.stream.read(left if n is None or n < 0 else min(n, left))
        self.count += len(data)
        if self.count > self.limit:
            raise DataError(f"{self.what} holds more than the {self.limit:,} bytes it can")
        return data


@contextlib.contextmanager
def decompression_errors(path: Path, what: str = "gzip stream") -> Iterator[None]:
    """Turn the ways a damaged gzip or tar stream fails into one-line DataErrors."""
    try:
        yield
    except EOFError:
        raise DataError(f"{path}: truncated {what}") from None
    except tarfile.TarError as e:
        raise DataError(f"{path}: not a readable tar archive ({one_line(e)})") from None
    except (OSError, zlib.error) as e:  # gzip.BadGzipFile is an OSError
        raise DataError(f"{path}: corrupt {what} ({one_line(e)})") from None


class _BoundedTarInfo(tarfile.TarInfo):
    # tarfile reads a pax or GNU long-name header's data into memory in one piece, trusting the
    # size its header claims; refuse big ones before that read.
    _EXTENDED = (
        tarfile.GNUTYPE_LONGNAME,
        tarfile.GNUTYPE_LONGLINK,
        tarfile.XHDTYPE,
        tarfile.XGLTYPE,
        tarfile.SOLARIS_XHDTYPE,
    )

    def _proc_member(self, tarfile_):
        if self.type in self._EXTENDED and self.size > MAX_TAR_HEADER_BYTES:
            raise tarfile.HeaderError(f"extended header of {self.size:,} bytes")
        return super()._proc_member(tarfile_)


class TarStream:
    """One sequential pass over a .tar or .tar.gz: members in file order, the data of those asked
    for, decompression bounded by `max_tar_bytes`, and the digests of the archive file as read.

        with TarStream(path, max_file_bytes=..., max_tar_bytes=...) as tar:
            for member in tar:
                data = tar.read(member, max_bytes)
        tar.raw.sha256
    """

    def __init__(
        self,
        path: Path,
        *,
        max_file_bytes: int,
        max_tar_bytes: int,
        md5: bool = False,
        what: str = "this archive can be",
    ):
        self.path = path
        self._file, self.size = open_data_file(path, max_file_bytes, what)
        self.raw = DigestReader(self._file, path, max_file_bytes, md5)
        self._gz = (
            gzip.GzipFile(fileobj=cast(BinaryIO, self.raw), mode="rb")
            if is_gzip(self._file)
            else None
        )
        self._stream = BoundedStream(self._gz or self.raw, max_tar_bytes, f"{path} (unpacked)")
        self._tar: tarfile.TarFile | None = None

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self._file.close()

    def __iter__(self) -> Iterator[tarfile.TarInfo]:
        with decompression_errors(self.path):
            tar = tarfile.open(  # noqa: SIM115 (closed with the file in __exit__)
                fileobj=cast(BinaryIO, self._stream), mode="r|", tarinfo=_BoundedTarInfo
            )
            self._tar = tar
            yield from tar

    def read(self, member: tarfile.TarInfo, max_bytes: int) -> bytes:
        """The data of the member the iteration is at, refused if over max_bytes."""
        where = f"{self.path}:{member.name}"
        if member.type not in (tarfile.REGTYPE, tarfile.AREGTYPE):
            raise DataError(f"{where} is not a regular file in the archive")
        if member.size > max_bytes:
            raise DataError(
                f"{where} is {member.size:,} bytes, more than the {max_bytes:,} bytes it can be"
            )
        with decompression_errors(self.path):
            extracted = self._tar.extractfile(member) if self._tar is not None else None
            if extracted is None:
                raise DataError(f"{where}: cannot be read from the archive")
            data = extracted.read()
        if len(data) != member.size:
            raise DataError(f"{where}: truncated member ({len(data):,} of {member.size:,} bytes)")
        return data

    def finish(self) -> None:
        """Read the rest of the stream (gzip checks its CRC at the end) so the digests cover the
        whole file."""
        with decompression_errors(self.path):
            while self._stream.read(MiB):
                pass
            self.raw.drain()


def list_image_files(split_dir: Path, max_files: int) -> list[Path]:
    """`<split_dir>/<class>/<image>` files, sorted; refuses a folder with more than max_files
    entries (counted while listing, so a folder of millions stops early)."""
    seen = 0

    def entries(folder) -> Iterator[os.DirEntry]:
        nonlocal seen
        with os.scandir(folder) as it:
            for entry in it:
                seen += 1
                if seen > max_files:
                    raise DataError(f"{split_dir} holds more than {max_files:,} entries")
                yield entry

    found = []
    try:
        classes = sorted((e for e in entries(split_dir) if e.is_dir()), key=lambda e: e.name)
        for class_dir in classes:
            found += [
                Path(e.path)
                for e in entries(class_dir.path)
                if Path(e.name).suffix.lower() in IMAGE_SUFFIXES
            ]
    except OSError as e:
        raise DataError(f"{split_dir}: cannot list ({one_line(e.strerror or e)})") from None
    return sorted(found)


def manifest_sha256(entries: list[tuple[str, int, str]]) -> str:
    """sha256 of a folder's manifest: one `relative path NUL size NUL sha256` line per file."""
    h = hashlib.sha256()
    for rel, size, digest in entries:
        h.update(f"{rel}\0{size}\0{digest}\n".encode())
    return h.hexdigest()

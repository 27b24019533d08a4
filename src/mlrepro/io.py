"""Atomic file writes and JSON that stays valid: the bottom layer every other module may use.

Every write goes to a temporary file in the same folder and is then renamed over the target, so a
process killed at any moment (even with SIGKILL) leaves either the old or the new file, never half
of one.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import torch


# A signal handler that stops the program (the CLI's SIGTERM) calls `interrupt(exc)`: while a file
# is being written the exception waits until the write is done, because raised inside torch.save's
# C++ writer it would come out as a RuntimeError traceback instead of a clean stop.
class _Writes:
    depth = 0
    pending: BaseException | None = None


def interrupt(exc: BaseException) -> None:
    """Raise `exc` now, or, during an atomic write, as soon as the write is done."""
    if _Writes.depth:
        _Writes.pending = exc
        return
    raise exc


@contextlib.contextmanager
def _uninterrupted() -> Iterator[None]:
    _Writes.depth += 1
    try:
        yield
    finally:
        _Writes.depth -= 1
    if _Writes.depth == 0 and _Writes.pending is not None:
        pending, _Writes.pending = _Writes.pending, None
        raise pending


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], object]) -> None:
    """Call `write(f)` on a temp file in the same folder, fsync, then rename it over `path`."""
    with _uninterrupted():
        _atomic_write(Path(path), write)


def _atomic_write(path: Path, write: Callable[[IO[bytes]], object]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it private; these are ordinary files
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    atomic_write(path, lambda f: f.write(data))


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def _jsonable(obj: Any) -> Any:
    """Tensors/numpy scalars to Python numbers; NaN/inf to None so the file stays valid JSON."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, torch.Tensor):
        return _jsonable(obj.tolist())
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalar
        return _jsonable(obj.item())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, Path):
        return str(obj)
    return obj


def to_json(obj: Any, indent: int | None = 2) -> str:
    return json.dumps(_jsonable(obj), indent=indent, allow_nan=False)


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_text(path, to_json(obj) + "\n")


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    atomic_write(path, lambda f: torch.save(obj, f))

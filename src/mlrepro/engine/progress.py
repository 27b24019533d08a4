"""Progress for loops that take more than a few seconds: a live line with count, rate and ETA on a
terminal; elsewhere (logs, CI) one plain line every `every_s` seconds, so a long silent phase never
looks like a hang and a log never fills with carriage returns.

Written here rather than taken from tqdm: the non-terminal output must be whole lines at a slow
period, and the training bar's per-epoch summary must match the History keys exactly.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


def fmt_time(seconds: float) -> str:
    seconds = int(seconds)
    h, rem = divmod(seconds, 3600)
    return f"{h}:{rem // 60:02d}:{rem % 60:02d}" if h else f"{rem // 60:02d}:{rem % 60:02d}"


class Progress:
    """`update(n, note)` as work is done; `close()` at the end (or use it as a context manager)."""

    def __init__(
        self,
        total: int | None,
        desc: str,
        *,
        unit: str = "it",
        stream: TextIO | None = None,
        every_s: float = 30.0,
        refresh_s: float = 0.25,
        enabled: bool = True,
        width: int = 24,
    ):
        self.total, self.desc, self.unit = total, desc, unit
        self.stream = stream if stream is not None else sys.stderr
        self.live = enabled and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.enabled, self.every_s, self.refresh_s, self.width = enabled, every_s, refresh_s, width
        self.done, self.start = 0, time.perf_counter()
        self.last = self.start
        self.dirty = False

    def line(self, note: str = "", now: float | None = None) -> str:
        """`desc 120/430 [=====>....] 00:12<00:31, 9.8 it/s - note`."""
        elapsed = (time.perf_counter() if now is None else now) - self.start
        rate = self.done / elapsed if elapsed > 0 else 0.0
        if self.total:
            frac = min(self.done / self.total, 1.0)
            bar = ""
            if self.live:
                filled = int(self.width * frac)
                bar = (
                    " ["
                    + "=" * filled
                    + (">" if filled < self.width else "")
                    + "." * max(0, self.width - filled - 1)
                    + "]"
                )
            eta = (self.total - self.done) / rate if rate > 0 else 0.0
            head = f"{self.desc} {self.done}/{self.total}{bar} {fmt_time(elapsed)}<{fmt_time(eta)}"
        else:
            head = f"{self.desc} {self.done} {fmt_time(elapsed)}"
        speed = (
            f"{rate:.3g} {self.unit}/s"
            if rate >= 1 or rate == 0
            else f"{1 / rate:.3g} s/{self.unit}"
        )
        return f"{head}, {speed}" + (f" - {note}" if note else "")

    def update(self, n: int = 1, note: str = "") -> None:
        self.done += n
        if not self.enabled:
            return
        now = time.perf_counter()
        if self.live and now - self.last >= self.refresh_s:
            self.stream.write(f"\r{self.line(note, now)}\x1b[K")
            self.stream.flush()
            self.last, self.dirty = now, True
        elif not self.live and now - self.last >= self.every_s:
            self.stream.write(self.line(note, now) + "\n")
            self.stream.flush()
            self.last = now

    def close(self, final: str | None = None) -> None:
        """End the live line; print `final` (a summary line) if given."""
        if not self.enabled:
            return
        if self.live and self.dirty:  # overwrite the live line
            self.stream.write("\r" + (final + "\x1b[K\n" if final is not None else "\x1b[K"))
        elif final is not None:
            self.stream.write(final + "\n")
        self.stream.flush()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

"""Progress of long loops: a tqdm bar on a terminal, a plain line now and then without one.

Without a terminal (CI, Slurm, ``make demo 2>&1 | tee log``) a tqdm bar writes every redraw
behind a ``\\r`` into the log: one 1500-step loop becomes a 200 KB line. There a loop prints
``desc n/total unit (rate, ETA)`` at most every ``HARNESS_PROGRESS_SECONDS`` (default 30) and one
final ``desc total/total unit in 35.6 s (rate)``, the same rule as training progress
(harness.core.process).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator, Sequence
from typing import Protocol, TypeVar

T = TypeVar("T")


class ProgressBar(Protocol):
    """What the loops use of a bar: tqdm and :class:`LineProgress` both provide it."""

    def update(self, n: int = 1) -> object: ...

    def set_postfix_str(self, s: str = "") -> None: ...

    def close(self) -> None: ...

    def __enter__(self) -> ProgressBar: ...

    def __exit__(self, *exc: object) -> None: ...


def progress_bar(total: int, desc: str, unit: str, enabled: bool = True) -> ProgressBar:
    """tqdm on stderr when it is a terminal (as before), else plain lines; nothing when disabled."""
    if sys.stderr.isatty():
        from tqdm import tqdm

        return tqdm(total=total, desc=desc, unit=unit, disable=not enabled, file=sys.stderr)
    return LineProgress(total, desc, unit, enabled)


def track(items: Sequence[T], desc: str, unit: str, enabled: bool = True) -> Iterator[T]:
    """Yield ``items`` while :func:`progress_bar` counts them; the bar closes when the loop ends."""
    with progress_bar(len(items), desc, unit, enabled) as bar:
        for item in items:
            yield item
            bar.update()


def progress_seconds() -> float:
    """Seconds between plain progress lines: ``HARNESS_PROGRESS_SECONDS``, default 30."""
    return float(os.environ.get("HARNESS_PROGRESS_SECONDS", "30"))


def clock(seconds: float) -> str:
    """``m:ss`` or ``h:mm:ss``: ETAs and durations readable at a glance."""
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class LineProgress:
    """The tqdm calls the loops make, printed as a line per ``every`` seconds and one at the end."""

    def __init__(self, total: int, desc: str, unit: str, enabled: bool = True) -> None:
        self.total, self.desc, self.unit = total, desc, unit
        self.enabled = enabled and total > 0
        self.every = progress_seconds()
        self.n = 0
        self.postfix = ""
        self.started = self.last_line = time.monotonic()
        self.closed = False

    def update(self, n: int = 1) -> None:
        """Count ``n`` more; print a line when ``every`` seconds passed (the final one is close's)."""
        self.n += n
        now = time.monotonic()
        if self.enabled and self.n < self.total and now - self.last_line >= self.every:
            self.last_line = now
            self._print(self.running_line(now))

    def set_postfix_str(self, s: str = "") -> None:
        """Extra text (e.g. ``cpu, 12.3 fields/s``) for the next line."""
        self.postfix = s

    def close(self) -> None:
        """Print the final line once: count, duration and rate."""
        if self.enabled and not self.closed:
            self._print(self.final_line(time.monotonic()))
        self.closed = True

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def running_line(self, now: float) -> str:
        """``synth smear 300/1500 img (42.1 img/s, ETA 0:28)``."""
        elapsed = now - self.started
        text = f"{self.desc} {self.n}/{self.total} {self.unit}"
        if self.n and elapsed > 0:
            text += f" ({self._rate(elapsed)}, ETA {clock((self.total - self.n) * elapsed / self.n)})"
        return self._with_postfix(text)

    def final_line(self, now: float) -> str:
        """``synth smear 1500/1500 img in 35.6 s (42.1 img/s)``."""
        elapsed = now - self.started
        text = f"{self.desc} {self.n}/{self.total} {self.unit} in "
        text += f"{elapsed:.1f} s" if elapsed < 60 else clock(elapsed)
        if self.n and elapsed > 0:
            text += f" ({self._rate(elapsed)})"
        return self._with_postfix(text)

    def _rate(self, elapsed: float) -> str:
        """Per second, or seconds per item when slower than one a second (as tqdm)."""
        rate = self.n / elapsed
        return f"{rate:.1f} {self.unit}/s" if rate >= 1 else f"{1 / rate:.1f} s/{self.unit}"

    def _with_postfix(self, text: str) -> str:
        return f"{text} {self.postfix}" if self.postfix else text

    @staticmethod
    def _print(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

"""What every benchmark script shares: the repository on ``sys.path`` (so a script runs from a checkout
without installing it), the BCCD copy the data benchmarks read, CPU and wall clocks, a scratch
folder, and the machine line each prints beside its figures (record both in docs/benchmarks.md).

Scripts run as ``python bench/bench_X.py``, so this folder is ``sys.path[0]`` and ``import _common``
works; import it before any ``harness`` module.
"""

from __future__ import annotations

import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Optional

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DEFAULT_BCCD = ROOT.parent / "shared/datasets/bccd"


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (worker pools, native tools)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def scratch_dir(prefix: str, parent: Optional[Path] = None) -> Path:
    """A fresh temporary folder (under ``parent`` when given); the caller removes it."""
    return Path(tempfile.mkdtemp(prefix=prefix, dir=parent))


def machine() -> str:
    """Cores and the 1-minute load average, printed beside every figure."""
    return f"cores: {os.cpu_count() or 1}; load average: {os.getloadavg()[0]:.1f}"


def best_of(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """The fastest of ``repeat`` wall-clock runs of ``fn`` and its last result."""
    best, out = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def median_and_max(fn: Callable[[], Any], repeat: int) -> tuple[float, float]:
    """Median and slowest of ``repeat`` wall-clock runs of ``fn``."""
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples), max(samples)

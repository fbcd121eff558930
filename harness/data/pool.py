"""One process pool helper for the data stage's per-image work (audit decoding, conversion)."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import sys


def default_workers() -> int:
    """Decoding processes when none are asked for: all cores but one (which parses XML, writes the
    LMDB and runs the report). On 2 cores that is 1, i.e. inline: in interleaved runs a 2-process
    pool converted BCCD×6 in 15.3 s against 12.1–13.2 s inline (docs/benchmarks.md)."""
    return max(1, (os.cpu_count() or 1) - 1)


@contextlib.contextmanager
def worker_pool(workers: int):
    """A process pool for ``workers`` > 1, else None (work runs inline, easy to debug and patch).

    Workers come from a fork server (a clean process started by exec), never forked from this
    process: by the time a pool is made here, OpenCV's and OpenBLAS's thread pools (and tqdm's
    monitor thread) may hold locks, and a child forked then can block forever on one of them —
    ``harness train`` hung that way in its conversion step.
    """
    if workers == 1:
        yield None
        return
    context = multiprocessing.get_context("forkserver" if sys.platform.startswith("linux") else "spawn")
    with context.Pool(workers) as pool:
        yield pool

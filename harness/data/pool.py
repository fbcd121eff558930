"""One process pool helper for the data stage's per-image work (audit decoding, conversion)."""
from __future__ import annotations

import contextlib
import multiprocessing
import sys


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

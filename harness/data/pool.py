"""One process pool helper for the data stage's per-image work (audit decoding, conversion)."""
from __future__ import annotations

import contextlib
import multiprocessing
import sys


@contextlib.contextmanager
def worker_pool(workers: int):
    """A process pool for ``workers`` > 1, else None (work runs inline, easy to debug and patch).

    Forked on Linux so workers start at once and inherit the parent's imports; LMDB handles must
    therefore be opened only after the pool exists.
    """
    if workers == 1:
        yield None
        return
    context = multiprocessing.get_context("fork" if sys.platform.startswith("linux") else "spawn")
    with context.Pool(workers) as pool:
        yield pool

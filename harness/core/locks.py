"""Per-experiment and per-run locks (flock), so two submissions of one run never collide.

A lock lives in the directory it protects (``MODEL_DIR/.lock``, ``RUN_DIR/.prepare.lock``) and is
held by an open file descriptor: a process killed by Slurm (SIGKILL after KillWait) releases it
with its descriptors, so a stale lock can never block a rerun.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

LOCK_FILE = ".lock"
PREPARE_LOCK = ".prepare.lock"


class ExperimentBusy(RuntimeError):
    """Another process is training this experiment right now."""


@contextlib.contextmanager
def held(path: Path, *, wait: bool) -> Iterator[None]:
    """Hold an exclusive flock on ``path``; without ``wait`` raise :class:`ExperimentBusy` if taken."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            raise ExperimentBusy(f"{path.parent} is being trained by another process (lock {path})") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()} {os.uname().nodename}\n".encode())
        yield
    finally:
        os.close(fd)


def experiment_lock(model_dir: Path) -> contextlib.AbstractContextManager:
    return held(Path(model_dir) / LOCK_FILE, wait=False)


def prepare_lock(run_dir: Path) -> contextlib.AbstractContextManager:
    """Data preparation of a run: concurrent tasks wait for each other (they only reuse it)."""
    return held(Path(run_dir) / PREPARE_LOCK, wait=True)


def is_locked(model_dir: Path) -> bool:
    """True while some process holds the experiment's lock (i.e. is training it now)."""
    path = Path(model_dir) / LOCK_FILE
    if not path.is_file():
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False

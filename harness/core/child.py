"""Native code that may end the process runs in a child: its ``exit()`` becomes an error here.

libdarknet calls ``exit(0)`` on a file it cannot read (and the Python process would end with status
0, every result so far unwritten). :class:`InChild` builds an object in a spawned child process and
calls its methods there; when the child ends before answering, the call raises
:class:`NativeExitError` naming what was running and the child's exit status, and the next call
starts a fresh child (so one bad input costs one call, never the others).
"""

from __future__ import annotations

import multiprocessing
import pickle
from typing import Any, Callable

from harness.core.types import NativeFrameworkError


class NativeExitError(NativeFrameworkError):
    """The child process running native code ended without answering (exit(), abort, a crash)."""


def _serve(conn, factory: Callable[..., Any], args: tuple, kwargs: dict) -> None:
    """Child side: build the object, then answer ``(method, args, kwargs)`` requests until ``None``."""
    try:
        obj = factory(*args, **kwargs)
    except Exception as exc:
        conn.send(("error", _picklable(exc)))
        return
    conn.send(("ok", None))
    while True:
        request = conn.recv()
        if request is None:
            break
        name, call_args, call_kwargs = request
        try:
            value = getattr(obj, name)
            conn.send(("ok", value(*call_args, **call_kwargs) if callable(value) else value))
        except Exception as exc:
            conn.send(("error", _picklable(exc)))
    close = getattr(obj, "close", None)
    if close is not None:
        close()


def _picklable(exc: Exception) -> Exception:
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:
        return RuntimeError(f"{type(exc).__name__}: {exc}")


class InChild:
    """``factory(*args, **kwargs)`` living in a child process; ``call(name, ...)`` runs its method there."""

    def __init__(self, what: str, factory: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        self.what = what
        self._spec = (factory, args, kwargs)
        self._process: Any = None  # a spawn-context Process once started
        self._conn: Any = None  # our end of the Pipe once started

    def _start(self) -> None:
        context = multiprocessing.get_context("spawn")  # no fork of a process with threads and C state
        parent, child = context.Pipe()
        factory, args, kwargs = self._spec
        self._process = context.Process(target=_serve, args=(child, factory, args, kwargs), daemon=True)
        self._process.start()
        child.close()
        self._conn = parent
        self._answer(f"loading {self.what}")

    def _answer(self, doing: str) -> Any:
        try:
            status, value = self._conn.recv()
        except (EOFError, OSError):
            self._process.join(10)
            code = self._process.exitcode
            self._stop()
            raise NativeExitError(
                f"{self.what} ended its process (exit status {code}) while {doing}; nothing of that step was kept"
            ) from None
        if status == "error":
            raise value
        return value

    def call(self, name: str, *args: Any, doing: str = "", **kwargs: Any) -> Any:
        """The object's ``name`` (called with the arguments when it is a method), in the child."""
        if self._process is None:
            self._start()
        self._conn.send((name, args, kwargs))
        return self._answer(doing or name)

    def _stop(self) -> None:
        if self._conn is not None:
            self._conn.close()
        if self._process is not None and self._process.is_alive():
            self._process.kill()
            self._process.join()
        self._process, self._conn = None, None

    def close(self) -> None:
        """Ask the child to close its object and end; kill it if it does not within 30 s."""
        if self._process is not None and self._process.is_alive():
            try:
                self._conn.send(None)
                self._process.join(30)
            except OSError:
                pass
        self._stop()

    def __enter__(self) -> InChild:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

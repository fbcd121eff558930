"""Run one native framework process (caffe, darknet) and keep everything it says.

Both frameworks report failures by printing and often still exit 0, so the runner never judges
success itself: it records the full merged log, the exit status and the last parsed training
step, and hands them back so the caller can check the files the run should have written.
"""

from __future__ import annotations

import contextlib
import math
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from harness.core.types import NativeFrameworkError, Progress
from harness.progress import clock, progress_seconds

ParseLine = Callable[[str], Optional[Progress]]

# How long a child gets to exit after SIGTERM before it is killed.
TERMINATE_GRACE_SECONDS = 5.0
_POLL_SECONDS = 0.2


@dataclass
class NativeRun:
    """What one native process did; ``returncode`` alone proves nothing for Caffe/Darknet."""

    argv: list[str]
    log_path: Path
    returncode: int
    seconds: float
    last: Optional[Progress] = None
    progress_lines: int = 0
    parse_errors: list[str] = field(default_factory=list)

    @property
    def crashed(self) -> bool:
        """True when the child died from a signal (segfault, abort), directly or via a shell."""
        return self.returncode < 0 or self.returncode >= 128

    def describe_returncode(self) -> str:
        """Human wording for the exit status, e.g. ``exit 0`` or ``signal 11 (SIGSEGV)``."""
        return describe_returncode(self.returncode)

    def log_tail(self, n: int = 30) -> str:
        return read_log_tail(self.log_path, n)


def describe_returncode(returncode: int) -> str:
    """Name the signal behind a negative (Popen) or 128+N (shell) exit status."""
    signum = -returncode if returncode < 0 else returncode - 128 if returncode > 128 else 0
    if signum <= 0:
        return f"exit {returncode}"
    try:
        name = signal.Signals(signum).name
    except ValueError:
        name = "unknown signal"
    return f"signal {signum} ({name}, exit status {returncode})"


def read_log_tail(log_path: Path, n: int = 30, max_bytes: int = 256_000) -> str:
    """Last ``n`` lines of a (possibly huge) log without reading all of it."""
    try:
        with open(log_path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - max_bytes))
            data = handle.read()
    except OSError:
        return ""
    lines = data.decode("utf-8", errors="replace").splitlines()
    return "\n".join(lines[-n:])


def verbose() -> bool:
    """``-v``/``--verbose`` (or HARNESS_VERBOSE=1): native output on the console as well as in logs."""
    return os.environ.get("HARNESS_VERBOSE") == "1"


@contextlib.contextmanager
def native_output_to(log_path: Path):
    """What C code in *this* process prints on fd 1/2 (libdarknet's layer table on every network
    load) goes to ``log_path`` instead of the console; left alone when verbose."""
    if verbose():
        yield
        return
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with open(log_path, "ab") as log:
        try:
            os.dup2(log.fileno(), 1)
            os.dup2(log.fileno(), 2)
            yield
        finally:
            _flush_c_stdio()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)


def _flush_c_stdio() -> None:
    """C's stdout is block-buffered into a file: flush it before fd 1 points at the console again."""
    try:
        import ctypes

        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError):
        pass


def line_buffered(argv: Sequence[str]) -> list[str]:
    """Prefix ``stdbuf -oL -eL`` so C programs that block-buffer a pipe (darknet) stream live."""
    stdbuf = shutil.which("stdbuf")
    return [stdbuf, "-oL", "-eL", *argv] if stdbuf else list(argv)


def run_native(
    argv: list[str],
    log_path: Path,
    parse_line: ParseLine,
    total_iterations: Optional[int],
    env: Optional[dict] = None,
    cwd: Optional[Path] = None,
    label: str = "",
    *,
    on_progress: Optional[Callable[[Progress], None]] = None,
    show_progress: Optional[bool] = None,
    append: bool = False,
    timeout: Optional[float] = None,
    unbuffer: bool = True,
    stop_signal: int = signal.SIGTERM,
    stop_grace: float = TERMINATE_GRACE_SECONDS,
) -> NativeRun:
    """Run ``argv`` (no shell), merge stdout+stderr into ``log_path``, show live progress.

    ``parse_line`` turns a log line into a :class:`Progress` or ``None``. Returns whatever the
    exit status; raises :class:`NativeFrameworkError` only when the process cannot start, on
    Ctrl-C (the child is terminated, the log kept) or when ``timeout`` seconds pass.
    ``show_progress=None`` shows the bar only when stderr is a terminal. ``stop_signal`` is what
    stops the child (Caffe takes SIGINT to stop cleanly between iterations, never mid-snapshot),
    followed by SIGKILL after ``stop_grace`` seconds.
    """
    argv = [str(a) for a in argv]
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    full_argv = line_buffered(argv) if unbuffer else argv
    started = time.monotonic()
    with open(log_path, "a" if append else "w", encoding="utf-8", errors="replace") as log:
        child = _start_child(full_argv, argv, log_path, env, cwd)
        lines: queue.Queue[Optional[str]] = queue.Queue()
        reader = threading.Thread(target=_pump_lines, args=(child, log, lines), daemon=True)
        reader.start()
        display = _ProgressDisplay(label or Path(argv[0]).name, total_iterations, show_progress)
        run = NativeRun(argv=argv, log_path=log_path, returncode=0, seconds=0.0)
        try:
            with _sigterm_as_interrupt():
                _consume(lines, parse_line, run, display, on_progress, started, timeout, child, log_path)
                child.wait()
                reader.join()
        except KeyboardInterrupt as interrupt:
            _stop_child(child, stop_signal, stop_grace)
            reader.join(timeout=TERMINATE_GRACE_SECONDS)
            log.flush()
            how = "terminated (SIGTERM)" if isinstance(interrupt, _Terminated) else "interrupted (Ctrl-C)"
            raise NativeFrameworkError(
                f"{label or argv[0]}: {how}; the native process was stopped. Full log kept at {log_path}",
                read_log_tail(log_path),
            ) from None
        finally:
            display.close()
    run.returncode = child.returncode
    run.seconds = time.monotonic() - started
    return run


def _start_child(full_argv: list[str], argv: list[str], log_path: Path, env, cwd) -> subprocess.Popen:
    """Start in its own session so Ctrl-C reaches only us and we decide how the child stops."""
    merged_env = None if env is None else {**os.environ, **{k: str(v) for k, v in env.items()}}
    try:
        return subprocess.Popen(
            full_argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=merged_env,
            cwd=None if cwd is None else str(cwd),
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
    except OSError as exc:
        raise NativeFrameworkError(f"cannot start {argv[0]!r} (log would be {log_path}): {exc}") from exc


class _Terminated(KeyboardInterrupt):
    """SIGTERM to the harness (CI timeout, ``kill``): stop the child exactly as on Ctrl-C."""


@contextlib.contextmanager
def _sigterm_as_interrupt():
    """The child runs in its own session, so a SIGTERM to us must be passed on by us."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise _Terminated()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _resolve_prctl():
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_PRCTL = _resolve_prctl() if sys.platform.startswith("linux") else None
_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """In the forked child: get SIGTERM if the harness dies without cleaning up (e.g. SIGKILL)."""
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)


def _pump_lines(child: subprocess.Popen, log, lines: queue.Queue[Optional[str]]) -> None:
    """Reader thread: copy every byte to the log at once, hand decoded lines to the main thread."""
    assert child.stdout is not None
    for raw in iter(child.stdout.readline, b""):
        text = raw.decode("utf-8", errors="replace")
        log.write(text)
        log.flush()
        lines.put(text.rstrip("\r\n"))
    child.stdout.close()
    lines.put(None)


def _consume(lines, parse_line, run, display, on_progress, started, timeout, child, log_path) -> None:
    """Main-thread loop; polls so that Ctrl-C and the timeout are noticed while the child is quiet."""
    echo = verbose()
    while True:
        if timeout is not None and time.monotonic() - started > timeout:
            _stop_child(child)
            raise NativeFrameworkError(
                f"{run.argv[0]}: still running after {timeout:.0f} s, terminated. Full log at {log_path}",
                read_log_tail(log_path),
            )
        try:
            line = lines.get(timeout=_POLL_SECONDS)
        except queue.Empty:
            continue
        if line is None:
            return
        if echo:
            print(line, file=sys.stderr, flush=True)
        progress = _parse_safely(parse_line, line, run)
        if progress is None:
            continue
        run.last = progress
        run.progress_lines += 1
        display.update(progress)
        if on_progress is not None:
            on_progress(progress)


def _parse_safely(parse_line: ParseLine, line: str, run: NativeRun) -> Optional[Progress]:
    """A parser bug must not kill a long training run: record it and carry on."""
    try:
        return parse_line(line)
    except Exception as exc:
        if len(run.parse_errors) < 20:
            run.parse_errors.append(f"{type(exc).__name__}: {exc} in line {line!r}")
        return None


def _stop_child(child: subprocess.Popen, signum: int = signal.SIGTERM, grace: float = TERMINATE_GRACE_SECONDS) -> None:
    """Signal the child's process group (SIGTERM by default), then SIGKILL if it does not exit in time."""
    if child.poll() is not None:
        return
    _signal_group(child, signum)
    try:
        child.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        _signal_group(child, signal.SIGKILL)
        child.wait()


def _signal_group(child: subprocess.Popen, signum: int) -> None:
    try:
        os.killpg(child.pid, signum)
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError):
            child.send_signal(signum)


class _ProgressDisplay:
    """Training progress: iteration/total, loss, lr, it/s, ETA.

    On a terminal, one tqdm bar. Without one (CI, Slurm, ``| tee``) a plain line every
    ``HARNESS_PROGRESS_SECONDS`` (default 30) and at the last iteration, so logs show progress
    without thousands of bar redraws. Rates start at the first parsed iteration so a resumed run
    shows its true rate and ETA. ``show=False`` or ``-v`` (native log streamed) shows nothing.
    """

    def __init__(self, label: str, total: Optional[int], show: Optional[bool]) -> None:
        import sys

        self.label = label
        self.total = total
        wanted = show is not False and not verbose()
        self.bar_mode = wanted and (show is True or sys.stderr.isatty())
        self.line_mode = wanted and not self.bar_mode
        self.enabled = self.bar_mode or self.line_mode
        self.every = progress_seconds()
        self.bar: Optional[Any] = None  # a tqdm bar once the first progress arrives
        self.first: Optional[tuple[int, float]] = None
        self.last_line = -math.inf

    def update(self, progress: Progress) -> None:
        if self.bar_mode:
            self._update_bar(progress)
        elif self.line_mode:
            self._maybe_print_line(progress)

    def _update_bar(self, progress: Progress) -> None:
        if self.bar is None:
            from tqdm import tqdm

            start = max(0, progress.iteration - 1)
            self.bar = tqdm(total=self.total, initial=start, desc=self.label, unit="it", dynamic_ncols=True, leave=True)
        bar = self.bar
        bar.set_postfix(_postfix(progress), refresh=False)
        bar.update(max(0, progress.iteration - bar.n))

    def _maybe_print_line(self, progress: Progress) -> None:
        import sys

        now = time.monotonic()
        if self.first is None:
            self.first = (progress.iteration - 1, now)
        done = self.total is not None and progress.iteration >= self.total
        if now - self.last_line < self.every and not done:
            return
        self.last_line = now
        print(self.line(progress, now), file=sys.stderr, flush=True)

    def line(self, progress: Progress, now: float) -> str:
        """``label 120/320 loss 4.1 avg 4.3 lr 0.001 1.25 it/s ETA 2:40``."""
        total = f"/{self.total}" if self.total else ""
        fields = " ".join(f"{k} {v}" for k, v in _postfix(progress).items())
        start_it, start_t = self.first or (progress.iteration - 1, now)
        rate = (progress.iteration - start_it) / (now - start_t) if now > start_t else 0.0
        text = f"{self.label} {progress.iteration}{total} {fields}".rstrip()
        if rate > 0:
            text += f" {rate:.3g} it/s"
            if self.total and progress.iteration < self.total:
                text += f" ETA {clock((self.total - progress.iteration) / rate)}"
        return text

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _postfix(progress: Progress) -> dict:
    """Loss/avg/lr when known (a counter-only line, e.g. Darknet valid's, passes loss=nan)."""
    fields = {} if math.isnan(progress.loss) else {"loss": f"{progress.loss:.4g}"}
    if progress.avg_loss is not None:
        fields["avg"] = f"{progress.avg_loss:.4g}"
    if progress.lr is not None:
        fields["lr"] = f"{progress.lr:.3g}"
    return fields

"""Read what ``caffe train`` says (glog lines) into loss rows, snapshots and fatal errors.

Caffe prints one block per displayed iteration, in this order (solver.cpp / sgd_solver.cpp)::

    I1124 02:10:11.123456  1234 solver.cpp:231] Iteration 20, loss = 8.41          # smoothed
    I1124 02:10:11.123500  1234 solver.cpp:247]     Train net output #0: mbox_loss = 7.9 (* 1 = 7.9 loss)
    I1124 02:10:11.123600  1234 sgd_solver.cpp:106] Iteration 20, lr = 0.001

(upstream BVLC also writes ``Iteration 20 (1.3 iter/s, 15.4s/20 iters), loss = 8.41``; both
forms are read). The *instant* loss is the sum of the weighted ``Train net output`` losses; the
``loss =`` number is Caffe's running mean over ``average_loss`` iterations, so it becomes
``avg_loss``. ``seconds`` is training time from the glog timestamps, summed over the segments
of a resumed run (the harness writes a ``==> harness:`` marker line before each run; the pause
between runs is not counted).

Caffe often exits 0 after a failure, so the parser also collects the evidence a caller needs to
judge the run: ``F…`` fatal lines (``Check failed: …``), protobuf text-format errors, signal
reports, NaN losses, snapshots written and whether "Optimization Done." was reached.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Optional

from harness.core.atomic import write_csv
from harness.core.types import Progress

RUN_MARKER = "==> harness:"
LOSS_CSV_COLUMNS = ("iteration", "loss", "avg_loss", "lr", "seconds")

_FLOAT = r"[-+]?(?:nan|inf|\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?)"
# glog ≥ 0.6 (Debian 12) writes the year: I20261124 02:39:15.671307 14933 solver.cpp:84] …
GLOG_PREFIX = re.compile(
    r"^([IWEF])(\d{4})?(\d{2})(\d{2}) (\d{2}):(\d{2}):(\d{2})\.(\d{6})\s+\d+\s+(\S+?):\d+\]\s?(.*)$"
)
ITERATION_LOSS = re.compile(rf"^Iteration (\d+)(?: \(([^)]*)\))?, loss = ({_FLOAT})$", re.I)
ITERATION_LR = re.compile(rf"^Iteration (\d+), lr = ({_FLOAT})$", re.I)
TRAIN_OUTPUT = re.compile(
    rf"^\s*Train net output #\d+: (\S+) = ({_FLOAT})(?: \(\* ({_FLOAT}) = ({_FLOAT}) loss\))?$", re.I
)
TEST_OUTPUT = re.compile(rf"^\s*Test net output #\d+: (\S+) = ({_FLOAT})", re.I)
TESTING = re.compile(r"^Iteration (\d+), Testing net \(#(\d+)\)$")
SNAPSHOT_MODEL = re.compile(r"^Snapshotting to (?:binary proto|HDF5) file (.+)$")
SNAPSHOT_STATE = re.compile(r"^Snapshotting solver state to (?:binary proto|HDF5) file (.+)$")
RESTORING = re.compile(r"^(?:Restoring previous solver status from|Resuming from) (.+)$")  # Solve() / caffe tool
SEGMENT_START = re.compile(r"^Solving (.*)$")
PROTOBUF_ERROR = re.compile(r"^\[libprotobuf (?:ERROR|FATAL) [^\]]*\] (.*)$")
SIGNAL_REPORT = re.compile(r"^\*\*\* (?:SIG\w+|Aborted at) .*")


@dataclass
class TestOutput:
    iteration: int
    net: int
    name: str
    value: float


@dataclass
class CaffeLog:
    """Everything a caller needs to decide whether a ``caffe train`` run really worked."""

    rows: list[Progress] = field(default_factory=list)  # one per displayed iteration
    model_snapshots: list[Path] = field(default_factory=list)
    state_snapshots: list[Path] = field(default_factory=list)
    test_outputs: list[TestOutput] = field(default_factory=list)
    fatal: list[str] = field(default_factory=list)  # F-lines, protobuf errors, signals (last run)
    earlier_fatal: list[str] = field(default_factory=list)  # the same from earlier runs of a resumed log
    restored_from: list[Path] = field(default_factory=list)
    optimization_done: bool = False  # the last run reached "Optimization Done."
    net_name: str = ""

    @property
    def last_iteration(self) -> int:
        return self.rows[-1].iteration if self.rows else 0

    @property
    def nan_iterations(self) -> list[int]:
        return [r.iteration for r in self.rows if not _finite(r.loss) or not _finite(r.avg_loss)]


@dataclass
class _Pending:
    iteration: int
    avg_loss: float
    seconds: Optional[float]
    train_loss: Optional[float] = None


class CaffeLogParser:
    """Line-by-line parser; :meth:`feed` returns a :class:`Progress` when an iteration completes.

    Stateful because one iteration spans three lines; use one parser per log.
    """

    def __init__(self) -> None:
        self.log = CaffeLog()
        self._pending: Optional[_Pending] = None
        self._by_iteration: dict[int, Progress] = {}
        self._testing: Optional[tuple[int, int]] = None
        self._segment_start: Optional[datetime] = None
        self._segment_offset = 0.0
        self._last_seconds = 0.0
        self._previous_stamp: Optional[datetime] = None

    def feed(self, line: str) -> Optional[Progress]:
        """Consume one log line (with or without the glog prefix)."""
        line = line.rstrip("\r\n")
        if line.startswith(RUN_MARKER):
            self._start_new_run()
            return None
        level, stamp, message = split_glog(line)
        seconds = self._elapsed(stamp)
        if level == "F":
            self.log.fatal.append(message)
        return self._dispatch(message.strip(), message, seconds)

    def finish(self) -> CaffeLog:
        """Flush a half-finished iteration block and return the rows sorted by iteration."""
        self._complete_pending()
        self.log.rows = [self._by_iteration[i] for i in sorted(self._by_iteration)]
        return self.log

    # ------------------------------------------------------------------ line kinds

    def _dispatch(self, text: str, raw: str, seconds: Optional[float]) -> Optional[Progress]:
        match = ITERATION_LOSS.match(text)
        if match:
            finished = self._complete_pending()
            self._pending = _Pending(int(match.group(1)), _float(match.group(3)), seconds)
            return finished
        match = ITERATION_LR.match(text)
        if match:
            return self._complete_pending(lr=_float(match.group(2)), iteration=int(match.group(1)))
        match = TRAIN_OUTPUT.match(raw)
        if match and self._pending is not None:
            self._add_train_output(match)
            return None
        if self._note_testing(text, raw):
            return None
        return self._note_events(text)

    def _add_train_output(self, match: re.Match) -> None:
        if match.group(4) is None:  # not a loss output (e.g. accuracy)
            return
        value = _float(match.group(4))
        pending = self._pending
        assert pending is not None  # a train output line follows its iteration line
        pending.train_loss = value if pending.train_loss is None else pending.train_loss + value

    def _note_testing(self, text: str, raw: str) -> bool:
        match = TESTING.match(text)
        if match:
            self._testing = (int(match.group(1)), int(match.group(2)))
            return True
        match = TEST_OUTPUT.match(raw)
        if match and self._testing is not None:
            iteration, net = self._testing
            self.log.test_outputs.append(TestOutput(iteration, net, match.group(1), _float(match.group(2))))
            return True
        return False

    def _note_events(self, text: str) -> Optional[Progress]:
        """Snapshots, restores, the end of training (which completes the final loss line)."""
        for pattern, target in (
            (SNAPSHOT_STATE, self.log.state_snapshots),
            (SNAPSHOT_MODEL, self.log.model_snapshots),
            (RESTORING, self.log.restored_from),
        ):
            match = pattern.match(text)
            if match:
                target.append(Path(match.group(1).strip()))
                return None
        if text == "Optimization Done.":
            self.log.optimization_done = True
            return self._complete_pending()
        elif (start := SEGMENT_START.match(text)) and not self.log.net_name:
            self.log.net_name = start.group(1)
        elif PROTOBUF_ERROR.match(text) or SIGNAL_REPORT.match(text):
            self.log.fatal.append(text)
        return None

    def _complete_pending(self, lr: Optional[float] = None, iteration: Optional[int] = None) -> Optional[Progress]:
        pending = self._pending
        if pending is None or (iteration is not None and iteration != pending.iteration):
            return None
        self._pending = None
        loss = pending.train_loss if pending.train_loss is not None else pending.avg_loss
        row = Progress(pending.iteration, loss, pending.avg_loss, lr, pending.seconds)
        self._by_iteration[row.iteration] = row  # a resumed run re-displays: latest wins
        return row

    # ------------------------------------------------------------------ time

    def _elapsed(self, stamp: Optional[datetime]) -> Optional[float]:
        """Seconds since the run started, summed over runs (marker lines or a clock going back)."""
        if stamp is None:
            return None
        if self._previous_stamp is not None:
            stamp = _roll_year(self._previous_stamp, stamp)
        if self._segment_start is None or _is_new_segment(self._previous_stamp, stamp):
            self._segment_offset = self._last_seconds
            self._segment_start = stamp
        self._previous_stamp = stamp
        self._last_seconds = self._segment_offset + (stamp - self._segment_start).total_seconds()
        return self._last_seconds

    def _start_new_run(self) -> None:
        """A marker line: what judged the earlier run must not judge the next one."""
        self._complete_pending()
        self.log.earlier_fatal.extend(self.log.fatal)
        self.log.fatal = []
        self.log.optimization_done = False
        self.mark_new_segment()

    def mark_new_segment(self) -> None:
        """Called between the runs of a resumed training so the pause is not counted."""
        self._segment_start = None
        self._previous_stamp = None


def run_marker(text: str) -> str:
    """The line the harness writes into train.log before each (resumed) ``caffe train`` run."""
    return f"{RUN_MARKER} {text}"


def split_glog(line: str) -> tuple[str, Optional[datetime], str]:
    """``(level, timestamp, message)``; lines without a glog prefix get level ``""``."""
    match = GLOG_PREFIX.match(line)
    if not match:
        return "", None, line
    level, year, month, day, hour, minute, second, micro, _source, message = match.groups()
    try:
        stamp = datetime(int(year or 2000), int(month), int(day), int(hour), int(minute), int(second), int(micro))
    except ValueError:  # 29 February in a non-leap base year, or garbage
        stamp = None
    return level, stamp, message


def _roll_year(previous: datetime, stamp: datetime) -> datetime:
    """Older glog omits the year; a log running over New Year would otherwise go back in time."""
    while stamp < previous and (previous - stamp).days > 300:
        stamp = stamp.replace(year=stamp.year + 1)
    return stamp


def _is_new_segment(previous: Optional[datetime], stamp: datetime) -> bool:
    if previous is None:
        return True
    return stamp < previous


def _float(text: str) -> float:
    return float(text)  # Python reads nan, -nan, inf as C++ prints them


def _finite(value: Optional[float]) -> bool:
    return value is None or math.isfinite(value)


def parse_caffe_log(source: str | Path | Iterable[str]) -> CaffeLog:
    """Parse a whole log file (path) or an iterable of lines."""
    parser = CaffeLogParser()
    if isinstance(source, (str, Path)):
        path = Path(source)
        try:
            lines: Iterable[str] = path.read_text(errors="replace").splitlines()
        except OSError as exc:
            raise ValueError(f"{path}: cannot read Caffe log: {exc}") from exc
    else:
        lines = source
    for line in lines:
        parser.feed(line)
    return parser.finish()


def write_loss_csv(rows: Iterable[Progress], path: str | Path) -> Path:
    """``iteration,loss,avg_loss,lr,seconds`` (architecture.md); empty cells for unknowns."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_csv(
        path,
        LOSS_CSV_COLUMNS,
        ([row.iteration, _cell(row.loss), _cell(row.avg_loss), _cell(row.lr), _cell(row.seconds, 3)] for row in rows),
    )
    return path


def _cell(value: Optional[float], digits: Optional[int] = None) -> str:
    if value is None:
        return ""
    if digits is not None and math.isfinite(value):
        return f"{value:.{digits}f}"
    return repr(float(value))

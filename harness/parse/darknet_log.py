"""Read a Darknet training log (pjreddie's or AlexeyAB's): iteration lines to ``loss.csv``, plus the failure signs.

Darknet prints one line per iteration (``printf("%ld: %f, %f avg, %f rate, %lf seconds, %d images")``)
and reports most failures only as text (``Couldn't open file: …``) while exiting 0, so the log
is the evidence both for the loss curve and for what went wrong.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from harness.core.atomic import write_csv
from harness.core.types import Progress

# Loss fields may be "nan", "-nan", "inf": \S+ keeps them and float() understands all of them.
# AlexeyAB's fork prints " N: loss, avg avg loss, lr rate, s seconds, n images, h hours left".
ITERATION_LINE = re.compile(
    r"^\s*(?P<iteration>\d+): (?P<loss>\S+), (?P<avg>\S+) avg(?: loss)?, (?P<lr>\S+) rate, "
    r"(?P<seconds>\S+) seconds, (?P<images>\d+) images(?:, \S+ hours left)?\s*$"
)
COULD_NOT_OPEN = re.compile(r"Couldn't open file: (?P<path>.*?)\s*$")
# AlexeyAB prints this for a missing label file and trains on no boxes (exit 0); pjreddie's
# "Couldn't open file: …labels/x.txt" is the same finding (it then segfaults or exits).
CANNOT_OPEN_LABEL = re.compile(r"Can't open label file\..*?: (?P<path>.*?)\s*$")
SAVING_WEIGHTS = re.compile(r"Saving weights to (?P<path>.*?)\s*$")
LOSS_CSV_HEADER = ("iteration", "loss", "avg_loss", "lr", "seconds")


@dataclass
class DarknetStep(Progress):
    """A Darknet iteration line; ``images`` is iteration × batch, as Darknet counts it."""

    images: int = 0


def parse_darknet_line(line: str) -> Optional[DarknetStep]:
    """One training iteration from a log line, or ``None`` for every other line."""
    match = ITERATION_LINE.match(line)
    if match is None:
        return None
    try:
        return DarknetStep(
            iteration=int(match["iteration"]),
            loss=_float(match["loss"]),
            avg_loss=_float(match["avg"]),
            lr=_float(match["lr"]),
            seconds=_float(match["seconds"]),
            images=int(match["images"]),
        )
    except ValueError:
        return None  # a line that only looks like an iteration (e.g. garbled by a crash)


def _float(text: str) -> float:
    """``float`` that also reads C's ``-nan`` / ``-inf`` spellings."""
    return float(text)


@dataclass
class DarknetLogFindings:
    """Everything in a Darknet training log that the harness checks after the run."""

    steps: list[DarknetStep] = field(default_factory=list)
    could_not_open: list[str] = field(default_factory=list)
    saved_weights: list[str] = field(default_factory=list)
    missing_labels: list[str] = field(default_factory=list)  # label files either fork could not open

    @property
    def label_problem(self) -> Optional[str]:
        """A sentence naming the first unopenable label file and how many there were, or None."""
        if not self.missing_labels:
            return None
        return (
            f"Darknet could not open {len(self.missing_labels)} label file(s), e.g. {self.missing_labels[0]!r} "
            "(AlexeyAB then trains without those boxes and exits 0; pjreddie stops or crashes)"
        )

    @property
    def last_iteration(self) -> int:
        return self.steps[-1].iteration if self.steps else 0

    @property
    def first_nonfinite(self) -> Optional[DarknetStep]:
        """First iteration whose loss is nan/inf: training has diverged from there on."""
        return next((s for s in self.steps if not math.isfinite(s.loss)), None)


def scan_darknet_log(lines: Iterable[str]) -> DarknetLogFindings:
    """Collect iteration lines, unopenable files and saved weights from a log."""
    findings = DarknetLogFindings()
    for line in lines:
        step = parse_darknet_line(line)
        if step is not None:
            findings.steps.append(step)
            continue
        label = CANNOT_OPEN_LABEL.search(line)
        if label:
            findings.missing_labels.append(label["path"])
            continue
        missing = COULD_NOT_OPEN.search(line)
        if missing:
            findings.could_not_open.append(missing["path"])
            if missing["path"].endswith(".txt"):
                findings.missing_labels.append(missing["path"])
            continue
        saved = SAVING_WEIGHTS.search(line)
        if saved:
            findings.saved_weights.append(saved["path"])
    return findings


def read_darknet_log(log_path: Path) -> DarknetLogFindings:
    """Scan a log file; unreadable bytes are replaced rather than failing on a crashed run's log."""
    log_path = Path(log_path)
    try:
        with open(log_path, encoding="utf-8", errors="replace") as handle:
            return scan_darknet_log(line.rstrip("\r\n") for line in handle)
    except OSError as exc:
        raise ValueError(f"{log_path}: cannot read Darknet log: {exc}") from exc


def write_loss_csv(steps: Iterable[Progress], csv_path: Path) -> Path:
    """Write ``iteration,loss,avg_loss,lr,seconds`` (nan kept as ``nan``, the run's evidence)."""
    csv_path = Path(csv_path)
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    write_csv(
        csv_path,
        LOSS_CSV_HEADER,
        (
            [step.iteration, _cell(step.loss), _cell(step.avg_loss), _cell(step.lr), _cell(step.seconds)]
            for step in steps
        ),
    )
    return csv_path


def _cell(value: Optional[float]) -> str:
    if value is None:
        return ""
    return repr(float(value)) if math.isfinite(value) else str(value)


MAP_CLASS_LINE = re.compile(r"class_id = (?P<index>\d+), name = (?P<name>.*?), ap = (?P<ap>\S+)%")
MAP_MEAN_LINE = re.compile(r"mean average precision \(mAP@(?P<iou>\S+)\) = (?P<map>\S+),")


def parse_darknet_map(text: str) -> dict:
    """AlexeyAB ``detector map`` output: ``{"map": float, "iou": float, "classes": {name: ap}}`` (APs as
    fractions; per-class APs are printed with 4 digits, the mAP with 6). ValueError without a mAP line."""
    classes = {m["name"]: float(m["ap"]) / 100.0 for m in MAP_CLASS_LINE.finditer(text)}
    mean = MAP_MEAN_LINE.search(text)
    if mean is None:
        raise ValueError("no 'mean average precision (mAP@…) = …' line in the detector map output")
    return {"map": float(mean["map"]), "iou": float(mean["iou"]), "classes": classes}


def log_to_loss_csv(log_path: Path, csv_path: Path) -> DarknetLogFindings:
    """Parse a Darknet training log and write its ``loss.csv``; returns the findings."""
    findings = read_darknet_log(log_path)
    write_loss_csv(latest_per_iteration(findings.steps), csv_path)
    return findings


def latest_per_iteration(steps: Iterable[DarknetStep]) -> list[DarknetStep]:
    """A resumed run repeats the iterations after its last backup: keep the re-run ones."""
    latest = {step.iteration: step for step in steps}
    return [latest[i] for i in sorted(latest)]

"""Records the framework runners hand back, shared by Caffe and Darknet so reports treat both alike."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional


@dataclass
class Progress:
    """One training step as parsed from a native log line."""

    iteration: int
    loss: float
    avg_loss: Optional[float] = None
    lr: Optional[float] = None
    seconds: Optional[float] = None


@dataclass
class TrainResult:
    log_path: Path
    loss_csv: Path
    weights: Optional[Path]  # last usable weights/snapshot
    iterations: int  # last iteration reached
    seconds: float  # wall-clock time of the native run
    resumed_from: Optional[Path] = None


@dataclass
class FrameworkStatus:
    """What ``harness doctor`` reports for one framework."""

    name: str  # "caffe" or "darknet"
    usable: bool
    version: str = ""
    location: str = ""
    device: str = "CPU"
    details: dict = field(default_factory=dict)  # e.g. {"layers": [...], "dialect": "brocolli"}
    missing: list = field(default_factory=list)  # human-readable problems
    install_hint: str = ""  # the command that installs it


class NativeFrameworkError(RuntimeError):
    """A native framework failed — including the failures it reports with exit code 0."""

    def __init__(self, message: str, log_tail: str = "") -> None:
        super().__init__(message + (f"\n--- last lines of the native log ---\n{log_tail}" if log_tail else ""))
        self.log_tail = log_tail

"""Where a run's experiments execute: side-by-side runners behind one small interface.

A runner takes a :class:`Submission` (the run's settings and resolved experiment configs) and
``submit``s it; ``status`` says what the scheduler knows about each experiment; ``cancel`` stops
them. Adding a runner is one new module plus one line in :data:`RUNNERS`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Optional, Protocol

from harness.config import ExperimentConfig
from harness.registry import registered_class


@dataclass(frozen=True)
class Submission:
    """One ``train`` / ``reproduce`` invocation, resolved: what to run and how to report it."""

    settings: object  # harness.engine.run.RunSettings
    configs: Sequence[ExperimentConfig]
    overwrite: bool = False
    options: dict = field(default_factory=dict)  # runner-specific (slurm: partition, time, …)


@dataclass
class Outcome:
    """What ``submit`` returns: summaries when the work ran here, job ids when it was queued."""

    summaries: Optional[list[dict]] = None
    prepared: object = None
    jobs: dict = field(default_factory=dict)


class Runner(Protocol):
    name: str

    def submit(self, submission: Submission) -> Outcome:
        """Start (or queue) every experiment that is not finished yet."""

    def status(self, run_dir) -> dict[str, str]:
        """Scheduler state per experiment name (empty when the runner has no scheduler)."""

    def cancel(self, run_dir) -> list[str]:
        """Stop the run's queued or running work; returns what was cancelled."""


# runner name -> "module:class"
RUNNERS = {
    "local": "harness.runners.local:LocalRunner",
    "docker": "harness.runners.docker:DockerRunner",
    "slurm": "harness.runners.slurm:SlurmRunner",
}


def get_runner(name: str) -> Runner:
    return registered_class(RUNNERS, name, "runner")()


def detect_runner(run_dir) -> Runner:
    """The runner a run directory was submitted with (slurm leaves RUN_DIR/slurm/jobs.json)."""
    from pathlib import Path

    return get_runner("slurm" if (Path(run_dir) / "slurm" / "jobs.json").is_file() else "local")

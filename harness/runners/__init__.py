"""Where a run's experiments execute: side-by-side runners behind one small interface.

A runner takes a :class:`Submission` (the run's settings and resolved experiment configs) and
``submit``s it; ``status`` says what the scheduler knows about each experiment (``harness status``
merges it with what the run directory says); ``cancel`` stops them (``harness cancel``). The
runner's name is recorded in ``RUN_DIR/run.json``, so both verbs ask the runner that made the run
(:func:`runner_of`). Adding a runner is one new module plus one line in :data:`RUNNERS`; the
``--runner`` choices come from it (tests/test_runner_registry.py registers a fake one).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Protocol

from harness.config import RUN_FILE, ExperimentConfig
from harness.registry import registered_class
from harness.status import TaskState

if TYPE_CHECKING:
    from harness.engine.run import RunSettings


@dataclass(frozen=True)
class Submission:
    """One ``train`` / ``reproduce`` invocation, resolved: what to run and how to report it."""

    settings: RunSettings
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

    def status(self, run_dir) -> dict[str, TaskState]:
        """What the scheduler knows per experiment name (empty when the runner has no scheduler)."""

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


def runner_names() -> tuple[str, ...]:
    """The ``--runner`` choices."""
    return tuple(RUNNERS)


def runner_of(run_dir) -> Runner:
    """The runner a run directory was submitted with: ``runner`` in RUN_DIR/run.json (runs made
    before it was recorded: local). An unknown name raises KeyError naming the known ones."""
    from harness.core.atomic import read_json

    path = Path(run_dir) / RUN_FILE
    record = read_json(path, "run record (run.json)") if path.is_file() else {}
    return get_runner(record.get("runner") or "local")

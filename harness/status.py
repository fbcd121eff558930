"""Where each experiment of a run stands, for any runner (``harness status RUN_DIR``).

Reads the run directory (run.json, summaries, logs, locks) and merges what the run's runner
reports through ``Runner.status`` (:class:`TaskState` per experiment; the local runner has no
scheduler and reports nothing), so it answers the same way for a local, Docker or cluster run.
This module knows no runner: the command line asks the run's runner and passes its answer in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

PENDING, RUNNING, ACTIVE = "pending", "running", "active"


@dataclass(frozen=True)
class TaskState:
    """What a runner's scheduler says about one experiment's task.

    ``state``: ``"pending"`` (queued), ``"running"``, ``"active"`` (listed in another state, e.g.
    completing or suspended) or None (the scheduler no longer lists it: it ended, or was killed).
    ``job``: the scheduler's id for it; ``shown``: its own word for the state; ``log``: the task's log.
    """

    job: str
    state: Optional[str]
    shown: str = ""
    log: str = ""

    @property
    def column(self) -> str:
        return f"{self.job} {self.shown or '-'}"


@dataclass
class ExperimentStatus:
    name: str
    state: str  # pending | running | done | failed | not started
    scheduler: str = ""  # e.g. "4_1 RUNNING" (the runner's TaskState)
    iterations: Optional[int] = None
    last_loss: Optional[float] = None
    best_map: Optional[float] = None
    log: str = ""
    summary: dict = field(default_factory=dict)


def training_progress(model_dir: Path, framework: str) -> tuple[Optional[int], Optional[float]]:
    """(last iteration, its loss) from the live train.log (loss.csv is written only at the end)."""
    log = model_dir / "train.log"
    if not log.is_file():
        return None, None
    from harness.frameworks import backend_class, registered_frameworks

    rows = backend_class(framework).read_progress(log) if framework in registered_frameworks() else []
    if not rows:
        return None, None
    last = rows[-1]
    return last.iteration, last.avg_loss if last.avg_loss is not None else last.loss


def best_map(model_dir: Path) -> Optional[float]:
    """The final mAP under the first experiment protocol of the registry (voc07); a truncated metrics
    file raises CorruptFileError (one line at the CLI)."""
    from harness.core.atomic import read_json
    from harness.evaluation.protocols import experiment_protocols

    name = f"metrics_{experiment_protocols()[0]}.json"
    path = model_dir / name
    return read_json(path, f"metrics file ({name})").get("map") if path.is_file() else None


def _state(summary: dict, locked: bool, scheduler_state: Optional[str], configured: bool) -> str:
    if locked:
        return "running"
    if scheduler_state in (PENDING, RUNNING):
        return scheduler_state
    if summary.get("status") == "ok":
        return "done"
    if summary:
        return "failed"
    return "pending" if configured else "not started"


def experiment_status(name: str, model_dir: Path, framework: str, task: Optional[TaskState]) -> ExperimentStatus:
    from harness.core.locks import is_locked
    from harness.engine.experiment import read_summary

    summary = read_summary(model_dir) or {}
    scheduler_state = task.state if task else None
    state = _state(summary, is_locked(model_dir), scheduler_state, (model_dir / "config.json").is_file())
    if state == "pending" and task and scheduler_state is None and not summary:
        state = "failed"  # the scheduler forgot the task and it left no summary: killed hard
    iterations, loss = training_progress(model_dir, framework)
    log = summary.get("log") or (str(model_dir / "train.log") if (model_dir / "train.log").is_file() else "")
    if task and ((state == "failed" and not summary.get("log")) or not log):
        log = task.log
    return ExperimentStatus(
        name,
        state,
        task.column if task else "",
        iterations,
        loss,
        best_map(model_dir),
        log,
        summary,
    )


def run_status(run_dir: Path, tasks: Optional[Mapping[str, TaskState]] = None) -> list[ExperimentStatus]:
    """One row per experiment recorded in RUN_DIR/run.json; ``tasks``: the runner's ``status``."""
    from harness.engine.run import experiment_config_path, read_run_file
    from harness.frameworks.configs import read_config

    run_dir = Path(run_dir).resolve()
    record = read_run_file(run_dir)
    tasks = tasks or {}
    rows = []
    for name, entry in record["experiments"].items():
        model_dir = experiment_config_path(run_dir, name, entry).parent
        config = read_config(model_dir)
        framework = config.framework if config else ""
        rows.append(experiment_status(name, model_dir, framework, tasks.get(name)))
    return rows


def format_table(rows: list[ExperimentStatus]) -> str:
    def cell(value, digits: int = 4) -> str:
        return "-" if value is None else (f"{value:.{digits}g}" if isinstance(value, float) else str(value))

    from harness.evaluation.protocols import experiment_protocols

    score = experiment_protocols()[0]  # the column best_map fills
    header = f"{'experiment':34s} {'state':11s} {'scheduler':18s} {'iter':>6s} {'loss':>9s} {score:>7s}  log"
    lines = [header] + [
        f"{r.name:34s} {r.state:11s} {r.scheduler or '-':18s} {cell(r.iterations):>6s} "
        f"{cell(r.last_loss):>9s} {cell(r.best_map):>7s}  {r.log or '-'}"
        for r in rows
    ]
    return "\n".join(lines)

"""The Slurm runner: one job array per submission (one task per experiment) plus a report job.

The submitter checks the run, prepares its data once and writes every experiment's
``config.json``; then it writes ``RUN_DIR/slurm/array.sbatch`` (readable, resubmittable by hand
with ``sbatch``) whose task *i* runs ``python -m harness experiment run CONFIG_i``, and
``RUN_DIR/slurm/report.sbatch``, submitted with ``--dependency=afterany:ARRAY``. Submissions are
recorded in ``RUN_DIR/slurm/jobs.json`` so ``harness status`` and a rerun know what is queued.
"""

from __future__ import annotations

import json
import logging
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Optional

import harness
from harness.config import ExperimentConfig
from harness.core.errors import HarnessError
from harness.runners import Outcome, Submission
from harness.status import ACTIVE as TASK_ACTIVE
from harness.status import PENDING, RUNNING, TaskState, format_table, run_status

log = logging.getLogger(__name__)

JOBS_FILE = "jobs.json"
PENDING_STATES = {"PENDING", "REQUEUED", "CONFIGURING", "REQUEUE_HOLD"}
ACTIVE = {
    "PENDING",
    "RUNNING",
    "CONFIGURING",
    "COMPLETING",
    "REQUEUED",
    "RESIZING",
    "SUSPENDED",
    "REQUEUE_HOLD",
    "REQUEUE_FED",
    "SIGNALING",
    "STAGE_OUT",
}


class SlurmError(HarnessError):
    """sbatch/squeue missing or refusing: a usage-level problem the user must fix."""


@dataclass(frozen=True)
class SlurmOptions:
    """The sbatch resources of every task (and the report job's partition/account flags)."""

    partition: Optional[str] = None
    time: Optional[str] = None
    cpus_per_task: Optional[int] = None
    mem: Optional[str] = None
    gres: Optional[str] = None
    max_parallel: Optional[int] = None
    extra: Sequence[str] = field(default_factory=tuple)
    wait: bool = False
    poll_seconds: float = 5.0

    @classmethod
    def of(cls, options: dict) -> SlurmOptions:
        known = {k: v for k, v in options.items() if k in cls.__dataclass_fields__ and v is not None}
        return cls(**known)

    def directives(self) -> list[str]:
        flags = [
            ("--partition", self.partition),
            ("--time", self.time),
            ("--cpus-per-task", self.cpus_per_task),
            ("--mem", self.mem),
            ("--gres", self.gres),
        ]
        return [f"{flag}={value}" for flag, value in flags if value is not None] + list(self.extra)


def slurm_dir(run_dir: Path) -> Path:
    return Path(run_dir) / "slurm"


def _command(argv: Sequence[str]) -> str:
    try:
        result = subprocess.run(list(argv), capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise SlurmError(
            f"{argv[0]} not found: is this a Slurm submit host? (see README, Running on a cluster)"
        ) from None
    if result.returncode != 0:
        raise SlurmError(f"{' '.join(argv)} failed ({result.returncode}): {result.stderr.strip()}")
    return result.stdout


def _harness_command() -> str:
    """This interpreter and this harness checkout, so the script also works resubmitted by hand."""
    root = Path(harness.__file__).resolve().parents[1]
    return (
        f"export PYTHONPATH={shlex.quote(str(root))}${{PYTHONPATH:+:$PYTHONPATH}}\nPYTHON={shlex.quote(sys.executable)}"
    )


def array_script(run_dir: Path, configs: Sequence[ExperimentConfig], options: SlurmOptions) -> str:
    """``array.sbatch``: task i runs experiment i from its config.json alone."""
    last = len(configs) - 1
    throttle = f"%{options.max_parallel}" if options.max_parallel else ""
    lines = [
        "#!/bin/bash",
        f"#SBATCH --job-name=harness-{run_dir.name}",
        f"#SBATCH --array=0-{last}{throttle}",
        "#SBATCH --requeue",
        "#SBATCH --open-mode=append",
        f"#SBATCH --output={slurm_dir(run_dir) / 'logs' / '%A_%a.out'}",
        *[f"#SBATCH {d}" for d in options.directives()],
        "# One experiment per task; its resolved config is the task's only input.",
        "# Resubmit by hand with: sbatch " + str(slurm_dir(run_dir) / "array.sbatch"),
        "set -euo pipefail",
        "CONFIGS=(",
        *[f"  {shlex.quote(str(c.model_dir / 'config.json'))}  # {i}: {c.name}" for i, c in enumerate(configs)],
        ")",
        _harness_command(),
        f"cd {shlex.quote(str(run_dir))}",
        'exec "$PYTHON" -m harness experiment run "${CONFIGS[$SLURM_ARRAY_TASK_ID]}"',
    ]
    return "\n".join(lines) + "\n"


def report_script(run_dir: Path, options: SlurmOptions) -> str:
    """``report.sbatch``: builds the report once the array is over (whatever its tasks' outcome)."""
    light = [d for d in options.directives() if not d.startswith(("--gres", "--cpus-per-task", "--mem"))]
    lines = [
        "#!/bin/bash",
        f"#SBATCH --job-name=harness-{run_dir.name}-report",
        f"#SBATCH --output={slurm_dir(run_dir) / 'logs' / 'report_%j.out'}",
        *[f"#SBATCH {d}" for d in light],
        "set -euo pipefail",
        _harness_command(),
        f"cd {shlex.quote(str(run_dir))}",
        f'exec "$PYTHON" -m harness experiment report {shlex.quote(str(run_dir))}',
    ]
    return "\n".join(lines) + "\n"


def read_jobs(run_dir: Path) -> list[dict]:
    path = slurm_dir(run_dir) / JOBS_FILE
    return json.loads(path.read_text()) if path.is_file() else []


def _record(run_dir: Path, entry: dict) -> None:
    path = slurm_dir(run_dir) / JOBS_FILE
    path.write_text(json.dumps([*read_jobs(run_dir), entry], indent=2) + "\n")


def queue_states() -> dict[str, str]:
    """``{"JOB" or "JOB_TASK": STATE}`` for every job squeue still lists (array tasks expanded)."""
    out = _command(["squeue", "-h", "-r", "-o", "%i %T"])
    return dict(line.split(None, 1) for line in out.splitlines() if line.strip())


def experiment_states(run_dir: Path, queue: Optional[dict[str, str]] = None) -> dict[str, dict]:
    """Per experiment, its latest task: job id, scheduler state (None once squeue forgot it), log."""
    queue = queue_states() if queue is None else queue
    found: dict[str, dict] = {}
    for entry in read_jobs(run_dir):
        for index, name in enumerate(entry["experiments"]):
            task = f"{entry['array']}_{index}"
            found[name] = {
                "job": task,
                "state": queue.get(task),
                "log": str(slurm_dir(run_dir) / "logs" / f"{entry['array']}_{index}.out"),
            }
    return found


def _sbatch(script: Path, *flags: str) -> str:
    return _command(["sbatch", "--parsable", *flags, str(script)]).strip().split(";")[0]


class SlurmRunner:
    name = "slurm"

    def submit(self, submission: Submission) -> Outcome:
        """Queue the unfinished, not-already-queued experiments; optionally wait for them."""
        options = SlurmOptions.of(submission.options)
        settings = replace(submission.settings.sized(submission.configs), runner=self.name)  # run.json names us
        submission = replace(submission, settings=settings)
        run_dir = submission.settings.run_dir
        todo = self._unfinished(submission)
        self._prepare(submission, todo)
        jobs = self._queue(run_dir, todo, options)
        if options.wait:
            return Outcome(summaries=wait_for(run_dir, jobs, options.poll_seconds), jobs=jobs)
        return Outcome(jobs=jobs)

    def _unfinished(self, submission: Submission) -> list[ExperimentConfig]:
        from harness.core.locks import is_locked
        from harness.engine.run import check_run, plan_all

        check_run(submission.settings, submission.overwrite)
        plans = plan_all(submission.configs, submission.overwrite)
        queued = {
            name for name, task in experiment_states(submission.settings.run_dir).items() if task["state"] in ACTIVE
        }
        todo = []
        for config in submission.configs:
            if plans[config.name] == "reuse":
                log.info(f"  {config.name}: finished with this config, reused")
            elif config.name in queued or is_locked(config.model_dir):
                log.info(f"  {config.name}: already queued or running, not submitted again")
            else:
                todo.append(config)
        return todo

    def _prepare(self, submission: Submission, todo: Sequence[ExperimentConfig]) -> None:
        """Data once, here, before any task starts; --overwrite is applied here, not by tasks."""
        from harness.engine.experiment import clear_model_dir
        from harness.engine.run import announce_devices, record_and_prepare

        announce_devices(submission.configs)
        record_and_prepare(submission.settings, submission.configs)
        for config in todo:
            if submission.overwrite:
                clear_model_dir(config.model_dir)
            config.write()

    def _queue(self, run_dir: Path, todo: Sequence[ExperimentConfig], options: SlurmOptions) -> dict:
        folder = slurm_dir(run_dir)
        (folder / "logs").mkdir(parents=True, exist_ok=True)
        report = folder / "report.sbatch"
        report.write_text(report_script(run_dir, options))
        jobs: dict = {"experiments": [c.name for c in todo], "submitted": time.strftime("%Y-%m-%dT%H:%M:%S")}
        if todo:
            array = folder / "array.sbatch"
            array.write_text(array_script(run_dir, todo, options))
            jobs["array"] = _sbatch(array)
            jobs["report"] = _sbatch(report, f"--dependency=afterany:{jobs['array']}")
            log.info(
                f"submitted array job {jobs['array']} ({len(todo)} tasks: {', '.join(jobs['experiments'])})"
                f"\nsubmitted report job {jobs['report']} (after the array)\nscript: {array}"
            )
            _record(run_dir, jobs)
        else:
            jobs["report"] = _sbatch(report)
            log.info(f"nothing left to train; submitted report job {jobs['report']}")
        log.info(f"follow it with: harness status {run_dir}")
        return jobs

    def status(self, run_dir, queue: Optional[dict[str, str]] = None) -> dict[str, TaskState]:
        """Each experiment's latest array task, its squeue state in the runner-neutral words of
        :class:`harness.status.TaskState` (``queue``: squeue's answer, asked when None)."""
        if not read_jobs(Path(run_dir)):
            return {}  # nothing submitted from here: no squeue call
        return {
            name: TaskState(task["job"], _neutral(task["state"]), task["state"] or "", task["log"])
            for name, task in experiment_states(Path(run_dir), queue).items()
        }

    def cancel(self, run_dir) -> list[str]:
        ids = [str(entry[key]) for entry in read_jobs(Path(run_dir)) for key in ("array", "report") if key in entry]
        if ids:
            _command(["scancel", *ids])
        return ids


def _neutral(state: Optional[str]) -> Optional[str]:
    """squeue's state as harness.status.TaskState.state."""
    if state is None:
        return None
    if state in PENDING_STATES:
        return PENDING
    return RUNNING if state == "RUNNING" else TASK_ACTIVE


def wait_for(run_dir: Path, jobs: dict, poll_seconds: float) -> list[dict]:
    """Block until the array and report jobs left the queue, printing the table when it changes."""
    ours = [str(jobs[key]) for key in ("array", "report") if key in jobs]
    shown = ""
    while True:
        queue = queue_states()
        table = format_table(run_status(run_dir, SlurmRunner().status(run_dir, queue)))
        if table != shown:
            log.info(f"\n{time.strftime('%H:%M:%S')}\n{table}")
            shown = table
        if not any(key.split("_")[0] in ours for key in queue):
            break
        time.sleep(poll_seconds)
    return [row.summary for row in run_status(run_dir, SlurmRunner().status(run_dir, queue={}))]

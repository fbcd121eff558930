"""The local runner: every experiment on this machine, one after the other or ``jobs`` at a time.

One at a time (the default) runs each experiment in this process and streams its stage lines.
With ``jobs`` > 1 each experiment is a child ``python -m harness experiment run CONFIG`` (what a
Slurm task runs), its output in ``MODEL_DIR/experiment.log``, and the cores are split between the
children (``OMP_NUM_THREADS`` / ``OPENBLAS_NUM_THREADS`` = cores // jobs): on a small CPU two
single-threaded trainings finish sooner than the same two one after the other with two threads
each, because much of Caffe's and Darknet's CPU work (im2col, loss layers, data loading) runs on
one thread (docs/benchmarks.md).
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Optional

from harness.config import ExperimentConfig
from harness.engine.experiment import CONCURRENCY_VARIABLE, EXPERIMENT_LOG
from harness.progress import clock, progress_seconds
from harness.runners import Outcome, Submission
from harness.status import TaskState

log = logging.getLogger(__name__)

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


class LocalRunner:
    name = "local"

    def submit(self, submission: Submission) -> Outcome:
        """Plan every experiment (a config clash stops the run before it starts), prepare the data
        once, then run each experiment through ``run_experiment`` (as tasks do): in this process one
        after the other, or ``options["jobs"]`` child processes at a time. Returns the summaries
        (failed ones included) in the order of the configs."""
        from harness.engine.run import announce_devices, check_run, plan_all, record_and_prepare, run_in_order

        configs = submission.configs
        settings = replace(submission.settings.sized(configs), runner=self.name)
        on_start = submission.options.get("on_start")
        jobs = submission.options.get("jobs") or 1
        check_run(settings, submission.overwrite)
        plans = plan_all(configs, submission.overwrite)
        announce_devices(configs)
        prepared = record_and_prepare(settings, configs)
        if jobs > 1:
            summaries = _side_by_side(configs, plans, prepared, submission.overwrite, on_start, jobs)
        else:
            summaries = run_in_order(configs, prepared, submission.overwrite, on_start)
        return Outcome(summaries=summaries, prepared=prepared)

    def status(self, run_dir) -> dict[str, TaskState]:
        return {}  # no scheduler: the run directory (locks, summaries) is the whole truth

    def cancel(self, run_dir) -> list[str]:
        return []  # Ctrl-C / SIGTERM on the process; a rerun resumes


def _side_by_side(
    configs: Sequence[ExperimentConfig],
    plans: dict[str, str],
    prepared,
    overwrite: bool,
    on_start: Optional[Callable[[int, ExperimentConfig], None]],
    jobs: int,
) -> list[dict]:
    """Finished (reused) or busy experiments are settled here; the rest run as child processes,
    each from its config.json, --overwrite applied here first (as the Slurm runner does)."""
    from harness.core.locks import is_locked
    from harness.engine.experiment import clear_model_dir
    from harness.engine.run import run_unless_busy

    settled, todo = {}, []
    for config in configs:
        if plans[config.name] == "reuse" or is_locked(config.model_dir):
            settled[config.name] = run_unless_busy(config, prepared, overwrite)
            continue
        if overwrite:
            clear_model_dir(config.model_dir)
        config.write()
        todo.append(config)
    settled.update(run_side_by_side(todo, jobs, on_start) if todo else {})
    return [settled[config.name] for config in configs]


def threads_per_job(jobs: int, cores: Optional[int] = None) -> int:
    return max(1, (cores or os.cpu_count() or 1) // max(1, jobs))


def start_order(configs: Sequence[ExperimentConfig]) -> list[ExperimentConfig]:
    """Learning checks first: in the smoke profile they train longest, and starting the longest
    work first keeps both slots busy to the end (the Table 1 rows fill the gaps)."""
    return sorted(configs, key=lambda c: c.role != "learning-check")


@dataclass
class _Child:
    config: ExperimentConfig
    process: subprocess.Popen
    log: Path
    started: float


def child_environment(jobs: int) -> dict[str, str]:
    threads = str(threads_per_job(jobs))
    return {
        **os.environ,
        **{name: threads for name in THREAD_VARIABLES},
        CONCURRENCY_VARIABLE: str(jobs),
        "PYTHONUNBUFFERED": "1",
    }


def _start(config: ExperimentConfig, jobs: int) -> _Child:
    """Its own session: Ctrl-C reaches only us, and we pass one SIGINT on (see ``_stop``)."""
    from harness.core.process import die_with_parent

    config.model_dir.mkdir(parents=True, exist_ok=True)
    log = config.model_dir / EXPERIMENT_LOG
    with log.open("w") as handle:
        process = subprocess.Popen(
            [sys.executable, "-m", "harness", "experiment", "run", str(config.model_dir / "config.json")],
            stdout=handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=child_environment(jobs),
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
    return _Child(config, process, log, time.monotonic())


def run_side_by_side(
    configs: Sequence[ExperimentConfig], jobs: int, on_start: Optional[Callable[[int, ExperimentConfig], None]] = None
) -> dict[str, dict]:
    """Run ``configs`` (already written, data prepared) as child processes, ``jobs`` at a time.

    Returns each experiment's summary by name. Ctrl-C (or SIGTERM) stops the children, which
    write their summaries as interrupted, like the one-at-a-time path; a rerun resumes them.
    """
    waiting = list(start_order(configs))
    running: list[_Child] = []
    summaries: dict[str, dict] = {}
    total, index = len(configs), 0
    log.info(
        f"{total} experiment(s), {jobs} at a time, {threads_per_job(jobs)} thread(s) each; "
        f"each one's output: MODEL_DIR/{EXPERIMENT_LOG}"
    )
    last_status = time.monotonic()
    try:
        while waiting or running:
            while waiting and len(running) < jobs:
                config = waiting.pop(0)
                index += 1
                if on_start is not None:
                    on_start(index, config)
                running.append(_start(config, jobs))
                log.info(f"    log: {running[-1].log}")
            time.sleep(0.5)
            for child in [c for c in running if c.process.poll() is not None]:
                running.remove(child)
                summaries[child.config.name] = _finished(child)
            if running and time.monotonic() - last_status >= progress_seconds():
                last_status = time.monotonic()
                _print_status(running)
    except KeyboardInterrupt:
        _stop(running)
        raise
    return summaries


def _print_status(running: Sequence[_Child]) -> None:
    """One line per running child: its newest progress or stage line."""
    for child in running:
        line = _last_line(child.log) or "starting"
        log.info(f"  … {child.config.name} [{clock(time.monotonic() - child.started)}] {line}")


def _last_line(log: Path) -> str:
    """The log's last non-empty line (tqdm-free: children's stderr is a file, so progress is plain lines)."""
    try:
        with log.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - 4096))
            lines = [line.strip() for line in handle.read().decode(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return lines[-1][-160:] if lines else ""


def _finished(child: _Child) -> dict:
    from harness.engine.experiment import read_summary

    summary = read_summary(child.config.model_dir)
    seconds = time.monotonic() - child.started
    if summary is None or summary.get("status") == "running":
        summary = {
            "experiment": child.config.name,
            "status": "failed",
            "log": str(child.log),
            "message": f"the experiment's process ended ({child.process.returncode}) without a summary; "
            f"see {child.log}",
        }
    _print_finished(child, summary, seconds)
    return summary


def _print_finished(child: _Child, summary: dict, seconds: float) -> None:
    name, ok = child.config.name, summary.get("status") == "ok"
    protocol = child.config.protocols[0] if child.config.protocols else "voc07"
    score = _final_map(child.config.model_dir, protocol) if ok else None
    shown = f", {protocol.upper()} mAP {100 * score:.1f} %" if score is not None else ""
    if ok:
        log.info(f"=== {name}: ok in {seconds:.0f} s{shown}", extra={"style": {"fg": "green"}})
        return
    log.info(f"=== {name}: FAILED after {seconds:.0f} s: {summary.get('message', '')}", extra={"style": {"fg": "red"}})
    for line in _tail(child.log, 12):
        log.info(f"    | {line}")


def _final_map(model_dir: Path, protocol: str) -> Optional[float]:
    import json

    try:
        value = json.loads((model_dir / f"metrics_{protocol}.json").read_text()).get("map")
    except (OSError, ValueError):
        return None
    return float(value) if isinstance(value, (int, float)) else None


def _tail(log: Path, count: int) -> list[str]:
    try:
        return log.read_text(errors="replace").splitlines()[-count:]
    except OSError:
        return []


def _stop(running: Sequence[_Child], grace: float = 120.0) -> None:
    """Ask every child to stop as on Ctrl-C (they stop their native process and write their
    summaries), then wait; kill what is left after ``grace`` seconds."""
    import signal

    for child in running:
        if child.process.poll() is None:
            child.process.send_signal(signal.SIGINT)
    deadline = time.monotonic() + grace
    for child in running:
        try:
            child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.process.kill()
            child.process.wait()

"""``caffe train`` on a rendered solver: read the solver, resume from the newest ``.solverstate``,
run the binary segment by segment, parse its log into ``loss.csv`` and check what it wrote."""

from __future__ import annotations

import re
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Union

from harness.core.process import run_native
from harness.core.types import NativeFrameworkError, Progress, TrainResult
from harness.device import Device
from harness.frameworks.caffe.install import CaffeInstall, find_caffe
from harness.parse.caffe_log import CaffeLog, CaffeLogParser, parse_caffe_log, run_marker, write_loss_csv
from harness.render.ssd import solver_mode

PathLike = Union[str, Path]


# ----------------------------------------------------------------------------- training


@dataclass(frozen=True)
class SolverInfo:
    path: Path
    max_iter: int
    snapshot_prefix: Path
    snapshot: int
    solver_mode: str = "CPU"  # Caffe's default when the solver says nothing


def read_solver(solver_path: PathLike, cwd: Path) -> SolverInfo:
    """The few solver fields the runner needs; relative paths resolve from ``cwd`` like Caffe's."""
    solver_path = Path(solver_path)
    try:
        text = solver_path.read_text()
    except OSError as exc:
        raise NativeFrameworkError(f"{solver_path}: cannot read solver: {exc}") from exc
    max_iter = _solver_field(text, "max_iter")
    prefix = _solver_field(text, "snapshot_prefix")
    if max_iter is None:
        raise NativeFrameworkError(f"{solver_path}: solver has no max_iter")
    if prefix is None:
        raise NativeFrameworkError(f"{solver_path}: solver has no snapshot_prefix: Caffe would write no weights")
    prefix_path = Path(prefix)
    if not prefix_path.is_absolute():
        prefix_path = cwd / prefix_path
    snapshot = _solver_field(text, "snapshot")
    mode = (_solver_field(text, "solver_mode") or "CPU").strip().upper()
    return SolverInfo(solver_path, int(max_iter), prefix_path, int(snapshot) if snapshot else 0, mode)


def _solver_field(text: str, name: str) -> Optional[str]:
    found = re.findall(rf'^\s*{name}\s*:\s*"?([^"\n#]*?)"?\s*(?:#.*)?$', text, flags=re.M)
    return found[-1] if found else None


def with_max_iter(solver_path: Path, max_iter: int, out_path: Path) -> Path:
    """A copy of the solver with ``max_iter`` replaced (Caffe has no command-line override)."""
    text = solver_path.read_text()
    new_text, count = re.subn(r"^(\s*max_iter\s*:\s*)\d+", rf"\g<1>{int(max_iter)}", text, flags=re.M)
    if not count:
        new_text = text.rstrip("\n") + f"\nmax_iter: {int(max_iter)}\n"
    out_path.write_text(new_text)
    return out_path


def snapshots(prefix: Path, suffix: str) -> list[tuple[int, Path]]:
    """``<prefix>_iter_<N><suffix>`` files, sorted by N."""
    pattern = re.compile(re.escape(prefix.name) + r"_iter_(\d+)" + re.escape(suffix) + "$")
    if not prefix.parent.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in prefix.parent.iterdir() if (m := pattern.match(p.name))]
    return sorted(found)


CAFFE_STOP_GRACE_SECONDS = 120.0  # one SSD512 iteration on 2 CPU cores can take a minute


def train_caffe(
    solver_path: PathLike,
    workdir: PathLike,
    *,
    init_weights: Optional[PathLike] = None,
    resume: bool = True,
    progress: Union[bool, Callable[[Progress], None], None] = None,
    max_iter: Optional[int] = None,
    timeout: Optional[float] = None,
    device: Device = Device("cpu"),
    label: str = "caffe train",
    display_total: Optional[int] = None,
) -> TrainResult:
    """Run ``caffe train``; keep train.log whole, write loss.csv, check the run really worked.

    ``label``/``display_total``: the progress bar's title and total (a segment of a longer
    schedule shows the whole schedule, not the segment's max_iter).

    Resumes from the newest ``<snapshot_prefix>_iter_N.solverstate`` when ``resume``; otherwise
    starts fresh (from ``init_weights`` when given; ignored when resuming, the solverstate
    carries the weights). Caffe runs in the solver's folder, so
    relative paths in the solver resolve there. ``progress``: None = bar when on a terminal,
    bool = force on/off, callable = called with every parsed iteration. ``device`` must agree
    with the solver's ``solver_mode`` (the renderer writes it from the same config).
    """
    install = find_caffe()
    solver_path = Path(solver_path).resolve()
    if not solver_path.is_file():
        raise NativeFrameworkError(f"{solver_path}: solver prototxt not found")
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    cwd = solver_path.parent
    if max_iter is not None:
        solver_path = with_max_iter(solver_path, max_iter, workdir / "solver.effective.prototxt")
    solver = read_solver(solver_path, cwd)
    if solver.solver_mode != solver_mode(device):
        raise NativeFrameworkError(
            f"{solver_path}: solver_mode {solver.solver_mode} but the device is {device}: "
            "render the solver for this device (--device)"
        )
    solver.snapshot_prefix.parent.mkdir(parents=True, exist_ok=True)
    resume_state = _resume_state(solver) if resume else None
    if resume_state is not None and resume_state[0] >= solver.max_iter:
        return _already_trained(workdir, solver, resume_state)
    argv = train_argv(install, solver_path, resume_state, init_weights, device)
    return _run_training(
        install, argv, solver, workdir, cwd, resume_state, progress, timeout, label, display_total or solver.max_iter
    )


def train_device_args(device: Device) -> list[str]:
    """``caffe train`` reads solver_mode from the solver; ``--gpu`` picks the card."""
    return [f"--gpu={device.index}"] if device.gpu else []


def _resume_state(solver: SolverInfo) -> Optional[tuple[int, Path]]:
    states = snapshots(solver.snapshot_prefix, ".solverstate")
    return states[-1] if states else None


def train_argv(
    install: CaffeInstall, solver_path: Path, resume_state, init_weights, device: Device = Device("cpu")
) -> list[str]:
    """``caffe train --solver=S [--snapshot=STATE | --weights=W] [--gpu=N]``."""
    argv = [str(install.caffe_bin), "train", f"--solver={solver_path}", *train_device_args(device)]
    if resume_state is not None:
        argv.append(f"--snapshot={resume_state[1]}")
    elif init_weights is not None:
        weights = Path(init_weights).resolve()
        if not weights.is_file():
            raise NativeFrameworkError(f"{weights}: init weights not found")
        argv.append(f"--weights={weights}")
    return argv


def _run_training(
    install,
    argv,
    solver,
    workdir,
    cwd,
    resume_state,
    progress,
    timeout,
    label: str = "caffe train",
    display_total: Optional[int] = None,
) -> TrainResult:
    log_path = workdir / "train.log"
    _start_log_segment(log_path, argv, resume_state)
    parser = CaffeLogParser()
    show = progress if isinstance(progress, bool) else None
    on_progress = progress if callable(progress) else None
    started_models = _modification_times(solver)
    try:
        run = run_native(
            argv,
            log_path,
            parser.feed,
            display_total or solver.max_iter,
            env=install.env(),
            cwd=cwd,
            label=label,
            on_progress=on_progress,
            show_progress=show,
            append=True,
            timeout=timeout,
            unbuffer=False,
            # caffe's -sigint_effect stop: ends at an iteration boundary, so an
            # interrupted run never leaves a half-written snapshot to resume from.
            stop_signal=signal.SIGINT,
            stop_grace=CAFFE_STOP_GRACE_SECONDS,
        )
    except NativeFrameworkError as exc:  # Ctrl-C or timeout: say how to go on
        _write_loss_csv(log_path, workdir)
        state = _resume_state(solver)
        hint = f"; run again to resume from {state[1]}" if state else "; no solverstate was written yet"
        raise NativeFrameworkError(str(exc).split("\n--- last lines")[0] + hint, exc.log_tail) from None
    parsed = _write_loss_csv(log_path, workdir)
    return _checked_result(run, parsed, solver, workdir, started_models, resume_state)


def _modification_times(solver: SolverInfo) -> dict[Path, int]:
    """Snapshot files and their mtimes: a fresh run may overwrite files of an earlier one."""
    return {p: p.stat().st_mtime_ns for _, p in snapshots(solver.snapshot_prefix, ".caffemodel")}


def _start_log_segment(log_path: Path, argv: list[str], resume_state) -> None:
    """Fresh runs move an old log aside; resumed runs append, with a marker line between runs."""
    if resume_state is None and log_path.exists() and log_path.stat().st_size:
        log_path.replace(log_path.with_name(f"train.{time.strftime('%Y%m%d-%H%M%S')}.log"))
    what = f"resumed from {resume_state[1]}" if resume_state else "fresh start"
    with log_path.open("a") as log:
        log.write(run_marker(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {what}: {' '.join(argv)}") + "\n")


def _write_loss_csv(log_path: Path, workdir: Path) -> CaffeLog:
    parsed = parse_caffe_log(log_path)
    write_loss_csv(parsed.rows, workdir / "loss.csv")
    return parsed


def _checked_result(run, parsed: CaffeLog, solver, workdir, started_models, resume_state) -> TrainResult:
    """Caffe exits 0 after many failures: judge by the log and the files, not the exit code."""
    tail = run.log_tail(40)
    where = f"(full log: {run.log_path})"
    if run.returncode != 0:
        fatal = f"; {parsed.fatal[-1]}" if parsed.fatal else ""
        raise NativeFrameworkError(f"caffe train failed: {run.describe_returncode()}{fatal} {where}", tail)
    if parsed.fatal:
        raise NativeFrameworkError(f"caffe train exited 0 but logged a fatal error: {parsed.fatal[-1]} {where}", tail)
    first_iteration = resume_state[0] if resume_state else 0
    nan_iterations = [i for i in parsed.nan_iterations if i >= first_iteration]
    if nan_iterations:
        raise NativeFrameworkError(
            f"caffe train: loss is NaN/inf from iteration {nan_iterations[0]} "
            f"(lower base_lr or check the data) {where}",
            tail,
        )
    models = snapshots(solver.snapshot_prefix, ".caffemodel")
    new_models = [p for p, mtime in _modification_times(solver).items() if started_models.get(p) != mtime]
    if not new_models or not parsed.optimization_done:
        raise NativeFrameworkError(
            f"caffe train exited 0 but {'wrote no new snapshot under ' + str(solver.snapshot_prefix) if not new_models else 'never reached Optimization Done.'} {where}",
            tail,
        )
    return TrainResult(
        log_path=run.log_path,
        loss_csv=workdir / "loss.csv",
        weights=models[-1][1],
        iterations=models[-1][0],
        seconds=run.seconds,
        resumed_from=resume_state[1] if resume_state else None,
    )


def _already_trained(workdir: Path, solver: SolverInfo, resume_state) -> TrainResult:
    """The newest solverstate is already at max_iter: report it instead of re-running Caffe."""
    models = snapshots(solver.snapshot_prefix, ".caffemodel")
    log_path = workdir / "train.log"
    if log_path.exists():
        _write_loss_csv(log_path, workdir)
    weights = next((p for n, p in reversed(models) if n == resume_state[0]), models[-1][1] if models else None)
    return TrainResult(
        log_path=log_path,
        loss_csv=workdir / "loss.csv",
        weights=weights,
        iterations=resume_state[0],
        seconds=0.0,
        resumed_from=resume_state[1],
    )

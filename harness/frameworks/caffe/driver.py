"""Drive the native Caffe-SSD build: find it, inspect it, train, detect and time with it.

Training runs the real ``build/tools/caffe train`` binary. Detection and timing run pycaffe in a
child Python process (``python -m harness.frameworks.caffe.driver worker JOB.json``) so that Caffe's
libraries (system OpenCV 4.6, glog, its own protobuf descriptors) never load into the harness
process, and a Caffe abort (``LOG(FATAL)`` calls ``abort()``) cannot kill the caller.

Box convention (see docs/caffe.md): the data stage stores VOC boxes in the LMDB as
``xmin / width`` etc. without a 1-pixel shift, and SSD's DetectionOutput returns boxes in that
same normalised frame, so pixels are ``x * width`` / ``y * height`` — the exact inverse, giving
boxes in the VOC 1-based frame the ground truth uses. We keep floats (Caffe's own VOC writer
truncates to int) and clamp to ``[0, width] x [0, height]``.
"""

from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Union

from harness.core.process import describe_returncode, run_native
from harness.core.types import FrameworkStatus, NativeFrameworkError, Progress, TrainResult
from harness.data.annotations import ImageAnnotation
from harness.device import Device, describe_device
from harness.parse.caffe_log import CaffeLog, CaffeLogParser, parse_caffe_log, run_marker, write_loss_csv
from harness.paths import cache_dir, pinned_commit

SOURCE_NAME = "weiliu89-caffe"  # scripts/sources.lock: the commit install_caffe.sh builds
INSTALL_HINT = "bash scripts/install_caffe.sh"
SSD_LAYERS = (
    "AnnotatedData",
    "PriorBox",
    "DetectionOutput",
    "DetectionEvaluate",
    "MultiBoxLoss",
    "Normalize",
    "Permute",
    "SmoothL1Loss",
)
SSD_MEAN_BGR = (104.0, 117.0, 123.0)
BUILD_STAMP = ".harness-build-complete"
WORKER_TIMEOUT_S = 3600

PathLike = Union[str, Path]
ImageList = Union[Sequence[ImageAnnotation], Sequence[PathLike]]


class CaffeNotFound(NativeFrameworkError):
    """No usable Caffe build; the message says where we looked and how to install one."""


@dataclass(frozen=True)
class CaffeInstall:
    root: Path
    caffe_bin: Path
    python_dir: Path
    proto: Path
    source: str  # "HARNESS_CAFFE_ROOT" or "cache"

    def env(self, quiet: bool = False) -> dict[str, str]:
        """Environment for a child that runs the tool or imports pycaffe."""
        env = {
            "PYTHONPATH": os.pathsep.join(filter(None, [str(self.python_dir), os.environ.get("PYTHONPATH", "")])),
            "GLOG_logtostderr": "1",  # otherwise glog also writes log files into /tmp
        }
        if quiet:
            env["GLOG_minloglevel"] = "2"
        return env


# ----------------------------------------------------------------------------- finding


def default_build_root(gpu: Optional[bool] = None) -> Path:
    """Where scripts/install_caffe.sh builds the pinned weiliu89 commit (same key as the script)."""
    if gpu is None:
        gpu = os.environ.get("HARNESS_CAFFE_GPU") == "1"
    return cache_dir() / (f"caffe-weiliu89-ssd-{pinned_commit(SOURCE_NAME)[:12]}" + ("-cuda" if gpu else ""))


def find_caffe() -> CaffeInstall:
    """``$HARNESS_CAFFE_ROOT`` (any Caffe with the SSD layers) or the cached weiliu89 build."""
    explicit = os.environ.get("HARNESS_CAFFE_ROOT")
    if explicit:
        return _install_at(Path(explicit).expanduser().resolve(), "HARNESS_CAFFE_ROOT")
    root = default_build_root()
    if not (root / BUILD_STAMP).is_file():
        raise CaffeNotFound(
            f"no complete Caffe build at {root} (no {BUILD_STAMP} stamp); build it with "
            f"`{INSTALL_HINT}` (about 9 minutes on 2 cores) or point HARNESS_CAFFE_ROOT at a Caffe with the SSD layers"
        )
    return _install_at(root, "cache")


def _install_at(root: Path, source: str) -> CaffeInstall:
    install = CaffeInstall(root, _caffe_binary(root), root / "python", root / "src/caffe/proto/caffe.proto", source)
    problems = [
        f"{path} missing"
        for path in (install.caffe_bin, install.python_dir / "caffe", install.proto)
        if not path.exists()
    ]
    if problems:
        raise CaffeNotFound(
            f"Caffe at {root} (from {source}) is incomplete: {'; '.join(problems)}. "
            f"Build it with `{INSTALL_HINT}` or `make all py` there"
        )
    return install


def _caffe_binary(root: Path) -> Path:
    for candidate in (root / "build/tools/caffe", root / "build/tools/caffe.bin"):
        if candidate.exists():
            return candidate
    return root / "build/tools/caffe"


# ----------------------------------------------------------------------------- inspecting


_INSPECT_CODE = """
import json, caffe
info = {"layers": sorted(caffe.layer_type_list()), "file": caffe.__file__,
        "version": getattr(caffe, "__version__", "")}
print("HARNESS-JSON " + json.dumps(info))
"""


def inspect_caffe() -> FrameworkStatus:
    """What ``harness doctor`` shows: version, SSD layers, proto dialect, device, problems."""
    status = FrameworkStatus(name="caffe", usable=False, install_hint=INSTALL_HINT)
    try:
        install = find_caffe()
    except CaffeNotFound as exc:
        status.missing.append(str(exc))
        return status
    status.location = str(install.root)
    status.version = _tool_version(install, status.missing)
    status.device = "GPU" if is_gpu_build(install.root) else "CPU"
    status.details["source"] = install.source
    status.details["dialect"] = proto_dialect(install.proto.read_text(errors="replace"))
    status.details.update(build_identity(install.root, status.details["dialect"]))
    layers = _pycaffe_layers(install, status.missing)
    status.details["layers"] = [name for name in SSD_LAYERS if name in layers]
    status.details["layer_count"] = len(layers)
    absent = [name for name in SSD_LAYERS if name not in layers]
    if layers and absent:
        status.missing.append(f"SSD layers not registered: {', '.join(absent)}")
    status.usable = not status.missing
    return status


FORK_BY_DIALECT = {
    "brocolli": "brocolli-caffe (an SSD fork without distort/expand)",
    "weiliu89": "weiliu89/caffe, ssd branch",
}


def read_build_stamp(root: Path) -> dict[str, str]:
    """``key=value`` lines scripts/install_caffe.sh writes after a complete build (empty if none)."""
    stamp = root / BUILD_STAMP
    if not stamp.is_file():
        return {}
    pairs = (line.split("=", 1) for line in stamp.read_text(errors="replace").splitlines() if "=" in line)
    return {key.strip(): value.strip() for key, value in pairs}


def build_identity(root: Path, dialect: str) -> dict:
    """Which Caffe this is, for doctor, provenance.json and the report: fork, commit, build, augmentation."""
    from harness.render.dialect import dialect_has_ssd_augmentation

    stamp = read_build_stamp(root)
    config = root / "Makefile.config"
    config_text = config.read_text(errors="replace") if config.is_file() else ""
    gpu = is_gpu_build(root)
    cudnn = bool(re.search(r"^\s*USE_CUDNN\s*:?=\s*1", config_text, re.M))
    blas = re.search(r"^\s*BLAS\s*:?=\s*(\w+)", config_text, re.M)
    return {
        "fork": FORK_BY_DIALECT.get(dialect, f"unknown ({stamp.get('fork') or 'no build stamp'})"),
        "commit": stamp.get("commit") or None,
        "source_sha256": stamp.get("source_sha256") or None,
        "build": ("GPU (CUDA" + (", cuDNN" if cudnn else ", no cuDNN") + ")")
        if gpu
        else f"CPU ({blas.group(1) if blas else 'unknown'} BLAS)",
        "ssd_augmentation": dialect_has_ssd_augmentation(dialect),
    }


def proto_dialect(proto_text: str) -> str:
    """The renderer's dialect of this caffe.proto (harness.render.dialect), or ``unknown``."""
    from harness.render.dialect import dialect_from_proto_text

    try:
        return dialect_from_proto_text(proto_text, "caffe.proto").dialect
    except ValueError:
        return "unknown"


def _tool_version(install: CaffeInstall, missing: list) -> str:
    try:
        done = subprocess.run(
            [str(install.caffe_bin), "--version"],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, **install.env(quiet=True)},
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        missing.append(f"{install.caffe_bin} --version failed: {exc}")
        return ""
    text = (done.stdout + done.stderr).strip()
    if done.returncode != 0:
        missing.append(f"{install.caffe_bin} --version: {describe_returncode(done.returncode)}: {text[-500:]}")
        return ""
    found = re.search(r"version\s+(\S+)", text)
    return found.group(1) if found else text.splitlines()[-1] if text else ""


def _pycaffe_layers(install: CaffeInstall, missing: list) -> list[str]:
    try:
        done = subprocess.run(
            [sys.executable, "-c", _INSPECT_CODE],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, **install.env(quiet=True)},
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        missing.append(f"`import caffe` did not finish: {exc}")
        return []
    for line in done.stdout.splitlines():
        if line.startswith("HARNESS-JSON "):
            return json.loads(line[len("HARNESS-JSON ") :])["layers"]
    missing.append(
        f"`import caffe` with PYTHONPATH={install.python_dir} failed "
        f"({describe_returncode(done.returncode)}): {done.stderr.strip()[-800:]}"
    )
    return []


def is_gpu_build(root: Path) -> bool:
    config = root / "Makefile.config"
    if not config.is_file():
        return False
    return not re.search(r"^\s*CPU_ONLY\s*:?=\s*1", config.read_text(errors="replace"), re.M)


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
    if solver.solver_mode != device.caffe_solver_mode:
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


def _resume_state(solver: SolverInfo) -> Optional[tuple[int, Path]]:
    states = snapshots(solver.snapshot_prefix, ".solverstate")
    return states[-1] if states else None


def train_argv(
    install: CaffeInstall, solver_path: Path, resume_state, init_weights, device: Device = Device("cpu")
) -> list[str]:
    """``caffe train --solver=S [--snapshot=STATE | --weights=W] [--gpu=N]``."""
    argv = [str(install.caffe_bin), "train", f"--solver={solver_path}", *device.caffe_train_args()]
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


# ----------------------------------------------------------------------------- detection


@dataclass(frozen=True)
class ImageRef:
    image_id: str
    path: Path


def existing_file(path: PathLike, what: str) -> Path:
    """Resolve ``path`` or fail naming it: Caffe's own message for a missing file is an abort."""
    path = Path(path).resolve()
    if not path.is_file():
        raise FileNotFoundError(f"{path}: {what} not found")
    return path


def image_refs(images: ImageList) -> list[ImageRef]:
    """Image ids and paths from annotations or plain paths (id = file name up to the first dot)."""
    refs = []
    for item in images:
        if isinstance(item, ImageAnnotation):
            refs.append(ImageRef(item.image_id, Path(item.image_path)))
        else:
            path = Path(item)
            refs.append(ImageRef(path.name.split(".", 1)[0], path))
    missing = [str(r.path) for r in refs if not r.path.is_file()]
    if missing:
        raise FileNotFoundError(f"{len(missing)} image(s) not found, first: {missing[0]}")
    ids = [r.image_id for r in refs]
    if len(set(ids)) != len(ids):
        raise ValueError(f"duplicate image ids among {len(ids)} images (ids are file names up to the first '.')")
    return refs


def detect_caffe(
    deploy_prototxt: PathLike,
    weights: PathLike,
    images: ImageList,
    labelmap,
    out_dir: PathLike,
    *,
    conf_threshold: float = 0.01,
    batch: int = 1,
    device: Device = Device("cpu"),
) -> Path:
    """Run the deploy net with pycaffe; write ``comp4_det_test_<class>.txt`` files into ``out_dir``."""
    labels = _labelmap(labelmap)
    refs = image_refs(images)
    raw = _run_worker(
        {
            "op": "detect",
            "deploy": str(existing_file(deploy_prototxt, "deploy prototxt")),
            "weights": str(existing_file(weights, "weights")),
            "batch": int(batch),
            "images": [[r.image_id, str(r.path)] for r in refs],
            "gpu": _gpu_index(device),
        },
        Path(out_dir),
    )
    return _write_detections(raw["detections"], labels, conf_threshold, Path(out_dir))


class OpenCVSSDNet:
    """An SSD deploy net loaded once in OpenCV DNN with SSD's test-time preprocessing (no Caffe
    needed): the raw DetectionOutput rows per image, as pycaffe's worker returns them."""

    def __init__(self, deploy_prototxt: PathLike, weights: PathLike) -> None:
        import cv2

        self.description = f"OpenCV DNN {cv2.__version__} (Caffe deploy net, CPU)"
        self.net = cv2.dnn.readNetFromCaffe(
            str(existing_file(deploy_prototxt, "deploy prototxt")), str(existing_file(weights, "weights"))
        )
        self.size = deploy_input_size(Path(deploy_prototxt))

    def records(self, images: Iterable[tuple[str, Path]]) -> dict:
        """{image id: {"width", "height", "rows"}} — what ``_write_detections`` takes."""
        records = {}
        for image_id, path in images:
            image = read_image(path)
            self.net.setInput(ssd_blob(image, self.size))
            records[image_id] = {
                "width": image.shape[1],
                "height": image.shape[0],
                "rows": detection_rows(self.net.forward()),
            }
        return records


def detect_opencv_caffe(
    deploy_prototxt: PathLike,
    weights: PathLike,
    images: ImageList,
    labelmap,
    out_dir: PathLike,
    *,
    conf_threshold: float = 0.01,
) -> Path:
    """The same deploy net through OpenCV DNN (no Caffe needed): an independent cross-check."""
    net = OpenCVSSDNet(deploy_prototxt, weights)
    records = net.records((ref.image_id, ref.path) for ref in image_refs(images))
    return _write_detections(records, _labelmap(labelmap), conf_threshold, Path(out_dir))


def deploy_input_size(deploy: Path) -> tuple[int, int]:
    """``(height, width)`` of the deploy net's input: ``input_shape { dim… }``, top-level ``input_dim``s,
    or an ``Input`` layer's ``input_param { shape { dim… } }`` (the harness's rendered SSD deploy nets)."""
    text = re.sub(r"#[^\n]*", "", deploy.read_text())
    for pattern in (r"input_shape\s*\{([^}]*)\}", r"input_param\s*\{\s*shape\s*\{([^}]*)\}"):
        found = re.search(pattern, text)
        if found:
            values = [int(v) for v in re.findall(r"dim\s*:\s*(\d+)", found.group(1))]
            break
    else:
        values = [int(v) for v in re.findall(r"^\s*input_dim\s*:\s*(\d+)", text, flags=re.M)]
    if len(values) != 4:
        raise ValueError(
            f"{deploy}: cannot find a 4-d input (input_shape, input_dim or an Input layer's "
            "input_param { shape }) for the data blob"
        )
    return values[2], values[3]


def read_image(path: Path):
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"{path}: not a readable image")
    return image


def ssd_blob(images, size: tuple[int, int]):
    """SSD test-time preprocessing: warp-resize (bilinear) to the net size, BGR minus mean, NCHW."""
    import cv2
    import numpy as np

    if not isinstance(images, list):
        images = [images]
    height, width = size
    batch = np.empty((len(images), 3, height, width), dtype=np.float32)
    for index, image in enumerate(images):
        resized = cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR).astype(np.float32)
        resized -= np.asarray(SSD_MEAN_BGR, dtype=np.float32)
        batch[index] = resized.transpose(2, 0, 1)
    return batch


def detection_rows(output) -> list[list[float]]:
    """DetectionOutput blob (1,1,N,7: item, label, score, x1, y1, x2, y2) → rows with item ≥ 0."""
    import numpy as np

    rows = np.asarray(output, dtype=np.float64).reshape(-1, 7)
    return rows[rows[:, 0] >= 0].tolist()


def _write_detections(records: dict, labels, conf_threshold: float, out_dir: Path) -> Path:
    from harness.evaluation.detections import Detections, write_voc_detections

    flat, skipped = [], {}
    for image_id, record in records.items():
        for row in record["rows"]:
            entry = _row_to_record(image_id, row, record["width"], record["height"], labels)
            if isinstance(entry, str):
                skipped[entry] = skipped.get(entry, 0) + 1
            elif entry["score"] >= conf_threshold:
                flat.append(entry)
    dets = Detections.from_records(flat, source="caffe DetectionOutput")
    out_dir.mkdir(parents=True, exist_ok=True)
    write_voc_detections(dets, out_dir, class_names=labels.names)
    summary = {
        "images": len(records),
        "detections": len(dets),
        "conf_threshold": conf_threshold,
        "skipped": skipped,
        "skipped_by_reader": dets.skipped,
    }
    (out_dir / "detections_summary.json").write_text(json.dumps(summary, indent=2))
    return out_dir


def _row_to_record(image_id: str, row: Sequence[float], width: int, height: int, labels):
    """One DetectionOutput row → a detection record in VOC pixels, or the reason it is skipped."""
    _, label, score, x1, y1, x2, y2 = row
    index = round(label) - 1  # Caffe label 0 is background
    if not 0 <= index < len(labels.names):
        return f"label {int(label)} outside the label map"
    if not all(math.isfinite(v) for v in (score, x1, y1, x2, y2)):
        return "non-finite score or box"
    box = [
        _clamp(x1 * width, width),
        _clamp(y1 * height, height),
        _clamp(x2 * width, width),
        _clamp(y2 * height, height),
    ]
    if box[2] < box[0] or box[3] < box[1]:
        return "inverted box"
    return {"image_id": image_id, "class": labels.names[index], "score": float(score), "bbox": box}


def _clamp(value: float, limit: int) -> float:
    return min(max(value, 0.0), float(limit))


def _labelmap(labelmap):
    from harness.labels import LabelMap

    return labelmap if isinstance(labelmap, LabelMap) else LabelMap.from_file(labelmap)


# ----------------------------------------------------------------------------- timing


def time_caffe(
    deploy: PathLike,
    weights: PathLike,
    images: ImageList,
    n: int = 50,
    warmup: int = 5,
    out_path: Optional[PathLike] = None,
    device: Device = Device("cpu"),
    scratch: Optional[PathLike] = None,
) -> dict:
    """Batch-1 latency of the deploy net via pycaffe over :data:`harness.frameworks.TIMED_SPAN`:
    preprocessing (resize, mean subtraction into the input blob) + forward, whose DetectionOutput
    layer decodes the boxes and runs NMS; ``forward_*`` is ``net.forward()`` alone.

    The worker's job file goes to ``scratch`` (default: beside ``out_path``, else a temp dir) —
    never into the caller's working directory.
    """
    import tempfile

    refs = image_refs(images)
    if not refs:
        raise ValueError("time_caffe needs at least one image")
    job = {
        "op": "time",
        "deploy": str(existing_file(deploy, "deploy prototxt")),
        "weights": str(existing_file(weights, "weights")),
        "gpu": _gpu_index(device),
        "images": [[r.image_id, str(r.path)] for r in refs],
        "n": int(n),
        "warmup": int(warmup),
    }
    if scratch is None and out_path is not None:
        scratch = Path(out_path).parent
    if scratch is None:
        with tempfile.TemporaryDirectory(prefix="harness-caffe-") as tmp:
            raw = _run_worker(job, Path(tmp))
    else:
        raw = _run_worker(job, Path(scratch))
    timing = _timing_summary(raw["milliseconds"], raw["forward_milliseconds"], n, warmup, device)
    if out_path is not None:
        Path(out_path).write_text(json.dumps(timing, indent=2))
    return timing


def _timing_summary(total_ms: list[float], forward_ms: list[float], n: int, warmup: int, device: Device) -> dict:
    import numpy as np

    from harness.frameworks import TIMED_SPAN, TIMED_SPAN_DESCRIPTION

    return {
        "device": describe_device(device),
        "backend": f"caffe-{device.kind}",
        "n_images": n,
        "warmup": warmup,
        "batch": 1,
        "span": TIMED_SPAN,
        "span_description": TIMED_SPAN_DESCRIPTION,
        "median_ms": float(np.median(total_ms)),
        "p90_ms": float(np.percentile(total_ms, 90)),
        "forward_median_ms": float(np.median(forward_ms)),
        "forward_p90_ms": float(np.percentile(forward_ms, 90)),
    }


def _gpu_index(device: Device) -> Optional[int]:
    return device.index if device.gpu else None


# ----------------------------------------------------------------------------- pycaffe worker


def _run_worker(job: dict, scratch: Path) -> dict:
    """Run one job in a child Python with pycaffe; its stderr (glog) is kept for error messages."""
    install = find_caffe()
    scratch.mkdir(parents=True, exist_ok=True)
    job_path = scratch / f".caffe_job_{os.getpid()}.json"
    result_path = job_path.with_suffix(".result.json")
    job["result"] = str(result_path)
    job_path.write_text(json.dumps(job))
    try:
        done = subprocess.run(
            [sys.executable, "-m", "harness.frameworks.caffe.driver", "worker", str(job_path)],
            capture_output=True,
            text=True,
            timeout=WORKER_TIMEOUT_S,
            env={**os.environ, **install.env(quiet=True), "PYTHONPATH": _worker_pythonpath(install)},
        )
        if done.returncode != 0 or not result_path.is_file():
            raise NativeFrameworkError(
                f"pycaffe {job['op']} failed ({describe_returncode(done.returncode)}) for {job['deploy']} "
                f"with weights {job['weights']}",
                (done.stdout + done.stderr)[-4000:],
            )
        return json.loads(result_path.read_text())
    finally:
        job_path.unlink(missing_ok=True)
        result_path.unlink(missing_ok=True)


def _worker_pythonpath(install: CaffeInstall) -> str:
    """pycaffe first, then this checkout (so ``-m harness.frameworks.caffe.driver`` resolves without install)."""
    project = str(Path(__file__).resolve().parents[3])
    return os.pathsep.join(filter(None, [str(install.python_dir), project, os.environ.get("PYTHONPATH", "")]))


def _worker_main(job_path: str) -> int:
    job = json.loads(Path(job_path).read_text())
    import caffe

    if job.get("gpu") is None:
        caffe.set_mode_cpu()
    else:
        caffe.set_device(int(job["gpu"]))
        caffe.set_mode_gpu()
    net = caffe.Net(job["deploy"], job["weights"], caffe.TEST)
    result = _worker_detect(net, job) if job["op"] == "detect" else _worker_time(net, job)
    Path(job["result"]).write_text(json.dumps(result))
    return 0


def _net_input(net) -> tuple[str, tuple[int, int]]:
    name = net.inputs[0]
    shape = net.blobs[name].data.shape
    return name, (int(shape[2]), int(shape[3]))


def _worker_detect(net, job: dict) -> dict:
    name, size = _net_input(net)
    batch = max(1, int(job.get("batch", 1)))
    records = {}
    images = job["images"]
    for start in range(0, len(images), batch):
        chunk = images[start : start + batch]
        decoded = [read_image(Path(path)) for _, path in chunk]
        blob = ssd_blob(decoded, size)
        if net.blobs[name].data.shape != blob.shape:
            net.blobs[name].reshape(*blob.shape)
            net.reshape()
        net.blobs[name].data[...] = blob
        rows = detection_rows(net.forward()[net.outputs[0]])
        for item, ((image_id, _), image) in enumerate(zip(chunk, decoded)):
            records[image_id] = {
                "width": image.shape[1],
                "height": image.shape[0],
                "rows": [r for r in rows if int(r[0]) == item],
            }
    return {"detections": records}


def _worker_time(net, job: dict) -> dict:
    name, size = _net_input(net)
    decoded = [read_image(Path(path)) for _, path in job["images"]]
    net.blobs[name].reshape(1, 3, *size)
    net.reshape()
    total, forward = [], []
    for index in range(job["warmup"] + job["n"]):
        image = decoded[index % len(decoded)]
        started = time.perf_counter()
        net.blobs[name].data[...] = ssd_blob(image, size)
        before_forward = time.perf_counter()
        net.forward()
        ended = time.perf_counter()
        if index >= job["warmup"]:
            total.append((ended - started) * 1000.0)
            forward.append((ended - before_forward) * 1000.0)
    return {"milliseconds": total, "forward_milliseconds": forward}


def _main(argv: list[str]) -> int:
    """``python -m harness.frameworks.caffe.driver inspect`` | ``worker JOB.json`` (internal)."""
    if len(argv) == 2 and argv[0] == "worker":
        return _worker_main(argv[1])
    if argv == ["inspect"]:
        status = inspect_caffe()
        print(json.dumps(status.__dict__, indent=2, default=str))
        return 0 if status.usable else 1
    print("usage: python -m harness.frameworks.caffe.driver inspect", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))

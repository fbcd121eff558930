"""One experiment end to end: render → train → detect → evaluate → classify → time → summary.json.

``harness train`` runs one of these; ``harness reproduce table1`` runs the paper's seven. The
only input is a resolved :class:`~harness.config.ExperimentConfig` (written to
``MODEL_DIR/config.json`` before anything else). Each step is recorded; a failing step ends that
experiment with ``status: failed`` and the reason in its summary, and the other experiments still
run. A finished experiment with the same config is reused, not retrained; an interrupted one
resumes from its last snapshot; one with a different config is refused unless ``overwrite``.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from harness.class_roles import MODEL_ROLES_FILE, ClassRoles, ClassRolesError, covering, load_roles
from harness.config import CONFIG_FILE, ExperimentConfig, ModelSpec, config_differences
from harness.core.atomic import write_bytes, write_text
from harness.core.errors import UsageProblem
from harness.core.profiles import Profile
from harness.core.types import NativeFrameworkError, TrainResult
from harness.data.annotations import ImageAnnotation
from harness.data.convert import ConvertResult, convert_dataset
from harness.data.options import DataOptions
from harness.data.voc import load_voc
from harness.device import Device
from harness.frameworks import backend_for
from harness.frameworks.configs import read_config, with_choices
from harness.labels import LabelMap
from harness.paths import from_recorded, recorded_path

log = logging.getLogger(__name__)  # the CLI shows INFO on stdout (harness.cli.EchoHandler)

__all__ = [
    "SEGMENTS_FILE",
    "ConfigMismatch",
    "ModelSpec",
    "PreparedData",
    "plan_experiment",
    "prepare_data",
    "run_experiment",
    "stop_on_sigterm",
]

SUMMARY_FILE = "summary.json"
SEGMENTS_FILE = "train_segments.json"
EXPERIMENT_LOG = "experiment.log"  # a child experiment's whole output (side-by-side local runs)
CONCURRENCY_VARIABLE = "HARNESS_CONCURRENT_EXPERIMENTS"  # set for those children: timing.json says so


@dataclass
class PreparedData:
    voc_root: Path
    converted: ConvertResult
    classification_root: Optional[Path]  # VOC layout, one object per image (Fig 10), if any
    synthetic: bool

    @property
    def labelmap(self) -> LabelMap:
        return self.converted.labelmap


def prepare_data(
    data: Optional[Path],
    work_dir: Path,
    profile: Profile,
    seed: int = 0,
    classification: Optional[Path] = None,
    synthetic_sizes: Optional[tuple[int, int]] = None,
    options: DataOptions = DataOptions(),
    formats: Optional[Sequence[str]] = None,
) -> PreparedData:
    """Use the user's VOC data, or synthesise the embedded default set; convert it once per run
    with the run's data options (class map, label map, leakage and typo rules) into the dataset
    ``formats`` the run's backends read (:func:`dataset_formats`; None: every format)."""
    from harness.data.synth import synthesize

    work_dir = Path(work_dir).resolve()
    synthetic = data is None
    if data is None:
        images, cells = synthetic_sizes or (profile.synthetic_images, profile.synthetic_classification_images)
        data = synthesize(work_dir / "synthetic", images, seed=seed, classification_images=cells)
        cls_root = Path(data) / "classification"
        classification = classification or (cls_root if cls_root.is_dir() else None)
    kwargs: dict[str, Any] = {"formats": tuple(formats)} if formats is not None else {}
    converted = convert_dataset(
        Path(data).resolve(), work_dir / "dataset", seed=seed, **options.convert_kwargs(), **kwargs
    )
    log.info(converted.summary())
    return PreparedData(
        Path(data).resolve(), converted, Path(classification).resolve() if classification else None, synthetic
    )


def dataset_formats(configs: Sequence[ExperimentConfig]) -> tuple[str, ...]:
    """The dataset formats the backends of ``configs`` read (FrameworkBackend.dataset_formats)."""
    from harness.frameworks import backend_class

    found: list[str] = []
    for config in configs:
        found += [f for f in backend_class(config.framework).dataset_formats if f not in found]
    return tuple(found)


class StepFailed(RuntimeError):
    def __init__(self, step: str, cause: BaseException) -> None:
        super().__init__(f"{step}: {cause}")
        self.step = step


class ConfigMismatch(ValueError):
    """MODEL_DIR holds an experiment made with another config: never overwrite it silently."""


def _step(name: str, func: Callable, *args, **kwargs):
    """Run one pipeline step, tagging any failure with the step's name for the summary."""
    log.info(f"[{name}] …")
    started = time.monotonic()
    try:
        result = func(*args, **kwargs)
    except KeyboardInterrupt:
        raise
    except Exception as exc:
        raise StepFailed(name, exc) from exc
    log.info(f"[{name}] done in {time.monotonic() - started:.1f} s")
    return result


def write_json(path: Path, data: Any) -> Path:
    """Atomic JSON write: a reader never sees half a summary (harness.core.atomic)."""
    from harness.core.atomic import write_json as atomic_json

    return atomic_json(path, data)


def read_summary(model_dir: Path) -> Optional[dict]:
    path = Path(model_dir) / SUMMARY_FILE
    try:
        return json.loads(path.read_text()) if path.is_file() else None
    except ValueError:
        return None


def _ids_file(path: Path, ids: Sequence[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text(path, "".join(f"{i}\n" for i in ids))
    return path


def _scored_test_ids(data: PreparedData, config: ExperimentConfig) -> list[str]:
    wanted = config.limit("test_images")
    ids = list(data.converted.test_ids)
    return ids if wanted is None else ids[:wanted]


def _classification_images(data: PreparedData, config: ExperimentConfig) -> list[ImageAnnotation]:
    if data.classification_root is None:
        return []
    images = load_voc(data.classification_root, labelmap=data.labelmap).images
    wanted = config.limit("classification_images")
    return images if wanted is None else images[:wanted]


# --------------------------------------------------------------------------------- the experiment


def evaluate_split(
    gt: Sequence[ImageAnnotation], detections: Path, labelmap: LabelMap, out_dir: Path, protocols: Sequence[str]
) -> dict[str, str]:
    """Score one detection directory with each protocol; returns {protocol: metrics file name}."""
    from harness.evaluation import evaluate_detections
    from harness.evaluation.detections import read_detections

    dets = read_detections(detections, class_names=labelmap.names)
    written = {}
    for protocol in protocols:
        metrics = evaluate_detections(gt, dets, labelmap, protocol=protocol)
        written[protocol] = write_json(out_dir / f"metrics_{protocol}.json", metrics).name
        log.info(f"    {protocol} mAP = {metrics['map']} (mean over {metrics.get('mean_over', 'present')} classes)")
    for problem in _metric_warnings(metrics):
        log.info(f"    warning: {problem}")
    return written


def _metric_warnings(metrics: dict) -> list[str]:
    """What the evaluator flagged (metrics.json ``warnings``), one line each for the console."""
    warnings = metrics.get("warnings") or {}
    lines = [str(warnings["no_detections"])] if warnings.get("no_detections") else []
    missing = warnings.get("classes_without_detections") or {}
    if missing:
        lines.append(
            f"{len(missing)} scored class(es) with objects but no detections: "
            + ", ".join(f"{name} ({why})" for name, why in missing.items())
        )
    return lines


def classify(images: list[ImageAnnotation], detections: Path, labelmap: LabelMap, out_dir: Path) -> str:
    from harness.evaluation.classification import classification_report
    from harness.evaluation.detections import read_detections

    report = classification_report(images, read_detections(detections, class_names=labelmap.names), labelmap)
    log.info(f"    mean accuracy = {report['mean_accuracy']}")
    return write_json(out_dir / "classification.json", report).name


def stop_on_sigterm() -> None:
    """Treat SIGTERM like Ctrl-C so an experiment killed by a scheduler still writes its summary."""
    import signal

    def _raise(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, _raise)


def plan_experiment(config: ExperimentConfig, overwrite: bool = False) -> str:
    """``new``, ``reuse`` (finished with this config), ``resume`` (started, same config) or
    ``overwrite``; raises :class:`ConfigMismatch` when MODEL_DIR holds another config."""
    existing = read_config(config.model_dir)
    if existing is None:
        return "overwrite" if overwrite and config.model_dir.exists() else "new"
    if overwrite:
        return "overwrite"
    differences = config_differences(existing, config)
    if differences:
        raise ConfigMismatch(
            f"{config.model_dir} was made with another config ({'; '.join(differences)}): "
            "pass --overwrite to retrain it, or choose another --name" + _roles_hint(differences)
        )
    summary = read_summary(config.model_dir) or {}
    return "reuse" if summary.get("status") == "ok" else "resume"


def _roles_hint(differences: list[str]) -> str:
    """Another class-roles table alone changes nothing that was trained: say how to use it without retraining."""
    if not any(d.startswith("class_roles:") for d in differences):
        return ""
    return f" (a new class-roles table alone needs no training: copy it to MODEL_DIR/{MODEL_ROLES_FILE})"


def run_experiment(config: ExperimentConfig, data: PreparedData, overwrite: bool = False) -> dict:
    """Run every step for one model and write ``MODEL_DIR/summary.json`` whatever happens.

    Holds ``MODEL_DIR/.lock`` throughout: a second process (another submission, a requeued
    task) gets :class:`~harness.core.locks.ExperimentBusy` instead of training alongside."""
    from harness.core.locks import experiment_lock

    with experiment_lock(config.model_dir):
        return _run_locked(config, data, overwrite)


def clear_model_dir(model_dir: Path) -> None:
    """Everything but the lock file, which a concurrent process may be holding."""
    from harness.core.locks import LOCK_FILE

    for child in Path(model_dir).iterdir() if Path(model_dir).is_dir() else ():
        if child.name == LOCK_FILE:
            continue
        shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()


def scheduler_record() -> Optional[dict]:
    """Which batch-system job ran this experiment (None outside one)."""
    import os

    keys = {
        "job_id": "SLURM_JOB_ID",
        "array_job_id": "SLURM_ARRAY_JOB_ID",
        "array_task_id": "SLURM_ARRAY_TASK_ID",
        "node": "SLURMD_NODENAME",
        "restart_count": "SLURM_RESTART_COUNT",
    }
    record = {key: os.environ[name] for key, name in keys.items() if name in os.environ}
    return {"system": "slurm", **record} if record else None


def _timing_conditions() -> dict:
    """Side-by-side local runs (harness.runners.local) time under load, on fewer threads: say so."""
    import os

    jobs = os.environ.get(CONCURRENCY_VARIABLE)
    if not jobs:
        return {}
    return {
        "concurrent_experiments": int(jobs),
        "threads": os.environ.get("OMP_NUM_THREADS"),
        "note": f"measured while up to {jobs} experiments ran at once; not comparable with an idle machine",
    }


def _started_before(model_dir: Path) -> bool:
    """More than what a submitter writes before a task starts (config, lock, the task's log)."""
    from harness.core.locks import LOCK_FILE

    ahead = {CONFIG_FILE, LOCK_FILE, EXPERIMENT_LOG}
    return any(child.name not in ahead for child in Path(model_dir).iterdir())


def checked_class_roles(config: ExperimentConfig, labelmap: LabelMap) -> Optional[ClassRoles]:
    """The experiment's ``--classes`` table (None without one). A table that misses a class of the
    model (after --class-map / --labelmap) is a usage error naming the file and the classes."""
    if config.class_roles is None:
        return None
    try:
        return covering(load_roles(config.class_roles), labelmap.names)
    except ClassRolesError as exc:
        raise UsageProblem(f"--classes {exc}") from None


def install_class_roles(config: ExperimentConfig, labelmap: LabelMap) -> Optional[dict]:
    """Copy the ``--classes`` table to MODEL_DIR/class_roles.json, where ``harness count MODEL_DIR``
    finds it without --classes; returns summary.json's record of it (None without a table)."""
    table = checked_class_roles(config, labelmap)
    if table is None or config.class_roles is None:
        return None
    write_bytes(config.model_dir / MODEL_ROLES_FILE, config.class_roles.read_bytes())
    log.info(f"    class roles: {table.name} ({config.class_roles}) → {config.model_dir / MODEL_ROLES_FILE}")
    return {"name": table.name, "file": MODEL_ROLES_FILE, "source": str(config.class_roles)}


def _run_locked(config: ExperimentConfig, data: PreparedData, overwrite: bool) -> dict:
    plan = plan_experiment(config, overwrite)
    model_dir = config.model_dir
    if plan == "reuse":
        log.info(f"[{config.name}] already finished with this config: reusing {model_dir} (--overwrite to retrain)")
        install_class_roles(config, data.labelmap)  # the table as it is now: an edited file is copied again
        return {**(read_summary(model_dir) or {}), "reused": True}
    if plan == "overwrite":
        clear_model_dir(model_dir)
    if plan == "resume" and _started_before(model_dir):
        log.info(f"[{config.name}] unfinished run with this config in {model_dir}: resuming")
    config.write()
    _warn_if_objects_are_small(config, data)
    class_roles = install_class_roles(config, data.labelmap)
    summary: dict[str, Any] = {
        "experiment": config.name,
        "framework": config.framework,
        **backend_for(config, data.labelmap, data.converted.out_dir).summary_fields(),
        "model": config.spec.model,
        "size": config.spec.size,
        "smin": config.spec.smin,
        "smax": config.spec.smax,
        "profile": config.profile,
        "comparable_with_paper": config.comparable_with_paper,
        "role": config.role,
        "device": str(config.device),
        "config": "config.json",
        "status": "running",
        "message": "",
        "train": None,
        "metrics": {},
        "classification": None,
        "timing": None,
        "init_weights": str(config.init_weights) if config.init_weights else None,
        "class_roles": class_roles,
        "scheduler": scheduler_record(),
    }
    started = time.monotonic()
    try:
        _run_steps(config, data, summary)
        summary["status"] = "ok"
    except KeyboardInterrupt:
        summary.update(status="failed", message="interrupted (Ctrl-C or SIGTERM); run the same command to resume")
        raise
    except StepFailed as exc:
        summary.update(status="failed", message=str(exc), failed_step=exc.step, log=_log_for(model_dir))
        detail = exc.__cause__
        if detail is not None and not isinstance(detail, NativeFrameworkError):
            summary["traceback"] = "".join(traceback.format_exception(detail))[-4000:]
        log.info(f"[{config.name}] FAILED at {exc}")
    finally:
        summary["seconds"] = round(time.monotonic() - started, 1)
        write_json(model_dir / SUMMARY_FILE, summary)
    return summary


def _warn_if_objects_are_small(config: ExperimentConfig, data: PreparedData) -> None:
    """A user's set at an input size that shrinks its smallest class under 16 px gets the audit's
    advice (harness.data.input_size); the synthetic set's sizes are the profiles' own choice."""
    advice = data.converted.input_size
    size = config.spec.size
    if data.synthetic or advice is None or not size or not advice.too_small_at(size):
        return
    log.warning(
        f"[{config.name}] at --size {size} the smallest objects ({advice.smallest_class}) measure "
        f"{advice.pixels(advice.smallest_class, size):.0f} px (median): expect them to be learned poorly; "
        f"this dataset suggests --size {advice.size} (harness data check)"
    )


def _log_for(model_dir: Path) -> Optional[str]:
    log = model_dir / "train.log"
    return str(log) if log.is_file() else None


def _run_steps(config: ExperimentConfig, data: PreparedData, summary: dict) -> None:
    model_dir = config.model_dir
    fw = backend_for(config, data.labelmap, data.converted.out_dir)
    files = _step("render", render_experiment, config, data)
    ids_file = model_dir / "test_ids.txt"
    summary["rendered"] = {role: recorded_path(path, model_dir) for role, path in files.items()}

    test_images = load_voc(data.voc_root, image_set=ids_file, labelmap=data.labelmap).images
    result = _train_with_periodic_evaluation(fw, files, config, test_images, data.labelmap)
    segments = read_segments(model_dir)
    summary["train"] = {
        "iterations": result.iterations,
        "seconds": training_seconds(segments),
        "segments": len(segments),
        "loss_csv": recorded_path(result.loss_csv, model_dir),
        "weights": recorded_path(_weights(result), model_dir),
        "log": recorded_path(result.log_path, model_dir),
        "resumed_from": recorded_path(result.resumed_from, model_dir) if result.resumed_from else None,
        "init_weights": str(config.init_weights) if config.init_weights else None,
        **fw.native_score(result),
    }

    det_dir = _step("detect", fw.detect, files, result.weights, test_images, model_dir / "detections", native=True)
    summary["metrics"] = _step(
        "evaluate", evaluate_split, test_images, Path(det_dir), data.labelmap, model_dir, config.protocols
    )
    summary["metrics_weights"] = recorded_path(_weights(result), model_dir)
    summary["best"] = _record_final_evaluation(config, result, summary["metrics"])

    cls_images = _classification_images(data, config)
    if cls_images:
        cls_dir = _step(
            "detect-classification",
            fw.detect,
            files,
            result.weights,
            cls_images,
            model_dir / "classification_detections",
        )
        summary["classification"] = _step("classify", classify, cls_images, Path(cls_dir), data.labelmap, model_dir)
    else:
        summary["classification_note"] = "no classification set (single-object images) given"

    n, warmup = config.limit("timing_images"), config.limit("timing_warmup")
    timing = _step("time", fw.time, files, result.weights, test_images, n, warmup)  # runners cycle the images
    summary["timing"] = write_json(model_dir / "timing.json", {**timing, **_timing_conditions()}).name


# --------------------------------------------------------------------------------- periodic evaluation


def _train_with_periodic_evaluation(
    fw, files: dict[str, Path], config: ExperimentConfig, test_images: list[ImageAnnotation], labelmap: LabelMap
) -> TrainResult:
    """Train segment by segment, scoring the weights at each evaluation point before going on.

    Points already in results.csv are not trained to or scored again (a resumed run); the
    trainers resume from their own checkpoints, so skipping a segment call loses nothing. The
    final point is scored by the experiment's final detect/evaluate steps, not here.
    """
    from harness.core.periodic import evaluated_iterations, evaluation_points

    model_dir = config.model_dir
    points = evaluation_points(fw.schedule_length(files), config.eval_interval)
    done = evaluated_iterations(model_dir)
    log.info(f"    evaluation at iterations {_describe_points(points)} → {model_dir / 'results.csv'}")
    log.info(f"    native log: {model_dir / 'train.log'} (loss per iteration: {model_dir / 'loss.csv'})")
    total = points[-1] if points else None
    for point in points[:-1]:
        if point in done:
            continue
        result = _train_segment(fw, files, config, point, total)
        _step(f"evaluate@{result.iterations}", _score_snapshot, fw, files, config, result, test_images, labelmap)
    return _train_segment(fw, files, config, total, total)


def _describe_points(points: list[int]) -> str:
    return (
        ", ".join(map(str, points))
        if len(points) <= 6
        else f"{points[0]}, {points[1]}, …, {points[-2]}, {points[-1]} ({len(points)} points)"
    )


def _bar_label(config: ExperimentConfig) -> str:
    """The training bar's title: the model, and the best held-out mAP so far once there is one."""
    from harness.core.periodic import read_best

    best = read_best(config.model_dir)
    return config.name + (f" mAP {best.protocol} {_percent(best.map)}@{best.iteration}" if best else "")


def _train_segment(
    fw, files: dict[str, Path], config: ExperimentConfig, until: Optional[int], total: Optional[int]
) -> TrainResult:
    display = {"label": _bar_label(config), "display_total": total}
    result = _step(
        "train" if until is None else f"train→{until}", _timed_training, fw, files, config.model_dir, until, display
    )
    if result.weights is None:
        raise StepFailed("train", RuntimeError(f"training produced no weights (see {result.log_path})"))
    if result.resumed_from is not None:
        log.info(f"    resumed from {result.resumed_from}")
    return result


def _weights(result: TrainResult) -> Path:
    """The weights a training segment wrote (:func:`_train_segment` refuses a segment that wrote none)."""
    if result.weights is None:
        raise StepFailed("train", RuntimeError(f"training produced no weights (see {result.log_path})"))
    return result.weights


def _score_snapshot(
    fw,
    files: dict[str, Path],
    config: ExperimentConfig,
    result: TrainResult,
    test_images: list[ImageAnnotation],
    labelmap: LabelMap,
) -> dict:
    """Detect on the held-out split with this segment's weights and record one results.csv row.

    Detections go to a scratch folder that each scoring replaces; the final evaluation's own
    files (detections/, metrics_*.json) are only ever written by the final weights.
    """
    from harness.evaluation import evaluate_detections
    from harness.evaluation.detections import read_detections

    scratch = config.model_dir / "periodic_detections"
    shutil.rmtree(scratch, ignore_errors=True)
    det_dir = fw.detect(files, result.weights, test_images, scratch, native=True)
    dets = read_detections(Path(det_dir), class_names=labelmap.names)
    maps = {p: evaluate_detections(test_images, dets, labelmap, protocol=p)["map"] for p in config.protocols}
    return _record_point(config, result, maps)


def _record_point(config: ExperimentConfig, result: TrainResult, maps: dict[str, Optional[float]]) -> dict:
    """Best weights first, then the row (see periodic.keep_if_best); prints the Ultralytics-like line."""
    from harness.core.periodic import keep_if_best, loss_at, record_result

    model_dir, protocol = config.model_dir, config.protocols[0]
    best = keep_if_best(model_dir, result.iterations, maps.get(protocol), protocol, _weights(result))
    row = {
        "iteration": result.iterations,
        **loss_at(result.loss_csv, result.iterations),
        **{f"map_{p}": _nan_if_none(m) for p, m in maps.items()},
        "seconds": training_seconds(read_segments(model_dir)),
    }
    record_result(model_dir, row, config.protocols)
    scores = "  ".join(f"mAP {p} {_percent(m)}" for p, m in maps.items())
    best_note = f"  best {_percent(best.map)} @ {best.iteration}" if best else ""
    log.info(f"    iteration {result.iterations}: {scores}{best_note}")
    return row


def _record_final_evaluation(config: ExperimentConfig, result: TrainResult, metrics_files: dict[str, str]) -> dict:
    """The final weights' metrics become results.csv's last row; returns summary.json's ``best``."""
    maps = {p: json.loads((config.model_dir / name).read_text()).get("map") for p, name in metrics_files.items()}
    _record_point(config, result, maps)
    from harness.core.periodic import RESULTS_FILE, read_best

    best = read_best(config.model_dir)
    record = {"results_csv": RESULTS_FILE, "eval_interval": config.eval_interval}
    if best is not None:
        record.update(best.to_json(), weights=f"weights/{best.weights}")
    return record


def _nan_if_none(value: Optional[float]) -> float:
    return float("nan") if value is None else float(value)


def _percent(value: Optional[float]) -> str:
    return "n/a" if value is None or value != value else f"{value * 100:.1f}"


def render_experiment(config: ExperimentConfig, data: PreparedData) -> dict[str, Path]:
    """The native files of one experiment (what `render table1` and training share)."""
    config.write()
    test_ids = _scored_test_ids(data, config)
    _ids_file(config.model_dir / "test_ids.txt", test_ids)
    return backend_for(config, data.labelmap, data.converted.out_dir).render(test_ids)


def _timed_training(
    fw, files: dict[str, Path], model_dir: Path, until: Optional[int] = None, display: Optional[dict] = None
) -> TrainResult:
    """Train (to ``until``), and record this segment's wall time even when it is interrupted or
    fails, so the reported training time of a resumed run is the sum of all its segments."""
    started, wall = time.monotonic(), time.strftime("%Y-%m-%dT%H:%M:%S")
    outcome = "interrupted"
    try:
        result = fw.train(files, until, **(display or {}))
        outcome = "resumed" if result.resumed_from is not None else "fresh"
        return result
    except Exception:
        outcome = "failed"
        raise
    finally:
        segments = read_segments(model_dir)
        if outcome == "fresh":  # started from scratch: what earlier segments trained was thrown away
            segments = [{**s, "discarded": True} for s in segments]
        segments.append({"started": wall, "seconds": round(time.monotonic() - started, 1), "outcome": outcome})
        write_json(model_dir / SEGMENTS_FILE, segments)


def training_seconds(segments: list[dict]) -> float:
    """Training time: the segments whose work the final weights build on (an interrupted segment
    that left no checkpoint is marked ``discarded`` when the next one starts from scratch)."""
    return round(sum(s["seconds"] for s in segments if not s.get("discarded")), 1)


def read_segments(model_dir: Path) -> list[dict]:
    path = Path(model_dir) / SEGMENTS_FILE
    try:
        return json.loads(path.read_text()) if path.is_file() else []
    except ValueError:
        return []


@dataclass
class TrainedModel:
    """A finished MODEL_DIR ready to detect: config (its device is where detection runs), rendered
    files, weights and the model's own classes."""

    config: ExperimentConfig
    files: dict
    weights: Path
    labelmap: LabelMap

    @property
    def framework(self) -> str:
        return self.config.framework

    @property
    def device(self) -> Device:
        return self.config.device


def load_trained_model(model_dir: Path, device: str, darknet: Optional[str] = None) -> TrainedModel:
    """:func:`trained_model` with its label map, on ``device`` (cpu, gpu, gpu:N or auto), run with the
    run's framework choices (``darknet``: another Darknet for a Darknet model; None: the one it was
    trained with; the backend ignores a choice that is not its own)."""
    from harness.frameworks import resolve_framework_device

    config, files, weights = trained_model(model_dir)
    labelmap = LabelMap.from_file(files.get("names") or files["labelmap"])
    resolved = resolve_framework_device(device, config.framework, config.framework_options)
    config = with_choices(config, resolved, darknet=darknet)
    return TrainedModel(config, files, weights, labelmap)


def trained_model(model_dir: Path) -> tuple[ExperimentConfig, dict[str, Path], Path]:
    """A finished MODEL_DIR's config, rendered files and weights, from any working directory."""
    model_dir = Path(model_dir).resolve()
    summary = read_summary(model_dir)
    if summary is None:
        raise FileNotFoundError(f"{model_dir / SUMMARY_FILE}: missing — MODEL_DIR must come from `harness train`")
    weights = (summary.get("train") or {}).get("weights")
    if not weights:
        raise ValueError(f"{model_dir / SUMMARY_FILE}: this model has no trained weights ({summary.get('message')})")
    config = read_config(model_dir)
    if config is None:
        raise FileNotFoundError(f"{model_dir / 'config.json'}: missing — retrain this model with this harness version")
    files = {role: from_recorded(p, model_dir) for role, p in summary["rendered"].items()}
    return config, files, from_recorded(weights, model_dir)

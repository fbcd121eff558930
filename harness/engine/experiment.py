"""One experiment end to end: render → train → detect → evaluate → classify → time → summary.json.

``harness train`` runs one of these; ``harness reproduce table1`` runs the paper's seven. Each step
is recorded; a failing step ends that experiment with ``status: failed`` and the reason in its
summary (the report shows it), and the other experiments still run.
"""
from __future__ import annotations

import json
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from harness.data.annotations import ImageAnnotation
from harness.data.convert import ConvertResult, convert_dataset
from harness.data.voc import load_voc
from harness.engine.profiles import Profile, limit, ssd_solver, yolo_overrides
from harness.engine.types import NativeFrameworkError
from harness.labels import LabelMap


@dataclass(frozen=True)
class ModelSpec:
    """What to build: the paper's experiments (harness.paper.Experiment) fit this shape too."""

    name: str
    framework: str          # "caffe" | "darknet"
    model: str              # "ssd" | "yolov3" | "yolov3-tiny"
    size: int
    smin: Optional[float] = None
    smax: Optional[float] = None

    @classmethod
    def of(cls, experiment: Any) -> "ModelSpec":
        return cls(experiment.name, experiment.framework, experiment.model, experiment.size,
                   getattr(experiment, "smin", None), getattr(experiment, "smax", None))


@dataclass
class PreparedData:
    voc_root: Path
    converted: ConvertResult
    classification_root: Optional[Path]   # VOC layout, one object per image (Fig 10), if any
    synthetic: bool

    @property
    def labelmap(self) -> LabelMap:
        return self.converted.labelmap


def prepare_data(data: Optional[Path], work_dir: Path, profile: Profile, seed: int = 0,
                 classification: Optional[Path] = None) -> PreparedData:
    """Use the user's VOC data, or synthesise the embedded default set; convert it once per run."""
    from harness.data.synth import synthesize

    synthetic = data is None
    if synthetic:
        data = synthesize(work_dir / "synthetic", profile.synthetic_images, seed=seed,
                          classification_images=profile.synthetic_classification_images)
        cls_root = Path(data) / "classification"
        classification = classification or (cls_root if cls_root.is_dir() else None)
    converted = convert_dataset(Path(data), work_dir / "dataset", seed=seed)
    print(converted.summary())
    return PreparedData(Path(data), converted, Path(classification) if classification else None, synthetic)


class StepFailed(RuntimeError):
    def __init__(self, step: str, cause: BaseException) -> None:
        super().__init__(f"{step}: {cause}")
        self.step = step


def _step(name: str, func: Callable, *args, **kwargs):
    """Run one pipeline step, tagging any failure with the step's name for the summary."""
    print(f"[{name}] …", flush=True)
    started = time.monotonic()
    try:
        result = func(*args, **kwargs)
    except KeyboardInterrupt:
        raise
    except Exception as exc:   # noqa: BLE001 - every failure is reported in summary.json
        raise StepFailed(name, exc) from exc
    print(f"[{name}] done in {time.monotonic() - started:.1f} s", flush=True)
    return result


def _write_json(path: Path, data: dict) -> Path:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n")
    tmp.replace(path)
    return path


def _ids_file(path: Path, ids: Sequence[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{i}\n" for i in ids))
    return path


def _scored_test_ids(data: PreparedData, profile: Profile, spec: "ModelSpec") -> list[str]:
    wanted = limit(profile, spec, "test_images")
    ids = list(data.converted.test_ids)
    return ids if wanted is None else ids[:wanted]


def _classification_images(data: PreparedData, profile: Profile, spec: "ModelSpec") -> list[ImageAnnotation]:
    if data.classification_root is None:
        return []
    images = load_voc(data.classification_root, labelmap=data.labelmap).images
    wanted = limit(profile, spec, "classification_images")
    return images if wanted is None else images[:wanted]


# --------------------------------------------------------------------------------- frameworks

class _Caffe:
    """Caffe-SSD: rendered prototxts, `caffe train`, pycaffe detection."""

    def __init__(self, spec: ModelSpec, data: PreparedData, model_dir: Path, profile: Profile) -> None:
        self.spec, self.data, self.dir, self.profile = spec, data, model_dir, profile

    def render(self, test_ids: Sequence[str]) -> dict[str, Path]:
        from harness.render.ssd import render_ssd

        kwargs: dict[str, Any] = {"solver": ssd_solver(self.profile, self.spec)}
        if self.profile.ssd_batch_size:
            kwargs["batch_size"] = self.profile.ssd_batch_size
        return render_ssd(self.dir / "rendered", size=self.spec.size, smin=self.spec.smin or 0.2,
                          smax=self.spec.smax or 0.9, labelmap=self.data.labelmap,
                          dataset=self.data.converted.out_dir, snapshot_prefix=self.dir / "weights" / self.spec.name,
                          detection_out_dir=self.dir / "caffe_test_output", **kwargs)

    def train(self, files: dict[str, Path], init_weights: Optional[Path]):
        from harness.engine.caffe import train_caffe

        return train_caffe(files["solver"], self.dir, init_weights=init_weights)

    def detect(self, files, weights: Path, images: list[ImageAnnotation], out_dir: Path,
               native: bool = False) -> Path:
        """pycaffe on the deploy net: this fork's DetectionOutput writes no files (docs/caffe.md)."""
        from harness.engine.caffe import detect_caffe

        return detect_caffe(files["deploy"], weights, images, self.data.labelmap, out_dir)

    def time(self, files, weights: Path, images: list[ImageAnnotation], n: int, warmup: int) -> dict:
        from harness.engine.caffe import time_caffe

        return time_caffe(files["deploy"], weights, images, n=n, warmup=warmup)


class _Darknet:
    """Darknet YOLOv3/-tiny: rendered cfg/.data, `darknet detector train/valid`, ctypes timing."""

    def __init__(self, spec: ModelSpec, data: PreparedData, model_dir: Path, profile: Profile,
                 overrides: Optional[dict] = None) -> None:
        self.spec, self.data, self.dir, self.profile = spec, data, model_dir, profile
        self.overrides = overrides if overrides is not None else yolo_overrides(profile, spec)

    def _darknet_image(self, image_id: str) -> Path:
        return self.data.converted.out_dir / "darknet" / "images" / f"{image_id}.jpg"

    def render(self, test_ids: Sequence[str]) -> dict[str, Path]:
        from harness.render.yolo import render_yolo

        valid_list = self.dir / "rendered" / "valid.txt"
        valid_list.parent.mkdir(parents=True, exist_ok=True)
        valid_list.write_text("".join(f"{self._darknet_image(i)}\n" for i in test_ids))
        (self.dir / "weights").mkdir(parents=True, exist_ok=True)
        return render_yolo(self.dir / "rendered", model=self.spec.model, size=self.spec.size, labelmap=self.data.labelmap,
                           train_list=self.data.converted.out_dir / "darknet" / "train.txt",
                           valid_list=valid_list, backup_dir=self.dir / "weights",
                           results_dir=self.dir / "darknet_results", overrides=self.overrides)

    def train(self, files: dict[str, Path], init_weights: Optional[Path]):
        from harness.engine.darknet import train_darknet

        return train_darknet(files["data"], files["cfg"], self.dir, init_weights=init_weights)

    def detect(self, files, weights: Path, images: list[ImageAnnotation], out_dir: Path,
               native: bool = False) -> Path:
        """``native``: `darknet detector valid` over the rendered test list (the paper's tool);
        otherwise libdarknet in-process on any images (same files, tested equal)."""
        from harness.engine.darknet import detect_darknet_ctypes, detect_darknet_valid

        if native:
            return detect_darknet_valid(files["data"], files["cfg"], weights, out_dir)
        detect_darknet_ctypes(files["cfg"], weights, [im.image_path for im in images], self.data.labelmap.names,
                              out_dir)
        return out_dir

    def time(self, files, weights: Path, images: list[ImageAnnotation], n: int, warmup: int) -> dict:
        from harness.engine.darknet import time_darknet

        return time_darknet(files["cfg"], weights, [im.image_path for im in images], n=n, warmup=warmup)


def framework_for(spec: ModelSpec, data: PreparedData, model_dir: Path, profile: Profile, **kwargs):
    if spec.framework == "caffe":
        return _Caffe(spec, data, model_dir, profile)
    if spec.framework == "darknet":
        return _Darknet(spec, data, model_dir, profile, **kwargs)
    raise ValueError(f"unknown framework {spec.framework!r} for {spec.name}")


# --------------------------------------------------------------------------------- the experiment

def evaluate_split(gt: Sequence[ImageAnnotation], detections: Path, labelmap: LabelMap,
                   out_dir: Path) -> dict[str, str]:
    """Score one detection directory with both VOC protocols; returns {protocol: metrics file name}."""
    from harness.evaluation import evaluate_detections
    from harness.evaluation.detections import read_detections

    dets = read_detections(detections, class_names=labelmap.names)
    written = {}
    for protocol in ("voc07", "voc12"):
        metrics = evaluate_detections(gt, dets, labelmap, protocol=protocol)
        written[protocol] = _write_json(out_dir / f"metrics_{protocol}.json", metrics).name
        print(f"    {protocol} mAP = {metrics['map']}")
    return written


def classify(images: list[ImageAnnotation], detections: Path, labelmap: LabelMap, out_dir: Path) -> str:
    from harness.evaluation.classification import classification_report
    from harness.evaluation.detections import read_detections

    report = classification_report(images, read_detections(detections, class_names=labelmap.names), labelmap)
    print(f"    mean accuracy = {report['mean_accuracy']}")
    return _write_json(out_dir / "classification.json", report).name


def stop_on_sigterm() -> None:
    """Treat SIGTERM like Ctrl-C so an experiment killed by a scheduler still writes its summary."""
    import signal

    def _raise(signum, frame):  # noqa: ARG001
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, _raise)


def run_experiment(spec: ModelSpec, data: PreparedData, model_dir: Path, profile: Profile,
                   init_weights: Optional[Path] = None, framework_kwargs: Optional[dict] = None) -> dict:
    """Run every step for one model and write ``model_dir/summary.json`` whatever happens."""
    model_dir.mkdir(parents=True, exist_ok=True)
    summary: dict[str, Any] = {"experiment": spec.name, "framework": spec.framework, "model": spec.model,
                               "size": spec.size, "smin": spec.smin, "smax": spec.smax,
                               "profile": profile.name, "comparable_with_paper": profile.comparable_with_paper,
                               "status": "running", "message": "", "train": None, "metrics": {},
                               "classification": None, "timing": None,
                               "init_weights": str(init_weights) if init_weights else None}
    started = time.monotonic()
    try:
        _run_steps(spec, data, model_dir, profile, init_weights, summary, framework_kwargs or {})
        summary["status"] = "ok"
    except KeyboardInterrupt:
        summary.update(status="failed", message="interrupted (Ctrl-C or SIGTERM); files written so far are kept")
        raise
    except StepFailed as exc:
        summary.update(status="failed", message=str(exc), failed_step=exc.step)
        detail = exc.__cause__
        if detail is not None and not isinstance(detail, NativeFrameworkError):
            summary["traceback"] = "".join(traceback.format_exception(detail))[-4000:]
        print(f"[{spec.name}] FAILED at {exc}", flush=True)
    finally:
        summary["seconds"] = round(time.monotonic() - started, 1)
        _write_json(model_dir / "summary.json", summary)
    return summary


def _run_steps(spec: ModelSpec, data: PreparedData, model_dir: Path, profile: Profile,
               init_weights: Optional[Path], summary: dict, framework_kwargs: dict) -> None:
    fw = framework_for(spec, data, model_dir, profile, **framework_kwargs)
    test_ids = _scored_test_ids(data, profile, spec)
    ids_file = _ids_file(model_dir / "test_ids.txt", test_ids)
    files = _step("render", fw.render, test_ids)
    summary["rendered"] = {role: str(path) for role, path in files.items()}

    result = _step("train", fw.train, files, init_weights)
    if result.weights is None:
        raise StepFailed("train", RuntimeError(f"training produced no weights (see {result.log_path})"))
    loss_csv = Path(result.loss_csv)
    summary["train"] = {"iterations": result.iterations, "seconds": round(result.seconds, 1),
                        "loss_csv": str(loss_csv.relative_to(model_dir) if loss_csv.is_relative_to(model_dir)
                                        else loss_csv),
                        "weights": str(result.weights), "log": str(result.log_path),
                        "init_weights": str(init_weights) if init_weights else None}

    test_images = load_voc(data.voc_root, image_set=ids_file, labelmap=data.labelmap).images
    det_dir = _step("detect", fw.detect, files, result.weights, test_images, model_dir / "detections", native=True)
    summary["metrics"] = _step("evaluate", evaluate_split, test_images, Path(det_dir), data.labelmap, model_dir)

    cls_images = _classification_images(data, profile, spec)
    if cls_images:
        cls_dir = _step("detect-classification", fw.detect, files, result.weights, cls_images,
                        model_dir / "classification_detections")
        summary["classification"] = _step("classify", classify, cls_images, Path(cls_dir), data.labelmap, model_dir)
    else:
        summary["classification_note"] = "no classification set (single-object images) given"

    n, warmup = limit(profile, spec, "timing_images"), limit(profile, spec, "timing_warmup")
    timing = _step("time", fw.time, files, result.weights, test_images, n, warmup)   # runners cycle the images
    summary["timing"] = _write_json(model_dir / "timing.json", timing).name


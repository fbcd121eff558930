"""Caffe-SSD behind :class:`harness.frameworks.FrameworkBackend`: rendered prototxts, `caffe train`,
pycaffe detection and timing.

``framework_options``: ``solver`` (solver values over the renderer's, incl. ``solver_mode``),
``batch_size`` (the SSD training batch; None: the paper's) and ``network`` (the SSD body variant,
``harness.render.ssd.NetVariant`` fields; {}: the paper's VGG16).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from harness.core.types import FrameworkStatus, Progress, TrainResult

if TYPE_CHECKING:
    from harness.config import ExperimentConfig, ModelSpec
    from harness.core.profiles import Profile
    from harness.device import Device
    from harness.frameworks import Detector
    from harness.labels import LabelMap


class CaffeBackend:
    name = "caffe"
    engines: tuple[str, ...] = ("native", "opencv")  # pycaffe (child process, CPU/GPU); OpenCV DNN (CPU)
    docker_image = "leukonet-harness-gpu:caffe"
    dataset_formats: tuple[str, ...] = ("caffe",)  # the AnnotatedDatum LMDBs, labelmap.prototxt, test_name_size.txt

    def __init__(self, config: ExperimentConfig, labelmap: LabelMap, dataset_dir: Optional[Path] = None) -> None:
        self.config, self.labelmap, self.dataset_dir = config, labelmap, dataset_dir
        self.dir = config.model_dir
        self.options = config.framework_options

    # ---------------------------------------------------------------- the framework

    @staticmethod
    def inspect() -> FrameworkStatus:
        from harness.frameworks.caffe.install import inspect_caffe

        return inspect_caffe()

    @staticmethod
    def has_gpu_build(options: Mapping[str, Any]) -> bool:
        from harness.core.types import NativeFrameworkError
        from harness.frameworks.caffe.install import find_caffe, is_gpu_build

        try:
            return is_gpu_build(find_caffe().root)
        except NativeFrameworkError:
            return False  # no Caffe at all: certainly no GPU build

    @staticmethod
    def resolve_options(
        spec: ModelSpec,
        profile: Profile,
        device: Device,
        *,
        iterations: Optional[int] = None,
        batch_size: Optional[int] = None,
        overrides: Optional[dict] = None,
        choices: Optional[Mapping[str, Any]] = None,
    ) -> dict[str, Any]:
        from harness import paper
        from harness.config import scaled_steps
        from harness.core.profiles import ssd_solver
        from harness.render.ssd import solver_mode

        base = {**ssd_solver(profile, spec, bool((choices or {}).get("finetune"))), **(overrides or {})}
        solver = dict(base)
        if iterations:
            full = {**paper.SSD_SOLVER, **paper.SSD_HARNESS_SOLVER, **base}
            solver["max_iter"] = iterations
            solver["snapshot"] = iterations
            solver["stepvalue"] = scaled_steps(full["stepvalue"], full["max_iter"], iterations)
        solver["solver_mode"] = solver_mode(device)
        return {
            "solver": solver,
            "batch_size": batch_size or profile.ssd_batch_size,
            "network": dict((choices or {}).get("network") or {}),
        }

    @staticmethod
    def upgrade_options(legacy: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "solver": dict(legacy.get("solver") or {}),
            "batch_size": legacy.get("ssd_batch_size"),
            "network": dict(legacy.get("network") or {}),
        }

    @staticmethod
    def with_choices(options: Mapping[str, Any], device: Device, choices: Mapping[str, Any]) -> dict[str, Any]:
        from harness.render.ssd import solver_mode

        solver = options.get("solver") or {}
        return {**options, "solver": {**solver, "solver_mode": solver_mode(device)} if solver else {}}

    @staticmethod
    def build_name(options: Mapping[str, Any]) -> str:
        return "caffe"

    @staticmethod
    def display_name(options: Mapping[str, Any]) -> str:
        return "caffe"

    @staticmethod
    def describe_build(details: Mapping[str, Any]) -> list[str]:
        parts = [
            details.get("fork"),
            f"commit {details['commit']}" if details.get("commit") else None,
            f"source sha256 {details['source_sha256']}" if details.get("source_sha256") else None,
            f"dialect {details['dialect']}" if details.get("dialect") else None,
            details.get("build"),
        ]
        if "ssd_augmentation" in details:
            parts.append(
                "SSD augmentation "
                + (
                    "on (distort_param, expand_param)"
                    if details["ssd_augmentation"]
                    else "OFF (no distort_param / expand_param)"
                )
            )
        return [str(part) for part in parts if part]

    @staticmethod
    def init_weights_kind(model: str) -> Optional[str]:
        return "ssd"  # the paper fine-tunes every SSD from ImageNet VGG16 (reduced fc)

    @staticmethod
    def read_progress(log: Path) -> list[Progress]:
        from harness.parse.caffe_log import parse_caffe_log

        return list(parse_caffe_log(log).rows)

    @staticmethod
    def render_model(spec: ModelSpec, out_dir: Path, **kwargs: Any) -> dict[str, Path]:
        from harness.render.ssd import render_ssd

        return render_ssd(out_dir, size=spec.size, smin=spec.smin or 0.2, smax=spec.smax or 0.9, **kwargs)

    @staticmethod
    def paper_deviations(model_dir: Path, rendered: Mapping[str, Path]) -> list[str]:
        """SSD augmentations (distort_param, expand_param, random crops) the paper used but this run did not."""
        from harness.render.dialect import ssd_augmentation_in

        train = rendered.get("train") or Path(model_dir) / "rendered" / "train.prototxt"
        try:
            found = ssd_augmentation_in(train)
        except (OSError, ValueError):
            return []  # no rendered net to read: nothing can be said either way
        return [name for name, present in found.items() if not present]

    # ---------------------------------------------------------------- one experiment

    def render(self, test_ids: Sequence[str]) -> dict[str, Path]:
        from harness.render.ssd import NetVariant, render_ssd

        spec = self.config.spec
        kwargs: dict[str, Any] = {
            # Caffe's own default (-1) seeds weight fillers and batch sampling from the clock: the run's
            # --seed makes a CPU training repeatable (a solver value given explicitly still wins).
            "solver": {"random_seed": self.config.seed, **(self.options.get("solver") or {})},
            "variant": NetVariant(**(self.options.get("network") or {})),
        }
        if self.options.get("batch_size"):
            kwargs["batch_size"] = self.options["batch_size"]
        return render_ssd(
            self.dir / "rendered",
            size=spec.size,
            smin=spec.smin or 0.2,
            smax=spec.smax or 0.9,
            labelmap=self.labelmap,
            dataset=self.dataset_dir,
            snapshot_prefix=self.dir / "weights" / spec.name,
            detection_out_dir=self.dir / "caffe_test_output",
            **kwargs,
        )

    def train(self, files: dict[str, Path], until: Optional[int] = None, **display: Any) -> TrainResult:
        """Train to ``until`` (default the solver's max_iter); resumes from the newest solverstate.
        ``display``: the progress bar's ``label`` and ``display_total``."""
        from harness.frameworks.caffe.train import train_caffe

        return train_caffe(
            files["solver"],
            self.dir,
            init_weights=self.config.init_weights,
            device=self.config.device,
            max_iter=until,
            **display,
        )

    def schedule_length(self, files: dict[str, Path]) -> int:
        from harness.frameworks.caffe.train import read_solver

        return read_solver(files["solver"], files["solver"].parent).max_iter

    def native_score(self, result: TrainResult) -> dict[str, Any]:
        """Caffe's own last test-phase ``detection_eval`` (DetectionEvaluate, VOC07 11-point, mean over
        every label incl. empty and unscored ones), kept beside the harness's metrics so the two can be
        compared (tests/test_learning_ssd_crosscheck.py). Empty when the solver never tested."""
        from harness.parse.caffe_log import parse_caffe_log

        scores = [t for t in parse_caffe_log(result.log_path).test_outputs if t.name == "detection_eval"]
        if not scores:
            return {}
        return {
            "caffe_test": {
                "iteration": scores[-1].iteration,
                "detection_eval": scores[-1].value,
                "rule": "Caffe Solver::TestDetection: 11-point AP, mean over all labels but background",
            }
        }

    def summary_fields(self) -> dict[str, Any]:
        return {"framework_build": self.display_name(self.options)}

    def detect(self, files: dict[str, Path], weights: Path, images, out_dir: Path, native: bool = False) -> Path:
        """pycaffe on the deploy net: this fork's DetectionOutput writes no files (docs/caffe.md)."""
        from harness.frameworks.caffe.detect import detect_caffe

        return detect_caffe(files["deploy"], weights, images, self.labelmap, out_dir, device=self.config.device)

    def time(self, files: dict[str, Path], weights: Path, images, n: int, warmup: int) -> dict[str, Any]:
        from harness.frameworks.caffe.detect import time_caffe

        return time_caffe(
            files["deploy"], weights, images, n=n, warmup=warmup, device=self.config.device, scratch=self.dir
        )

    def open_detector(self, files: dict[str, Path], weights: Path, engine: str, work: Path) -> Detector:
        """pycaffe (``native``, one child-process job over all batches) or OpenCV DNN (``opencv``, CPU)
        on the deploy net: harness.frameworks.caffe.detectors."""
        from harness.frameworks import check_engine
        from harness.frameworks.caffe.detectors import open_caffe_detector

        check_engine(self, engine)
        return open_caffe_detector(files, weights, self.labelmap, engine, self.config.device)


if TYPE_CHECKING:  # mypy holds the class to the protocol
    from harness.frameworks import FrameworkBackend

    _conforms: type[FrameworkBackend] = CaffeBackend

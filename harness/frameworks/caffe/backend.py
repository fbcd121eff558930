"""Caffe-SSD behind :class:`harness.frameworks.FrameworkBackend`: rendered prototxts, `caffe train`,
pycaffe detection and timing."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional

from harness.config import ExperimentConfig
from harness.core.types import FrameworkStatus, TrainResult
from harness.labels import LabelMap


class CaffeBackend:
    name = "caffe"
    engines = ("native", "opencv")  # pycaffe (child process, CPU/GPU); OpenCV DNN (CPU)

    def __init__(self, config: ExperimentConfig, labelmap: LabelMap, dataset_dir: Optional[Path] = None) -> None:
        self.config, self.labelmap, self.dataset_dir = config, labelmap, dataset_dir
        self.dir = config.model_dir

    @staticmethod
    def inspect() -> FrameworkStatus:
        from harness.frameworks.caffe.driver import inspect_caffe

        return inspect_caffe()

    def render(self, test_ids: Sequence[str]) -> dict[str, Path]:
        from harness.render.ssd import NetVariant, render_ssd

        spec = self.config.spec
        kwargs: dict[str, Any] = {"solver": dict(self.config.solver), "variant": NetVariant(**self.config.network)}
        if self.config.ssd_batch_size:
            kwargs["batch_size"] = self.config.ssd_batch_size
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

    def train(self, files: dict[str, Path], until: Optional[int] = None, **display) -> TrainResult:
        """Train to ``until`` (default the solver's max_iter); resumes from the newest solverstate.
        ``display``: the progress bar's ``label`` and ``display_total``."""
        from harness.frameworks.caffe.driver import train_caffe

        return train_caffe(
            files["solver"],
            self.dir,
            init_weights=self.config.init_weights,
            device=self.config.device,
            max_iter=until,
            **display,
        )

    def schedule_length(self, files: dict[str, Path]) -> int:
        from harness.frameworks.caffe.driver import read_solver

        return read_solver(files["solver"], files["solver"].parent).max_iter

    def detect(self, files, weights: Path, images, out_dir: Path, native: bool = False) -> Path:
        """pycaffe on the deploy net: this fork's DetectionOutput writes no files (docs/caffe.md)."""
        from harness.frameworks.caffe.driver import detect_caffe

        return detect_caffe(files["deploy"], weights, images, self.labelmap, out_dir, device=self.config.device)

    def time(self, files, weights: Path, images, n: int, warmup: int) -> dict:
        from harness.frameworks.caffe.driver import time_caffe

        return time_caffe(
            files["deploy"], weights, images, n=n, warmup=warmup, device=self.config.device, scratch=self.dir
        )

    def open_detector(self, files, weights: Path, engine: str, work: Path):
        """pycaffe (``native``, one child-process job over all batches) or OpenCV DNN (``opencv``, CPU)
        on the deploy net: harness.frameworks.caffe.detectors."""
        from harness.frameworks import check_engine
        from harness.frameworks.caffe.detectors import open_caffe_detector

        check_engine(self, engine)
        return open_caffe_detector(files, weights, self.labelmap, engine, self.config.device)

"""Darknet YOLOv3/-tiny behind :class:`harness.frameworks.FrameworkBackend`: rendered cfg/.data,
`darknet detector train/valid`, libdarknet detection and timing."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Optional

from harness.config import ExperimentConfig
from harness.core.types import FrameworkStatus, TrainResult
from harness.data.annotations import ImageAnnotation
from harness.labels import LabelMap


class DarknetBackend:
    name = "darknet"
    engines = ("native", "opencv")  # libdarknet in-process (CPU/GPU); OpenCV DNN (CPU)

    def __init__(self, config: ExperimentConfig, labelmap: LabelMap, dataset_dir: Optional[Path] = None) -> None:
        self.config, self.labelmap, self.dataset_dir = config, labelmap, dataset_dir
        self.dir = config.model_dir
        self._install = None

    @staticmethod
    def inspect() -> list[FrameworkStatus]:
        """One status per Darknet (pjreddie, alexeyab): ``harness doctor`` lists both."""
        from harness.config import DARKNET_FORKS as FORKS
        from harness.frameworks.darknet.driver import inspect_darknet

        return [inspect_darknet(fork=fork) for fork in FORKS]

    @property
    def install(self):
        """The Darknet this experiment uses (``config.darknet``), found once."""
        from harness.frameworks.darknet.driver import find_darknet

        if self._install is None:
            self._install = find_darknet(fork=self.config.darknet or "pjreddie")
        return self._install

    def render(self, test_ids: Sequence[str]) -> dict[str, Path]:
        from harness.data.darknet import darknet_image_file
        from harness.render.yolo import render_yolo

        darknet_dir = self.dataset_dir / "darknet"
        valid_list = self.dir / "rendered" / "valid.txt"
        valid_list.parent.mkdir(parents=True, exist_ok=True)
        valid_list.write_text("".join(f"{darknet_image_file(darknet_dir, i)}\n" for i in test_ids))
        (self.dir / "weights").mkdir(parents=True, exist_ok=True)
        return render_yolo(
            self.dir / "rendered",
            model=self.config.spec.model,
            size=self.config.spec.size,
            labelmap=self.labelmap,
            train_list=darknet_dir / "train.txt",
            valid_list=valid_list,
            backup_dir=self.dir / "weights",
            results_dir=self.dir / "darknet_results",
            overrides=dict(self.config.cfg),
            darknet=self.config.darknet or "pjreddie",
        )

    def train(self, files: dict[str, Path], until: Optional[int] = None, **display) -> TrainResult:
        """Train to ``until`` (default the cfg's max_batches); resumes from the newest checkpoint.
        ``display``: the progress bar's ``label`` and ``display_total``."""
        from harness.frameworks.darknet.driver import train_darknet

        return train_darknet(
            files["data"],
            files["cfg"],
            self.dir,
            init_weights=self.config.init_weights,
            device=self.config.device,
            max_batches=until,
            install=self.install,
            **display,
        )

    def schedule_length(self, files: dict[str, Path]) -> int:
        from harness.frameworks.darknet.cfg import summarize_cfg

        return summarize_cfg(files["cfg"]).max_batches

    def detect(self, files, weights: Path, images, out_dir: Path, native: bool = False) -> Path:
        """``native``: `darknet detector valid` over the rendered test list (the paper's tool);
        otherwise libdarknet in-process on any images (same files, tested equal)."""
        from harness.frameworks.darknet.driver import detect_darknet_valid
        from harness.frameworks.darknet.libdarknet import detect_darknet_ctypes

        if native:
            return detect_darknet_valid(
                files["data"], files["cfg"], weights, out_dir, device=self.config.device, install=self.install
            )
        paths = [im.image_path if isinstance(im, ImageAnnotation) else Path(im) for im in images]
        detect_darknet_ctypes(
            files["cfg"], weights, paths, self.labelmap.names, out_dir, device=self.config.device, install=self.install
        )
        return out_dir

    def time(self, files, weights: Path, images, n: int, warmup: int) -> dict:
        from harness.frameworks.darknet.libdarknet import time_darknet

        return time_darknet(
            files["cfg"],
            weights,
            [im.image_path for im in images],
            n=n,
            warmup=warmup,
            device=self.config.device,
            install=self.install,
        )

    def open_detector(self, files, weights: Path, engine: str, work: Path):
        """libdarknet in-process (``native``) or OpenCV DNN (``opencv``, CPU) on the cfg/weights, loaded
        once: harness.frameworks.darknet.detectors."""
        from harness.frameworks import check_engine
        from harness.frameworks.darknet.detectors import open_darknet_detector

        check_engine(self, engine)
        return open_darknet_detector(
            files,
            weights,
            self.labelmap,
            engine,
            self.config.device,
            work,
            install=self.install if engine == "native" else None,
        )

"""Darknet YOLOv3/-tiny behind :class:`harness.frameworks.FrameworkBackend`: rendered cfg/.data,
`darknet detector train/valid`, libdarknet detection and timing.

``framework_options``: ``cfg`` ([net]/[yolo] values over the template's) and ``fork`` (which
Darknet renders, trains and runs the model: :data:`harness.frameworks.darknet.FORKS`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from harness.core.types import FrameworkStatus, Progress, TrainResult
from harness.frameworks.darknet import DEFAULT_FORK, FORKS, check_fork

if TYPE_CHECKING:
    from harness.config import ExperimentConfig, ModelSpec
    from harness.core.profiles import Profile
    from harness.device import Device
    from harness.frameworks import Detector
    from harness.frameworks.darknet.driver import DarknetInstall
    from harness.labels import LabelMap


def _fork(options: Mapping[str, Any]) -> str:
    """The fork of resolved ``framework_options`` (``fork``) or of the run's choices (``darknet``)."""
    return str(options.get("fork") or options.get("darknet") or DEFAULT_FORK)


class DarknetBackend:
    name = "darknet"
    engines: tuple[str, ...] = ("native", "opencv")  # libdarknet in-process (CPU/GPU); OpenCV DNN (CPU)
    docker_image = "leukonet-harness-gpu:darknet"
    dataset_formats: tuple[str, ...] = ("darknet",)  # JPEGImages/ + labels/, train.txt, obj.names

    def __init__(self, config: ExperimentConfig, labelmap: LabelMap, dataset_dir: Optional[Path] = None) -> None:
        self.config, self.labelmap, self.dataset_dir = config, labelmap, dataset_dir
        self.dir = config.model_dir
        self.options = config.framework_options
        self._install: Optional[DarknetInstall] = None

    # ---------------------------------------------------------------- the framework

    @staticmethod
    def inspect() -> list[FrameworkStatus]:
        """One status per Darknet (pjreddie, alexeyab): ``harness doctor`` lists both."""
        from harness.frameworks.darknet.driver import inspect_darknet

        return [inspect_darknet(fork=fork) for fork in FORKS]

    @staticmethod
    def has_gpu_build(options: Mapping[str, Any]) -> bool:
        from harness.core.types import NativeFrameworkError
        from harness.frameworks.darknet.driver import find_darknet

        try:
            return find_darknet("gpu", fork=_fork(options)).gpu
        except NativeFrameworkError:
            return False  # no GPU build of this fork here (make check-gpu-build / the gpu image make one)

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
        from harness.core.profiles import yolo_overrides

        base = {**yolo_overrides(profile, spec, bool((choices or {}).get("finetune"))), **(overrides or {})}
        cfg = dict(base)
        if iterations:
            full = {**paper.YOLO_NET, **paper.YOLO_STOCK_NET, **base}
            cfg["max_batches"] = iterations
            cfg["steps"] = scaled_steps(full["steps"], full["max_batches"], iterations)
            cfg["burn_in"] = round(full["burn_in"] * iterations / full["max_batches"])
        if batch_size:
            cfg.update(batch=batch_size, subdivisions=1)
        return {"cfg": cfg, "fork": check_fork((choices or {}).get("darknet") or DEFAULT_FORK)}

    @staticmethod
    def upgrade_options(legacy: Mapping[str, Any]) -> dict[str, Any]:
        """Configs written before ``--darknet`` existed ran pjreddie's Darknet."""
        return {"cfg": dict(legacy.get("cfg") or {}), "fork": legacy.get("darknet") or DEFAULT_FORK}

    @staticmethod
    def with_choices(options: Mapping[str, Any], device: Device, choices: Mapping[str, Any]) -> dict[str, Any]:
        fork = choices.get("darknet")
        return {**options, "fork": check_fork(fork)} if fork else dict(options)

    @staticmethod
    def build_name(options: Mapping[str, Any]) -> str:
        fork = _fork(options)
        return "darknet" if fork == DEFAULT_FORK else f"darknet-{fork}"

    @staticmethod
    def display_name(options: Mapping[str, Any]) -> str:
        return f"darknet ({_fork(options)})"

    @staticmethod
    def describe_build(details: Mapping[str, Any]) -> list[str]:
        parts = [
            details.get("upstream"),
            f"commit {details['commit']}" if details.get("commit") else None,
            f"source sha256 {details['source_sha256']}" if details.get("source_sha256") else None,
            details.get("backend"),
        ]
        return [str(part) for part in parts if part]

    @staticmethod
    def init_weights_kind(model: str) -> Optional[str]:
        # darknet53.conv.74 holds YOLOv3's backbone only. YOLOv3-tiny's (yolov3-tiny.conv.15, `harness
        # weights fetch`) is for `train yolov3-tiny --init-weights`: the paper trains tiny from none.
        return "yolo" if model == "yolov3" else None

    @staticmethod
    def read_progress(log: Path) -> list[Progress]:
        from harness.parse.darknet_log import read_darknet_log

        return list(read_darknet_log(log).steps)

    @staticmethod
    def render_model(spec: ModelSpec, out_dir: Path, **kwargs: Any) -> dict[str, Path]:
        from harness.render.yolo import render_yolo

        kwargs.pop("dialect", None)
        return render_yolo(out_dir, model=spec.model, size=spec.size, **kwargs)

    @staticmethod
    def paper_deviations(model_dir: Path, rendered: Mapping[str, Path]) -> list[str]:
        return []

    # ---------------------------------------------------------------- one experiment

    @property
    def install(self) -> DarknetInstall:
        """The Darknet this experiment uses (``framework_options["fork"]``), found once."""
        from harness.frameworks.darknet.driver import find_darknet

        if self._install is None:
            self._install = find_darknet(fork=_fork(self.options))
        return self._install

    def render(self, test_ids: Sequence[str]) -> dict[str, Path]:
        from harness.data.darknet import darknet_image_file
        from harness.render.yolo import render_yolo

        if self.dataset_dir is None:
            raise ValueError(f"{self.config.name}: Darknet renders against a converted dataset (none given)")
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
            overrides=dict(self.options.get("cfg") or {}),
            darknet=_fork(self.options),
        )

    def train(self, files: dict[str, Path], until: Optional[int] = None, **display: Any) -> TrainResult:
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

    def native_score(self, result: TrainResult) -> dict[str, Any]:
        """pjreddie's `detector train` scores nothing while it trains (AlexeyAB's ``-map`` is not used)."""
        return {}

    def summary_fields(self) -> dict[str, Any]:
        return {"darknet": _fork(self.options), "framework_build": self.display_name(self.options)}

    def detect(self, files: dict[str, Path], weights: Path, images, out_dir: Path, native: bool = False) -> Path:
        """``native``: `darknet detector valid` over the rendered test list (the paper's tool);
        otherwise libdarknet in-process on any images (same files, tested equal)."""
        from harness.data.annotations import ImageAnnotation
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

    def time(self, files: dict[str, Path], weights: Path, images, n: int, warmup: int) -> dict[str, Any]:
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

    def open_detector(self, files: dict[str, Path], weights: Path, engine: str, work: Path) -> Detector:
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


if TYPE_CHECKING:  # mypy holds the class to the protocol
    from harness.frameworks import FrameworkBackend

    _conforms: type[FrameworkBackend] = DarknetBackend

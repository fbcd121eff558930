"""The native frameworks, side by side behind one small declared interface.

Each framework is one sub-package (``caffe/``, ``darknet/``) whose ``backend.py`` holds a class
implementing :class:`FrameworkBackend`; the orchestration in :mod:`harness.engine` only ever talks
to that class, found through :data:`FRAMEWORKS`. Adding a framework is one new backend module
(plus its drivers) and one line in :data:`FRAMEWORKS`.

Timing — one span for every framework (:data:`TIMED_SPAN`): per image, batch 1, the image already
decoded in memory (file reading excluded), the clock runs over preprocessing (resize / letterbox and
normalisation into the input blob), the forward pass, and box decoding with NMS (Caffe: the
DetectionOutput layer inside ``forward``; Darknet: ``get_network_boxes`` + ``do_nms_sort``).
``median_ms`` / ``p90_ms`` in ``timing.json`` (the Table 2 ms/image column) are over this span;
``forward_median_ms`` / ``forward_p90_ms`` are the network's forward call alone, for reference.

Framework behaviour lives here and nowhere else: each backend also answers for its device
arguments and GPU build (:meth:`FrameworkBackend.has_gpu_build`), its log parsing
(:meth:`FrameworkBackend.read_progress`), its native score, its identity and display strings, its
Docker image, its init weights, the dataset formats it reads, and its per-framework config
options (``ExperimentConfig.framework_options``, resolved and upgraded by the backend). Code
outside ``harness/frameworks/`` never branches on a framework's name.

Plug-ins — a framework outside this package is registered with :func:`register_framework`, or
through the environment: ``HARNESS_FRAMEWORKS="name=module:Class,…"`` (read when the registry is
first asked, so a child process such as ``harness experiment run`` sees it too);
tests/support/fake_backend.py is one, taken end to end by tests/test_fake_backend.py.

Detectors — :meth:`FrameworkBackend.open_detector` loads a trained network once and returns a
:class:`Detector` that serves any number of image batches (``harness count``: one batch per slide).
Each backend offers the engines in its ``engines`` (``native``: the framework's own forward pass;
``opencv``: OpenCV DNN on the same files, CPU only); the implementations live in each framework's
``detectors.py``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional, Protocol, Union, cast

from harness.core.errors import HarnessError
from harness.registry import registered_class

if TYPE_CHECKING:
    from harness.config import ExperimentConfig, ModelSpec
    from harness.core.profiles import Profile
    from harness.core.types import FrameworkStatus, Progress, TrainResult
    from harness.device import Device
    from harness.labels import LabelMap

TIMED_SPAN = "preprocess+forward+nms"
TIMED_SPAN_DESCRIPTION = (
    "per image, batch 1, image already decoded in memory: preprocessing (resize/letterbox "
    "into the input blob) + forward + box decoding and NMS; file reading excluded"
)


Batch = list[tuple[str, Path]]  # (image id, image path) of one batch
PerImage = dict[str, list[tuple[str, float, tuple]]]  # image id -> [(class, score, box)]
BatchResults = Iterator[tuple[Union[PerImage, Exception], float]]  # per batch: detections or its error, seconds


class Detector(Protocol):
    """A network loaded once (:meth:`FrameworkBackend.open_detector`), serving batches of images."""

    description: str  # what runs the forward pass, e.g. "OpenCV DNN 4.x (Darknet cfg, CPU)"

    def detect_batches(self, batches: Sequence[Batch], work: Path) -> BatchResults:
        """Per batch, in order: its detections per image id (or the exception that stopped that batch)
        and its seconds. A failing batch never stops the others; scratch files go under ``work``."""

    def close(self) -> None:
        """Release the network."""


class FrameworkBackend(Protocol):
    """What the harness needs from a framework. The class answers what holds for every experiment
    (static methods and attributes: identity, options, device, logs); an instance runs one
    experiment (``config``)."""

    name: str
    engines: tuple[str, ...]  # what open_detector accepts, "native" first (e.g. ("native", "opencv"))
    docker_image: str  # the image `--runner docker` runs this framework in
    dataset_formats: tuple[str, ...]  # what it reads from a conversion (harness.data.convert.DATASET_FORMATS)

    def __init__(self, config: ExperimentConfig, labelmap: LabelMap, dataset_dir: Optional[Path] = None) -> None: ...

    # ---------------------------------------------------------------- the framework, any experiment

    @staticmethod
    def inspect() -> Union[FrameworkStatus, Sequence[FrameworkStatus]]:
        """Which build(s) would run, version, device support and what is missing (``harness doctor``);
        a framework with several builds gives one status each."""

    @staticmethod
    def has_gpu_build(options: Mapping[str, Any]) -> bool:
        """Whether the build ``options`` select was compiled with CUDA (``--device auto``); ``options``
        are an experiment's ``framework_options`` or, before those are resolved, the run's choices."""

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
        """``ExperimentConfig.framework_options``: the profile's values for ``spec``, then the command
        line's (``overrides`` of native values, ``choices`` such as ``darknet``/``network``; a backend
        ignores the choices that are not its own). JSON-ready."""

    @staticmethod
    def upgrade_options(legacy: Mapping[str, Any]) -> dict[str, Any]:
        """The options of a config.json or summary.json written before ``framework_options`` existed,
        from its old top-level fields (:data:`harness.config.LEGACY_OPTION_FIELDS`)."""

    @staticmethod
    def with_choices(options: Mapping[str, Any], device: Device, choices: Mapping[str, Any]) -> dict[str, Any]:
        """The same trained model run on ``device`` with ``choices`` (e.g. another Darknet); a
        ``None`` choice keeps the trained one."""

    @staticmethod
    def build_name(options: Mapping[str, Any]) -> str:
        """The build ``options`` select, as :meth:`inspect` names it (e.g. ``darknet-alexeyab``)."""

    @staticmethod
    def display_name(options: Mapping[str, Any]) -> str:
        """The framework as tables name it (e.g. ``darknet (alexeyab)``)."""

    @staticmethod
    def describe_build(details: Mapping[str, Any]) -> list[str]:
        """The parts of a provenance line naming one build (fork, commit, source hash, …) from
        its :class:`FrameworkStatus` ``details``."""

    @staticmethod
    def init_weights_kind(model: str) -> Optional[str]:
        """Which ``--init-weights-*`` file a model fine-tunes from (``ssd``, ``yolo``), or None."""

    @staticmethod
    def read_progress(log: Path) -> list[Progress]:
        """The training steps in a (live) native log (``harness status``)."""

    @staticmethod
    def render_model(spec: ModelSpec, out_dir: Path, **kwargs: Any) -> dict[str, Path]:
        """The native files of ``spec`` with the paper's arguments (``harness render table1``)."""

    @staticmethod
    def paper_deviations(model_dir: Path, rendered: Mapping[str, Path]) -> list[str]:
        """What the rendered files of the experiment in ``model_dir`` ({role: path}) leave out of the
        paper's recipe (e.g. SSD augmentations)."""

    # ---------------------------------------------------------------- one experiment

    def render(self, test_ids: Sequence[str]) -> dict[str, Path]:
        """Write the native files (prototxts / cfg, .data) under MODEL_DIR/rendered; {role: path}."""

    def train(self, files: dict[str, Path], until: Optional[int] = None, **display: Any) -> TrainResult:
        """Train to ``until`` (default: the schedule's end), resuming from the newest checkpoint."""

    def schedule_length(self, files: dict[str, Path]) -> int:
        """Iterations of the full schedule (Caffe max_iter, Darknet max_batches)."""

    def native_score(self, result: TrainResult) -> dict[str, Any]:
        """What the framework itself scored during training (the protocol it natively reports),
        for ``summary.json``'s train record; {} when it scores nothing."""

    def summary_fields(self) -> dict[str, Any]:
        """What ``summary.json`` records about the build beside ``framework`` (JSON values)."""

    def detect(self, files: dict[str, Path], weights: Path, images, out_dir: Path, native: bool = False) -> Path:
        """Per-class VOC detection files for ``images`` in ``out_dir``; returns that folder."""

    def time(self, files: dict[str, Path], weights: Path, images, n: int, warmup: int) -> dict[str, Any]:
        """timing.json: ``median_ms``/``p90_ms`` over :data:`TIMED_SPAN`, cycling through ``images``."""

    def open_detector(self, files: dict[str, Path], weights: Path, engine: str, work: Path) -> Detector:
        """Load the network once with ``engine`` (one of :attr:`engines`) on the config's device;
        raises when it cannot be loaded. Scratch files go under ``work``."""


# framework name -> "module:class"
FRAMEWORKS = {
    "caffe": "harness.frameworks.caffe.backend:CaffeBackend",
    "darknet": "harness.frameworks.darknet.backend:DarknetBackend",
}
PLUGIN_VARIABLE = "HARNESS_FRAMEWORKS"  # "name=module:Class,…": frameworks registered from outside


def register_framework(name: str, target: str) -> None:
    """Register a framework backend class (``"module:Class"``) under ``name``, for this process."""
    if ":" not in target:
        raise ValueError(f"framework {name!r}: {target!r} is not 'module:Class'")
    FRAMEWORKS[name] = target


def _registry() -> dict[str, str]:
    """:data:`FRAMEWORKS` plus the plug-ins named in ``$HARNESS_FRAMEWORKS`` (read on every call, so
    a child process, or a test that sets the variable, sees the same frameworks)."""
    table = dict(FRAMEWORKS)
    for entry in filter(None, (part.strip() for part in os.environ.get(PLUGIN_VARIABLE, "").split(","))):
        name, _, target = (part.strip() for part in entry.partition("="))
        if ":" not in target:
            raise HarnessError(f"${PLUGIN_VARIABLE}: {entry!r} is not name=module:Class")
        table.setdefault(name, target)
    return table


def registered_frameworks() -> tuple[str, ...]:
    """Every registered framework name, in registry order (plug-ins from the environment last)."""
    return tuple(_registry())


def backend_class(name: str) -> type[FrameworkBackend]:
    """The backend class registered under ``name`` (KeyError naming the known ones)."""
    return cast("type[FrameworkBackend]", registered_class(_registry(), name, "framework"))


def backend_for(config: ExperimentConfig, labelmap: LabelMap, dataset_dir: Optional[Path] = None) -> FrameworkBackend:
    """The backend instance that runs ``config``."""
    try:
        cls = backend_class(config.framework)
    except KeyError:
        raise ValueError(f"unknown framework {config.framework!r} for {config.name}") from None
    return cls(config, labelmap, dataset_dir)


def resolve_framework_device(choice: str, framework: str, options: Optional[Mapping[str, Any]] = None) -> Device:
    """``--device`` for one framework: ``auto`` asks the backend whether its build has CUDA."""
    from harness.device import resolve_device

    cls = backend_class(framework)
    return resolve_device(choice, lambda: cls.has_gpu_build(options or {}), framework)


def backend_of_build(build: str) -> Optional[type[FrameworkBackend]]:
    """The backend whose :meth:`FrameworkBackend.inspect` names ``build`` (``<framework>`` or
    ``<framework>-<variant>``, e.g. ``darknet-alexeyab``); None when no registered one does."""
    for name in registered_frameworks():
        if build == name or build.startswith(f"{name}-"):
            return backend_class(name)
    return None


def display_name(framework: str, record: Mapping[str, Any]) -> str:
    """How tables name the framework of a record: its ``framework_build``, else (summaries written
    before it existed) what the backend makes of the record's old fields; unknown: the name."""
    if record.get("framework_build"):
        return str(record["framework_build"])
    try:
        cls = backend_class(framework)
    except KeyError:
        return framework
    return cls.display_name(cls.upgrade_options(record))


def check_engine(backend, engine: str) -> None:
    """Refuse an engine the backend does not offer."""
    if engine not in backend.engines:
        raise ValueError(f"no {engine!r} detector for framework {backend.name!r}; known: {', '.join(backend.engines)}")


def detect_each(detect: Callable[[Batch, Path], PerImage], batches: Sequence[Batch], work: Path) -> BatchResults:
    """:meth:`Detector.detect_batches` for an in-process network: ``detect(batch, work/batch_NNNN)``
    per batch, timed; a batch's exception is that batch's result and the next batch still runs."""
    import time

    for index, batch in enumerate(batches):
        started = time.monotonic()
        try:
            per_image = detect(batch, work / f"batch_{index:04d}")
        except Exception as exc:
            yield exc, time.monotonic() - started
            continue
        yield per_image, time.monotonic() - started


def detections_by_image(dets, class_names: Sequence[str]) -> PerImage:
    """harness.evaluation Detections → {image id: [(class, score, box), …]}."""
    import numpy as np

    out: PerImage = {}
    for name in class_names:
        found = dets[name]
        for image_id, score, box in zip(found.image_ids, found.scores, np.asarray(found.boxes)):
            out.setdefault(str(image_id), []).append((name, float(score), tuple(box.tolist())))
    return out


def read_per_image(det_dir: Path, labelmap: LabelMap) -> PerImage:
    """Per-class VOC detection files as every harness path reads them (same rounding, same skips)."""
    from harness.evaluation.detections import read_detections

    return detections_by_image(read_detections(det_dir, class_names=labelmap.names), labelmap.names)


def inspect_all() -> list[FrameworkStatus]:
    """Every registered framework's status, in registry order; a framework with several builds
    (Darknet: pjreddie and AlexeyAB) gives one status per build."""
    statuses: list = []
    for name in registered_frameworks():
        found = backend_class(name).inspect()
        statuses += list(found) if isinstance(found, (list, tuple)) else [found]
    return statuses

"""One resolved experiment config: the only input downstream of the command line.

Like Ultralytics' ``args.yaml`` or Detectron2's ``config.yaml``: every value an experiment uses is
decided here, once — paper row → profile → per-model limits → user overrides → device → paths —
then frozen and written to ``MODEL_DIR/config.json``. Rendering, training, detection, evaluation
and timing read only this object, whether the call came from ``render``, ``train`` or
``reproduce``, so ``harness train yolov3 --size 320 --profile smoke`` trains exactly what
``reproduce`` trains for that row.

Path rule (docs/architecture.md): every path in a config is absolute, resolved at the CLI
boundary against the caller's working directory.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional

from harness.device import Device
from harness.evaluation.protocols import check_protocols, experiment_protocols

CONFIG_FILE = "config.json"
RUN_FILE = "run.json"
# Top-level fields of configs (and summaries) written before framework_options held them: the
# backend of the config turns them into its options (FrameworkBackend.upgrade_options).
LEGACY_OPTION_FIELDS = ("ssd_batch_size", "solver", "cfg", "network", "darknet")


PATH_FIELDS = ("run_dir", "model_dir", "data", "classification", "init_weights", "class_roles")
LIMIT_KEYS = ("test_images", "classification_images", "timing_images", "timing_warmup")


@dataclass(frozen=True)
class ModelSpec:
    """What network to build: a paper row (harness.paper.Experiment) or a user's choice."""

    name: str
    framework: str  # a key of harness.frameworks.FRAMEWORKS
    model: str  # "ssd" | "yolov3" | "yolov3-tiny"
    size: int
    smin: Optional[float] = None
    smax: Optional[float] = None

    @classmethod
    def of(cls, experiment: Any) -> ModelSpec:
        return cls(
            experiment.name,
            experiment.framework,
            experiment.model,
            experiment.size,
            getattr(experiment, "smin", None),
            getattr(experiment, "smax", None),
        )


@dataclass(frozen=True)
class ExperimentConfig:
    """Everything one experiment needs; ``to_json``/``from_json`` round-trip it exactly."""

    spec: ModelSpec
    profile: str
    comparable_with_paper: bool
    role: str  # "table1" (a paper row), "learning-check" or "custom"
    device: Device
    seed: int
    run_dir: Path
    model_dir: Path
    data: Optional[Path]  # VOC root; None: the embedded synthetic set
    classification: Optional[Path]
    init_weights: Optional[Path]
    limits: dict = field(default_factory=dict)  # test/classification/timing image counts
    protocols: tuple = field(default_factory=experiment_protocols)  # harness.evaluation.protocols names
    eval_interval: Optional[int] = None  # periodic evaluation; None: final weights only
    # What only this framework reads, resolved by its backend (FrameworkBackend.resolve_options):
    # Caffe {"solver", "batch_size", "network"}, Darknet {"cfg", "fork"}, a plug-in its own.
    framework_options: dict = field(default_factory=dict)
    # --classes: the class-roles table copied to MODEL_DIR/class_roles.json for `harness count`; part
    # of the config like the data, so another table under the same name is a config clash
    class_roles: Optional[Path] = None

    def __post_init__(self) -> None:
        # an unknown protocol is an error here, before anything runs (UnknownProtocolError, a ValueError)
        object.__setattr__(self, "protocols", check_protocols(self.protocols))

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def framework(self) -> str:
        return self.spec.framework

    def limit(self, key: str) -> Optional[int]:
        return self.limits.get(key)

    def to_json(self) -> dict:
        data = asdict(self)
        data["device"] = str(self.device)
        for key in PATH_FIELDS:
            data[key] = None if data[key] is None else str(data[key])
        data["protocols"] = list(self.protocols)
        return data

    @classmethod
    def from_json(cls, data: dict) -> ExperimentConfig:
        values = dict(data)
        values["spec"] = ModelSpec(**values["spec"])
        values["device"] = Device.parse(values["device"])
        for key in PATH_FIELDS:
            values[key] = None if values.get(key) is None else Path(values[key])
        values["protocols"] = tuple(values.get("protocols") or experiment_protocols())
        for key in LEGACY_OPTION_FIELDS:  # upgraded into framework_options by harness.frameworks.configs
            values.pop(key, None)
        if "framework_options" not in values:
            raise ValueError("no framework_options (a config written before them: read it with read_config)")
        return cls(**values)

    def write(self) -> Path:
        """``MODEL_DIR/config.json``: what this experiment was (or will be) trained with."""
        from harness.core.atomic import write_json

        return write_json(self.model_dir / CONFIG_FILE, self.to_json())


def config_differences(old: ExperimentConfig, new: ExperimentConfig) -> list[str]:
    """Human-readable ``key: old -> new`` for every top-level value that differs."""
    return _differences(old.to_json(), new.to_json(), "")


def _differences(a: dict, b: dict, prefix: str) -> list[str]:
    found = []
    for key in sorted(set(a) | set(b)):
        left, right = a.get(key), b.get(key)
        if isinstance(left, dict) and isinstance(right, dict):
            found += _differences(left, right, f"{prefix}{key}.")
        elif left != right:
            found.append(f"{prefix}{key}: {left!r} -> {right!r}")
    return found


def scaled_steps(steps: Sequence[int], length: int, iterations: int) -> list[int]:
    """A shortened (or lengthened) run keeps its schedule's shape: each learning-rate step and the
    burn-in at the same fraction of the run (paper: steps at 20 % and 70 % of 50,200 iterations;
    ``--iterations 500`` steps at 100 and 349, not never). As many steps as before (Darknet pairs
    them with ``scales``), each inside the run."""
    return [min(max(1, round(step * iterations / length)), iterations) for step in steps]


def absolute_path(path: Optional[Path]) -> Optional[Path]:
    return None if path is None else Path(path).resolve()

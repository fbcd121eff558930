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
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Optional

from harness import paper
from harness.core.profiles import Profile, eval_interval, limit, ssd_solver, yolo_overrides
from harness.device import Device
from harness.evaluation.protocols import check_protocols, experiment_protocols

CONFIG_FILE = "config.json"
RUN_FILE = "run.json"
DARKNET_FORKS = ("pjreddie", "alexeyab")  # pjreddie: the paper's Darknet (default); alexeyab: the maintained fork
DEFAULT_DARKNET = "pjreddie"


def check_darknet(fork: str) -> str:
    """``fork`` when it names a Darknet the harness drives, else ValueError naming the known ones."""
    if fork not in DARKNET_FORKS:
        raise ValueError(f"unknown Darknet {fork!r}; known: {', '.join(DARKNET_FORKS)}")
    return fork


LIMIT_KEYS = ("test_images", "classification_images", "timing_images", "timing_warmup")


@dataclass(frozen=True)
class ModelSpec:
    """What network to build: a paper row (harness.paper.Experiment) or a user's choice."""

    name: str
    framework: str  # "caffe" | "darknet"
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
    ssd_batch_size: Optional[int] = None  # Caffe only; None: the paper's
    solver: dict = field(default_factory=dict)  # Caffe solver overrides (incl. solver_mode)
    cfg: dict = field(default_factory=dict)  # Darknet [net]/[yolo] overrides
    limits: dict = field(default_factory=dict)  # test/classification/timing image counts
    protocols: tuple = field(default_factory=experiment_protocols)  # harness.evaluation.protocols names
    eval_interval: Optional[int] = None  # periodic evaluation; None: final weights only
    network: dict = field(default_factory=dict)  # Caffe only: SSD body variant (width, batch_norm); {} = paper's
    darknet: Optional[str] = None  # Darknet only: which Darknet (DARKNET_FORKS); None for Caffe

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
        for key in ("run_dir", "model_dir", "data", "classification", "init_weights"):
            data[key] = None if data[key] is None else str(data[key])
        data["protocols"] = list(self.protocols)
        return data

    @classmethod
    def from_json(cls, data: dict) -> ExperimentConfig:
        values = dict(data)
        values["spec"] = ModelSpec(**values["spec"])
        values["device"] = Device.parse(values["device"])
        for key in ("run_dir", "model_dir", "data", "classification", "init_weights"):
            values[key] = None if values.get(key) is None else Path(values[key])
        values["protocols"] = tuple(values.get("protocols") or experiment_protocols())
        if values["spec"].framework == "darknet":  # configs written before --darknet existed: pjreddie
            values["darknet"] = values.get("darknet") or DEFAULT_DARKNET
        return cls(**values)

    def write(self) -> Path:
        """``MODEL_DIR/config.json``: what this experiment was (or will be) trained with."""
        from harness.core.atomic import write_json

        return write_json(self.model_dir / CONFIG_FILE, self.to_json())


def read_config(model_dir: Path) -> Optional[ExperimentConfig]:
    """MODEL_DIR/config.json, or None when there is none; an unreadable one raises ValueError saying what to do."""
    from harness.core.atomic import read_json

    path = Path(model_dir) / CONFIG_FILE
    if not path.is_file():
        return None
    data = read_json(path, "experiment config (config.json)")
    try:
        return ExperimentConfig.from_json(data)
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise ValueError(
            f"{path}: not a harness experiment config ({exc}); rerun the experiment with --overwrite to write a new one"
        ) from None


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


def resolve_experiment(
    spec: ModelSpec,
    profile: Profile,
    *,
    device: Device,
    run_dir: Path,
    seed: int = 0,
    data: Optional[Path] = None,
    classification: Optional[Path] = None,
    init_weights: Optional[Path] = None,
    iterations: Optional[int] = None,
    batch_size: Optional[int] = None,
    cfg_overrides: Optional[dict] = None,
    role: str = "custom",
    eval_every: Optional[int] = None,
    network: Optional[dict] = None,
    darknet: str = DEFAULT_DARKNET,
) -> ExperimentConfig:
    """Paper values, then the profile's, then the command line's: one frozen config.

    ``cfg_overrides`` are Darknet [net] values, or Caffe solver values for an SSD (a ``None``
    value there restores the renderer's default, e.g. ``test_iter`` from the test set size);
    ``network`` is the SSD body variant (``harness.render.ssd.NetVariant`` fields); ``darknet`` the
    Darknet fork that renders, trains and runs a YOLO model (ignored for SSD).
    """
    check_darknet(darknet)
    run_dir = Path(run_dir).resolve()
    solver, cfg, ssd_batch = {}, {}, None
    if spec.framework == "caffe":
        solver = _caffe_solver({**ssd_solver(profile, spec), **(cfg_overrides or {})}, iterations, device)
        ssd_batch = batch_size or profile.ssd_batch_size
    else:
        cfg = _darknet_cfg({**yolo_overrides(profile, spec), **(cfg_overrides or {})}, iterations, batch_size)
    return ExperimentConfig(
        spec=spec,
        profile=profile.name,
        comparable_with_paper=profile.comparable_with_paper,
        role=role,
        device=device,
        seed=seed,
        run_dir=run_dir,
        model_dir=run_dir / "models" / spec.name,
        data=_absolute(data),
        classification=_absolute(classification),
        init_weights=_absolute(init_weights),
        ssd_batch_size=ssd_batch,
        solver=solver,
        cfg=cfg,
        limits={key: limit(profile, spec, key) for key in LIMIT_KEYS},
        network=dict(network or {}),
        darknet=darknet if spec.framework == "darknet" else None,
        eval_interval=eval_every if eval_every is not None else eval_interval(profile, spec, role),
    )


def _caffe_solver(base: dict, iterations: Optional[int], device: Device) -> dict:
    solver = dict(base)
    if iterations:
        full = {**paper.SSD_SOLVER, **paper.SSD_HARNESS_SOLVER, **base}
        solver["max_iter"] = iterations
        solver["snapshot"] = iterations
        solver["stepvalue"] = scaled_steps(full["stepvalue"], full["max_iter"], iterations)
    solver["solver_mode"] = device.caffe_solver_mode
    return solver


def _darknet_cfg(base: dict, iterations: Optional[int], batch_size: Optional[int]) -> dict:
    cfg = dict(base)
    if iterations:
        full = {**paper.YOLO_NET, **paper.YOLO_STOCK_NET, **base}
        cfg["max_batches"] = iterations
        cfg["steps"] = scaled_steps(full["steps"], full["max_batches"], iterations)
        cfg["burn_in"] = round(full["burn_in"] * iterations / full["max_batches"])
    if batch_size:
        cfg.update(batch=batch_size, subdivisions=1)
    return cfg


def scaled_steps(steps: Sequence[int], length: int, iterations: int) -> list[int]:
    """A shortened (or lengthened) run keeps its schedule's shape: each learning-rate step and the
    burn-in at the same fraction of the run (paper: steps at 20 % and 70 % of 50,200 iterations;
    ``--iterations 500`` steps at 100 and 349, not never). As many steps as before (Darknet pairs
    them with ``scales``), each inside the run."""
    return [min(max(1, round(step * iterations / length)), iterations) for step in steps]


def _absolute(path: Optional[Path]) -> Optional[Path]:
    return None if path is None else Path(path).resolve()


def with_device(config: ExperimentConfig, device: Device) -> ExperimentConfig:
    """The same experiment on another device (e.g. detection on CPU of a GPU-trained model)."""
    solver = {**config.solver, "solver_mode": device.caffe_solver_mode} if config.solver else {}
    return replace(config, device=device, solver=solver)


def with_darknet(config: ExperimentConfig, darknet: Optional[str]) -> ExperimentConfig:
    """The same trained Darknet model run by another Darknet (``None``: the one it was trained with)."""
    if darknet is None or config.framework != "darknet":
        return config
    return replace(config, darknet=check_darknet(darknet))

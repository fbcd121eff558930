"""Experiment configs as the framework backends resolve them.

:mod:`harness.config` holds the frozen record and its file; what only one framework reads
(``framework_options``) is filled in here by that framework's backend, so the config layer never
imports a framework (tests/test_layers.py). Configs written before ``framework_options`` existed
are upgraded on reading by their backend's ``upgrade_options``.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, Optional

from harness.config import (
    CONFIG_FILE,
    LEGACY_OPTION_FIELDS,
    LIMIT_KEYS,
    ExperimentConfig,
    ModelSpec,
    absolute_path,
)
from harness.core.atomic import read_json
from harness.core.profiles import Profile, eval_interval, limit
from harness.device import Device
from harness.frameworks import backend_class


def config_from_json(data: dict) -> ExperimentConfig:
    """A config.json's content as a config; one written before ``framework_options`` gets them from
    its legacy top-level fields through its backend."""
    if "framework_options" not in data:
        framework = data["spec"]["framework"]
        legacy = {key: data[key] for key in LEGACY_OPTION_FIELDS if key in data}
        data = {**data, "framework_options": backend_class(framework).upgrade_options(legacy)}
    return ExperimentConfig.from_json(data)


def read_config(model_dir: Path) -> Optional[ExperimentConfig]:
    """MODEL_DIR/config.json, or None when there is none; an unreadable one raises ValueError saying what to do."""
    path = Path(model_dir) / CONFIG_FILE
    if not path.is_file():
        return None
    data = read_json(path, "experiment config (config.json)")
    try:
        return config_from_json(data)
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise ValueError(
            f"{path}: not a harness experiment config ({exc}); rerun the experiment with --overwrite to write a new one"
        ) from None


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
    class_roles: Optional[Path] = None,
    **choices: Any,
) -> ExperimentConfig:
    """Paper values, then the profile's, then the command line's: one frozen config.

    ``cfg_overrides`` are native values (Darknet [net] values, or Caffe solver values for an SSD: a
    ``None`` value there restores the renderer's default, e.g. ``test_iter`` from the test set
    size); ``choices`` are the run's framework choices (``network``: the SSD body variant,
    ``darknet``: the Darknet fork). The framework's backend resolves them into
    ``framework_options`` and ignores the ones that are not its own; ``finetune`` (whether
    ``init_weights`` is given) picks the profile's fine-tuning values.
    """
    run_dir = Path(run_dir).resolve()
    options = backend_class(spec.framework).resolve_options(
        spec,
        profile,
        device,
        iterations=iterations,
        batch_size=batch_size,
        overrides=cfg_overrides,
        choices={**choices, "finetune": init_weights is not None},
    )
    return ExperimentConfig(
        spec=spec,
        profile=profile.name,
        comparable_with_paper=profile.comparable_with_paper,
        role=role,
        device=device,
        seed=seed,
        run_dir=run_dir,
        model_dir=run_dir / "models" / spec.name,
        data=absolute_path(data),
        classification=absolute_path(classification),
        init_weights=absolute_path(init_weights),
        limits={key: limit(profile, spec, key) for key in LIMIT_KEYS},
        framework_options=options,
        eval_interval=eval_every if eval_every is not None else eval_interval(profile, spec, role),
        class_roles=absolute_path(class_roles),
    )


def with_choices(config: ExperimentConfig, device: Device, **choices: Any) -> ExperimentConfig:
    """The same trained experiment on ``device`` with the run's ``choices`` (e.g. ``darknet``: another
    Darknet; ``None`` keeps the trained one), as its backend applies them."""
    options = backend_class(config.framework).with_choices(config.framework_options, device, choices)
    return replace(config, device=device, framework_options=options)


def with_device(config: ExperimentConfig, device: Device) -> ExperimentConfig:
    """The same experiment on another device (e.g. detection on CPU of a GPU-trained model)."""
    return with_choices(config, device)

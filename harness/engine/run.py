"""A run: one data preparation, then one or more experiments, each from its resolved config.

``harness train`` (one experiment) and ``harness reproduce table1`` (the paper's seven, plus the
learning check) both come through here, so they share data preparation, the re-run rules and
the exit status: 0 only when every experiment succeeded.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Optional

from harness.config import RUN_FILE, ExperimentConfig, ModelSpec
from harness.core.atomic import read_json, write_json
from harness.core.errors import HarnessError, RunFailed, UsageProblem
from harness.core.profiles import Profile
from harness.data.options import DataOptions
from harness.engine.experiment import (
    ConfigMismatch,
    PreparedData,
    checked_class_roles,
    dataset_formats,
    plan_experiment,
    prepare_data,
    run_experiment,
)
from harness.frameworks import resolve_framework_device
from harness.frameworks.configs import resolve_experiment
from harness.paths import from_recorded, recorded_path

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunSettings:
    """What every experiment of a run shares; written to ``RUN_DIR/run.json``."""

    run_dir: Path
    profile: Profile
    seed: int = 0
    data: Optional[Path] = None
    classification: Optional[Path] = None
    device: str = "auto"
    synthetic: Optional[tuple[int, int]] = None  # (smears, cells) of the synthetic set; see sized()
    data_options: DataOptions = DataOptions()  # --class-map, --labelmap, --dedupe, ... (one vocabulary)
    darknet: Optional[str] = None  # which Darknet runs the YOLO models (None: the backend's default)
    runner: str = "local"  # the harness.runners name that runs it (run.json; `harness status` asks it)
    class_roles: Optional[Path] = None  # --classes: every experiment's table (in its config, not the run's identity)

    def identity(self) -> dict:
        """The values the run's data depends on: changing them under one run name is refused."""
        return {
            "profile": self.profile.name,
            "seed": self.seed,
            "data": str(self.data) if self.data else None,
            "classification": str(self.classification) if self.classification else None,
            "synthetic": list(self.synthetic) if self.synthetic else None,
            **({"data_options": self.data_options.identity()} if self.data_options != DataOptions() else {}),
        }

    def sized(self, configs: Sequence[ExperimentConfig]) -> RunSettings:
        """The synthetic set this run needs: the profile's full set when a learning check runs,
        its smaller pipeline set otherwise (a quick `harness train` stays quick)."""
        if self.data is not None:
            return self
        profile = self.profile
        full = (profile.synthetic_images, profile.synthetic_classification_images)
        checks = any(c.role == "learning-check" for c in configs)
        return replace(
            self, synthetic=full if checks or profile.pipeline_synthetic is None else profile.pipeline_synthetic
        )

    def config_for(
        self,
        spec: ModelSpec,
        *,
        role: str,
        init_weights: Optional[Path] = None,
        iterations: Optional[int] = None,
        batch_size: Optional[int] = None,
        cfg_overrides: Optional[dict] = None,
        eval_every: Optional[int] = None,
        network: Optional[dict] = None,
        darknet: Optional[str] = None,
    ) -> ExperimentConfig:
        """``darknet``: a learning check's own Darknet; default the run's."""
        choices = {"network": network, "darknet": darknet or self.darknet}
        device = resolve_framework_device(self.device, spec.framework, choices)
        return resolve_experiment(
            spec,
            self.profile,
            device=device,
            run_dir=self.run_dir,
            seed=self.seed,
            data=self.data,
            classification=self.classification,
            init_weights=init_weights,
            iterations=iterations,
            batch_size=batch_size,
            cfg_overrides=cfg_overrides,
            role=role,
            eval_every=eval_every,
            class_roles=self.class_roles,
            **choices,
        )


def check_run(settings: RunSettings, overwrite: bool) -> None:
    """Refuse to mix two runs in one directory (the synthetic set and conversion would be
    replaced under the experiments already trained on them)."""
    path = settings.run_dir / RUN_FILE
    if not path.is_file():
        return
    earlier = read_run_file(settings.run_dir).get("identity", {})
    now = settings.identity()
    differences = [
        f"{key} {earlier.get(key)!r} (now {now.get(key)!r})"
        for key in {**earlier, **now}
        if earlier.get(key) != now.get(key)
    ]
    if not differences:
        return
    if not overwrite:
        raise UsageProblem(
            f"{settings.run_dir} holds a run made with {', '.join(differences)}. Choose another --name "
            "(or --project), or pass --overwrite to delete that run's data and models and start again."
        )
    log.info(
        f"--overwrite: removing the earlier run in {settings.run_dir} ({', '.join(differences)})",
        extra={"style": {"fg": "yellow"}},
    )
    for sub in ("synthetic", "dataset", "models"):
        shutil.rmtree(settings.run_dir / sub, ignore_errors=True)


def write_run_file(settings: RunSettings, configs: Sequence[ExperimentConfig]) -> Path:
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    record = {
        "identity": settings.identity(),
        "device_choice": settings.device,
        "darknet": settings.darknet,
        "runner": settings.runner,
        "experiments": {
            c.name: {"config": recorded_path(c.model_dir / "config.json", settings.run_dir), "device": str(c.device)}
            for c in configs
        },
    }
    path = settings.run_dir / RUN_FILE
    write_json(path, record)
    return path


def read_run_file(run_dir: Path) -> dict:
    """RUN_DIR/run.json (CorruptFileError when it is not JSON)."""
    return read_json(Path(run_dir) / RUN_FILE, "run record (run.json)")


def experiment_config_path(run_dir: Path, name: str, entry: dict) -> Path:
    """An experiment's config.json from its run.json entry, inside *this* run folder: the recorded path
    is relative to it; an absolute one (older runs) that lies outside a moved or copied run is taken as
    ``models/<name>/config.json`` here, never the original's."""
    run_dir = Path(run_dir).resolve()
    path = from_recorded(entry["config"], run_dir)
    return path if path.is_relative_to(run_dir) else run_dir / "models" / name / "config.json"


def plan_all(configs: Sequence[ExperimentConfig], overwrite: bool) -> dict[str, str]:
    """Every experiment's plan before any work: a config clash stops the run before it starts."""
    try:
        return {c.name: plan_experiment(c, overwrite) for c in configs}
    except ConfigMismatch as exc:
        raise UsageProblem(str(exc)) from None


def announce_devices(configs: Sequence[ExperimentConfig]) -> None:
    seen: dict[str, str] = {}
    for config in configs:
        seen.setdefault(
            config.framework, f"{config.device}" + (f" ({config.device.reason})" if config.device.reason else "")
        )
    log.info("device: " + "; ".join(f"{fw} on {text}" for fw, text in seen.items()))


def run_in_order(
    configs: Sequence[ExperimentConfig],
    prepared: PreparedData,
    overwrite: bool = False,
    on_start: Optional[Callable[[int, ExperimentConfig], None]] = None,
) -> list[dict]:
    """Each experiment in this process, one after the other (the local runner's default)."""
    summaries = []
    for index, config in enumerate(configs, 1):
        if on_start is not None:
            on_start(index, config)
        summaries.append(run_unless_busy(config, prepared, overwrite))
    return summaries


def record_and_prepare(settings: RunSettings, configs: Sequence[ExperimentConfig]) -> PreparedData:
    """run.json, then the run's data, then each ``--classes`` table checked against the model's classes
    (before anything trains). When either is refused (a leaking split, a bad --data, a table missing a
    class) a run.json this call created is removed again: it would otherwise refuse the corrected rerun
    as another run."""
    fresh = not (settings.run_dir / RUN_FILE).is_file()
    write_run_file(settings, configs)
    try:
        prepared = prepare_run_data(settings, dataset_formats(configs))
        for config in configs:
            checked_class_roles(config, prepared.labelmap)
        return prepared
    except HarnessError:
        if fresh:
            (settings.run_dir / RUN_FILE).unlink(missing_ok=True)
        raise


def prepare_run_data(settings: RunSettings, formats: Optional[Sequence[str]] = None) -> PreparedData:
    """The run's data, made once: later callers (array tasks) wait for the lock and reuse it.
    ``formats``: the dataset formats the experiments' backends read (None: every format)."""
    from harness.core.locks import prepare_lock

    with prepare_lock(settings.run_dir):
        try:
            return prepare_data(
                settings.data,
                settings.run_dir,
                settings.profile,
                seed=settings.seed,
                classification=settings.classification,
                synthetic_sizes=settings.synthetic,
                options=settings.data_options,
                formats=formats,
            )
        except (ValueError, FileNotFoundError) as exc:  # e.g. the audit refuses a leaking split
            source = settings.data or "the synthetic set"
            raise HarnessError(f"data {source}: {exc}") from None


def run_unless_busy(config: ExperimentConfig, prepared: PreparedData, overwrite: bool) -> dict:
    """One experiment; one that another process is training now is reported, not touched."""
    from harness.core.locks import ExperimentBusy

    try:
        return run_experiment(config, prepared, overwrite)
    except ExperimentBusy as exc:
        return {"experiment": config.name, "status": "failed", "message": str(exc)}


def settings_of(run_dir: Path) -> RunSettings:
    """A run's shared settings back from ``RUN_DIR/run.json`` (what array tasks start from)."""
    from harness.core.profiles import profile as get_profile

    record = read_run_file(run_dir)
    identity = record["identity"]
    optional = {key: Path(identity[key]) if identity.get(key) else None for key in ("data", "classification")}
    synthetic = tuple(identity["synthetic"]) if identity.get("synthetic") else None
    return RunSettings(
        Path(run_dir),
        get_profile(identity["profile"]),
        identity["seed"],
        optional["data"],
        optional["classification"],
        record.get("device_choice", "auto"),
        synthetic,
        DataOptions.from_identity(identity.get("data_options")),
        record.get("darknet"),
        record.get("runner", "local"),
    )


def exit_for(summaries: Sequence[dict], run_dir: Path) -> None:
    """Log each failure and its log file, then raise RunFailed (exit status 1 at the command line);
    return quietly when all succeeded."""
    failed = [s for s in summaries if s.get("status") != "ok"]
    if not failed:
        return
    for summary in failed:
        path = summary.get("log") or str(run_dir / "models" / summary["experiment"])
        log.error(
            f"FAILED {summary['experiment']}: {summary.get('message', '').splitlines()[0] if summary.get('message') else ''}"
            f"\n       log: {path}",
            extra={"style": {"fg": "red"}},
        )
    log.error(f"{len(failed)} of {len(summaries)} experiments failed", extra={"style": {"fg": "red"}})
    raise RunFailed(f"{len(failed)} of {len(summaries)} experiments failed")

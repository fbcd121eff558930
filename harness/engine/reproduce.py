"""``harness reproduce table1``: the paper's seven models, evaluated and reported side by side."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Optional

import click

from harness import paper
from harness.config import ExperimentConfig, ModelSpec
from harness.core.atomic import write_json
from harness.core.profiles import LearningCheck, Profile
from harness.core.profiles import profile as get_profile
from harness.data.options import DataOptions
from harness.engine.experiment import stop_on_sigterm
from harness.engine.run import RunSettings, exit_for
from harness.options import CLASSES, pop_slurm_options, run_options, runner_options
from harness.paths import from_recorded

FROM_SCRATCH_NOTE = (
    "trained from random initialisation: the paper fine-tunes SSD from ImageNet VGG16 (reduced fc) and "
    "YOLOv3 from darknet53.conv.74; without them accuracy is lower and training takes longer. "
    "Pass --init-weights-ssd / --init-weights-yolo (see `harness weights fetch`)."
)


def _init_weights_for(exp: paper.Experiment, ssd: Optional[Path], yolo: Optional[Path]) -> Optional[Path]:
    """The ``--init-weights-<kind>`` file the experiment's backend fine-tunes it from, if any."""
    from harness.frameworks import backend_class

    kind = backend_class(exp.framework).init_weights_kind(exp.model)
    return {"ssd": ssd, "yolo": yolo}.get(kind) if kind else None


def select_experiments(only: Sequence[str]) -> list[paper.Experiment]:
    if not only:
        return list(paper.EXPERIMENTS)
    return [paper.experiment(name) for name in only]


def _frameworks(configs: Sequence[ExperimentConfig]) -> list[dict]:
    """The builds this run used, as ``harness doctor`` describes them (Darknet: each fork its
    experiments ran on); when the builds cannot be inspected, the reason is recorded."""
    from dataclasses import asdict

    from harness.frameworks import backend_class, inspect_all

    used = {backend_class(c.framework).build_name(c.framework_options) for c in configs}
    try:
        return [asdict(s) for s in inspect_all() if s.name in used]
    except Exception as exc:
        return [{"name": name, "usable": False, "missing": [str(exc)]} for name in sorted(used)]


def table1_configs(
    settings: RunSettings,
    only: Sequence[str] = (),
    init_weights_ssd: Optional[Path] = None,
    init_weights_yolo: Optional[Path] = None,
    learning_check: bool = True,
) -> list[ExperimentConfig]:
    """The resolved configs of the selected Table 1 rows and the profile's learning checks.

    ``only`` names Table 1 rows and/or learning checks; naming only learning checks runs just
    those (e.g. to re-measure them), naming only rows runs those rows plus the learning checks.
    """
    checks = settings.profile.all_learning_checks()
    named_checks = [name for name in only if name in {c.name for c in checks}]
    rows = [name for name in only if name not in named_checks]
    experiments = select_experiments(rows) if rows or not named_checks else []
    configs = [
        settings.config_for(
            ModelSpec.of(exp), role="table1", init_weights=_init_weights_for(exp, init_weights_ssd, init_weights_yolo)
        )
        for exp in experiments
    ]
    if learning_check:
        configs += [
            learning_check_config(settings, check) for check in checks if check.name in named_checks or not named_checks
        ]
    return configs


def checked_only(profile_: Profile, only: Sequence[str]) -> list[str]:
    """--only's names: Table 1 rows (paper.experiment) or the profile's learning checks."""
    check_names = {c.name for c in profile_.all_learning_checks()}
    try:
        return [n if n in check_names else paper.experiment(n).name for n in only]
    except KeyError as exc:
        raise click.BadParameter(str(exc.args[0]), param_hint="--only") from None


def learning_check_config(settings: RunSettings, check: LearningCheck) -> ExperimentConfig:
    """One learning check's config: same resolution as a Table 1 row, its own overrides."""
    spec = ModelSpec(check.name, check.framework, check.model, check.size, check.smin, check.smax)
    return settings.config_for(
        spec,
        role="learning-check",
        cfg_overrides=dict(check.overrides),
        batch_size=check.batch_size,
        network=dict(check.network),
        darknet=check.darknet,
    )


def reproduce_table1(
    run_dir: Path,
    profile_: Profile,
    data: Optional[Path] = None,
    classification: Optional[Path] = None,
    only: Sequence[str] = (),
    init_weights_ssd: Optional[Path] = None,
    init_weights_yolo: Optional[Path] = None,
    seed: int = 0,
    learning_check: bool = True,
    device: str = "auto",
    overwrite: bool = False,
    jobs: int = 1,
    darknet: Optional[str] = None,
    data_options: DataOptions = DataOptions(),
    class_roles: Optional[Path] = None,
) -> tuple[Path, list[dict]]:
    """Run the experiments, then build the report; returns the report's path and the summaries."""
    from harness.report.builder import build_report

    settings = RunSettings(
        Path(run_dir).resolve(),
        profile_,
        seed,
        data,
        classification,
        device,
        darknet=darknet,
        data_options=data_options,
        class_roles=class_roles,
    )
    run_dir = settings.run_dir
    stop_on_sigterm()
    started = time.monotonic()
    configs = table1_configs(settings, only, init_weights_ssd, init_weights_yolo, learning_check)
    if profile_.name == "paper" and not (init_weights_ssd and init_weights_yolo):
        click.secho("note: " + FROM_SCRATCH_NOTE, fg="yellow")
    from harness.runners import Submission, get_runner

    options = {"on_start": _announce(len(configs), profile_), "jobs": jobs}
    outcome = get_runner("local").submit(Submission(settings, configs, overwrite, options))
    prepared, summaries = outcome.prepared, outcome.summaries or []

    write_provenance(run_dir, prepared, configs, seconds=time.monotonic() - started)
    outputs = build_report(run_dir)
    _print_outcome(summaries, outputs, time.monotonic() - started)
    return Path(outputs.get("html", run_dir / "report.html")), summaries


def write_provenance(run_dir: Path, prepared, configs: Sequence[ExperimentConfig], seconds: Optional[float]) -> Path:
    """RUN_DIR/provenance.json from the configs and what their summaries recorded (any runner)."""
    from harness.engine.experiment import read_summary
    from harness.report.provenance import collect_provenance

    summaries = [read_summary(c.model_dir) or {} for c in configs]
    rendered = [
        from_recorded(p, c.model_dir) for c, s in zip(configs, summaries) for p in (s.get("rendered") or {}).values()
    ]
    from harness.frameworks import backend_class

    seed = configs[0].seed if configs else 0
    init: dict[str, Path] = {}
    for c in configs:
        kind = backend_class(c.framework).init_weights_kind(c.spec.model)
        if kind and c.init_weights:
            init.setdefault(kind, c.init_weights)
    ssd, yolo = init.get("ssd"), init.get("yolo")
    provenance = collect_provenance(
        run_dir,
        data_dir=prepared.voc_root,
        rendered_files=rendered,
        seeds={"data": seed},
        frameworks=_frameworks(configs),
    )
    provenance.update(
        profile=configs[0].profile if configs else None,
        experiments=[c.name for c in configs if c.role == "table1"],
        devices={c.name: str(c.device) for c in configs},
        framework_builds={c.name: backend_class(c.framework).display_name(c.framework_options) for c in configs},
        init_weights={"ssd": str(ssd) if ssd else None, "yolo": str(yolo) if yolo else None},
        initialisation_note=None if (ssd and yolo) else FROM_SCRATCH_NOTE,
        synthetic_data=prepared.synthetic,
        seconds=None if seconds is None else round(seconds, 1),
    )
    return write_json(run_dir / "provenance.json", provenance)


def _announce(total: int, profile_: Profile):
    def announce(index: int, config: ExperimentConfig) -> None:
        what = (
            "learning check, not a Table 1 model: shows CPU training really learns"
            if config.role == "learning-check"
            else f"{config.framework}, profile {profile_.name}"
        )
        click.secho(f"\n=== [{index}/{total}] {config.name} ({what}, {config.device})", bold=True)

    return announce


def _print_outcome(summaries: list[dict], outputs: dict, seconds: float) -> None:
    failed = [s for s in summaries if s["status"] != "ok"]
    reused = sum(1 for s in summaries if s.get("reused"))
    click.echo(
        f"\n{len(summaries) - len(failed)}/{len(summaries)} experiments ok"
        + (f" ({reused} reused)" if reused else "")
        + f" in {seconds / 60:.1f} min"
    )
    for role, path in outputs.items():
        click.echo(f"  {role}: {path}")


def _submit_to_slurm(
    settings: RunSettings,
    only: Sequence[str],
    init_weights_ssd: Optional[Path],
    init_weights_yolo: Optional[Path],
    learning_check: bool,
    overwrite: bool,
    options: dict,
) -> None:
    """One array task per experiment and a report job; with --wait, exit 1 if any failed."""
    from harness.runners import Submission, get_runner

    configs = table1_configs(settings, only, init_weights_ssd, init_weights_yolo, learning_check)
    outcome = get_runner("slurm").submit(Submission(settings, configs, overwrite, options))
    if outcome.summaries is not None:
        click.secho(f"\nreport: {settings.run_dir / 'report.html'}", fg="green", bold=True)
        exit_for(outcome.summaries, settings.run_dir)


@click.group()
def reproduce() -> None:
    """Re-make the paper's results with the native frameworks."""


@reproduce.command("table1")
@run_options
@click.option(
    "--only",
    multiple=True,
    help="Run only these experiments (repeatable), e.g. --only yolov3-tiny_416; a learning check's name "
    "(e.g. learning-check_ssd160_w0.125) runs just that check.",
)
@click.option(
    "--init-weights-ssd",
    type=click.Path(exists=True, dir_okay=False, path_type=Path, resolve_path=True),
    default=None,
    help="VGG16 reduced-fc caffemodel to fine-tune SSD from (the paper's start).",
)
@click.option(
    "--init-weights-yolo",
    type=click.Path(exists=True, dir_okay=False, path_type=Path, resolve_path=True),
    default=None,
    help="darknet53.conv.74 to fine-tune YOLOv3 from (the paper's start).",
)
@click.option(
    "--learning-check/--no-learning-check",
    default=True,
    show_default=True,
    help="smoke profile: also train a small YOLOv3-tiny and a compact SSD long enough to show real learning.",
)
@click.option(
    "--jobs",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="local: run N experiments at once, each a child process with cores/N threads and its output "
    "in MODEL_DIR/experiment.log (1: one after the other, output streamed here). Table 2 times are "
    "then measured while other experiments run (timing.json says so).",
)
@CLASSES
@runner_options
def table1(
    profile_name: str,
    data: Optional[Path],
    classification: Optional[Path],
    name: Optional[str],
    project: Path,
    seed: int,
    device: str,
    darknet: str,
    overwrite: bool,
    only: tuple[str, ...],
    init_weights_ssd: Optional[Path],
    init_weights_yolo: Optional[Path],
    learning_check: bool,
    jobs: int,
    class_roles: Optional[Path],
    runner: str,
    image: Optional[str],
    data_options: DataOptions,
    **slurm,
) -> None:
    """All seven Table 1 models: train, evaluate (VOC07 + VOC12), classify, time, report.

    Exit status: 0 when every experiment succeeded, 1 when any failed (each is named with its
    log), 2 for usage errors.
    """
    run_dir = project / (name or f"table1-{profile_name}")
    if runner == "docker":
        from harness.engine.cli import rerun_in_docker

        rerun_in_docker(
            image,
            read_only=[
                p
                for p in (
                    data,
                    classification,
                    init_weights_ssd,
                    init_weights_yolo,
                    data_options.class_map,
                    data_options.labelmap,
                    class_roles,
                )
                if p is not None
            ],
            writable=[project],
        )
    only_valid = checked_only(get_profile(profile_name), only)
    if runner == "slurm":
        if jobs != 1:
            raise click.UsageError("--jobs is for the local runner; with --runner slurm use --max-parallel")
        _submit_to_slurm(
            RunSettings(
                run_dir.resolve(),
                get_profile(profile_name),
                seed,
                data,
                classification,
                device,
                darknet=darknet,
                data_options=data_options,
                class_roles=class_roles,
            ),
            only_valid,
            init_weights_ssd,
            init_weights_yolo,
            learning_check,
            overwrite,
            pop_slurm_options(slurm),
        )
        return
    report, summaries = reproduce_table1(
        run_dir,
        get_profile(profile_name),
        data=data,
        classification=classification,
        only=only_valid,
        init_weights_ssd=init_weights_ssd,
        init_weights_yolo=init_weights_yolo,
        seed=seed,
        learning_check=learning_check,
        device=device,
        overwrite=overwrite,
        jobs=jobs,
        darknet=darknet,
        data_options=data_options,
        class_roles=class_roles,
    )
    click.secho(f"\nreport: {report}", fg="green", bold=True)
    exit_for(summaries, run_dir)

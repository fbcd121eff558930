"""``harness reproduce table1``: the paper's seven models, evaluated and reported side by side."""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Optional, Sequence

import click

from harness import paper
from harness.engine.experiment import ModelSpec, PreparedData, prepare_data, run_experiment, stop_on_sigterm
from harness.engine.profiles import PROFILES, Profile, profile as get_profile

FROM_SCRATCH_NOTE = (
    "trained from random initialisation: the paper fine-tunes SSD from ImageNet VGG16 (reduced fc) and "
    "YOLOv3 from darknet53.conv.74; without them accuracy is lower and training takes longer. "
    "Pass --init-weights-ssd / --init-weights-yolo (see `harness weights fetch`)."
)


def _init_weights_for(exp: paper.Experiment, ssd: Optional[Path], yolo: Optional[Path]) -> Optional[Path]:
    if exp.framework == "caffe":
        return ssd
    # darknet53.conv.74 holds YOLOv3's backbone only; YOLOv3-tiny has no such file in the paper.
    return yolo if exp.model == "yolov3" else None


def select_experiments(only: Sequence[str]) -> list[paper.Experiment]:
    if not only:
        return list(paper.EXPERIMENTS)
    return [paper.experiment(name) for name in only]


def _frameworks() -> list[dict]:
    from dataclasses import asdict

    statuses = []
    for module, func in (("harness.engine.caffe", "inspect_caffe"), ("harness.engine.darknet", "inspect_darknet")):
        try:
            mod = __import__(module, fromlist=[func])
            statuses.append(asdict(getattr(mod, func)()))
        except Exception as exc:  # noqa: BLE001 - provenance records what could not be inspected
            statuses.append({"name": module.rsplit(".", 1)[-1], "usable": False, "missing": [str(exc)]})
    return statuses


def reproduce_table1(run_dir: Path, profile_: Profile, data: Optional[Path] = None,
                     classification: Optional[Path] = None, only: Sequence[str] = (),
                     init_weights_ssd: Optional[Path] = None, init_weights_yolo: Optional[Path] = None,
                     seed: int = 0, learning_check: bool = True) -> Path:
    """Run the experiments, then build the report; returns the report's path."""
    from harness.report.builder import build_report
    from harness.report.provenance import collect_provenance

    run_dir.mkdir(parents=True, exist_ok=True)
    stop_on_sigterm()
    started = time.monotonic()
    experiments = select_experiments(only)
    if profile_.name == "paper" and not (init_weights_ssd and init_weights_yolo):
        click.secho("note: " + FROM_SCRATCH_NOTE, fg="yellow")
    prepared = prepare_data(data, run_dir, profile_, seed=seed, classification=classification)

    summaries = []
    for index, exp in enumerate(experiments, 1):
        click.secho(f"\n=== [{index}/{len(experiments)}] {exp.name} ({exp.framework}, profile {profile_.name})",
                    bold=True)
        summaries.append(run_experiment(ModelSpec.of(exp), prepared, run_dir / "models" / exp.name, profile_,
                                        _init_weights_for(exp, init_weights_ssd, init_weights_yolo)))
    if learning_check and profile_.learning_check is not None:
        summaries.append(_run_learning_check(prepared, run_dir, profile_))

    rendered = [Path(p) for s in summaries for p in (s.get("rendered") or {}).values()]
    provenance = collect_provenance(run_dir, data_dir=prepared.voc_root, rendered_files=rendered,
                                    seeds={"data": seed}, frameworks=_frameworks())
    provenance.update(profile=profile_.name, experiments=[e.name for e in experiments],
                      init_weights={"ssd": str(init_weights_ssd) if init_weights_ssd else None,
                                    "yolo": str(init_weights_yolo) if init_weights_yolo else None},
                      initialisation_note=None if (init_weights_ssd and init_weights_yolo) else FROM_SCRATCH_NOTE,
                      synthetic_data=prepared.synthetic, seconds=round(time.monotonic() - started, 1))
    (run_dir / "provenance.json").write_text(json.dumps(provenance, indent=2, default=str) + "\n")
    outputs = build_report(run_dir)
    _print_outcome(summaries, outputs, time.monotonic() - started)
    return Path(outputs.get("html", run_dir / "report.html"))


def _run_learning_check(prepared: PreparedData, run_dir: Path, profile_: Profile) -> dict:
    check = profile_.learning_check
    click.secho(f"\n=== learning check: {check.name} (not a Table 1 model: shows CPU training really learns)",
                bold=True)
    spec = ModelSpec(check.name, "darknet", check.model, check.size)
    return run_experiment(spec, prepared, run_dir / "models" / check.name, profile_,
                          framework_kwargs={"overrides": dict(check.overrides)})


def _print_outcome(summaries: list[dict], outputs: dict, seconds: float) -> None:
    failed = [s for s in summaries if s["status"] != "ok"]
    click.echo(f"\n{len(summaries) - len(failed)}/{len(summaries)} experiments ok in {seconds / 60:.1f} min")
    for s in failed:
        click.secho(f"  {s['experiment']}: {s['message']}", fg="red")
    for role, path in outputs.items():
        click.echo(f"  {role}: {path}")


@click.group()
def reproduce() -> None:
    """Re-make the paper's results with the native frameworks."""


@reproduce.command("table1")
@click.option("--profile", "profile_name", type=click.Choice(sorted(PROFILES)), default="smoke", show_default=True,
              help="paper: the paper's hyperparameters (GPU); smoke: few iterations, CPU-sized.")
@click.option("--data", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="VOC root (Annotations/, JPEGImages/, ImageSets/Main/). Default: the embedded synthetic set.")
@click.option("--classification", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="VOC root of single-object images for the Fig 10 classification test.")
@click.option("--name", default=None, help="Run name: results go to PROJECT/NAME. Default: table1-<profile>.")
@click.option("--project", type=click.Path(file_okay=False, path_type=Path), default=Path("runs"), show_default=True)
@click.option("--only", multiple=True, help="Run only these experiments (repeatable), e.g. --only yolov3-tiny_416.")
@click.option("--init-weights-ssd", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="VGG16 reduced-fc caffemodel to fine-tune SSD from (the paper's start).")
@click.option("--init-weights-yolo", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="darknet53.conv.74 to fine-tune YOLOv3 from (the paper's start).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--learning-check/--no-learning-check", default=True, show_default=True,
              help="smoke profile: also train a small YOLOv3-tiny long enough to show real learning.")
@click.option("--runner", type=click.Choice(["local", "docker"]), default="local", show_default=True,
              help="docker: run this same command inside the harness GPU image.")
@click.option("--image", default=None, help="Docker image for --runner docker.")
def table1(profile_name: str, data: Optional[Path], classification: Optional[Path], name: Optional[str],
           project: Path, only: tuple[str, ...], init_weights_ssd: Optional[Path], init_weights_yolo: Optional[Path],
           seed: int, learning_check: bool, runner: str, image: Optional[str]) -> None:
    """All seven Table 1 models: train, evaluate (VOC07 + VOC12), classify, time, report."""
    run_dir = project / (name or f"table1-{profile_name}")
    if runner == "docker":
        from harness.engine.cli import rerun_in_docker

        rerun_in_docker(image, read_only=[p for p in (data, classification, init_weights_ssd, init_weights_yolo)
                                          if p is not None], writable=[project])
    try:
        only_valid = [paper.experiment(n).name for n in only]
    except KeyError as exc:
        raise click.BadParameter(str(exc.args[0]), param_hint="--only") from None
    report = reproduce_table1(run_dir, get_profile(profile_name), data=data, classification=classification,
                              only=only_valid, init_weights_ssd=init_weights_ssd, init_weights_yolo=init_weights_yolo,
                              seed=seed, learning_check=learning_check)
    click.secho(f"\nreport: {report}", fg="green", bold=True)

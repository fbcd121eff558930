"""Run-stage verbs: ``harness train``, ``harness detect``, ``harness doctor``, ``harness weights``."""
from __future__ import annotations

import json
import sys
from dataclasses import asdict, replace
from pathlib import Path
from typing import Optional, Sequence

import click

from harness.engine.profiles import PROFILES, Profile, profile as get_profile
from harness.labels import LabelMap

DATA_OPTION = click.option(
    "--data", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
    help="VOC root (Annotations/, JPEGImages/, ImageSets/Main/). Default: the embedded synthetic set.")


def _common_train_options(func):
    options = [
        DATA_OPTION,
        click.option("--classification", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
                     help="VOC root of single-object images for the classification test."),
        click.option("--profile", "profile_name", type=click.Choice(sorted(PROFILES)), default="paper",
                     show_default=True, help="Hyperparameters: the paper's, or smoke (CPU-sized)."),
        click.option("--iterations", type=int, default=None,
                     help="Override max_iter (Caffe) / max_batches (Darknet)."),
        click.option("--batch-size", type=int, default=None, help="Override the training batch size."),
        click.option("--init-weights", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
                     help="Weights to fine-tune from (VGG16 reduced-fc caffemodel / darknet53.conv.74)."),
        click.option("--name", default=None, help="Run name (PROJECT/NAME). Default: the model's name."),
        click.option("--project", type=click.Path(file_okay=False, path_type=Path), default=Path("runs"),
                     show_default=True),
        click.option("--seed", type=int, default=0, show_default=True),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _train_profile(base: Profile, framework: str, iterations: Optional[int], batch_size: Optional[int]) -> Profile:
    """The chosen profile with the command line's iteration/batch overrides applied."""
    if framework == "caffe":
        solver = dict(base.ssd_solver)
        if iterations:
            solver["max_iter"] = iterations
            solver["snapshot"] = iterations
            solver["stepvalue"] = [s for s in solver.get("stepvalue", []) if s < iterations] or [iterations]
        return replace(base, ssd_solver=solver, ssd_batch_size=batch_size or base.ssd_batch_size)
    overrides = dict(base.yolo_overrides)
    if iterations:
        overrides["max_batches"] = iterations
    if batch_size:
        overrides.update(batch=batch_size, subdivisions=1)
    return replace(base, yolo_overrides=overrides, per_model={})


def _run_train(spec, data, classification, profile_name, iterations, batch_size, init_weights, name, project,
               seed) -> None:
    from harness.engine.experiment import prepare_data, run_experiment, stop_on_sigterm

    stop_on_sigterm()
    profile_ = _train_profile(get_profile(profile_name), spec.framework, iterations, batch_size)
    run_dir = project / (name or spec.name)
    prepared = prepare_data(data, run_dir, profile_, seed=seed, classification=classification)
    summary = run_experiment(spec, prepared, run_dir / "models" / spec.name, profile_, init_weights)
    _report_quietly(run_dir)
    if summary["status"] != "ok":
        click.secho(f"{spec.name}: {summary['message']}", fg="red", err=True)
        sys.exit(1)
    click.secho(f"results: {run_dir / 'models' / spec.name}", fg="green")


def _report_quietly(run_dir: Path) -> None:
    """Plots by default (Ultralytics style): a report for whatever the run directory holds."""
    from harness.report.builder import build_report

    try:
        outputs = build_report(run_dir)
        click.echo(f"report: {outputs.get('html', run_dir / 'report.html')}")
    except Exception as exc:  # noqa: BLE001 - a report problem must not hide the training result
        click.secho(f"report not built: {exc}", fg="yellow", err=True)


@click.group()
def train() -> None:
    """Train one model with its native framework (renders, converts data, trains, evaluates)."""


@train.command("ssd")
@click.option("--size", type=click.Choice(["300", "512"]), default="300", show_default=True)
@click.option("--smin", type=float, default=0.2, show_default=True)
@click.option("--smax", type=float, default=0.9, show_default=True)
@_common_train_options
def train_ssd(size: str, smin: float, smax: float, **kwargs) -> None:
    """SSD300/SSD512 on Caffe (`caffe train`)."""
    from harness.engine.experiment import ModelSpec

    _run_train(ModelSpec(f"ssd{size}_smin{smin}", "caffe", "ssd", int(size), smin, smax), **kwargs)


def _yolo_command(model: str, default_size: int):
    @train.command(model)
    @click.option("--size", type=int, default=default_size, show_default=True, help="Input size, a multiple of 32.")
    @_common_train_options
    def command(size: int, **kwargs) -> None:
        from harness.engine.experiment import ModelSpec

        if size % 32:
            raise click.BadParameter(f"{size} is not a multiple of 32", param_hint="--size")
        _run_train(ModelSpec(f"{model}_{size}", "darknet", model, size), **kwargs)

    command.__doc__ = f"{model} on Darknet (`darknet detector train`)."
    return command


_yolo_command("yolov3", 416)
_yolo_command("yolov3-tiny", 416)


@click.command()
@click.argument("model_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--images", type=click.Path(exists=True, file_okay=False, path_type=Path), required=True,
              help="VOC root whose images to run on (its ImageSets/Main/test.txt if --image-set is not given).")
@click.option("--image-set", default=None, help="Split name or ids file inside --images. Default: all images.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True)
def detect(model_dir: Path, images: Path, image_set: Optional[str], out: Path) -> None:
    """Run a trained model (a MODEL_DIR from `harness train`) and write per-class VOC detection files."""
    from harness.data.voc import load_voc
    from harness.engine.experiment import ModelSpec, framework_for
    from harness.engine.profiles import PAPER

    summary_path = model_dir / "summary.json"
    if not summary_path.is_file():
        raise click.ClickException(f"{summary_path}: missing — MODEL_DIR must come from `harness train`")
    summary = json.loads(summary_path.read_text())
    if not (summary.get("train") or {}).get("weights"):
        raise click.ClickException(f"{summary_path}: this model has no trained weights ({summary.get('message')})")
    files = {role: Path(p) for role, p in summary["rendered"].items()}
    labelmap = LabelMap.from_file(files.get("names") or files["labelmap"])   # the model's own classes
    dataset = load_voc(images, image_set=image_set, labelmap=labelmap)
    click.echo(dataset.report.summary())
    spec = ModelSpec(summary["experiment"], summary["framework"], summary["model"], summary["size"],
                     summary.get("smin"), summary.get("smax"))
    fw = framework_for(spec, _LabelOnlyData(labelmap), model_dir, PAPER)
    written = fw.detect(files, Path(summary["train"]["weights"]), dataset.images, out)
    click.secho(f"detections: {written}", fg="green")


class _LabelOnlyData:
    """What detection needs of PreparedData: only the label map (no converted dataset)."""

    def __init__(self, labelmap) -> None:
        self.labelmap = labelmap


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def doctor(as_json: bool) -> None:
    """What is installed: framework versions, CPU/GPU, Caffe's SSD layers and proto dialect."""
    from harness.engine.caffe import inspect_caffe
    from harness.engine.darknet import inspect_darknet

    statuses = [inspect_caffe(), inspect_darknet()]
    if as_json:
        click.echo(json.dumps([asdict(s) for s in statuses], indent=2, default=str))
    else:
        for status in statuses:
            _print_status(status)
    sys.exit(0 if all(s.usable for s in statuses) else 1)


def _print_status(status) -> None:
    mark = click.style("ok", fg="green") if status.usable else click.style("MISSING", fg="red")
    click.echo(f"{status.name:8s} {mark}  {status.version}  {status.device}  {status.location}")
    for key, value in status.details.items():
        shown = ", ".join(map(str, value)) if isinstance(value, (list, tuple)) else value
        click.echo(f"           {key}: {shown}")
    for problem in status.missing:
        click.secho(f"           missing: {problem}", fg="red")
    if not status.usable and status.install_hint:
        click.echo(f"           install: {status.install_hint}")


@click.group()
def weights() -> None:
    """Pretrained initial weights the paper fine-tunes from (needs internet)."""


@weights.command("list")
def weights_list() -> None:
    from harness.engine.weights import REGISTRY, expected_checksum, weights_dir

    for spec in REGISTRY.values():
        present = (weights_dir() / spec.filename).exists()
        click.echo(f"{spec.key:20s} {spec.framework:8s} {'present' if present else 'absent':8s} "
                   f"sha256={expected_checksum(spec) or 'not pinned'}\n{'':20s} {spec.url}\n{'':20s} {spec.used_by}")


@weights.command("fetch")
@click.argument("key")
@click.option("--dest", type=click.Path(file_okay=False, path_type=Path), default=None)
@click.option("--sha256", default=None, help="Expected checksum (verified; recommended).")
@click.option("--url", default=None, help="Mirror URL instead of the registry's.")
def weights_fetch(key: str, dest: Optional[Path], sha256: Optional[str], url: Optional[str]) -> None:
    """Download KEY (see `harness weights list`) and verify it."""
    from harness.engine.weights import fetch

    try:
        path, digest, pinned = fetch(key, dest, sha256, url)
    except (KeyError, ValueError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{path}\nsha256 {digest}")
    if not pinned:
        click.secho("no published checksum to verify against: recorded this one; later fetches must match it",
                    fg="yellow")


def rerun_in_docker(image: Optional[str], read_only: Sequence[Path], writable: Sequence[Path]) -> None:
    """Re-run the current harness command line inside the GPU image and exit with its status.

    Inputs are mounted read-only, the run directory and the checkout read-write, each at its own
    path; host-side HARNESS_* settings are not forwarded (they name host paths the image lacks).
    """
    from harness.engine.docker import DEFAULT_IMAGE, DockerUnavailableError, run_in_docker

    argv = _drop_option(_drop_option(sys.argv[1:], "--runner"), "--image")
    for path in writable:
        Path(path).mkdir(parents=True, exist_ok=True)
    try:
        result = run_in_docker(image or DEFAULT_IMAGE, ["python3", "-m", "harness", *argv],
                               paths=[Path(p).resolve() for p in (*writable, Path.cwd())],
                               read_only=[Path(p).resolve() for p in read_only], workdir=Path.cwd())
    except DockerUnavailableError as exc:
        raise click.ClickException(str(exc)) from None
    sys.exit(result.returncode)


def _drop_option(argv: list[str], option: str) -> list[str]:
    """``argv`` without ``option VALUE`` / ``option=VALUE``."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg == option:
            skip = True
            continue
        if not arg.startswith(option + "="):
            out.append(arg)
    return out

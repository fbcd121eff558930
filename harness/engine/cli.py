"""Run-stage verbs: ``harness train``, ``harness detect``, ``harness doctor``, ``harness weights``."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import click

from harness.config import ModelSpec
from harness.core.profiles import profile as get_profile
from harness.options import (
    CLASSES,
    DARKNET_RUN,
    DEVICE,
    existing_dir,
    run_options,
    runner_options,
    ssd_net_options,
)

if TYPE_CHECKING:
    from harness.render.ssd import NetVariant


def _train_options(func):
    """run_options plus what only a single training takes."""
    options = [
        run_options,
        click.option("--iterations", type=int, default=None, help="Override max_iter (Caffe) / max_batches (Darknet)."),
        click.option("--batch-size", type=int, default=None, help="Override the training batch size."),
        click.option(
            "--eval-interval",
            type=click.IntRange(min=0),
            default=None,
            help="Score the held-out split every N iterations (results.csv, weights/best.*); "
            "0: final weights only. Default: the profile's.",
        ),
        click.option(
            "--init-weights",
            type=click.Path(exists=True, dir_okay=False, path_type=Path, resolve_path=True),
            default=None,
            help="Weights to fine-tune from: ssd the VGG16 reduced-fc caffemodel, yolov3 darknet53.conv.74, "
            "yolov3-tiny yolov3-tiny.conv.15 (`harness weights fetch KEY`; `harness weights list`).",
        ),
        CLASSES,
        runner_options,
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _run_train(
    spec,
    data,
    classification,
    profile_name,
    iterations,
    batch_size,
    init_weights,
    name,
    project,
    seed,
    device,
    darknet,
    overwrite,
    runner,
    image,
    data_options,
    eval_interval=None,
    class_roles=None,
    network=None,
    **slurm,
) -> None:
    """One experiment through the same config resolution and run rules as ``reproduce``.

    ``network``: an SSD body variant's options (harness.render.ssd.NetVariant.options)."""
    from harness.engine.experiment import stop_on_sigterm
    from harness.engine.run import RunSettings, exit_for
    from harness.options import pop_slurm_options
    from harness.runners import Submission, get_runner

    if runner == "docker":
        rerun_in_docker(
            image,
            read_only=[
                p
                for p in (
                    data,
                    classification,
                    init_weights,
                    data_options.class_map,
                    data_options.labelmap,
                    class_roles,
                )
                if p is not None
            ],
            writable=[project],
        )
    stop_on_sigterm()
    settings = RunSettings(
        project / (name or spec.name),
        get_profile(profile_name),
        seed,
        data,
        classification,
        device,
        darknet=darknet,
        data_options=data_options,
        class_roles=class_roles,
    )
    config = settings.config_for(
        spec,
        role=_role(spec, profile_name),
        init_weights=init_weights,
        iterations=iterations,
        batch_size=batch_size,
        eval_every=eval_interval,
        network=network,
    )
    outcome = get_runner(runner).submit(Submission(settings, [config], overwrite, pop_slurm_options(slurm)))
    if outcome.summaries is None:
        return  # queued: `harness status RUN_DIR` follows it
    summaries = outcome.summaries
    if runner == "local":
        _report_quietly(settings.run_dir)
    exit_for(summaries, settings.run_dir)
    click.secho(f"results: {config.model_dir}", fg="green")


def _role(spec, profile_name: str) -> str:
    """A paper row trained alone is still that row (its config equals reproduce's)."""
    from harness import paper

    try:
        return "table1" if paper.experiment(spec.name) else "custom"
    except KeyError:
        return "custom"


def _report_quietly(run_dir: Path) -> None:
    """Plots by default (Ultralytics style): a report for whatever the run directory holds."""
    from harness.report.builder import build_report

    try:
        outputs = build_report(run_dir)
        click.echo(f"report: {outputs.get('html', run_dir / 'report.html')}")
    except Exception as exc:
        click.secho(f"report not built: {exc}", fg="yellow", err=True)


@click.group()
def train() -> None:
    """Train one model with its native framework (renders, converts data, trains, evaluates).

    Exit status: 0 when training, detection and evaluation succeeded, 1 when a step failed
    (named with its log), 2 for usage errors.
    """


@train.command("ssd")
@ssd_net_options
@click.option("--smin", type=float, default=0.2, show_default=True)
@click.option("--smax", type=float, default=0.9, show_default=True)
@_train_options
def train_ssd(size: str, variant: NetVariant, smin: float, smax: float, **kwargs) -> None:
    """SSD300/SSD512 on Caffe (`caffe train`), or a compact SSD (--size 160/192, --width, --batch-norm,
    the augmentation switches: docs/rendering.md) whose experiment name says how it differs."""
    from harness.render.ssd import ssd_experiment_name

    if kwargs.get("init_weights") and variant.width != 1.0:
        raise click.UsageError(
            f"--init-weights: VGG16's weights fit only the full-width body, and this SSD has --width {variant.width} "
            "(train the compact SSD from scratch, or drop --width)"
        )
    spec = ModelSpec(ssd_experiment_name(int(size), smin, variant), "caffe", "ssd", int(size), smin, smax)
    _run_train(spec, network=variant.options(), **kwargs)


def _yolo_command(model: str, default_size: int):
    @train.command(model)
    @click.option("--size", type=int, default=default_size, show_default=True, help="Input size, a multiple of 32.")
    @_train_options
    def command(size: int, **kwargs) -> None:
        if size % 32:
            raise click.BadParameter(f"{size} is not a multiple of 32", param_hint="--size")
        _run_train(ModelSpec(f"{model}_{size}", "darknet", model, size), **kwargs)

    command.__doc__ = f"{model} on Darknet (`darknet detector train`)."
    return command


_yolo_command("yolov3", 416)
_yolo_command("yolov3-tiny", 416)


@click.command()
@click.argument("model_dir", type=existing_dir())
@click.option(
    "--images",
    type=existing_dir(),
    required=True,
    help="A VOC root (its images, or --image-set) or a plain folder of images (your slides).",
)
@click.option("--image-set", default=None, help="VOC only: split name or ids file. Default: all images.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path, resolve_path=True), required=True)
@DEVICE
@DARKNET_RUN
def detect(
    model_dir: Path, images: Path, image_set: Optional[str], out: Path, device: str, darknet: Optional[str]
) -> None:
    """Run a trained model (a MODEL_DIR from `harness train`) and write per-class VOC detection
    files plus detections.csv (one row per box, with the original file name)."""
    from harness.data.detect_inputs import detection_inputs
    from harness.engine.experiment import load_trained_model
    from harness.evaluation.detections import write_detections_csv
    from harness.frameworks import backend_for

    try:
        model = load_trained_model(model_dir, device, darknet)
        labelmap = model.labelmap  # the model's own classes
        inputs = detection_inputs(images, image_set, labelmap, out)
    except (OSError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(inputs.summary)
    fw = backend_for(model.config, labelmap)
    try:
        written = fw.detect(model.files, model.weights, inputs.images, out)
    except OSError:
        raise  # disk full, read-only --out: the CLI group names the path and what to do
    except Exception as exc:
        raise click.ClickException(f"detection with {model_dir} failed: {exc}") from None
    csv_path = write_detections_csv(Path(written), labelmap, inputs, out / "detections.csv")
    click.secho(f"detections: {written}\nper box: {csv_path}", fg="green")
    if inputs.skipped:  # the others are written; the exit status still says not everything was done
        raise click.ClickException(
            f"{len(inputs.skipped)} image(s) could not be read and were skipped (listed in {out / 'images.csv'})"
        )


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def doctor(as_json: bool) -> None:
    """What is installed: framework versions, CPU/GPU, Caffe's SSD layers and proto dialect."""
    from harness.frameworks import inspect_all

    statuses = inspect_all()
    if as_json:
        click.echo(json.dumps([asdict(s) for s in statuses], indent=2, default=str))
    else:
        for status in statuses:
            _print_status(status)
        _print_image_info()
    sys.exit(0 if all(s.usable for s in statuses) else 1)


IMAGE_INFO = Path("/etc/leukonet-harness/image.env")  # written by docker/image_info.sh in the images


def _print_image_info() -> None:
    """Inside a harness Docker image: which target, base image and framework commits it was built from."""
    if IMAGE_INFO.is_file():
        click.echo("image    (docker/Dockerfile)")
        for line in IMAGE_INFO.read_text().splitlines():
            key, _, value = line.partition("=")
            click.echo(f"           {key}: {value}")


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
    from harness.frameworks.weights import REGISTRY, expected_checksum, source_text, weights_dir

    for spec in REGISTRY.values():
        present = (weights_dir() / spec.filename).exists()
        click.echo(
            f"{spec.key:20s} {spec.framework:8s} {'present' if present else 'absent':8s} "
            f"sha256={expected_checksum(spec) or 'not pinned'}\n{'':20s} {source_text(spec)}\n{'':20s} {spec.used_by}"
        )


@weights.command("fetch")
@click.argument("key")
@click.option("--dest", type=click.Path(file_okay=False, path_type=Path), default=None)
@click.option(
    "--sha256",
    default=None,
    help="Expected checksum of the downloaded file (verified; recommended). For yolov3-tiny.conv.15: "
    "yolov3-tiny.weights'.",
)
@click.option("--url", default=None, help="Mirror URL instead of the registry's (yolov3-tiny.conv.15: its source's).")
def weights_fetch(key: str, dest: Optional[Path], sha256: Optional[str], url: Optional[str]) -> None:
    """Download KEY (see `harness weights list`) and verify it.

    yolov3-tiny.conv.15 (YOLOv3-tiny's backbone, for `train yolov3-tiny --init-weights`) is not
    published: this downloads yolov3-tiny.weights and keeps its layers 0-14 with Darknet's own
    `darknet partial` (pjreddie's build), checking the result against the source byte for byte.
    """
    from harness.frameworks.weights import fetch

    try:
        path, digest, pinned = fetch(key, dest, sha256, url)
    except (KeyError, ValueError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{path}\nsha256 {digest}")
    if not pinned:
        click.secho(
            "no published checksum to verify against: recorded this one; later fetches must match it", fg="yellow"
        )


def rerun_in_docker(image: Optional[str], read_only: Sequence[Path], writable: Sequence[Path]) -> None:
    """``--runner docker``: this command line, without --runner/--image, through the docker runner
    (harness.runners.docker), which runs it in the image and exits with its status.

    Inputs are mounted read-only, the project folder and the working directory read-write, each at its
    own path; host-side HARNESS_* settings are not forwarded (they name host paths the image lacks).
    """
    from harness.runners.docker import DockerRunner
    from harness.runners.docker_argv import DockerUnavailableError

    argv = _drop_option(_drop_option(sys.argv[1:], "--runner"), "--image")
    try:
        status = DockerRunner().rerun(argv, image=image, read_only=list(read_only), writable=list(writable))
    except DockerUnavailableError as exc:
        raise click.ClickException(str(exc)) from None
    sys.exit(status)


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

"""``harness render ssd|yolov3|yolov3-tiny|table1``: write native model files from the templates."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import click

from harness import paper
from harness.data.options import DataOptions
from harness.options import DARKNET, DEVICE, run_options, ssd_net_options

# the framework whose files `render ssd` writes: the one the paper's SSD rows run on
SSD_FRAMEWORK = next(exp.framework for exp in paper.EXPERIMENTS if exp.renderer == "ssd")


def _csv_ints(ctx: click.Context, param: click.Parameter, value: Optional[str]) -> Optional[list[int]]:
    if value is None:
        return None
    try:
        return [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers, got {value!r}") from None


def _csv_floats(ctx: click.Context, param: click.Parameter, value: Optional[str]) -> Optional[list[float]]:
    if value is None:
        return None
    try:
        return [float(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise click.BadParameter(f"expected comma-separated numbers, got {value!r}") from None


def _report(title: str, files: dict[str, Path], notes: list[str]) -> None:
    click.echo(title)
    for role, path in files.items():
        click.echo(f"  {role:<9} {path}")
    for note in notes:
        click.echo(f"  note: {note}")


def _fail(exc: Exception) -> None:
    raise click.ClickException(str(exc)) from exc


@click.group()
def render() -> None:
    """Render native model files (Caffe prototxt, Darknet cfg) for the paper's networks."""


label_options = [
    click.option(
        "--labelmap",
        type=click.Path(dir_okay=False, path_type=Path),
        help="obj.names or labelmap.prototxt (default: the dataset's, else the paper's 15 labels).",
    ),
    click.option("--classes", type=int, help="Use N generic classes instead of a label map."),
    click.option(
        "--converted",
        "dataset",
        type=click.Path(exists=True, file_okay=False, path_type=Path, resolve_path=True),
        help="Converted dataset dir (`harness data convert --out`): paths and label map come from it.",
    ),
]


def _with(options):
    def decorate(func):
        for option in reversed(options):
            func = option(func)
        return func

    return decorate


@render.command("ssd")
@ssd_net_options
@click.option("--smin", type=float, default=0.2, show_default=True, help="Smallest default-box scale.")
@click.option("--smax", type=float, default=0.9, show_default=True, help="Largest default-box scale.")
@_with(label_options)
@click.option("--batch-size", type=int, default=paper.SSD_SOLVER["batch_size"], show_default=True)
@click.option("--test-batch-size", type=int, default=1, show_default=True)
@click.option(
    "--caffe-dialect",
    "dialect",
    type=click.Choice(["auto", "weiliu89", "brocolli"]),
    default="auto",
    show_default=True,
    help="caffe.proto flavour to write for (auto: the installed Caffe).",
)
@click.option("--train-lmdb", type=click.Path(path_type=Path))
@click.option("--test-lmdb", type=click.Path(path_type=Path))
@click.option("--name-size-file", type=click.Path(path_type=Path))
@click.option("--num-test-image", type=int, help="Test images (default: lines of the name-size file).")
@click.option("--detection-out-dir", type=click.Path(path_type=Path), help="Where DetectionOutput writes VOC files.")
@click.option("--snapshot-prefix", type=click.Path(path_type=Path))
@click.option("--base-lr", type=float)
@click.option("--momentum", type=float)
@click.option("--weight-decay", type=float)
@click.option("--gamma", type=float)
@click.option("--stepvalue", callback=_csv_ints, help="Comma-separated multistep iterations.")
@click.option("--max-iter", type=int)
@click.option("--test-iter", type=int)
@click.option("--test-interval", type=int)
@click.option("--snapshot", type=int)
@click.option("--display", type=int)
@DEVICE
@click.option("--random-seed", type=int)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Output dir (default rendered/ssd<size>_smin<smin>, plus the variant's tag, e.g. _w0.125_bn).",
)
def ssd_command(
    size: str,
    smin: float,
    smax: float,
    labelmap: Optional[Path],
    classes: Optional[int],
    dataset: Optional[Path],
    out: Optional[Path],
    test_iter: Optional[int],
    **kw: Any,
) -> None:
    """SSD300/SSD512 (VGG16), or a compact SSD (--size 160/192, --width, ...): train/test/deploy/solver/labelmap
    prototxts."""
    from harness.frameworks import resolve_framework_device
    from harness.render.priors import ssd_num_priors, ssd_prior_sizes
    from harness.render.ssd import SOLVER_KEYS, render_ssd, rendered_dialect, solver_mode, ssd_experiment_name

    solver = {key: kw.pop(key) for key in list(kw) if key in SOLVER_KEYS}
    device = resolve_framework_device(kw.pop("device"), SSD_FRAMEWORK)
    solver["solver_mode"] = solver_mode(device)
    out = out or Path("rendered") / ssd_experiment_name(int(size), smin, kw["variant"])
    try:
        choice = rendered_dialect(kw["dialect"])
        files = render_ssd(
            out,
            size=int(size),
            smin=smin,
            smax=smax,
            labelmap=labelmap,
            classes=classes,
            dataset=dataset,
            solver=solver,
            test_iter=test_iter,
            **{**kw, "dialect": choice.dialect},
        )
        min_sizes, max_sizes = ssd_prior_sizes(int(size), smin, smax)
    except (ValueError, FileNotFoundError) as exc:
        _fail(exc)
    _report(
        f"SSD{size} Smin {smin:g} Smax {smax:g} -> {out}",
        files,
        [
            f"caffe dialect: {choice.reason}",
            f"min_size {[round(v, 2) for v in min_sizes]}, max_size {[round(v, 2) for v in max_sizes]}",
            f"{ssd_num_priors(int(size), smin, smax)} default boxes",
            f"solver_mode {solver['solver_mode']} (device {device}{'; ' + device.reason if device.reason else ''})",
        ],
    )


def _yolo_command(model: str, default_size: int):
    @render.command(model)
    @click.option("--size", type=int, default=default_size, show_default=True, help="Input size, multiple of 32.")
    @_with(label_options)
    @click.option("--train-list", type=click.Path(dir_okay=False, path_type=Path))
    @click.option("--valid-list", type=click.Path(dir_okay=False, path_type=Path))
    @click.option("--backup-dir", type=click.Path(file_okay=False, path_type=Path))
    @click.option("--results-dir", type=click.Path(file_okay=False, path_type=Path))
    @click.option("--anchors", help="'auto' (k-means on the training labels), 'stock', or 'w,h, w,h, ...'.")
    @click.option(
        "--labels-dir", type=click.Path(file_okay=False, path_type=Path), help="YOLO txt labels for --anchors auto."
    )
    @click.option("--anchor-seed", type=int, default=0, show_default=True)
    @click.option("--batch", type=int)
    @click.option("--subdivisions", type=int)
    @click.option("--learning-rate", type=float)
    @click.option("--max-batches", type=int)
    @click.option("--steps", callback=_csv_ints, help="Comma-separated iterations.")
    @click.option("--scales", callback=_csv_floats, help="Comma-separated factors, one per step.")
    @click.option("--burn-in", type=int)
    @click.option("--momentum", type=float)
    @click.option("--decay", type=float)
    @click.option("--random", type=click.IntRange(0, 1), help="Multi-scale training (default 0).")
    @click.option("--thresh", type=float, help="[yolo] thresh (default 0.005).")
    @click.option(
        "--out", type=click.Path(file_okay=False, path_type=Path), help=f"Output dir (default rendered/{model}_<size>)."
    )
    @DARKNET
    def command(
        size: int,
        labelmap: Optional[Path],
        classes: Optional[int],
        dataset: Optional[Path],
        train_list: Optional[Path],
        valid_list: Optional[Path],
        backup_dir: Optional[Path],
        results_dir: Optional[Path],
        anchors: Optional[str],
        labels_dir: Optional[Path],
        anchor_seed: int,
        out: Optional[Path],
        darknet: str,
        **overrides: Any,
    ) -> None:
        from harness.render.yolo import render_yolo

        out = out or Path("rendered") / f"{model}_{size}"
        try:
            files = render_yolo(
                out,
                model=model,
                size=size,
                labelmap=labelmap,
                classes=classes,
                dataset=dataset,
                train_list=train_list,
                valid_list=valid_list,
                backup_dir=backup_dir,
                results_dir=results_dir,
                anchors=anchors,
                labels_dir=labels_dir,
                anchor_seed=anchor_seed,
                overrides=overrides,
                darknet=darknet,
            )
        except (ValueError, FileNotFoundError) as exc:
            _fail(exc)
        first_line = files["cfg"].read_text().splitlines()[1].lstrip("# ")
        _report(f"{model} {size}x{size} -> {out}", files, [first_line])

    command.help = f"{model}: Darknet .cfg, obj.data and obj.names."
    return command


yolov3_command = _yolo_command("yolov3", 416)
yolov3_tiny_command = _yolo_command("yolov3-tiny", 416)


@render.command("table1")
@run_options
@click.option("--only", multiple=True, help="Render only these experiments (repeatable).")
@click.option("--learning-check/--no-learning-check", default=True, show_default=True)
def table1_command(
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
    learning_check: bool,
    data_options: DataOptions,
) -> None:
    """Render exactly the files `harness reproduce table1` (same options) trains, into the same
    run folder (PROJECT/NAME/models/<experiment>/rendered), without training."""
    from harness.core.profiles import profile as get_profile
    from harness.engine.experiment import render_experiment
    from harness.engine.reproduce import checked_only, table1_configs
    from harness.engine.run import RunSettings, check_run, plan_all, record_and_prepare

    only_valid = checked_only(get_profile(profile_name), only)
    settings = RunSettings(
        project / (name or f"table1-{profile_name}"),
        get_profile(profile_name),
        seed,
        data,
        classification,
        device,
        darknet=darknet,
        data_options=data_options,
    )
    configs = table1_configs(settings, only_valid, learning_check=learning_check)
    settings = settings.sized(configs)
    check_run(settings, overwrite)
    plan_all(configs, overwrite)
    prepared = record_and_prepare(settings, configs)
    for config in configs:
        try:
            files = render_experiment(config, prepared)
        except (ValueError, FileNotFoundError) as exc:
            _fail(exc)
        click.echo(f"{config.name:<32} {config.device}  {', '.join(sorted(p.name for p in files.values()))}")
    click.echo(f"{len(configs)} experiments rendered into {settings.run_dir / 'models'}")

"""The option vocabulary shared by ``render``, ``train`` and ``reproduce``: same names, same defaults.

Every path option is resolved here, at the CLI boundary (``resolve_path=True``), against the
caller's working directory; nothing downstream sees a relative user path.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path
from typing import Callable, Optional

import click

from harness.core.profiles import PROFILES
from harness.data.options import DataOptions
from harness.device import CHOICES as DEVICE_CHOICES
from harness.device import Device
from harness.frameworks.darknet import DEFAULT_FORK as DEFAULT_DARKNET
from harness.frameworks.darknet import FORKS as DARKNET_FORKS
from harness.render.priors import COMPACT_SSD_SIZES, SSD_SIZES
from harness.runners import runner_names


def _device(ctx: click.Context, param: click.Parameter, value: str) -> str:
    if value.strip().lower() != "auto":
        try:
            Device.parse(value)
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from None
    return value


def existing_dir(**kwargs) -> click.Path:
    return click.Path(exists=True, file_okay=False, path_type=Path, resolve_path=True, **kwargs)


PROFILE = click.option(
    "--profile",
    "profile_name",
    type=click.Choice(sorted(PROFILES)),
    default="paper",
    show_default=True,
    help="paper: the paper's hyperparameters (GPU work); smoke: few iterations, checks the pipeline; "
    "cpu: a schedule that learns on a 2-core CPU (YOLOv3-tiny; SSD with --size 160 --width 0.125 --batch-norm). "
    "--iterations scales any.",
)
DATA = click.option(
    "--data",
    type=existing_dir(),
    default=None,
    help="VOC root (Annotations/, JPEGImages/, ImageSets/Main/ optional). Default: the embedded synthetic set.",
)
CLASSIFICATION = click.option(
    "--classification",
    type=existing_dir(),
    default=None,
    help="VOC root of single-object images for the Fig 10 classification test.",
)
NAME = click.option("--name", default=None, help="Run name: results go to PROJECT/NAME.")
PROJECT = click.option(
    "--project",
    type=click.Path(file_okay=False, path_type=Path, resolve_path=True),
    default="runs",
    show_default=True,
    help="Folder that holds the runs.",
)
SEED = click.option(
    "--seed",
    type=int,
    default=0,
    show_default=True,
    help="Seed of the synthetic set, the split and Caffe's solver (random_seed).",
)
DEVICE = click.option(
    "--device",
    default="auto",
    show_default=True,
    callback=_device,
    help=f"{DEVICE_CHOICES}; auto: the GPU when one is visible and the framework build uses "
    "CUDA, else the CPU (the choice is printed).",
)
DARKNET = click.option(
    "--darknet",
    type=click.Choice(DARKNET_FORKS),
    default=DEFAULT_DARKNET,
    show_default=True,
    help="Which Darknet renders, trains and runs the YOLO models: pjreddie (the paper's, "
    "Debian's 2018-09 source; the default, also for `reproduce table1`) or alexeyab "
    "(AlexeyAB's fork at the pinned commit; `install_darknet.sh --fork alexeyab`).",
)
DARKNET_RUN = click.option(
    "--darknet",
    type=click.Choice(DARKNET_FORKS),
    default=None,
    help="Run a Darknet model with this Darknet (pjreddie or alexeyab); default: the one "
    "it was trained with (its config.json).",
)
OVERWRITE = click.option(
    "--overwrite", is_flag=True, help="Retrain experiments that already finished (default: reuse them)."
)


def _input_file() -> click.Path:
    return click.Path(exists=True, dir_okay=False, path_type=Path, resolve_path=True)


# What a conversion may fix or accept in a VOC root: one vocabulary for every verb that reads one
# (data convert, train, reproduce, render table1); the error messages of the data stage name them.
CLASS_MAP = click.option(
    "--class-map",
    type=_input_file(),
    default=None,
    help="File of 'old: new' lines ('name: <drop>' removes those objects), applied before anything else.",
)
LABELMAP = click.option(
    "--labelmap",
    type=_input_file(),
    default=None,
    help="obj.names or labelmap.prototxt: the classes and their order. Default: inferred from the data.",
)


def _class_roles(ctx: click.Context, param: click.Parameter, value: Optional[Path]) -> Optional[Path]:
    """--classes read once at the boundary: a table that does not load is a usage error naming it
    (whether it covers the model's classes is known once the data is read: harness.engine.run)."""
    from harness.class_roles import ClassRolesError, load_roles

    if value is None:
        return None
    try:
        load_roles(value)
    except ClassRolesError as exc:
        raise click.BadParameter(str(exc)) from None
    return value


CLASSES = click.option(
    "--classes",
    "class_roles",
    type=_input_file(),
    default=None,
    callback=_class_roles,
    help="Class-roles table (JSON, docs/count.md) giving every class of the model a role; checked "
    "against the model's classes before training, then copied to MODEL_DIR/class_roles.json, "
    "which `harness count MODEL_DIR` uses without --classes.",
)
DATA_OPTIONS = (
    CLASS_MAP,
    LABELMAP,
    click.option(
        "--dedupe", is_flag=True, help="Drop each test image that has a twin (exact or near duplicate) in train."
    ),
    click.option("--allow-leakage", is_flag=True, help="Go on even when test images have a twin in train."),
    click.option(
        "--allow-suspect-classes",
        is_flag=True,
        help="Go on even when class names look like typos of each other (no --labelmap given).",
    ),
)
DATA_OPTION_NAMES = tuple(f.name for f in dataclasses.fields(DataOptions))  # the click parameter names


def parse_class_map(path: Optional[Path]):
    """--class-map read once at the boundary: a file that does not parse is a usage error naming it."""
    from harness.data.classnames import read_class_map

    try:
        return None if path is None else read_class_map(path)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--class-map") from None


def parse_labelmap(path: Optional[Path]):
    """--labelmap read once at the boundary (obj.names or labelmap.prototxt)."""
    from harness.labels import LabelMap

    try:
        return None if path is None else LabelMap.from_file(path)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--labelmap") from None


def _checked_data_options(values: dict) -> DataOptions:
    """The five values as one DataOptions, the two files checked before any work starts."""
    parse_class_map(values["class_map"])
    parse_labelmap(values["labelmap"])
    try:
        return DataOptions(**values)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None


def data_options(func: Callable) -> Callable:
    """Adds the data options; the verb receives them as one ``data_options: DataOptions``."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        kwargs["data_options"] = _checked_data_options({key: kwargs.pop(key) for key in DATA_OPTION_NAMES})
        return func(*args, **kwargs)

    for option in reversed(DATA_OPTIONS):
        wrapper = option(wrapper)
    return wrapper


def run_options(func: Callable) -> Callable:
    """The options every multi-step verb takes, in --help order (the data options as ``data_options``)."""
    func = data_options(func)
    for option in reversed((PROFILE, DATA, CLASSIFICATION, NAME, PROJECT, SEED, DEVICE, DARKNET, OVERWRITE)):
        func = option(func)
    return func


SSD_NET_KEYS = ("width", "batch_norm", "crop_sampling", "expansion", "distortion")  # harness.render.ssd.NetVariant
SSD_NET_OPTIONS = (
    click.option(
        "--size",
        type=click.Choice([str(s) for s in sorted(SSD_SIZES + COMPACT_SSD_SIZES)]),
        default="300",
        show_default=True,
        help=f"Input size: {' or '.join(map(str, SSD_SIZES))} (the SSD paper's nets), or "
        f"{' or '.join(map(str, COMPACT_SSD_SIZES))} (a compact SSD: SSD300's first five source layers, "
        "docs/rendering.md).",
    ),
    click.option(
        "--width",
        type=click.FloatRange(min=0, min_open=True, max=1),
        default=1.0,
        show_default=True,
        help="VGG16 channel multiplier (base, fc6/fc7 and extra layers; 0.125: 8...64 channels). "
        "Below 1 the net is no longer SSD's VGG16 and cannot start from its ImageNet weights.",
    ),
    click.option(
        "--batch-norm/--no-batch-norm",
        default=False,
        show_default=True,
        help="BatchNorm + Scale after every base and extra convolution (from-scratch training).",
    ),
    click.option(
        "--crop-sampling/--no-crop-sampling",
        default=True,
        show_default=True,
        help="SSD's 6 random-crop batch samplers in the train data layer (off: whole image and mirroring).",
    ),
    click.option("--expansion/--no-expansion", default=True, show_default=True, help="SSD's zoom-out expand_param."),
    click.option(
        "--distortion/--no-distortion", default=True, show_default=True, help="SSD's photometric distort_param."
    ),
)


def ssd_net_options(func: Callable) -> Callable:
    """--size and the SSD body variant (docs/rendering.md, "Compact SSD"); the verb receives the
    variant as one ``variant: harness.render.ssd.NetVariant`` (the defaults: SSD300/512 as published)."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        from harness.render.ssd import NetVariant

        kwargs["variant"] = NetVariant(**{key: kwargs.pop(key) for key in SSD_NET_KEYS})
        return func(*args, **kwargs)

    for option in reversed(SSD_NET_OPTIONS):
        wrapper = option(wrapper)
    return wrapper


SLURM_KEYS = ("partition", "time", "cpus_per_task", "mem", "gres", "max_parallel", "extra", "wait")


def runner_options(func: Callable) -> Callable:
    """``--runner`` and each runner's own options; collected into ``runner_opts`` by the verb."""
    options = (
        click.option(
            "--runner",
            type=click.Choice(runner_names()),
            default="local",
            show_default=True,
            help="local: here, one experiment after another (reproduce: --jobs N at once); docker: this command inside the harness "
            "GPU image; slurm: one sbatch job-array task per experiment plus a report job.",
        ),
        click.option("--image", default=None, help="Docker image for --runner docker."),
        click.option("--partition", default=None, help="slurm: sbatch --partition."),
        click.option("--time", "time", default=None, help="slurm: sbatch --time per task, e.g. 2-00:00:00."),
        click.option("--cpus-per-task", type=int, default=None, help="slurm: sbatch --cpus-per-task."),
        click.option("--mem", default=None, help="slurm: sbatch --mem per task, e.g. 32G."),
        click.option("--gres", default=None, help="slurm: sbatch --gres per task, e.g. gpu:1."),
        click.option("--max-parallel", type=int, default=None, help="slurm: at most K tasks at once (--array=0-N%K)."),
        click.option(
            "--sbatch-arg",
            "extra",
            multiple=True,
            help="slurm: extra sbatch flag (repeatable), e.g. --sbatch-arg=--account=lab.",
        ),
        click.option(
            "--wait",
            is_flag=True,
            help="slurm: block with a live table until the jobs end; exit 1 if any experiment failed.",
        ),
    )
    for option in reversed(options):
        func = option(func)
    return func


def pop_slurm_options(kwargs: dict) -> dict:
    """The slurm options out of a verb's keyword arguments (they are runner settings, not run ones)."""
    return {key: kwargs.pop(key) for key in SLURM_KEYS if key in kwargs}

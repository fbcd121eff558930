"""Render Caffe-SSD nets (train/test/deploy), solver and label map from ``prototxt_templates/``.

Everything that differs between the paper's experiments (input size, Smin/Smax, label map, solver
values, dataset paths) is a parameter; the network structure itself lives in the templates.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Optional, Union

from harness import paper
from harness.labels import LabelMap
from harness.paths import PROTOTXT_TEMPLATES
from harness.render.dialect import DialectChoice, detect_dialect
from harness.render.priors import ssd_num_priors, ssd_prior_sizes, ssd_source_layers
from harness.render.templating import absolute, check_prototxt_string, environment, header, render_to

PathLike = Union[str, Path]

# Where the data stage puts Caffe inputs inside a converted dataset (docs/architecture.md).
DATASET_TRAIN_LMDB = "caffe/train_lmdb"
DATASET_TEST_LMDB = "caffe/test_lmdb"
DATASET_LABELMAP = "caffe/labelmap.prototxt"
DATASET_NAME_SIZE = "caffe/test_name_size.txt"
# Relative placeholders used when no dataset is named: resolved against Caffe's working directory.
PLACEHOLDER_DATASET = Path("data")
PAPER_TEST_IMAGES = paper.PAPER_DETECTION_TEST_IMAGES  # used only when nothing else is known

DETECTION = {
    "nms_threshold": 0.45,
    "top_k": 400,
    "keep_top_k": 200,
    "confidence_threshold": 0.01,
    "output_name_prefix": "comp4_det_test_",
}
TRAIN_DATA_LAYER = "data"
TEST_DATA_LAYER = "test_data"  # distinct from the train layer: brocolli deadlocks on equal (name, source)

SOLVER_KEYS = (
    "type",
    "base_lr",
    "momentum",
    "weight_decay",
    "lr_policy",
    "gamma",
    "stepvalue",
    "max_iter",
    "test_interval",
    "test_iter",
    "snapshot",
    "snapshot_prefix",
    "display",
    "average_loss",
    "iter_size",
    "solver_mode",
    "random_seed",
    "ap_version",
)


@dataclass(frozen=True)
class ExtraLayer:
    """A convolution SSD appends after fc7 (1x1 bottleneck then strided 3x3)."""

    name: str
    num_output: int
    kernel_size: int
    pad: int
    stride: int


def _extra(index: int, channels: int, stride: int, pad: int, kernel: int = 3) -> list[ExtraLayer]:
    return [
        ExtraLayer(f"conv{index}_1", channels // 2, 1, 0, 1),
        ExtraLayer(f"conv{index}_2", channels, kernel, pad, stride),
    ]


EXTRA_LAYERS = {
    300: _extra(6, 512, 2, 1) + _extra(7, 256, 2, 1) + _extra(8, 256, 1, 0) + _extra(9, 256, 1, 0),
    512: _extra(6, 512, 2, 1)
    + _extra(7, 256, 2, 1)
    + _extra(8, 256, 2, 1)
    + _extra(9, 256, 2, 1)
    + _extra(10, 256, 1, 1, kernel=4),
}
# Compact learning-check SSD (160/192, priors.compact_source_layers): SSD300's extras without conv9.
COMPACT_EXTRA_LAYERS = _extra(6, 512, 2, 1) + _extra(7, 256, 2, 1) + _extra(8, 256, 1, 0)
VGG_BLOCKS = ((1, 2, 64), (2, 2, 128), (3, 3, 256), (4, 3, 512), (5, 3, 512))  # (block, convs, channels)
FC_CHANNELS = 1024
BN_MOVING_AVERAGE_FRACTION = 0.95  # Caffe's default 0.999 averages over ~1000 iterations: too slow for short runs


@dataclass(frozen=True)
class NetVariant:
    """How a rendered SSD differs from SSD300/512: a channel width multiplier, BatchNorm after
    every base/extra convolution, and optionally no random-crop sampling, zoom-out expansion or
    photometric distortion
    (from-scratch training on CPU needs these to learn in minutes). ``NetVariant()`` is SSD300/512 exactly."""

    width: float = 1.0
    batch_norm: bool = False
    crop_sampling: bool = True  # SSD's 6 random-crop batch samplers in the train data layer
    expansion: bool = True  # SSD's zoom-out expand_param (weiliu89 dialect)
    distortion: bool = True  # SSD's photometric distort_param (weiliu89 dialect)

    def channels(self, full: int) -> int:
        return max(1, round(full * self.width))

    def describe(self) -> str:
        parts = [f"VGG width x{self.width:g}"] if self.width != 1.0 else []
        parts += ["BatchNorm"] if self.batch_norm else []
        parts += [] if self.crop_sampling else ["no random-crop sampling"]
        parts += [] if self.expansion else ["no zoom-out expansion"]
        return ", ".join(parts + ([] if self.distortion else ["no photometric distortion"]))

    def name_tag(self) -> str:
        """The variant in an experiment name (``_w0.125_bn_nocrop``), so results of a compact SSD
        can never be read as SSD300's; empty for SSD300/512 as published."""
        parts = [f"w{self.width:g}"] if self.width != 1.0 else []
        parts += ["bn"] if self.batch_norm else []
        parts += [] if self.crop_sampling else ["nocrop"]
        parts += [] if self.expansion else ["noexpand"]
        parts += [] if self.distortion else ["nodistort"]
        return "".join(f"_{part}" for part in parts)

    def options(self) -> dict[str, Any]:
        """The Caffe backend's ``framework_options["network"]``: every field when any differs from
        SSD300, else {} (what a paper-model config has always recorded)."""
        return asdict(self) if self != NetVariant() else {}


def ssd_experiment_name(size: int, smin: float, variant: NetVariant = NetVariant()) -> str:
    """``ssd300_smin0.2`` for the paper's nets; a variant adds its tag (``ssd160_smin0.1_w0.125_bn``)."""
    return f"ssd{size}_smin{smin:g}{variant.name_tag()}"


def extra_layers(size: int, variant: NetVariant) -> list[ExtraLayer]:
    layers = EXTRA_LAYERS.get(size, COMPACT_EXTRA_LAYERS)
    return [ExtraLayer(e.name, variant.channels(e.num_output), e.kernel_size, e.pad, e.stride) for e in layers]


@dataclass(frozen=True)
class PriorLayer:
    """A source layer with its rendered PriorBox sizes (what the templates iterate over)."""

    name: str
    step: float  # pixels between prior centres (SourceLayer.step; input / feature side)
    aspect_ratios: tuple[float, ...]
    priors_per_location: int
    min_size: float
    max_size: float


def prior_layers(size: int, smin: float, smax: float) -> list[PriorLayer]:
    """Source layers joined with their min/max sizes from the Smin/Smax rule."""
    min_sizes, max_sizes = ssd_prior_sizes(size, smin, smax)
    return [
        PriorLayer(s.name, s.step, s.aspect_ratios, s.priors_per_location, lo, hi)
        for s, lo, hi in zip(ssd_source_layers(size), min_sizes, max_sizes)
    ]


def solver_mode(device: Any) -> str:
    """The solver's ``solver_mode`` for a :class:`harness.device.Device` (``--gpu N`` picks the card)."""
    return "GPU" if device.gpu else "CPU"


def resolve_labelmap(
    labelmap: Union[LabelMap, PathLike, None],
    classes: Optional[int] = None,
    dataset: Optional[PathLike] = None,
    dataset_labelmap: str = DATASET_LABELMAP,
) -> LabelMap:
    """Label map from an object, a file, a class count, the dataset, or the paper's 15 labels."""
    if labelmap is not None and classes is not None:
        raise ValueError("give either a label map or a class count, not both")
    if isinstance(labelmap, LabelMap):
        return labelmap
    if labelmap is not None:
        return LabelMap.from_file(labelmap)
    if classes is not None:
        if classes < 1:
            raise ValueError(f"class count must be at least 1, got {classes}")
        return LabelMap.from_names(f"class{i}" for i in range(classes))
    if dataset is not None and (Path(dataset) / dataset_labelmap).is_file():
        return LabelMap.from_file(Path(dataset) / dataset_labelmap)
    return LabelMap.paper()


def _count_lines(path: Path) -> Optional[int]:
    try:
        return sum(1 for line in path.read_text().splitlines() if line.strip())
    except OSError:
        return None


def _solver_values(
    solver: Optional[dict], test_iter: Optional[int], num_test_image: int, test_batch_size: int, snapshot_prefix: str
) -> dict[str, Any]:
    """Paper values, then harness defaults, then the caller's overrides (unknown keys refused)."""
    values: dict[str, Any] = {k: v for k, v in paper.SSD_SOLVER.items() if k != "batch_size"}
    values.update(paper.SSD_HARNESS_SOLVER)
    values.update(
        {"solver_mode": "CPU", "random_seed": None, "ap_version": "11point", "snapshot_prefix": snapshot_prefix}
    )
    unknown = set(solver or {}) - set(SOLVER_KEYS)
    if unknown:
        raise ValueError(f"unknown solver setting(s) {sorted(unknown)}; known: {', '.join(SOLVER_KEYS)}")
    values.update({k: v for k, v in (solver or {}).items() if v is not None})
    if test_iter is not None:
        values["test_iter"] = test_iter
    if values.get("test_iter") is None:
        values["test_iter"] = -(-num_test_image // test_batch_size)
    values["stepvalue"] = [int(s) for s in values["stepvalue"]]
    if values["stepvalue"] != sorted(values["stepvalue"]):
        raise ValueError(f"stepvalue must increase, got {values['stepvalue']}")
    if str(values["solver_mode"]).upper() not in ("CPU", "GPU"):
        raise ValueError(f"solver_mode must be CPU or GPU, got {values['solver_mode']!r}")
    values["solver_mode"] = str(values["solver_mode"]).upper()
    for key in ("max_iter", "test_iter", "test_interval", "snapshot", "display"):
        if int(values[key]) < 1 and not (key == "snapshot" and int(values[key]) == 0):
            raise ValueError(f"solver {key} must be positive, got {values[key]}")
    return values


def render_ssd(
    out_dir: PathLike,
    *,
    size: int = 300,
    smin: float = 0.2,
    smax: float = 0.9,
    labelmap: Union[LabelMap, PathLike, None] = None,
    classes: Optional[int] = None,
    batch_size: int = paper.SSD_SOLVER["batch_size"],
    test_batch_size: int = 1,
    dialect: str = "auto",
    dataset: Optional[PathLike] = None,
    train_lmdb: Optional[PathLike] = None,
    test_lmdb: Optional[PathLike] = None,
    name_size_file: Optional[PathLike] = None,
    num_test_image: Optional[int] = None,
    detection_out_dir: Optional[PathLike] = None,
    snapshot_prefix: Optional[PathLike] = None,
    solver: Optional[dict] = None,
    test_iter: Optional[int] = None,
    variant: NetVariant = NetVariant(),
) -> dict[str, Path]:
    """Write train/test/deploy/solver/labelmap prototxts into ``out_dir``; return them by role.

    Dataset paths default to ``dataset``'s converted layout, or to relative ``data/caffe/...``
    placeholders when no dataset is named. ``solver`` overrides any of ``SOLVER_KEYS``; ``test_iter``
    defaults to ceil(test images / test_batch_size). ``variant`` (width, BatchNorm) is for the
    compact learning-check SSD; the default renders SSD300/512 as published. Returns keys ``train``, ``test``, ``deploy``,
    ``solver``, ``labelmap``.
    """
    out = Path(out_dir).resolve()
    layers = prior_layers(size, smin, smax)
    if batch_size < 1 or test_batch_size < 1:
        raise ValueError(
            f"batch sizes must be positive, got batch_size={batch_size}, test_batch_size={test_batch_size}"
        )
    choice = detect_dialect(dialect)
    labels = resolve_labelmap(labelmap, classes, dataset)
    base = absolute(dataset) if dataset is not None else PLACEHOLDER_DATASET
    paths = {
        "train_lmdb": absolute(train_lmdb) if train_lmdb is not None else base / DATASET_TRAIN_LMDB,
        "test_lmdb": absolute(test_lmdb) if test_lmdb is not None else base / DATASET_TEST_LMDB,
        "name_size_file": absolute(name_size_file) if name_size_file is not None else base / DATASET_NAME_SIZE,
        "detection_out_dir": absolute(detection_out_dir) if detection_out_dir is not None else out / "detections",
        "snapshot_prefix": (
            absolute(snapshot_prefix) if snapshot_prefix is not None else out / "snapshots" / f"ssd{size}"
        ),
        "label_map_file": out / "labelmap.prototxt",
    }
    for what, path in paths.items():
        check_prototxt_string(path, what)
    if num_test_image is None:
        num_test_image = _count_lines(out / paths["name_size_file"]) or PAPER_TEST_IMAGES
    solver_values = _solver_values(solver, test_iter, num_test_image, test_batch_size, str(paths["snapshot_prefix"]))
    deviation = variant.describe()
    context = {
        "header": header(
            f"SSD{size} Smin {smin} Smax {smax}, {len(labels)} classes + background, "
            f"caffe dialect {choice.dialect}" + (f"; NOT SSD300: {deviation}" if deviation else "")
        ),
        "net_name": f"VGG_SSD_{size}x{size}",
        "size": size,
        "dialect": choice.dialect,
        "num_classes": len(labels) + 1,
        "names": labels.names,
        "source_layers": layers,
        "extra_layers": extra_layers(size, variant),
        "vgg_blocks": [(block, convs, variant.channels(ch)) for block, convs, ch in VGG_BLOCKS],
        "fc_channels": variant.channels(FC_CHANNELS),
        "batch_norm": {"moving_average_fraction": BN_MOVING_AVERAGE_FRACTION} if variant.batch_norm else None,
        "crop_sampling": variant.crop_sampling,
        "expansion": variant.expansion,
        "distortion": variant.distortion,
        "num_priors": ssd_num_priors(size, smin, smax),
        "batch_size": batch_size,
        "test_batch_size": test_batch_size,
        "num_test_image": num_test_image,
        "detection": DETECTION,
        "train_data_layer": TRAIN_DATA_LAYER,
        "test_data_layer": TEST_DATA_LAYER,
        "train_net": str(out / "train.prototxt"),
        "test_net": str(out / "test.prototxt"),
        "solver": solver_values,
        **{k: str(v) for k, v in paths.items()},
    }
    env = environment(PROTOTXT_TEMPLATES)
    written = {
        "train": render_to(env, "ssd_train.prototxt.j2", out / "train.prototxt", context),
        "test": render_to(env, "ssd_test.prototxt.j2", out / "test.prototxt", context),
        "deploy": render_to(env, "ssd_deploy.prototxt.j2", out / "deploy.prototxt", context),
        "solver": render_to(env, "ssd_solver.prototxt.j2", out / "solver.prototxt", context),
        "labelmap": render_to(env, "labelmap.prototxt.j2", out / "labelmap.prototxt", context),
    }
    # Caffe aborts when it cannot write a snapshot or detection file: create the directories now.
    Path(paths["snapshot_prefix"]).parent.mkdir(parents=True, exist_ok=True)
    Path(paths["detection_out_dir"]).mkdir(parents=True, exist_ok=True)
    return written


def rendered_dialect(dialect: str = "auto") -> DialectChoice:
    """The dialect ``render_ssd(dialect=...)`` will use, with the reason (for CLI/report messages)."""
    return detect_dialect(dialect)

"""Render Darknet YOLOv3 / YOLOv3-tiny ``.cfg``, ``obj.data`` and ``obj.names`` from ``cfg_templates/``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional, Union

from harness import paper
from harness.labels import LabelMap
from harness.paths import CFG_TEMPLATES
from harness.render.anchors import (
    YOLOV3_ANCHORS,
    YOLOV3_TINY_ANCHORS,
    anchors_for_size,
    kmeans_anchors,
    label_files,
    parse_anchors,
    read_label_boxes,
)
from harness.render.ssd import resolve_labelmap
from harness.render.templating import absolute, check_no_spaces, environment, header, render_to

PathLike = Union[str, Path]
MODELS = {"yolov3": (3, YOLOV3_ANCHORS), "yolov3-tiny": (2, YOLOV3_TINY_ANCHORS)}  # scales, stock anchors
PLACEHOLDER_DATASET = Path("data")
# Darknet's valid writes detections at threshold 0.005; OpenCV drops class scores <= thresh (default 0.2),
# so the same value in [yolo] makes the two agree (see shared notes on darknet).
YOLO_LAYER = {"jitter": 0.3, "ignore_thresh": 0.7, "truth_thresh": 1, "random": 0, "thresh": 0.005}
NET_KEYS = tuple(paper.YOLO_NET) + tuple(paper.YOLO_STOCK_NET)


def _net_values(overrides: dict[str, Any]) -> dict[str, Any]:
    net = {**paper.YOLO_NET, **paper.YOLO_STOCK_NET}
    net.update({k: v for k, v in overrides.items() if k in net and v is not None})
    for key in ("steps", "scales"):
        if isinstance(net[key], str):
            net[key] = [float(v) if key == "scales" else int(v) for v in net[key].split(",") if v.strip()]
    if len(net["steps"]) != len(net["scales"]):
        raise ValueError(f"steps {net['steps']} and scales {net['scales']} must have the same length")
    if net["batch"] % net["subdivisions"]:
        raise ValueError(f"batch {net['batch']} must be a multiple of subdivisions {net['subdivisions']}")
    return net


def _split_overrides(overrides: Optional[dict]) -> tuple[dict, dict]:
    overrides = dict(overrides or {})
    unknown = set(overrides) - set(NET_KEYS) - set(YOLO_LAYER)
    if unknown:
        raise ValueError(f"unknown cfg setting(s) {sorted(unknown)}; known: {', '.join(NET_KEYS + tuple(YOLO_LAYER))}")
    layer = {**YOLO_LAYER, **{k: v for k, v in overrides.items() if k in YOLO_LAYER and v is not None}}
    return _net_values(overrides), layer


def resolve_anchors(
    model: str,
    size: int,
    anchors: Union[str, Sequence[int], None] = None,
    *,
    labels_dir: Optional[PathLike] = None,
    train_list: Optional[PathLike] = None,
    seed: int = 0,
    base_dir: Optional[PathLike] = None,
) -> tuple[tuple[int, ...], str]:
    """Anchors and a sentence saying where they came from (stock, given, or k-means on the labels)."""
    scales, stock = MODELS[model]
    count = 3 * scales
    if anchors is None or anchors == "stock":
        return stock, f"stock {model} anchors"
    if anchors == "auto":
        boxes = read_label_boxes(label_files(labels_dir, train_list, base_dir))
        centroids = kmeans_anchors(boxes.wh, count, seed=seed)
        skipped = ", ".join(f"{n} {why}" for why, n in boxes.skipped.items() if n) or "none skipped"
        return anchors_for_size(centroids, size), (
            f"k-means (IoU distance, seed {seed}) on {len(boxes.wh)} boxes "
            f"from {boxes.files} label files ({skipped}), scaled to {size}"
        )
    return parse_anchors(anchors, count), "given anchors"


def render_yolo(
    out_dir: PathLike,
    *,
    model: str = "yolov3",
    size: int = 416,
    labelmap: Union[LabelMap, PathLike, None] = None,
    classes: Optional[int] = None,
    dataset: Optional[PathLike] = None,
    train_list: Optional[PathLike] = None,
    valid_list: Optional[PathLike] = None,
    backup_dir: Optional[PathLike] = None,
    results_dir: Optional[PathLike] = None,
    anchors: Union[str, Sequence[int], None] = None,
    labels_dir: Optional[PathLike] = None,
    anchor_seed: int = 0,
    overrides: Optional[dict] = None,
    darknet: str = "pjreddie",
) -> dict[str, Path]:
    """Write ``<model>.cfg``, ``obj.data`` and ``obj.names`` into ``out_dir`` (keys cfg, data, names).

    ``anchors``: None/"stock", an explicit list or "w,h, w,h, ..." string, or "auto" (k-means over
    ``labels_dir`` or the labels of ``train_list``). ``overrides``: [net] keys (batch, subdivisions,
    learning_rate, max_batches, steps, scales, burn_in, ...) and [yolo] keys (random, thresh, ...).
    ``darknet``: the Darknet that will read the cfg; ``alexeyab`` adds ``letter_box=1`` to [net] so its
    inference letterboxes as pjreddie's does (pjreddie only warns "Unused field").
    """
    if model not in MODELS:
        raise ValueError(f"unknown YOLO model {model!r}; choose one of {', '.join(MODELS)}")
    if size <= 0 or size % 32:
        raise ValueError(f"YOLO input size must be a positive multiple of 32, got {size}")
    out = Path(out_dir).resolve()
    labels = resolve_labelmap(labelmap, classes, dataset, dataset_labelmap="darknet/obj.names")
    net, yolo_layer = _split_overrides(overrides)
    base = absolute(dataset) if dataset is not None else PLACEHOLDER_DATASET
    paths = {
        "train": absolute(train_list) if train_list is not None else base / "darknet/train.txt",
        "valid": absolute(valid_list) if valid_list is not None else base / "darknet/valid.txt",
        "names": out / "obj.names",
        "backup": absolute(backup_dir) if backup_dir is not None else out / "backup",
        "results": absolute(results_dir) if results_dir is not None else out / "results",
    }
    for what, path in paths.items():
        check_no_spaces(path, what)
    if anchors == "auto" and labels_dir is None and train_list is None and dataset is None:
        raise ValueError("--anchors auto needs the training labels: give labels_dir, train_list or dataset")
    # k-means sees only the training split: the images Darknet trains on (never the test labels)
    anchor_values, anchor_source = resolve_anchors(
        model,
        size,
        anchors,
        labels_dir=labels_dir,
        train_list=None if labels_dir else out / paths["train"],
        seed=anchor_seed,
        base_dir=out,
    )
    context = {
        "header": header(f"{model} {size}x{size}, {len(labels)} classes, anchors: {anchor_source}"),
        "size": size,
        "net": net,
        "yolo_layer": yolo_layer,
        "classes": len(labels),
        "filters": (len(labels) + 5) * 3,
        "anchors": anchor_values,
        "names": labels.names,
        "train_list": paths["train"],
        "valid_list": paths["valid"],
        "names_file": paths["names"],
        "backup_dir": paths["backup"],
        "results_dir": paths["results"],
        "darknet": darknet,
    }
    env = environment(CFG_TEMPLATES)
    written = {
        "cfg": render_to(env, f"{model}.cfg.j2", out / f"{model}.cfg", context),
        "data": render_to(env, "obj.data.j2", out / "obj.data", context),
        "names": render_to(env, "obj.names.j2", out / "obj.names", context),
    }
    # Darknet segfaults without the results dir and silently saves nothing without the backup dir.
    (out / paths["backup"]).mkdir(parents=True, exist_ok=True)
    (out / paths["results"]).mkdir(parents=True, exist_ok=True)
    return written

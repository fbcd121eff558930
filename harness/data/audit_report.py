"""The dataset report: ``dataset_report.html`` + ``dataset.json`` + PNGs from a ``DatasetAudit``.

What a detector must cover is drawn next to what it is given: the box-size scatter carries the
SSD default-box shapes (Smin/Smax rule of ``harness.render.priors``) and the stock YOLO anchors,
both as a fraction of the image (SSD and Darknet resize the whole image to the network input).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

import harness
from harness.core.atomic import save_figure, write_text
from harness.data.audit import DatasetAudit
from harness.data.fingerprint import NEAR_DUPLICATE_BITS
from harness.data.report import ACTIONS

REPORT_HTML = "dataset_report.html"
REPORT_JSON = "dataset.json"
DPI = 100
SSD_SHOWN = ((300, 0.1, 0.9), (300, 0.2, 0.9))  # the paper's SSD300 settings
YOLO_SHOWN = (("yolov3", 416), ("yolov3-tiny", 416))


def write_dataset_report(audit: DatasetAudit, out_dir: Path) -> dict[str, Path]:
    """Write the JSON record, the figures and the HTML page; returns them by key."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stats = dataset_statistics(audit)
    written = {"json": out_dir / REPORT_JSON}
    write_text(written["json"], json.dumps({**audit.to_dict(), "statistics": stats}, indent=1, default=str) + "\n")
    written.update(_figures(audit, stats, out_dir))
    written["html"] = out_dir / REPORT_HTML
    write_text(
        written["html"], _render_html(audit, stats, {k: p.name for k, p in written.items() if k.startswith("fig")})
    )
    return written


# ----------------------------------------------------------------------------- numbers


def _split_of(audit: DatasetAudit) -> dict[str, str]:
    side = {i: "train" for i in audit.split.train}
    side.update({i: "test" for i in audit.split.test})
    return side


def dataset_statistics(audit: DatasetAudit) -> dict:
    """Objects per class per split, boxes per image, box sizes (px and fraction), image sizes."""
    side = _split_of(audit)
    names = list(audit.dataset.labelmap.names)
    per_split: dict[str, Counter] = {"train": Counter(), "test": Counter(), "no split": Counter()}
    images_per_split: Counter = Counter()
    boxes = []
    for image in audit.dataset.images:
        where = side.get(image.image_id, "no split")
        images_per_split[where] += 1
        for box in image.objects:
            per_split[where][box.name] += 1
            width, height = box.xmax - box.xmin + 1, box.ymax - box.ymin + 1
            boxes.append((box.name, width, height, width / image.width, height / image.height))
    return {
        "images_per_split": dict(images_per_split),
        "objects_per_class": {
            split: {n: counts.get(n, 0) for n in names}
            for split, counts in per_split.items()
            if images_per_split[split]
        },
        "boxes_per_image": dict(sorted(Counter(len(im.objects) for im in audit.dataset.images).items())),
        "image_sizes": {
            f"{w}x{h}": c for (w, h), c in Counter((im.width, im.height) for im in audit.dataset.images).most_common()
        },
        "box_size": _box_size_summary(boxes),
        "boxes": [
            {"class": b[0], "w": b[1], "h": b[2], "w_frac": round(b[3], 5), "h_frac": round(b[4], 5)} for b in boxes
        ],
    }


def _box_size_summary(boxes: list[tuple]) -> dict:
    if not boxes:
        return {}
    table = np.array([b[1:] for b in boxes], dtype=float)
    columns = {
        "width_px": table[:, 0],
        "height_px": table[:, 1],
        "width_frac": table[:, 2],
        "height_frac": table[:, 3],
        "aspect_w_over_h": table[:, 0] / table[:, 1],
    }
    return {
        key: {
            q: round(float(np.percentile(values, p)), 4)
            for q, p in (("min", 0), ("p5", 5), ("median", 50), ("p95", 95), ("max", 100))
        }
        for key, values in columns.items()
    }


def default_box_shapes() -> dict[str, list[tuple[float, float]]]:
    """(w, h) as a fraction of the image for SSD's default boxes and YOLO's stock anchors."""
    from harness.render.priors import ssd_prior_sizes, ssd_source_layers
    from harness.render.yolo import MODELS

    shapes: dict[str, list[tuple[float, float]]] = {}
    for size, smin, smax in SSD_SHOWN:
        mins, maxs = ssd_prior_sizes(size, smin, smax)
        boxes = []
        for layer, low, high in zip(ssd_source_layers(size), mins, maxs):
            boxes += [(low / size, low / size), (math.sqrt(low * high) / size,) * 2]
            for ratio in layer.aspect_ratios:
                wide, tall = low * math.sqrt(ratio) / size, low / math.sqrt(ratio) / size
                boxes += [(wide, tall), (tall, wide)]
        shapes[f"SSD{size} default boxes, Smin {smin} Smax {smax}"] = boxes
    for model, size in YOLO_SHOWN:
        anchors = MODELS[model][1]
        shapes[f"{model} stock anchors at {size}"] = [
            (anchors[i] / size, anchors[i + 1] / size) for i in range(0, len(anchors), 2)
        ]
    return shapes


# ----------------------------------------------------------------------------- figures


def _save(fig: Figure, path: Path) -> Path:
    return save_figure(fig, path, DPI)


def _figures(audit: DatasetAudit, stats: dict, out_dir: Path) -> dict[str, Path]:
    figures = {
        "fig_classes": _plot_classes(stats, out_dir / "dataset_objects_per_class.png"),
        "fig_boxes_per_image": _plot_boxes_per_image(stats, out_dir / "dataset_boxes_per_image.png"),
        "fig_image_sizes": _plot_image_sizes(audit, out_dir / "dataset_image_sizes.png"),
    }
    if stats["boxes"]:
        figures["fig_box_sizes"] = _plot_box_sizes(stats, out_dir / "dataset_box_sizes.png")
        figures["fig_aspect"] = _plot_aspect(stats, out_dir / "dataset_aspect_ratio.png")
    return figures


def _plot_classes(stats: dict, path: Path) -> Path:
    per_split = stats["objects_per_class"]
    names = list(next(iter(per_split.values()), {}))
    fig = Figure(figsize=(max(5.0, 0.7 * len(names) + 2), 3.6), layout="constrained")
    ax = fig.add_subplot()
    width = 0.8 / max(1, len(per_split))
    for k, (split, counts) in enumerate(per_split.items()):
        positions = np.arange(len(names)) + k * width
        bars = ax.bar(positions, [counts[n] for n in names], width, label=split)
        ax.bar_label(bars, fontsize=7)
    ax.set_xticks(np.arange(len(names)) + width * (len(per_split) - 1) / 2, names, rotation=45, ha="right")
    ax.set_ylabel("objects")
    ax.set_title("Objects per class per split")
    ax.legend()
    return _save(fig, path)


def _plot_boxes_per_image(stats: dict, path: Path) -> Path:
    counts = stats["boxes_per_image"]
    fig = Figure(figsize=(5.5, 3.4), layout="constrained")
    ax = fig.add_subplot()
    ax.bar([int(k) for k in counts], list(counts.values()), color="#4a7ab5")
    ax.set_xlabel("boxes in the image")
    ax.set_ylabel("images")
    ax.set_title("Boxes per image")
    return _save(fig, path)


def _plot_box_sizes(stats: dict, path: Path) -> Path:
    boxes = stats["boxes"]
    classes = sorted({b["class"] for b in boxes})
    fig = Figure(figsize=(12.0, 5.0), layout="constrained")
    pixels, fractions = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    for name in classes:
        mine = [b for b in boxes if b["class"] == name]
        pixels.scatter([b["w"] for b in mine], [b["h"] for b in mine], s=6, alpha=0.5, label=name)
        fractions.scatter([b["w_frac"] for b in mine], [b["h_frac"] for b in mine], s=6, alpha=0.5, label=name)
    markers = iter(("s", "^", "x", "+"))
    for label, shapes in default_box_shapes().items():
        fractions.scatter(
            [w for w, _ in shapes],
            [h for _, h in shapes],
            marker=next(markers),
            s=40,
            facecolors="none" if "SSD" in label else None,
            edgecolors="black" if "SSD" in label else None,
            color=None if "SSD" in label else "black",
            linewidths=0.9,
            label=label,
        )
    pixels.set(xlabel="box width (px)", ylabel="box height (px)", title="Box sizes in pixels")
    fractions.set(
        xlabel="width / image width",
        ylabel="height / image height",
        xscale="log",
        yscale="log",
        title="As a fraction of the image, with SSD default boxes and YOLO anchors",
    )
    pixels.legend(fontsize=7, markerscale=2)
    fractions.legend(fontsize=7, markerscale=1, loc="lower right")
    return _save(fig, path)


def _plot_aspect(stats: dict, path: Path) -> Path:
    ratios = np.array([b["w"] / b["h"] for b in stats["boxes"]])
    fig = Figure(figsize=(5.5, 3.4), layout="constrained")
    ax = fig.add_subplot()
    ax.hist(np.log2(ratios), bins=40, color="#4a7ab5")
    ticks = [-2, -1, 0, 1, 2]
    ax.set_xticks(ticks, ["1:4", "1:2", "1:1", "2:1", "4:1"])
    ax.set(xlabel="aspect ratio w:h (log scale)", ylabel="boxes", title="Box aspect ratios")
    return _save(fig, path)


def _plot_image_sizes(audit: DatasetAudit, path: Path) -> Path:
    sizes = Counter((im.width, im.height) for im in audit.dataset.images)
    fig = Figure(figsize=(5.5, 3.6), layout="constrained")
    ax = fig.add_subplot()
    ax.scatter(
        [w for w, _ in sizes], [h for _, h in sizes], s=[20 + 200 * c / max(sizes.values()) for c in sizes.values()]
    )
    for (w, h), c in sizes.most_common(8):
        ax.annotate(f"{w}x{h} ({c})", (w, h), fontsize=7, xytext=(4, 4), textcoords="offset points")
    ax.set(xlabel="image width (px)", ylabel="image height (px)", title="Image sizes (marker size = count)")
    return _save(fig, path)


# ----------------------------------------------------------------------------- HTML


def _render_html(audit: DatasetAudit, stats: dict, figures: dict[str, str]) -> str:
    from harness.html import environment

    report = audit.report
    paths = {im.image_id: im.image_path.name for im in audit.dataset.images}
    return (
        environment(Path(__file__).with_name("templates"))
        .get_template("dataset_report.html.j2")
        .render(
            title=f"Dataset report — {audit.dataset.root.name}",
            generated=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            harness_version=harness.__version__,
            audit=audit,
            stats=stats,
            figures=figures,
            validation=report.to_dict(),
            counts_by_action={action: sorted(report.by_kind(action).items()) for action in ACTIONS},
            paths=paths,
            near_bits=NEAR_DUPLICATE_BITS,
        )
    )

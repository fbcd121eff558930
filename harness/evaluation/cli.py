"""``harness evaluate``: score a detection directory against VOC ground truth, one protocol."""

from __future__ import annotations

import json
from pathlib import Path

import click

from harness.evaluation import protocols
from harness.evaluation.evaluator import MEAN_OVER


@click.command("evaluate")
@click.option(
    "--gt",
    "gt_root",
    required=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="VOC root (Annotations/, JPEGImages/, ImageSets/Main/).",
)
@click.option(
    "--image-set",
    default=None,
    help="Split name ('test' -> ImageSets/Main/test.txt) or a file of image ids. Default: every XML.",
)
@click.option(
    "--detections",
    "det_path",
    required=True,
    type=click.Path(exists=True, path_type=Path),
    help="Directory of <prefix><class>.txt files (Darknet valid / Caffe-SSD VOC), or a .json/.csv file.",
)
@click.option(
    "--protocol",
    type=click.Choice(protocols.names()),
    default=protocols.experiment_protocols()[0],
    show_default=True,
    help="; ".join(f"{p.name}: {p.description}" for p in protocols.PROTOCOLS.values())
    + " (alexeyab: its label-file truth, matching, --points and mean over all classes; docs/evaluation.md).",
)
@click.option(
    "--iou", type=float, default=0.5, show_default=True, help="IoU threshold (voc07/voc12; coco uses .50:.95)."
)
@click.option(
    "--labelmap",
    "labelmap_path",
    default=None,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="obj.names or labelmap.prototxt. Default: inferred from the ground truth.",
)
@click.option(
    "--prefix",
    default=None,
    help="Per-class file prefix: read only '<prefix><class>.txt'. Default: any prefix ending in a class "
    "name, one prefix per directory (files of two prefixes are refused).",
)
@click.option(
    "--mean-over",
    type=click.Choice(tuple(MEAN_OVER)),
    default="present",
    show_default=True,
    help="mAP over scored classes with ground-truth objects (present), or over all scored classes with "
    "empty ones as 0 (all: Caffe DetectionEvaluate / Darknet 'detector map').",
)
@click.option(
    "--points",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="alexeyab protocol only: detector map's -points (0: its area under the curve, its default; "
    "11: VOC2007 11-point; 101: COCO-style).",
)
@click.option("--classification", is_flag=True, help="Also write classification.json (top-1 on single-object images).")
@click.option("--strict", is_flag=True, help="Fail on detections for images not in the ground truth.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path))
def evaluate(
    gt_root: Path,
    image_set: str | None,
    det_path: Path,
    protocol: str,
    iou: float,
    labelmap_path: Path | None,
    prefix: str | None,
    mean_over: str,
    points: int,
    classification: bool,
    strict: bool,
    out_dir: Path,
) -> None:
    """Write OUT/metrics.json (and OUT/classification.json) with one exact evaluator."""
    from harness.data.voc import load_voc
    from harness.evaluation.classification import classification_report
    from harness.evaluation.detections import DetectionFormatError, read_detections
    from harness.evaluation.evaluator import EvaluationError, evaluate_detections

    try:
        labelmap = _read_labelmap(labelmap_path)
        dataset = load_voc(gt_root, image_set, labelmap)
        dets = read_detections(det_path, class_names=dataset.labelmap.names, prefix=prefix)
        metrics = evaluate_detections(
            dataset.images, dets, dataset.labelmap, protocol, iou, strict=strict, mean_over=mean_over, points=points
        )
        report = classification_report(dataset.images, dets, dataset.labelmap) if classification else None
    except (DetectionFormatError, EvaluationError, FileNotFoundError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    metrics["inputs"] = _inputs(gt_root, image_set, det_path, dataset, prefix)
    out_dir.mkdir(parents=True, exist_ok=True)
    _write_json(out_dir / "metrics.json", metrics)
    click.echo(_summary_line(metrics))
    for key, value in metrics["warnings"].items():
        click.echo(f"warning: {key}: {value if isinstance(value, str) else json.dumps(value)}", err=True)
    if report is not None:
        _write_json(out_dir / "classification.json", report)
        acc = report["mean_accuracy"]
        click.echo(
            f"classification: {report['n_images']} single-object images, mean accuracy "
            f"{'n/a' if acc is None else f'{acc:.4f}'}"
        )
    click.echo(f"wrote {out_dir / 'metrics.json'}")


def _read_labelmap(path: Path | None):
    """A label map file (the paper's labels keep the paper's scored set: see LabelMap.from_names)."""
    from harness.labels import LabelMap

    return None if path is None else LabelMap.from_file(path)


def _inputs(gt_root: Path, image_set: str | None, det_path: Path, dataset, prefix: str | None) -> dict:
    rep = dataset.report
    return {
        "gt": str(gt_root),
        "image_set": image_set,
        "detections": str(det_path),
        "prefix": prefix,
        "gt_images_total": rep.images_total,
        "gt_images_kept": rep.images_kept,
        "gt_images_skipped": rep.images_total - rep.images_kept,
        "gt_problems": {f"{action}: {kind}": n for (action, kind), n in _problem_counts(rep).items()},
    }


def _problem_counts(rep) -> dict:
    counts: dict = {}
    for p in rep.problems:
        counts[(p.action, p.kind)] = counts.get((p.action, p.kind), 0) + 1
    return counts


def _summary_line(metrics: dict) -> str:
    aps = ", ".join(f"{name}={_fmt(c['ap'])}" for name, c in metrics["classes"].items())
    n = len(metrics["map_classes"])
    return (
        f"{metrics['protocol']} mAP {_fmt(metrics['map'])} over {n} classes (--mean-over {metrics['mean_over']}; {aps})"
    )


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _write_json(path: Path, data: dict) -> None:
    from harness.core.atomic import write_json

    write_json(path, data, indent=1)

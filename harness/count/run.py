"""Count every slide with one trained model; a failing slide is recorded, never aborts the others."""
from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Callable

from harness.count.cells import cells_of_image, detections_by_image, touches_border
from harness.count.differential import SlideResult, count_labels
from harness.count.slides import find_slides, slide_fields
from harness.data.annotations import ImageAnnotation


def count_slides(fw, files: dict, weights: Path, labelmap, slides_root: Path, out: Path, rules: dict,
                 progress: bool = True, echo: Callable[[str], None] = print) -> list[SlideResult]:
    """Detect on each slide folder with ``fw`` (``harness.frameworks.backend_for(...)``) and group boxes into cells."""
    from tqdm import tqdm

    results = []
    slides = find_slides(slides_root)
    bar = tqdm(slides, desc="count", unit="slide", disable=not progress, file=sys.stderr)
    for slide_dir in bar:
        result = count_one(fw, files, weights, labelmap, slide_dir, out / "work" / slide_dir.name, rules)
        results.append(result)
        rate = result.fields / result.seconds if result.seconds else 0.0
        bar.set_postfix_str(f"{rate:.1f} fields/s")
        echo(f"{result.slide}: {result.fields} field(s), {len(result.counted)} cell(s) counted, "
             f"{rate:.1f} fields/s" + (f"; {len(result.skipped)} skipped" if result.skipped else "")
             + (f"; {result.note}" if result.note else ""))
    return results


def count_one(fw, files: dict, weights: Path, labelmap, slide_dir: Path, work: Path, rules: dict) -> SlideResult:
    from harness.evaluation.detections import read_detections

    result = SlideResult(slide_dir.name)
    try:
        fields = slide_fields(slide_dir, labelmap, work)
    except (OSError, ValueError) as exc:
        result.error = str(exc)
        return result
    result.fields, result.skipped = len(fields.images), fields.skipped
    if not fields.images:
        result.error = f"{slide_dir}: no readable field image ({len(fields.skipped)} skipped)"
        return result
    started = time.monotonic()
    try:
        det_dir = Path(fw.detect(files, weights, fields.images, work / "detections"))
        dets = read_detections(det_dir, class_names=labelmap.names)
    except Exception as exc:  # noqa: BLE001 - a native failure on one slide is that slide's error
        result.error = f"{slide_dir}: detection failed: {exc}"
        return result
    result.seconds = time.monotonic() - started
    by_image = detections_by_image(dets, labelmap.names)
    for image_id, size in fields.sizes.items():
        result.cells += cells_of_image(image_id, by_image.get(image_id, []), size, rules)
    result.files, result.paths = fields.files, _paths(fields)
    if fields.annotated:
        result.truth = truth_differential(fields.images, rules["border"]["margin_px"])
    return result


def _paths(fields) -> dict[str, Path]:
    return {(im.image_id if isinstance(im, ImageAnnotation) else Path(im).stem):
            (im.image_path if isinstance(im, ImageAnnotation) else Path(im)) for im in fields.images}


def truth_differential(images: list[ImageAnnotation], margin: float):
    """Ground truth under the same border rule as the predictions."""
    return count_labels(box.name for im in images for box in im.objects
                        if not touches_border((box.xmin, box.ymin, box.xmax, box.ymax), (im.width, im.height), margin))

"""Count every slide with one trained model, its network loaded once; a failing slide never aborts the others."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from harness.class_roles import ClassRoles
from harness.count.cells import cells_of_image, touches_border
from harness.count.differential import SlideResult, count_labels
from harness.count.slides import SlideFields
from harness.data.annotations import ImageAnnotation
from harness.progress import progress_bar

if TYPE_CHECKING:
    from harness.engine.experiment import TrainedModel


@dataclass
class Throughput:
    backend: str
    detail: str = ""  # what runs the forward pass (the detector's description)
    fields: int = 0
    seconds: float = 0.0  # detection only, the network load excluded
    wall_seconds: float = 0.0  # load + detection + cell grouping

    @property
    def fields_per_s(self) -> float:
        return self.fields / self.seconds if self.seconds else 0.0


def count_slides(
    model: TrainedModel,
    backend: str,
    slides: list[SlideFields],
    work: Path,
    rules: dict,
    roles: ClassRoles,
    progress: bool = True,
    echo: Callable[[str], None] = print,
) -> tuple[list[SlideResult], Throughput]:
    """Detect on every readable slide with ``backend`` (one network load) and group boxes into cells."""
    from harness.count.backends import detect_slides, open_detector

    started = time.monotonic()
    results = [_planned(fields, roles) for fields in slides]
    todo = [(result, fields) for result, fields in zip(results, slides) if not result.error]
    try:
        detector = open_detector(backend, model.config, model.files, model.weights, model.labelmap, work)
        detail = detector.description
    except Exception as exc:
        detector, detail = exc, f"{backend} {model.framework} detector (did not load: {exc})"
    echo(f"backend: {backend} = {detail} on {model.device}; network loaded once for {len(slides)} slide(s)")
    speed = Throughput(backend, detail)
    bar = progress_bar(len(todo), f"count [{backend}]", "slide", progress)
    inputs = [_fields_list(fields) for _, fields in todo]
    try:
        for (result, fields), (per_image, seconds) in zip(todo, detect_slides(detector, inputs, work)):
            _finish(result, fields, per_image, seconds, rules)
            if not result.error:
                speed.fields, speed.seconds = speed.fields + result.fields, speed.seconds + seconds
            bar.update(1)
            bar.set_postfix_str(f"{backend}, {speed.fields_per_s:.1f} fields/s")
            echo(_line(result, backend))
    finally:
        bar.close()
        if not isinstance(detector, Exception):
            detector.close()
    speed.wall_seconds = time.monotonic() - started
    return results, speed


def _planned(fields: SlideFields, roles: ClassRoles) -> SlideResult:
    result = SlideResult(fields.slide, roles)
    result.fields, result.skipped, result.error = len(fields.images), fields.skipped, fields.error
    return result


def _fields_list(fields: SlideFields) -> list[tuple[str, Path]]:
    return list(_paths(fields).items())


def _finish(result: SlideResult, fields: SlideFields, per_image, seconds: float, rules: dict) -> None:
    """Cells of one detected slide, or its error when detection failed."""
    if isinstance(per_image, Exception):
        result.error = f"{fields.slide}: detection failed: {per_image}"
        return
    result.seconds = seconds
    for image_id, size in fields.sizes.items():
        result.cells += cells_of_image(image_id, per_image.get(image_id, []), size, rules)
    result.files, result.paths = fields.files, _paths(fields)
    if fields.annotated:
        result.truth = truth_differential(fields.images, rules["border"]["margin_px"], result.roles)


def _line(result: SlideResult, backend: str) -> str:
    if result.error:
        return f"{result.slide}: not counted: {result.error}"
    rate = result.fields / result.seconds if result.seconds else 0.0
    return (
        f"{result.slide}: {result.fields} field(s), {len(result.counted)} cell(s) counted, "
        f"{rate:.1f} fields/s ({backend})"
        + (f"; {len(result.skipped)} skipped" if result.skipped else "")
        + (f"; {result.note}" if result.note else "")
    )


def _paths(fields: SlideFields) -> dict[str, Path]:
    return {
        (im.image_id if isinstance(im, ImageAnnotation) else Path(im).stem): (
            im.image_path if isinstance(im, ImageAnnotation) else Path(im)
        )
        for im in fields.images
    }


def truth_differential(images: list[ImageAnnotation], margin: float, roles: ClassRoles):
    """Ground truth under the same border and class rules as the predictions."""
    return count_labels(
        (
            box.name
            for im in images
            for box in im.objects
            if roles.role(box.name) != "not_counted"
            and not touches_border((box.xmin, box.ymin, box.xmax, box.ymax), (im.width, im.height), margin)
        ),
        roles,
        len(images),
    )

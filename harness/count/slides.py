"""Which slides and fields to count: one folder per slide, plain images or a VOC root each."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from harness.data.annotations import ImageAnnotation
from harness.engine.detect_images import IMAGE_SUFFIXES, detection_inputs
from harness.labels import LabelMap


@dataclass
class SlideFields:
    slide: str
    images: list                                  # ImageAnnotation (annotated) or Path (plain, staged)
    files: dict[str, str]                         # image id -> the user's file name
    sizes: dict[str, tuple[int, int]]             # image id -> (width, height)
    skipped: dict[str, str] = field(default_factory=dict)
    annotated: bool = False


def find_slides(root: Path) -> list[Path]:
    """Every sub-folder of ``root`` that holds images directly or is a VOC root."""
    if not root.is_dir():
        raise ValueError(f"{root}: --slides must be a folder with one sub-folder per slide")
    slides = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not slides:
        raise ValueError(f"{root}: no slide folders (expected one sub-folder of field images per slide)")
    return slides


def slide_fields(slide_dir: Path, labelmap: LabelMap, work: Path) -> SlideFields:
    """The readable fields of one slide; unreadable ones are named in ``skipped``.

    Raises ValueError (naming the folder) when the slide has no image file or VOC root at all.
    """
    import cv2

    try:
        inputs = detection_inputs(slide_dir, None, labelmap, work)
    except ValueError:
        candidates = [p for p in sorted(slide_dir.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES]
        if not candidates:
            raise
        return SlideFields(slide_dir.name, [], {}, {}, {p.name: "not a readable image" for p in candidates})
    fields = SlideFields(slide_dir.name, [], {}, {}, dict(inputs.skipped),
                         annotated=(slide_dir / "Annotations").is_dir())
    if fields.annotated:
        _voc_skips(slide_dir, inputs, fields)
    for image in inputs.images:
        path = image.image_path if isinstance(image, ImageAnnotation) else Path(image)
        image_id = image.image_id if isinstance(image, ImageAnnotation) else path.stem
        pixels = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if pixels is None:
            fields.skipped[inputs.files.get(image_id, path.name)] = "not a readable image"
            continue
        fields.images.append(image)
        fields.files[image_id] = Path(inputs.files.get(image_id, path.name)).name
        fields.sizes[image_id] = (pixels.shape[1], pixels.shape[0])
    return fields


def _voc_skips(slide_dir: Path, inputs, fields: SlideFields) -> None:
    """Images in JPEGImages that the VOC reader dropped (no annotation, bad XML) are skipped too."""
    kept = {Path(p).name for p in inputs.files.values()}
    images_dir = slide_dir / "JPEGImages"
    for path in sorted(images_dir.iterdir()) if images_dir.is_dir() else []:
        if path.suffix.lower() in IMAGE_SUFFIXES and path.name not in kept:
            fields.skipped[path.name] = "dropped by the VOC check (unreadable image or bad annotation)"

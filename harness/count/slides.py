"""Which slides and fields to count: one folder per slide (plain images or a VOC root), or a VOC root + slides.csv."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from harness.data.annotations import ImageAnnotation
from harness.data.detect_inputs import IMAGE_SUFFIXES, detection_inputs
from harness.data.imageinfo import UNREADABLE
from harness.labels import LabelMap


@dataclass
class SlideFields:
    slide: str
    images: list  # ImageAnnotation (annotated) or Path (plain, staged)
    files: dict[str, str]  # image id -> the user's file name
    sizes: dict[str, tuple[int, int]]  # image id -> (width, height)
    skipped: dict[str, str] = field(default_factory=dict)
    annotated: bool = False
    error: str = ""  # the slide could not be read at all


def plan_slides(
    root: Path, labelmap: LabelMap, work: Path, slides_csv: Optional[Path] = None
) -> tuple[list[SlideFields], dict[str, str]]:
    """Every slide's fields, and the images of a VOC root that no slide claims (mode 2 only).

    Mode 1: ``root`` holds one folder per slide. Mode 2: ``root`` is a VOC root and ``slides.csv``
    (in it, or ``slides_csv``) says which image is on which slide. Usage errors raise ValueError.
    """
    from harness.count.slides_csv import SLIDES_CSV, is_voc_root, voc_slides

    if slides_csv is None and is_voc_root(root) and (root / SLIDES_CSV).is_file():
        slides_csv = root / SLIDES_CSV
    if slides_csv is not None:
        if not is_voc_root(root):
            raise ValueError(f"{root}: --slides-csv needs --slides to be a VOC root (Annotations/, JPEGImages/)")
        return voc_slides(root, slides_csv, labelmap)
    if is_voc_root(root):
        raise ValueError(
            f"{root}: a VOC root without {SLIDES_CSV}; add {root / SLIDES_CSV} (columns image_id,slide) "
            "or pass --slides-csv FILE, or give a folder with one sub-folder per slide"
        )
    return [_folder_slide(slide_dir, labelmap, work / slide_dir.name) for slide_dir in find_slides(root)], {}


def _folder_slide(slide_dir: Path, labelmap: LabelMap, work: Path) -> SlideFields:
    """A slide folder's fields; a folder with nothing readable is a slide with an error."""
    try:
        fields = slide_fields(slide_dir, labelmap, work)
    except (OSError, ValueError) as exc:
        return SlideFields(slide_dir.name, [], {}, {}, error=str(exc))
    if not fields.images:
        fields.error = f"{slide_dir}: no readable field image ({len(fields.skipped)} skipped)"
    return fields


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
    try:
        inputs = detection_inputs(slide_dir, None, labelmap, work)
    except ValueError:
        candidates = [p for p in sorted(slide_dir.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES]
        if not candidates:
            raise
        return SlideFields(slide_dir.name, [], {}, {}, {p.name: UNREADABLE for p in candidates})
    fields = SlideFields(
        slide_dir.name,
        [],
        {},
        {},
        {Path(name).name: why for name, why in inputs.skipped.items()},
        annotated=(slide_dir / "Annotations").is_dir(),
    )
    if fields.annotated:
        _voc_skips(slide_dir, inputs, fields)
    for image in inputs.images:  # decoded by detection_inputs (the one image rule)
        path = image.image_path if isinstance(image, ImageAnnotation) else Path(image)
        image_id = image.image_id if isinstance(image, ImageAnnotation) else path.stem
        fields.images.append(image)
        fields.files[image_id] = Path(inputs.files.get(image_id, path.name)).name
        fields.sizes[image_id] = inputs.sizes[image_id]
    return fields


def _voc_skips(slide_dir: Path, inputs, fields: SlideFields) -> None:
    """Images in JPEGImages that the VOC reader dropped (no annotation, bad XML) are skipped too."""
    kept = {Path(p).name for p in inputs.files.values()}
    images_dir = slide_dir / "JPEGImages"
    for path in sorted(images_dir.iterdir()) if images_dir.is_dir() else []:
        if path.suffix.lower() in IMAGE_SUFFIXES and path.name not in kept:
            fields.skipped.setdefault(path.name, "dropped by the VOC check (unreadable image or bad annotation)")

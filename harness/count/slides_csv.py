"""Input mode 2 of `harness count`: one VOC root whose images are grouped into slides by ``slides.csv``.

``slides.csv`` has the columns ``image_id,slide`` (more columns are ignored). Nothing is dropped
silently: an id listed without a usable image is a skipped image of its slide (with the reason),
and an image of the VOC root that slides.csv does not list is *unassigned* (skipped.csv, exit 1).
"""

from __future__ import annotations

import csv
from pathlib import Path

from harness.count.slides import SlideFields
from harness.data.detect_inputs import IMAGE_SUFFIXES
from harness.data.imageinfo import checked_size
from harness.labels import LabelMap

SLIDES_CSV = "slides.csv"
UNASSIGNED = "(unassigned)"
REQUIRED = ("image_id", "slide")


class SlidesCsvError(ValueError):
    """slides.csv itself is unusable (a usage error: exit 2)."""


def is_voc_root(root: Path) -> bool:
    return (root / "Annotations").is_dir() and (root / "JPEGImages").is_dir()


def read_slides_csv(path: Path) -> dict[str, str]:
    """image id → slide, in file order; malformed files are an error naming the file and line."""
    try:
        with Path(path).open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            columns = [c.strip() for c in reader.fieldnames or []]
            missing = [c for c in REQUIRED if c not in columns]
            if missing:
                raise SlidesCsvError(
                    f"{path}: missing column(s) {', '.join(missing)} (found: {', '.join(columns) or 'none'}); "
                    "slides.csv needs a header line 'image_id,slide'"
                )
            rows = [(_cells(path, row, reader.line_num), reader.line_num) for row in reader]
    except OSError as exc:
        raise SlidesCsvError(f"{path}: cannot read slides.csv: {exc}") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise SlidesCsvError(f"{path}: not a CSV file: {exc}") from None
    return _mapping(path, rows)


def _cells(path: Path, row: dict, line: int) -> dict[str, str]:
    """One row's cells by column; a row with more cells than the header has columns is refused (an
    unquoted comma in a slide name would otherwise shift it into another column)."""
    if None in row:
        raise SlidesCsvError(
            f"{path}:{line}: {len(row[None])} more value(s) than the header has columns "
            f"({', '.join(k for k in row if k is not None)}); quote names that contain a comma"
        )
    return {k.strip(): (v or "").strip() for k, v in row.items()}


def _mapping(path: Path, rows: list[tuple[dict, int]]) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for row, line in rows:
        image_id, slide = _strip_suffix(row.get("image_id", "")), row.get("slide", "")
        if not image_id and not slide:
            continue
        if not image_id or not slide:
            raise SlidesCsvError(f"{path}:{line}: empty {'image_id' if not image_id else 'slide'}")
        if mapping.get(image_id, slide) != slide:
            raise SlidesCsvError(
                f"{path}:{line}: image {image_id!r} is on two slides ({mapping[image_id]!r}, {slide!r})"
            )
        mapping[image_id] = slide
    if not mapping:
        raise SlidesCsvError(f"{path}: no rows (expected 'image_id,slide' lines)")
    return mapping


def _strip_suffix(name: str) -> str:
    """A file name (field_0001.jpg) is accepted for its id (field_0001)."""
    return name[: -len(Path(name).suffix)] if Path(name).suffix.lower() in IMAGE_SUFFIXES else name


def voc_slides(root: Path, slides_csv: Path, labelmap: LabelMap) -> tuple[list[SlideFields], dict[str, str]]:
    """The slides of ``slides_csv`` (sorted by name) with their VOC images, and the unassigned images."""
    from harness.data.voc import load_voc

    mapping = read_slides_csv(slides_csv)
    kept = {im.image_id: im for im in load_voc(root, labelmap=labelmap).images}
    files = {p.stem: p.name for p in sorted((root / "JPEGImages").iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES}
    slides = {name: SlideFields(name, [], {}, {}, annotated=True) for name in sorted(set(mapping.values()))}
    for image_id, slide in mapping.items():
        _add(slides[slide], image_id, kept.get(image_id), files.get(image_id), root)
    unassigned = {
        files.get(i, f"{i}.xml"): "not listed in slides.csv" for i in sorted(set(files) | set(kept)) if i not in mapping
    }
    return list(slides.values()), unassigned


def _add(fields: SlideFields, image_id: str, image, file_name, root: Path) -> None:
    """One listed image: counted when the VOC reader kept it and OpenCV can read it, else skipped."""
    if image is None:
        name = file_name or image_id
        fields.skipped[name] = (
            "listed in slides.csv but dropped by the VOC check (unreadable image or bad annotation)"
            if file_name or (root / "Annotations" / f"{image_id}.xml").is_file()
            else f"listed in slides.csv but no such image in {root / 'JPEGImages'}"
        )
        return
    size, why = checked_size(image.image_path)
    if size is None:
        fields.skipped[Path(image.image_path).name] = why
        return
    fields.images.append(image)
    fields.files[image_id] = Path(image.image_path).name
    fields.sizes[image_id] = size

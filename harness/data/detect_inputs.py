"""What ``harness detect`` runs on: a VOC root, or a plain folder of a user's slide images.

VOC detection files are space-separated and Darknet cuts ids at the first '.', so a file name
with spaces, dots or quotes cannot be an image id. Plain folders therefore get safe ids
(``[A-Za-z0-9_-]``, made unique) and are linked under those ids into ``OUT/.images``;
``images.csv`` and ``detections.csv`` map every id back to the original file name.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from harness.core.atomic import write_csv
from harness.data.imageinfo import checked_size, unreadable_reason
from harness.data.voc import UNREADABLE_IMAGE
from harness.labels import LabelMap
from harness.paths import safe_file_name

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
STAGING = ".images"


@dataclass
class DetectionInputs:
    images: list  # ImageAnnotation (VOC) or Path (plain folder, staged)
    files: dict[str, str]  # image id -> the user's file (as found)
    skipped: dict[str, str] = field(default_factory=dict)  # file -> why
    source: str = ""
    sizes: dict[str, tuple[int, int]] = field(default_factory=dict)  # image id -> (width, height), decoded

    @property
    def summary(self) -> str:
        text = f"{len(self.images)} image(s) from {self.source}"
        if self.skipped:
            text += f"; {len(self.skipped)} skipped: " + "; ".join(
                f"{f} ({why})" for f, why in list(self.skipped.items())[:5]
            )
        return text


def detection_inputs(root: Path, image_set: Optional[str], labelmap: LabelMap, out: Path) -> DetectionInputs:
    """A VOC root when it has ``Annotations/``, else every image file directly in ``root``."""
    if (root / "Annotations").is_dir():
        from harness.data.voc import find_image, load_voc

        dataset = load_voc(root, image_set=image_set, labelmap=labelmap)
        inputs = DetectionInputs([], {}, source=f"VOC root {root}: {dataset.report.summary()}")
        for problem in dataset.report.problems:  # the header check already refused these images
            if problem.kind == UNREADABLE_IMAGE:
                found = find_image(root, Path(problem.file).stem) or Path(problem.file)
                inputs.skipped[str(found)] = unreadable_reason(problem.message, found)
        for image in dataset.images:
            _add_checked(inputs, image.image_id, image, image.image_path, str(image.image_path))
        return _indexed(inputs, out, root)
    if image_set is not None:
        raise ValueError(f"{root}: --image-set needs a VOC root (no Annotations/ folder here)")
    return _plain_folder(root, out)


def _add_checked(inputs: DetectionInputs, image_id: str, image, path: Path, name: str) -> bool:
    """Add ``image`` when it decodes fully (:func:`harness.data.imageinfo.checked_size`, the one
    image rule), else name it in ``skipped``: native code never sees a file Python cannot decode."""
    size, why = checked_size(path)
    if size is None:
        inputs.skipped[name] = why
        return False
    inputs.images.append(image)
    inputs.files[image_id] = name
    inputs.sizes[image_id] = size
    return True


def _plain_folder(root: Path, out: Path) -> DetectionInputs:
    candidates = sorted(p for p in root.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not candidates:
        raise ValueError(f"{root}: no image files ({', '.join(IMAGE_SUFFIXES)}) and no Annotations/ folder")
    staging = out / STAGING
    staging.mkdir(parents=True, exist_ok=True)
    inputs = DetectionInputs([], {}, source=f"folder {root}")
    for path in candidates:
        image_id = _unique(_safe_id(path.stem), inputs.files)
        link = staging / f"{image_id}{path.suffix.lower()}"
        if not _add_checked(inputs, image_id, link, path, path.name):
            continue
        if link.is_symlink() or link.exists():
            link.unlink()
        os.symlink(path.resolve(), link)
    return _indexed(inputs, out, root)


def _indexed(inputs: DetectionInputs, out: Path, root: Path) -> DetectionInputs:
    """images.csv written; ValueError (naming it) when not one image can be detected on."""
    out.mkdir(parents=True, exist_ok=True)
    _write_index(inputs, out / "images.csv")
    if not inputs.images:
        raise ValueError(
            f"{root}: none of {len(inputs.skipped)} image(s) could be read (reasons in {out / 'images.csv'})"
        )
    return inputs


def _safe_id(stem: str) -> str:
    """Native tools cut ids at spaces and dots: only [A-Za-z0-9_-], then the file-name rule (length, reserved)."""
    return safe_file_name(re.sub(r"[^A-Za-z0-9_-]+", "_", stem).strip("_") or "image")


def _unique(image_id: str, taken: dict[str, str]) -> str:
    candidate, n = image_id, 2
    while candidate in taken:
        candidate, n = f"{image_id}_{n}", n + 1
    return candidate


def _write_index(inputs: DetectionInputs, path: Path) -> None:
    """images.csv: every image found, ``ok`` or ``skipped: why`` (rewritten by :func:`mark_failed`)."""
    rows = [[image_id, name, "ok"] for image_id, name in inputs.files.items()]
    rows += [["", name, f"skipped: {why}"] for name, why in inputs.skipped.items()]
    write_csv(path, ["image_id", "file", "status"], rows)

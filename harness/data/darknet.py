"""Darknet's side of the converted dataset: YOLO label files and the label-path rule.

Darknet never gets told where labels are: it rewrites each image path (first ``images`` →
``labels``, ``JPEGImages`` → ``labels``, ``raw`` → ``labels``, then the extension → ``.txt``,
each once, anywhere in the full path).  ``darknet_label_path`` replays that rule so the
converter can refuse output paths the rule would rewrite to the wrong file.

Coordinates follow Darknet's own ``voc_label.py``: ``cx = ((xmin + xmax) / 2 - 1) / W`` and
``w = (xmax - xmin) / W`` for 1-based VOC boxes; ``detector valid`` prints ``cx - w/2 + 1`` and
``cx + w/2 + 1``, so a box goes VOC → YOLO → Darknet output unchanged.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Union

from harness.data.annotations import Box, ImageAnnotation
from harness.labels import LabelMap

# (search, replacement) in the order Darknet's fill_truth_detection applies them.
_LABEL_PATH_RULES = (
    ("images", "labels"), ("JPEGImages", "labels"), ("raw", "labels"),
    (".jpg", ".txt"), (".png", ".txt"), (".JPG", ".txt"), (".JPEG", ".txt"),
)
MAX_PATH = 4095   # Darknet copies paths into 4096-byte buffers


def darknet_label_path(image_path: str, cwd: Optional[Union[str, Path]] = None) -> str:
    """The label file Darknet will open for ``image_path`` (each rule replaces its first match).

    The harness's one label-path rule: every place that maps an image to its label calls this.
    The rule applies to the path *as written in the image list*; a relative result is then opened
    from Darknet's working directory ``cwd`` (the .data file's folder) when given — so a ``cwd``
    containing ``images`` or ``raw`` is not rewritten, exactly as Darknet does not rewrite it.
    """
    path = str(image_path)
    for search, replacement in _LABEL_PATH_RULES:
        path = path.replace(search, replacement, 1)
    if cwd is not None and not Path(path).is_absolute():
        path = str(Path(cwd) / path)
    return path


def darknet_image_file(darknet_dir: Path, image_id: str) -> Path:
    """Where the converter puts an image for Darknet: ``DARKNET_DIR/images/<id>.jpg``."""
    return Path(darknet_dir) / "images" / f"{image_id}.jpg"


def darknet_label_file(darknet_dir: Path, image_id: str) -> Path:
    """The label file of :func:`darknet_image_file`, by the label-path rule (``labels/<id>.txt``
    for every directory :func:`check_darknet_paths` accepts)."""
    return Path(darknet_label_path(str(darknet_image_file(darknet_dir, image_id))))


def check_darknet_paths(darknet_dir: Path, image_ids: list[str]) -> None:
    """Raise ValueError if Darknet would look for any label somewhere other than labels/<id>.txt."""
    darknet_dir = Path(darknet_dir).resolve()
    if any(ch.isspace() for ch in str(darknet_dir)):
        raise ValueError(f"{darknet_dir}: output path contains whitespace; Darknet's .data parser "
                         "deletes spaces and tabs, so no path with whitespace can work")
    dotted = [i for i in image_ids if "." in i or any(ch.isspace() for ch in i) or "/" in i]
    if dotted:
        raise ValueError(f"image ids with '.', '/' or whitespace cannot be used with Darknet (its valid "
                         f"output cuts ids at the first '.', lists split on whitespace): "
                         f"{dotted[:10]}{' ...' if len(dotted) > 10 else ''} — rename these images")
    for image_id in image_ids:
        image = str(darknet_image_file(darknet_dir, image_id))
        wanted = str(darknet_dir / "labels" / f"{image_id}.txt")
        got = darknet_label_path(image)
        if got != wanted:
            raise ValueError(f"Darknet's label-path rule would read {got!r} for {image!r} (wanted {wanted!r}): "
                             f"choose an output directory without 'images', 'JPEGImages', 'raw' or '.jpg' "
                             f"in its path")
        if len(image) > MAX_PATH:
            raise ValueError(f"{image}: path longer than Darknet's {MAX_PATH}-byte buffer")


def yolo_line(box: Box, class_id: int, width: int, height: int) -> str:
    cx = ((box.xmin + box.xmax) / 2.0 - 1.0) / width
    cy = ((box.ymin + box.ymax) / 2.0 - 1.0) / height
    w = (box.xmax - box.xmin) / width
    h = (box.ymax - box.ymin) / height
    return f"{class_id} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}"


def yolo_label_text(image: ImageAnnotation, labelmap: LabelMap) -> str:
    """Contents of labels/<id>.txt: one ``cls cx cy w h`` line per box, LF endings."""
    return "".join(yolo_line(b, labelmap.index(b.name), image.width, image.height) + "\n" for b in image.objects)


def parse_yolo_labels(text: str, width: int, height: int, labelmap: LabelMap) -> list[Box]:
    """Inverse of ``yolo_label_text`` (VOC 1-based boxes), for round-trip checks and reports."""
    boxes = []
    for line in text.splitlines():
        if not line.strip():
            continue
        cls, cx, cy, w, h = line.split()
        cx, w = float(cx) * width, float(w) * width
        cy, h = float(cy) * height, float(h) * height
        boxes.append(Box(labelmap.names[int(cls)], cx - w / 2 + 1, cy - h / 2 + 1, cx + w / 2 + 1, cy + h / 2 + 1))
    return boxes

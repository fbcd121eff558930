"""Darknet's side of the converted dataset: YOLO label files and the label-path rules.

Darknet never gets told where labels are: it rewrites each image path. pjreddie: ``images`` →
``labels``, ``JPEGImages`` → ``labels``, ``raw`` → ``labels``, then the extension → ``.txt``, each
once, anywhere in the full path. AlexeyAB (``replace_image_to_label``): only COCO's
``/images/{train,val}{2014,2017}/`` and ``/JPEGImages/`` → ``/labels/``, then the extension at the
end — it has no ``images`` rule, and a missing label file only prints "Can't open label file"
and trains on no boxes. So the converted layout is ``darknet/JPEGImages/<id>.jpg`` beside
``darknet/labels/<id>.txt``, which both rules map alike; ``darknet_label_path`` replays each
fork's rule so the converter can refuse output paths either rule would rewrite to the wrong file.

Coordinates follow Darknet's own ``voc_label.py``: ``cx = ((xmin + xmax) / 2 - 1) / W`` and
``w = (xmax - xmin) / W`` for 1-based VOC boxes; ``detector valid`` prints ``cx - w/2 + 1`` and
``cx + w/2 + 1``, so a box goes VOC → YOLO → Darknet output unchanged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional, Union

from harness.data.annotations import Box, ImageAnnotation
from harness.labels import LabelMap

# (search, replacement) in the order pjreddie's fill_truth_detection applies them (first match anywhere).
_LABEL_PATH_RULES = (
    ("images", "labels"),
    ("JPEGImages", "labels"),
    ("raw", "labels"),
    (".jpg", ".txt"),
    (".png", ".txt"),
    (".JPG", ".txt"),
    (".JPEG", ".txt"),
)
# AlexeyAB 59596d78 src/utils.c replace_image_to_label: directory rules (first match anywhere), then
# extensions replaced only at the end of the path.
_ALEXEYAB_DIR_RULES = (
    *tuple(
        (f"{sep}images{sep}{split}{sep}", f"{sep}labels{sep}{split}{sep}")
        for sep, split in (("/", "train2017"), ("/", "val2017"))
    ),
    ("/JPEGImages/", "/labels/"),
    ("\\images\\train2017\\", "\\labels\\train2017\\"),
    ("\\images\\val2017\\", "\\labels\\val2017\\"),
    ("\\images\\train2014\\", "\\labels\\train2014\\"),
    ("\\images\\val2014\\", "\\labels\\val2014\\"),
    ("/images/train2014/", "/labels/train2014/"),
    ("/images/val2014/", "/labels/val2014/"),
    ("\\JPEGImages\\", "\\labels\\"),
)
_ALEXEYAB_EXTENSIONS = (
    ".jpg",
    ".JPG",
    ".jpeg",
    ".JPEG",
    ".png",
    ".PNG",
    ".bmp",
    ".BMP",
    ".ppm",
    ".PPM",
    ".tiff",
    ".TIFF",
)
DARKNET_IMAGE_DIR = "JPEGImages"  # the converted layout's image folder: both forks map it to labels/
MAX_PATH = 4095  # Darknet copies paths into 4096-byte buffers


def _pjreddie_label_path(path: str) -> str:
    for search, replacement in _LABEL_PATH_RULES:
        path = path.replace(search, replacement, 1)
    return path


def _alexeyab_label_path(path: str) -> str:
    for search, replacement in _ALEXEYAB_DIR_RULES:
        path = path.replace(search, replacement, 1)
    path = path.strip(" \t")  # its trim()
    for extension in _ALEXEYAB_EXTENSIONS:
        if path.endswith(extension):
            path = path[: -len(extension)] + ".txt"
    return path


# Each Darknet fork's image path -> label path rule (its C code, transcribed above).
LABEL_PATH_RULES: dict[str, Callable[[str], str]] = {
    "pjreddie": _pjreddie_label_path,
    "alexeyab": _alexeyab_label_path,
}


def darknet_label_path(image_path: str, cwd: Optional[Union[str, Path]] = None, fork: str = "pjreddie") -> str:
    """The label file Darknet ``fork`` (a key of :data:`LABEL_PATH_RULES`) will open for ``image_path``.

    The harness's one label-path rule: every place that maps an image to its label calls this.
    The rule applies to the path *as written in the image list*; a relative result is then opened
    from Darknet's working directory ``cwd`` (the .data file's folder) when given — so a ``cwd``
    containing ``images`` or ``raw`` is not rewritten, exactly as Darknet does not rewrite it.
    """
    rule = LABEL_PATH_RULES.get(fork)
    if rule is None:
        raise ValueError(f"unknown Darknet {fork!r}: {' or '.join(LABEL_PATH_RULES)}")
    path = rule(str(image_path))
    if cwd is not None and not Path(path).is_absolute():
        path = str(Path(cwd) / path)
    return path


def darknet_image_file(darknet_dir: Path, image_id: str) -> Path:
    """Where the converter puts an image for Darknet: ``DARKNET_DIR/JPEGImages/<id>.jpg`` (the one
    folder name both forks' label rules turn into ``labels``)."""
    return Path(darknet_dir) / DARKNET_IMAGE_DIR / f"{image_id}.jpg"


def darknet_label_file(darknet_dir: Path, image_id: str) -> Path:
    """The label file of :func:`darknet_image_file`, by the label-path rule (``labels/<id>.txt``
    for every directory :func:`check_darknet_paths` accepts)."""
    return Path(darknet_label_path(str(darknet_image_file(darknet_dir, image_id))))


def check_darknet_paths(darknet_dir: Path, image_ids: list[str]) -> None:
    """Raise ValueError if either Darknet would look for any label somewhere other than labels/<id>.txt."""
    darknet_dir = Path(darknet_dir).resolve()
    if any(ch.isspace() for ch in str(darknet_dir)):
        raise ValueError(
            f"{darknet_dir}: output path contains whitespace; Darknet's .data parser "
            "deletes spaces and tabs, so no path with whitespace can work"
        )
    dotted = [i for i in image_ids if "." in i or any(ch.isspace() for ch in i) or "/" in i]
    if dotted:
        raise ValueError(
            f"image ids with '.', '/' or whitespace cannot be used with Darknet (its valid "
            f"output cuts ids at the first '.', lists split on whitespace): "
            f"{dotted[:10]}{' ...' if len(dotted) > 10 else ''} — rename these images"
        )
    for image_id in image_ids:
        image = str(darknet_image_file(darknet_dir, image_id))
        wanted = str(darknet_dir / "labels" / f"{image_id}.txt")
        for fork in LABEL_PATH_RULES:
            got = darknet_label_path(image, fork=fork)
            if got != wanted:
                raise ValueError(
                    f"{fork} Darknet's label-path rule would read {got!r} for {image!r} (wanted "
                    f"{wanted!r}): choose an output directory without 'images', 'JPEGImages', "
                    f"'raw' or '.jpg' in its path"
                )
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
        cls, *fields = line.split()
        cx, cy, w, h = (float(v) for v in fields)
        cx, w = cx * width, w * width
        cy, h = cy * height, h * height
        boxes.append(Box(labelmap.names[int(cls)], cx - w / 2 + 1, cy - h / 2 + 1, cx + w / 2 + 1, cy + h / 2 + 1))
    return boxes

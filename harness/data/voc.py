"""Read and validate a Pascal VOC dataset (Annotations/*.xml, JPEGImages/, ImageSets/Main/*.txt).

Every defect is reported with the file (and object) it came from, and the reader decides one
action per defect — skip the object, skip the image, fix it (clip / take the real image size),
or keep it with a warning — so a conversion never loses data without saying so.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional

from lxml import etree

from harness.data.annotations import Box, ImageAnnotation
from harness.data.imageinfo import ImageHeaderError, image_size
from harness.data.report import FIXED, SKIP_IMAGE, SKIP_OBJECT, WARNING, Problem, ValidationReport
from harness.labels import PAPER_LABELS, LabelMap

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".JPG", ".JPEG", ".png", ".PNG", ".bmp")

# Problem kinds (stable keys counted by reports and tests).
MALFORMED_XML = "malformed XML"
MISSING_ANNOTATION = "missing annotation"
MISSING_IMAGE = "missing image"
UNREADABLE_IMAGE = "unreadable image"
SIZE_MISMATCH = "size mismatch"
MISSING_SIZE = "missing size"
EMPTY_ANNOTATION = "empty annotation"
NO_VALID_OBJECTS = "no valid objects"
UNKNOWN_CLASS = "unknown class"
MISSING_NAME = "missing class name"
BAD_BNDBOX = "bad bndbox"
ZERO_AREA = "zero-area box"
INVERTED = "inverted box"
OUTSIDE = "box outside image"
CLIPPED = "box out of image (clipped)"
DUPLICATE_ID = "duplicate id"


@dataclass
class VocDataset:
    """A validated VOC dataset: the kept images, the label map used and the validation report."""

    root: Path
    images: list[ImageAnnotation]
    labelmap: LabelMap
    report: ValidationReport
    image_set: Optional[str] = None

    @property
    def ids(self) -> list[str]:
        return [im.image_id for im in self.images]

    def __len__(self) -> int:
        return len(self.images)


@dataclass
class _RawObject:
    """An <object> as written in the XML, before it is checked against the image and label map."""

    index: int
    name: Optional[str]
    coords: Optional[tuple[float, float, float, float]]
    coords_error: str = ""
    difficult: bool = False
    truncated: bool = False


@dataclass
class _RawAnnotation:
    image_id: str
    xml_path: Path
    filename: Optional[str]
    size: Optional[tuple[int, int]]
    objects: list[_RawObject] = field(default_factory=list)


def load_voc(
    root: str | Path,
    image_set: str | Path | None = None,
    labelmap: LabelMap | None = None,
) -> VocDataset:
    """Read ``root`` (a VOC directory), validate it and return the kept images.

    ``image_set`` is a split name (``"test"`` → ``ImageSets/Main/test.txt``) or a path to a file
    of image ids; ``None`` reads every ``Annotations/*.xml``.  Without ``labelmap`` the classes
    are inferred: the paper's 15-label map when every name is one of its labels, else the
    sorted set of names found.
    """
    root = Path(root)
    annotations_dir = root / "Annotations"
    if not annotations_dir.is_dir():
        raise FileNotFoundError(f"{root}: not a VOC directory (no Annotations/ folder)")
    report = ValidationReport()
    ids = _resolve_ids(root, image_set, report)
    raws = [raw for raw in (_read_xml(root, image_id, report) for image_id in ids) if raw is not None]
    report.images_total = len(ids)
    if labelmap is None:
        labelmap = infer_labelmap(o.name for raw in raws for o in raw.objects if o.name)
    images = [im for im in (_validate(root, raw, labelmap, report) for raw in raws) if im is not None]
    report.images_kept = len(images)
    set_name = None if image_set is None else str(image_set)
    return VocDataset(root=root, images=images, labelmap=labelmap, report=report, image_set=set_name)


def infer_labelmap(names: Iterable[str]) -> LabelMap:
    """The paper's label map if the names are all paper labels, else the sorted names found."""
    found = set(names)
    if not found:
        raise ValueError("no object names found: cannot infer a label map (pass one explicitly)")
    paper = {label.abbr for label in PAPER_LABELS}
    if found <= paper:
        return LabelMap.paper()
    return LabelMap.from_names(sorted(found))


def read_ids(path: str | Path) -> list[str]:
    """Image ids from an ImageSets file: first token per line (VOC class files add a ±1 flag)."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise FileNotFoundError(f"{path}: cannot read image-set file: {exc}") from exc
    return [line.split()[0] for line in text.splitlines() if line.strip()]


def split_file(root: str | Path, name: str) -> Path:
    return Path(root) / "ImageSets" / "Main" / f"{name}.txt"


def _resolve_ids(root: Path, image_set: str | Path | None, report: ValidationReport) -> list[str]:
    if image_set is None:
        return sorted(p.stem for p in (root / "Annotations").glob("*.xml"))
    path = Path(image_set)
    bare_name = not isinstance(image_set, Path) and "/" not in str(image_set)
    if bare_name and not (path.suffix == ".txt" and path.is_file()):
        path = split_file(root, path.stem if path.suffix == ".txt" else str(image_set))
    if not path.is_file():
        raise FileNotFoundError(f"{path}: image set {image_set!r} not found")
    ids, seen = [], set()
    for image_id in read_ids(path):
        if image_id in seen:
            report.add(Problem(str(path), DUPLICATE_ID, WARNING, f"id {image_id!r} listed twice; used once"))
            continue
        seen.add(image_id)
        ids.append(image_id)
    return ids


def _read_xml(root: Path, image_id: str, report: ValidationReport) -> Optional[_RawAnnotation]:
    xml_path = root / "Annotations" / f"{image_id}.xml"
    if not xml_path.is_file():
        report.add(Problem(str(xml_path), MISSING_ANNOTATION, SKIP_IMAGE, "annotation file does not exist"))
        return None
    try:
        tree = etree.parse(str(xml_path))
    except (etree.XMLSyntaxError, OSError) as exc:
        report.add(Problem(str(xml_path), MALFORMED_XML, SKIP_IMAGE, f"cannot parse: {exc}"))
        return None
    node = tree.getroot()
    if node.tag != "annotation":
        report.add(Problem(str(xml_path), MALFORMED_XML, SKIP_IMAGE, f"root element is <{node.tag}>, not <annotation>"))
        return None
    objects = [_read_object(i, obj) for i, obj in enumerate(node.findall("object"))]
    return _RawAnnotation(image_id, xml_path, _text(node, "filename"), _read_size(node), objects)


def _text(node, path: str) -> Optional[str]:
    value = node.findtext(path)
    return value.strip() if value is not None and value.strip() else None


def _read_size(node) -> Optional[tuple[int, int]]:
    try:
        width, height = int(float(_text(node, "size/width"))), int(float(_text(node, "size/height")))
    except (TypeError, ValueError):
        return None
    return (width, height) if width > 0 and height > 0 else None


def _read_object(index: int, node) -> _RawObject:
    obj = _RawObject(index, _text(node, "name"), None,
                     difficult=_flag(_text(node, "difficult")), truncated=_flag(_text(node, "truncated")))
    box = node.find("bndbox")
    if box is None:
        obj.coords_error = "no <bndbox>"
        return obj
    values = {key: _text(box, key) for key in ("xmin", "ymin", "xmax", "ymax")}
    try:
        obj.coords = tuple(float(values[key]) for key in ("xmin", "ymin", "xmax", "ymax"))
    except (TypeError, ValueError):
        obj.coords_error = f"non-numeric or missing coordinates {values}"
    return obj


_TRUE_WORDS = {"true", "yes"}
_FALSE_WORDS = {"false", "no"}


def _flag(value: Optional[str]) -> bool:
    """VOC writes 0/1; other annotation tools write ``true``/``false``: both are flags."""
    if value is None:
        return False
    word = value.strip().lower()
    if word in _TRUE_WORDS or word in _FALSE_WORDS:
        return word in _TRUE_WORDS
    try:
        return int(float(word)) != 0
    except ValueError:
        return False


def find_image(root: Path, image_id: str, filename: Optional[str] = None) -> Optional[Path]:
    """JPEGImages/<id>.<ext>, else the XML's <filename>; None when neither exists."""
    folder = root / "JPEGImages"
    for suffix in IMAGE_SUFFIXES:
        candidate = folder / f"{image_id}{suffix}"
        if candidate.is_file():
            return candidate
    if filename and (folder / filename).is_file():
        return folder / filename
    return None


def _validate(root: Path, raw: _RawAnnotation, labelmap: LabelMap,
              report: ValidationReport) -> Optional[ImageAnnotation]:
    """Check one parsed annotation against its image and the label map; None if the image is skipped."""
    xml = str(raw.xml_path)
    image_path = find_image(root, raw.image_id, raw.filename)
    if image_path is None:
        report.add(Problem(xml, MISSING_IMAGE, SKIP_IMAGE,
                           f"no image {raw.image_id}.jpg (or .png/.jpeg) in {root / 'JPEGImages'}"))
        return None
    try:
        width, height = image_size(image_path)
    except (ImageHeaderError, OSError) as exc:
        report.add(Problem(xml, UNREADABLE_IMAGE, SKIP_IMAGE, str(exc)))
        return None
    if raw.size is None:
        report.add(Problem(xml, MISSING_SIZE, FIXED, f"no valid <size>; using the image's {width}x{height}"))
    elif raw.size != (width, height):
        report.add(Problem(xml, SIZE_MISMATCH, FIXED,
                           f"<size> says {raw.size[0]}x{raw.size[1]} but {image_path.name} is {width}x{height}; "
                           f"using the image's size and checking boxes against it"))
    report.objects_total += len(raw.objects)
    boxes = [b for b in (_validate_object(xml, o, width, height, labelmap, report) for o in raw.objects) if b]
    if not raw.objects:
        report.add(Problem(xml, EMPTY_ANNOTATION, WARNING, "no <object>; kept as a background-only image"))
    elif not boxes:
        report.add(Problem(xml, NO_VALID_OBJECTS, WARNING,
                           "every object was skipped; kept as a background-only image"))
    report.objects_kept += len(boxes)
    report.objects_per_class.update(b.name for b in boxes)
    return ImageAnnotation(raw.image_id, image_path, width, height, boxes)


def _validate_object(xml: str, obj: _RawObject, width: int, height: int, labelmap: LabelMap,
                     report: ValidationReport) -> Optional[Box]:
    def skip(kind: str, message: str) -> None:
        report.add(Problem(xml, kind, SKIP_OBJECT, message, obj.index, obj.name))

    if obj.name is None:
        return skip(MISSING_NAME, "object has no <name>")
    if obj.name not in labelmap.names:
        return skip(UNKNOWN_CLASS, f"class {obj.name!r} is not in the label map {list(labelmap.names)}")
    if obj.coords is None:
        return skip(BAD_BNDBOX, obj.coords_error)
    xmin, ymin, xmax, ymax = obj.coords
    if xmax == xmin or ymax == ymin:
        return skip(ZERO_AREA, f"box ({xmin:g},{ymin:g},{xmax:g},{ymax:g}) has zero width or height")
    if xmax < xmin or ymax < ymin:
        return skip(INVERTED, f"box ({xmin:g},{ymin:g},{xmax:g},{ymax:g}) has max < min")
    if xmin > width or ymin > height or xmax < 1 or ymax < 1:
        return skip(OUTSIDE, f"box ({xmin:g},{ymin:g},{xmax:g},{ymax:g}) lies outside the {width}x{height} image")
    clipped = (max(xmin, 1.0), max(ymin, 1.0), min(xmax, float(width)), min(ymax, float(height)))
    if clipped != obj.coords:
        if clipped[2] <= clipped[0] or clipped[3] <= clipped[1]:
            return skip(ZERO_AREA, f"box ({xmin:g},{ymin:g},{xmax:g},{ymax:g}) has zero area inside the image")
        report.add(Problem(xml, CLIPPED, FIXED,
                           f"box ({xmin:g},{ymin:g},{xmax:g},{ymax:g}) clipped to "
                           f"({clipped[0]:g},{clipped[1]:g},{clipped[2]:g},{clipped[3]:g}) "
                           f"inside [1,{width}]x[1,{height}]", obj.index, obj.name))
        report.objects_fixed += 1
    return Box(obj.name, *clipped, difficult=obj.difficult, truncated=obj.truncated)

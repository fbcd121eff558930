"""Read and validate a Pascal VOC dataset (Annotations/*.xml, JPEGImages/, ImageSets/Main/*.txt).

Every defect is reported with the file (and object) it came from, and the reader decides one
action per defect — skip the object, skip the image, fix it (clip / take the real image size),
or keep it with a warning — so a conversion never loses data without saying so.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from lxml import etree

from harness.data.annotations import Box, ImageAnnotation
from harness.data.classnames import ClassMap
from harness.data.imageinfo import ImageHeaderError, image_size
from harness.data.report import FIXED, SKIP_IMAGE, SKIP_OBJECT, WARNING, Problem, ValidationReport
from harness.labels import PAPER_LABELS, LabelMap, class_name_problem

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
FILENAME_MISMATCH = "filename mismatch"
IMAGE_WITHOUT_XML = "image without annotation"
AMBIGUOUS_IMAGE = "ambiguous image"
BAD_FLAG = "bad flag"
CLASS_MAPPED = "class mapped"
CLASS_DROPPED = "dropped by class map"
UNUSED_MAPPING = "unused class map rule"


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
    line: Optional[int] = None  # of <name> in the XML
    difficult: Optional[bool] = False  # None: the XML's value is not a 0/1/true/false flag
    truncated: Optional[bool] = False
    flag_text: str = ""


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
    class_map: ClassMap | None = None,
) -> VocDataset:
    """Read ``root`` (a VOC directory), validate it and return the kept images.

    ``image_set`` is a split name (``"test"`` → ``ImageSets/Main/test.txt``) or a path to a file
    of image ids; ``None`` reads every ``Annotations/*.xml`` (and reports images without one).
    ``class_map`` renames or drops class names before anything else sees them.  Without
    ``labelmap`` the classes are inferred: the paper's 15-label map when every name is one of
    its labels, else the sorted set of names found.
    """
    root = Path(root)
    annotations_dir = root / "Annotations"
    if not annotations_dir.is_dir():
        raise FileNotFoundError(f"{root}: not a VOC directory (no Annotations/ folder)")
    report = ValidationReport()
    ids = _resolve_ids(root, image_set, report)
    raws = [raw for raw in (_read_xml(root, image_id, report) for image_id in ids) if raw is not None]
    report.images_total = len(ids)
    if class_map is not None:
        _apply_class_map(raws, class_map, report)
    if image_set is None:
        report.images_total += _report_images_without_xml(root, set(ids), report)
    if labelmap is None:
        refuse_unusable_class_names(raws)
        labelmap = infer_labelmap(o.name for raw in raws for o in raw.objects if o.name)
    images = [im for im in (_validate(root, raw, labelmap, report) for raw in raws) if im is not None]
    report.images_kept = len(images)
    set_name = None if image_set is None else str(image_set)
    return VocDataset(root=root, images=images, labelmap=labelmap, report=report, image_set=set_name)


class ClassNameError(ValueError):
    """Class names in the annotations that Caffe or Darknet cannot carry."""


def refuse_unusable_class_names(raws: list[_RawAnnotation], shown: int = 10) -> None:
    """Every class name that would enter the label map must be one the frameworks can carry
    (:func:`harness.labels.class_name_problem`); else one error naming each file and line."""
    bad = [
        f"{raw.xml_path}:{obj.line}: class {obj.name!r}: {class_name_problem(obj.name)}"
        for raw in raws
        for obj in raw.objects
        if obj.name and class_name_problem(obj.name)
    ]
    if bad:
        more = f"\n  ... and {len(bad) - shown} more" if len(bad) > shown else ""
        raise ClassNameError(
            f"{len(bad)} object(s) have class names Caffe or Darknet cannot carry:\n  "
            + "\n  ".join(bad[:shown])
            + more
            + "\nrename them in the XML, or map them with --class-map FILE ('old: new' lines)"
        )


def infer_labelmap(names: Iterable[str]) -> LabelMap:
    """The paper's label map if the names are all paper labels, else the sorted names found."""
    found = set(names)
    if not found:
        raise ValueError("no object names found: cannot infer a label map (pass one explicitly)")
    paper = {label.abbr for label in PAPER_LABELS}
    if found <= paper:
        return LabelMap.paper()
    return LabelMap.from_names(sorted(found))


class ImageSetError(ValueError):
    """An ImageSets file line that is not an image id (white space inside, a path, a control character)."""


_CLASS_FILE_FLAGS = {"1", "-1", "0"}


def read_ids(path: str | Path) -> list[str]:
    """Image ids from an ImageSets file: one id per line (VOC per-class files add a ±1/0 flag).

    An id is a file name in Annotations/: a line with white space inside its id, a path separator,
    a leading dot or a control character is refused with the file and line (never cut at the space
    or followed outside the dataset)."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise FileNotFoundError(f"{path}: cannot read image-set file: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise ImageSetError(f"{path}: not a text file of image ids ({exc})") from None
    ids = []
    for number, line in enumerate(text.splitlines(), start=1):
        tokens = line.split()
        if not tokens:
            continue
        if len(tokens) > 2 or (len(tokens) == 2 and tokens[1] not in _CLASS_FILE_FLAGS):
            raise ImageSetError(
                f"{path}:{number}: {line.strip()!r} is not one image id (ids cannot contain "
                "white space: Darknet and Caffe cut them there); rename the image and its XML"
            )
        image_id = tokens[0]
        if "/" in image_id or "\\" in image_id or image_id.startswith(".") or not image_id.isprintable():
            raise ImageSetError(
                f"{path}:{number}: {image_id!r} is not an image id (a file name in Annotations/, "
                "without path separators, a leading dot or control characters)"
            )
        ids.append(image_id)
    return ids


def _apply_class_map(raws: list[_RawAnnotation], class_map: ClassMap, report: ValidationReport) -> None:
    """Rename or drop object names as the map says; one line per rule says what it did."""
    renamed: Counter = Counter()
    files: dict[str, set] = {}
    for raw in raws:
        kept = []
        for obj in raw.objects:
            matched, new_name = class_map.apply(obj.name)
            if not matched:
                kept.append(obj)
                continue
            renamed[obj.name] += 1
            files.setdefault(str(obj.name), set()).add(raw.xml_path.name)  # matched: a name
            if new_name is None:
                report.objects_total += 1
                report.add(
                    Problem(
                        str(raw.xml_path),
                        CLASS_DROPPED,
                        SKIP_OBJECT,
                        f"class {obj.name!r} is dropped by {class_map.source}",
                        obj.index,
                        obj.name,
                    )
                )
                continue
            obj.name = new_name
            kept.append(obj)
        raw.objects = kept
    for old, new in class_map.rules.items():
        if not renamed[old]:
            report.add(Problem(class_map.source, UNUSED_MAPPING, WARNING, f"no object is named {old!r}"))
        elif new is not None:
            report.add(
                Problem(
                    class_map.source,
                    CLASS_MAPPED,
                    FIXED,
                    f"{old!r} -> {new!r} on {renamed[old]} objects in {len(files[old])} files",
                )
            )


def _report_images_without_xml(root: Path, ids: set[str], report: ValidationReport) -> int:
    """Images in JPEGImages/ that no XML annotates are named and counted, never used silently."""
    folder = root / "JPEGImages"
    orphans = (
        sorted(p for p in folder.glob("*") if p.suffix in IMAGE_SUFFIXES and p.stem not in ids)
        if folder.is_dir()
        else []
    )
    for path in orphans:
        report.add(
            Problem(str(path), IMAGE_WITHOUT_XML, SKIP_IMAGE, f"no Annotations/{path.stem}.xml; the image is not used")
        )
    return len(orphans)


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
        width, height = int(float(_text(node, "size/width") or "")), int(float(_text(node, "size/height") or ""))
    except (TypeError, ValueError):
        return None
    return (width, height) if width > 0 and height > 0 else None


def _read_object(index: int, node) -> _RawObject:
    difficult, truncated = _text(node, "difficult"), _text(node, "truncated")
    name_node = node.find("name")
    obj = _RawObject(
        index,
        _text(node, "name"),
        None,
        difficult=_flag(difficult),
        truncated=_flag(truncated),
        line=name_node.sourceline if name_node is not None else node.sourceline,
    )
    obj.flag_text = ", ".join(
        f"<{tag}>{value}</{tag}>"
        for tag, value, flag in (("difficult", difficult, obj.difficult), ("truncated", truncated, obj.truncated))
        if flag is None
    )
    box = node.find("bndbox")
    if box is None:
        obj.coords_error = "no <bndbox>"
        return obj
    values = {key: _text(box, key) for key in ("xmin", "ymin", "xmax", "ymax")}
    try:
        xmin, ymin, xmax, ymax = (float(values[key] or "") for key in ("xmin", "ymin", "xmax", "ymax"))
        obj.coords = (xmin, ymin, xmax, ymax)
    except (TypeError, ValueError):
        obj.coords_error = f"non-numeric or missing coordinates {values}"
    return obj


_TRUE, _FALSE = {"1", "true", "yes"}, {"0", "false", "no"}


def _flag(value: Optional[str]) -> Optional[bool]:
    """VOC flags are 0/1; other tools write true/false. Absent = False; anything else = None."""
    if value is None:
        return False
    word = value.strip().casefold()
    if word in _TRUE or word in _FALSE:
        return word in _TRUE
    try:
        return int(float(word)) != 0
    except ValueError:
        return None


def image_candidates(root: Path, image_id: str) -> list[Path]:
    """Every JPEGImages/<id>.<ext> entry, dangling symlinks included (so they can be reported)."""
    folder = root / "JPEGImages"
    return [
        folder / f"{image_id}{suffix}"
        for suffix in IMAGE_SUFFIXES
        if (folder / f"{image_id}{suffix}").is_file() or (folder / f"{image_id}{suffix}").is_symlink()
    ]


def find_image(root: Path, image_id: str, filename: Optional[str] = None) -> Optional[Path]:
    """JPEGImages/<id>.<ext> (symlinks followed); None when there is none.

    The XML's ``<filename>`` is deliberately not used to find another image: an XML without its
    own image is an orphan, not a pairing to guess (``filename`` is kept for API compatibility).
    """
    return next((p for p in image_candidates(root, image_id) if p.is_file()), None)


def _validate(
    root: Path, raw: _RawAnnotation, labelmap: LabelMap, report: ValidationReport
) -> Optional[ImageAnnotation]:
    """Check one parsed annotation against its image and the label map; None if the image is skipped."""
    xml = str(raw.xml_path)
    image_path = _paired_image(root, raw, report)
    if image_path is None:
        return None
    try:
        width, height = image_size(image_path)
    except (ImageHeaderError, OSError) as exc:
        report.add(Problem(xml, UNREADABLE_IMAGE, SKIP_IMAGE, str(exc)))
        return None
    if raw.size is None:
        report.add(Problem(xml, MISSING_SIZE, FIXED, f"no valid <size>; using the image's {width}x{height}"))
    elif raw.size != (width, height):
        report.add(
            Problem(
                xml,
                SIZE_MISMATCH,
                FIXED,
                f"<size> says {raw.size[0]}x{raw.size[1]} but {image_path.name} is {width}x{height}; "
                f"using the image's size and checking boxes against it",
            )
        )
    report.objects_total += len(raw.objects)
    boxes = [b for b in (_validate_object(xml, o, width, height, labelmap, report) for o in raw.objects) if b]
    if not raw.objects:
        report.add(Problem(xml, EMPTY_ANNOTATION, WARNING, "no <object>; kept as a background-only image"))
    elif not boxes:
        report.add(Problem(xml, NO_VALID_OBJECTS, WARNING, "every object was skipped; kept as a background-only image"))
    report.objects_kept += len(boxes)
    report.objects_per_class.update(b.name for b in boxes)
    return ImageAnnotation(raw.image_id, image_path, width, height, boxes)


def _paired_image(root: Path, raw: _RawAnnotation, report: ValidationReport) -> Optional[Path]:
    """The image named like the XML; <filename> is compared with it, never used to pick another."""
    xml, candidates = str(raw.xml_path), image_candidates(root, raw.image_id)
    present = [p for p in candidates if p.is_file()]
    named = Path(raw.filename).stem if raw.filename else None
    points_elsewhere = named is not None and named != raw.image_id
    if not present:
        broken = [f"{p.name} -> {os.readlink(p)}" for p in candidates if p.is_symlink()]
        detail = (
            f"broken symlink {', '.join(broken)}"
            if broken
            else f"no image {raw.image_id}.jpg (or .png/.jpeg) in {root / 'JPEGImages'}"
        )
        if points_elsewhere:
            detail += f"; its <filename> names {raw.filename!r}, which is not paired by guess"
        report.add(Problem(xml, MISSING_IMAGE, SKIP_IMAGE, detail))
        return None
    if len(present) > 1:
        report.add(
            Problem(
                xml,
                AMBIGUOUS_IMAGE,
                WARNING,
                f"{len(present)} images for one id ({', '.join(p.name for p in present)}); using {present[0].name}",
            )
        )
    if points_elsewhere:
        report.add(
            Problem(
                xml,
                FILENAME_MISMATCH,
                WARNING,
                f"<filename> is {raw.filename!r} but the XML is {raw.xml_path.name}; "
                f"using {present[0].name} (the image named like the XML)",
            )
        )
    return present[0]


def _validate_object(
    xml: str, obj: _RawObject, width: int, height: int, labelmap: LabelMap, report: ValidationReport
) -> Optional[Box]:
    def skip(kind: str, message: str) -> Optional[Box]:
        report.add(Problem(xml, kind, SKIP_OBJECT, message, obj.index, obj.name))
        return None

    if obj.flag_text:
        report.add(
            Problem(xml, BAD_FLAG, WARNING, f"{obj.flag_text} is not 0/1/true/false; read as 0", obj.index, obj.name)
        )

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
        report.add(
            Problem(
                xml,
                CLIPPED,
                FIXED,
                f"box ({xmin:g},{ymin:g},{xmax:g},{ymax:g}) clipped to "
                f"({clipped[0]:g},{clipped[1]:g},{clipped[2]:g},{clipped[3]:g}) "
                f"inside [1,{width}]x[1,{height}]",
                obj.index,
                obj.name,
            )
        )
        report.objects_fixed += 1
    return Box(obj.name, *clipped, difficult=bool(obj.difficult), truncated=bool(obj.truncated))

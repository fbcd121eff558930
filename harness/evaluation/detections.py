"""Detections from either framework, in one in-memory form, and the readers/writers for them.

Both Darknet (``detector valid``) and Caffe-SSD (``DetectionOutput`` with
``save_output_param { output_format: "VOC" }``) write one text file per class,
``<prefix><class>.txt``, one line per detection: ``image_id score xmin ymin xmax ymax`` in
pixels of the original image. We keep those numbers as they are (VOC convention, see
``harness.data.annotations``): Darknet writes 1-based clamped floats; Caffe-SSD writes
``int(x * width)`` truncations of the same VOC-coordinate frame it was trained on (it
normalises the raw VOC numbers when building the LMDB), so no shift is applied to either.

Also read: a JSON list ``[{"image_id", "class", "score", "bbox": [xmin, ymin, xmax, ymax]}]``
and a CSV with the header ``image_id,class,score,xmin,ymin,xmax,ymax``.

Malformed input raises :class:`DetectionFormatError` naming the file and line. Inverted
boxes (real Darknet output for boxes predicted off the image) are kept and counted in
:attr:`Detections.flagged`. Lines whose
numbers parse but are not finite (a diverged network writes ``nan``/``-nan`` scores) are
skipped and *counted* in :attr:`Detections.skipped`, so a broken model shows up as such
instead of stopping the evaluation.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from harness.core.atomic import load_json, write_csv, write_text

if TYPE_CHECKING:
    from harness.data.detect_inputs import DetectionInputs
    from harness.labels import LabelMap

DEFAULT_PREFIX = "comp4_det_test_"
CSV_COLUMNS = ("image_id", "class", "score", "xmin", "ymin", "xmax", "ymax")


class DetectionFormatError(ValueError):
    """A detection file that cannot be read as documented; the message names file and line."""


@dataclass
class ClassDetections:
    """All detections of one class: parallel arrays, in file order."""

    image_ids: np.ndarray  # (N,) str
    scores: np.ndarray  # (N,) float64
    boxes: np.ndarray  # (N, 4) float64: xmin ymin xmax ymax, VOC pixels

    @classmethod
    def empty(cls) -> ClassDetections:
        return cls(np.empty(0, dtype=str), np.empty(0, dtype=np.float64), np.empty((0, 4), dtype=np.float64))

    @classmethod
    def from_rows(
        cls, image_ids: Sequence[str], scores: Sequence[float], boxes: Sequence[Sequence[float]]
    ) -> ClassDetections:
        if not len(image_ids):
            return cls.empty()
        return cls(
            np.asarray(image_ids, dtype=str),
            np.asarray(scores, dtype=np.float64),
            np.asarray(boxes, dtype=np.float64).reshape(-1, 4),
        )

    def __len__(self) -> int:
        return int(self.scores.shape[0])

    def concat(self, other: ClassDetections) -> ClassDetections:
        if not len(other):
            return self
        if not len(self):
            return other
        return ClassDetections(
            np.concatenate([self.image_ids, other.image_ids]),
            np.concatenate([self.scores, other.scores]),
            np.concatenate([self.boxes, other.boxes]),
        )


@dataclass
class Detections:
    """Detections keyed by class name, plus what the readers skipped and why.

    ``class_files`` says which class had a per-class file (even an empty one), so "no file" and
    "a file without detections" can be told apart in the evaluator's warnings.

    ``skipped`` maps a reason (``"non-finite value"``) to ``{"count": n, "first": "file:line"}``;
    ``flagged`` counts kept-but-odd detections the same way (inverted boxes, see below).
    """

    by_class: dict[str, ClassDetections] = field(default_factory=dict)
    skipped: dict[str, dict] = field(default_factory=dict)
    flagged: dict[str, dict] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)
    class_files: dict[str, str] = field(default_factory=dict)  # per-class text input: class -> file

    def __getitem__(self, name: str) -> ClassDetections:
        return self.by_class.get(name) or ClassDetections.empty()

    def __contains__(self, name: str) -> bool:
        return name in self.by_class

    def __len__(self) -> int:
        return sum(len(d) for d in self.by_class.values())

    @property
    def class_names(self) -> list[str]:
        return list(self.by_class)

    def add(self, name: str, dets: ClassDetections) -> None:
        self.by_class[name] = self[name].concat(dets) if name in self.by_class else dets

    def count_skip(self, reason: str, where: str) -> None:
        _count(self.skipped, reason, where)

    def count_flag(self, reason: str, where: str) -> None:
        _count(self.flagged, reason, where)

    def merge(self, other: Detections) -> None:
        for name, dets in other.by_class.items():
            self.add(name, dets)
        for mine, theirs in ((self.skipped, other.skipped), (self.flagged, other.flagged)):
            for reason, entry in theirs.items():
                _count(mine, reason, entry["first"], entry["count"])
        self.sources.extend(other.sources)
        self.class_files.update(other.class_files)

    @classmethod
    def from_records(cls, records: Iterable[Mapping], source: str = "<records>") -> Detections:
        """Build from ``{"image_id", "class", "score", "bbox": [xmin, ymin, xmax, ymax]}`` dicts."""
        return _records_to_detections(
            ((f"{source}: record {index}", record) for index, record in enumerate(records)), source
        )

    def to_records(self) -> list[dict]:
        """The JSON-list form, class by class in file order."""
        out = []
        for name, d in self.by_class.items():
            for image_id, score, box in zip(d.image_ids.tolist(), d.scores.tolist(), d.boxes.tolist()):
                out.append({"image_id": image_id, "class": name, "score": score, "bbox": box})
        return out


def _count(table: dict[str, dict], reason: str, where: str, n: int = 1) -> None:
    entry = table.setdefault(reason, {"count": 0, "first": where})
    entry["count"] += n


def _records_to_detections(located: Iterable[tuple[str, Mapping]], source: str) -> Detections:
    """Group records by class; ``located`` pairs each record with where it came from."""
    rows: dict[str, tuple[list, list, list]] = {}
    dets = Detections(sources=[source])
    for where, record in located:
        name, image_id, score, box = _record_fields(record, where)
        if not _all_finite(score, box):
            dets.count_skip("non-finite value", where)
            continue
        _flag_inverted(dets, box, where)
        ids, scores, boxes = rows.setdefault(name, ([], [], []))
        ids.append(image_id)
        scores.append(score)
        boxes.append(box)
    for name, (ids, scores, boxes) in rows.items():
        dets.add(name, ClassDetections.from_rows(ids, scores, boxes))
    return dets


def _record_fields(record: Mapping, where: str) -> tuple[str, str, float, list[float]]:
    if not isinstance(record, Mapping):
        raise DetectionFormatError(f"{where}: expected an object, got {type(record).__name__}")
    missing = [k for k in ("image_id", "class", "score", "bbox") if k not in record]
    if missing:
        raise DetectionFormatError(f"{where}: missing key(s) {', '.join(missing)}")
    bbox = record["bbox"]
    if not isinstance(bbox, (list, tuple)) or len(bbox) != 4:
        raise DetectionFormatError(f"{where}: 'bbox' must be [xmin, ymin, xmax, ymax], got {bbox!r}")
    try:
        score = float(record["score"])
        box = [float(v) for v in bbox]
    except (TypeError, ValueError) as exc:
        raise DetectionFormatError(f"{where}: non-numeric score or bbox ({exc})") from exc
    return str(record["class"]), str(record["image_id"]), score, box


def _all_finite(score: float, box: Sequence[float]) -> bool:
    return math.isfinite(score) and all(math.isfinite(v) for v in box)


INVERTED = "inverted box (xmax < xmin or ymax < ymin), kept and scored"


def _flag_inverted(dets: Detections, box: Sequence[float], where: str) -> None:
    """Darknet clamps only xmin/ymin from below and xmax/ymax from above, so a box predicted
    outside the image comes out inverted (e.g. ``ymin 1, ymax -17.8``). It is a real, wrong
    detection: kept (a false positive under every protocol) and counted."""
    if box[2] < box[0] or box[3] < box[1]:
        dets.count_flag(INVERTED, where)


# ----------------------------------------------------------------------------- readers


def read_detections(
    path: str | Path, class_names: Sequence[str] | None = None, prefix: str | None = None
) -> Detections:
    """Read a directory of per-class VOC files, a single per-class file, a JSON list or a CSV.

    For per-class files the class is the file stem minus the prefix. With ``class_names`` the
    class is the longest name the stem ends with (any prefix works: Caffe's
    ``output_name_prefix`` is free text); a file matching no name is an error. Without it, the
    stem minus ``prefix`` (default ``comp4_det_test_``) is the class. In a directory, files of
    more than one prefix (two runs) are refused; an explicit ``prefix`` reads only its files.
    """
    path = Path(path)
    if path.is_dir():
        return _read_directory(path, class_names, prefix)
    if not path.is_file():
        raise DetectionFormatError(f"{path}: no such detection file or directory")
    suffix = path.suffix.lower()
    if suffix == ".json":
        return read_json_detections(path)
    if suffix == ".csv":
        return read_csv_detections(path)
    return read_voc_class_file(path, _class_from_filename(path, class_names, prefix))


def _read_directory(directory: Path, class_names: Sequence[str] | None, prefix: str | None) -> Detections:
    txt_files = sorted(p for p in directory.iterdir() if p.is_file() and p.suffix == ".txt")
    if txt_files:
        return _read_class_files(directory, txt_files, class_names, prefix)
    tables = sorted(p for p in directory.iterdir() if p.is_file() and p.suffix.lower() in (".json", ".csv"))
    if len(tables) == 1:
        return read_detections(tables[0])
    if not tables:
        raise DetectionFormatError(f"{directory}: no detection files (*.txt per class, or one .json/.csv)")
    raise DetectionFormatError(
        f"{directory}: several .json/.csv files ({', '.join(p.name for p in tables)}); pass one file"
    )


def _read_class_files(
    directory: Path, files: list[Path], class_names: Sequence[str] | None, prefix: str | None
) -> Detections:
    """One run's per-class files. Files of two runs (two prefixes) in one directory would be
    merged into one inflated detection set, so that is refused; ``prefix`` picks one run."""
    if prefix is not None:
        files = _files_with_prefix(directory, files, prefix)
    classified = [(file, _class_from_filename(file, class_names, prefix)) for file in files]
    _refuse_mixed_prefixes(directory, classified)
    dets = Detections(sources=[])
    for file, name in classified:
        dets.merge(read_voc_class_file(file, name))
    return dets


def _files_with_prefix(directory: Path, files: list[Path], prefix: str) -> list[Path]:
    chosen = [f for f in files if f.stem.startswith(prefix)]
    if not chosen:
        raise DetectionFormatError(
            f"{directory}: no detection file named '{prefix}<class>.txt' (found: {', '.join(f.name for f in files)})"
        )
    return chosen


def _refuse_mixed_prefixes(directory: Path, classified: list[tuple[Path, str]]) -> None:
    first_file_of_prefix: dict[str, Path] = {}
    for file, name in classified:
        first_file_of_prefix.setdefault(file.stem[: len(file.stem) - len(name)], file)
    if len(first_file_of_prefix) < 2:
        return
    one, other = _same_class_pair(classified) or list(first_file_of_prefix.values())[:2]
    prefixes = ", ".join(repr(p) for p in first_file_of_prefix)
    raise DetectionFormatError(
        f"{directory}: detection files with different prefixes ({prefixes}), e.g. {one.name} and {other.name}; "
        f"merging them would mix two runs: pick one with --prefix (read_detections(..., prefix=...))"
    )


def _same_class_pair(classified: list[tuple[Path, str]]) -> tuple[Path, Path] | None:
    """Two files for one class (they can only differ in prefix): the clearest example to name."""
    seen: dict[str, Path] = {}
    for file, name in classified:
        if name in seen:
            return seen[name], file
        seen[name] = file
    return None


def _class_from_filename(path: Path, class_names: Sequence[str] | None, prefix: str | None) -> str:
    stem = path.stem
    if class_names is not None:
        candidates = [n for n in class_names if stem.endswith(n) and (prefix is None or stem == prefix + n)]
        if not candidates:
            raise DetectionFormatError(
                f"{path}: file name matches no class of the label map ({', '.join(class_names)})"
            )
        return max(candidates, key=len)
    prefix = DEFAULT_PREFIX if prefix is None else prefix
    if not stem.startswith(prefix) or stem == prefix:
        raise DetectionFormatError(f"{path}: expected a file named '{prefix}<class>.txt'")
    return stem[len(prefix) :]


def read_voc_class_file(path: str | Path, class_name: str) -> Detections:
    """One ``image_id score xmin ymin xmax ymax`` file (Darknet ``valid`` / Caffe-SSD VOC output)."""
    path = Path(path)
    dets = Detections(sources=[str(path)], class_files={class_name: str(path)})
    ids: list[str] = []
    scores: list[float] = []
    boxes: list[list[float]] = []
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise DetectionFormatError(f"{path}: cannot read detection file: {exc}") from exc
    for line_no, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        where = f"{path}:{line_no}"
        if len(fields) != 6:
            raise DetectionFormatError(
                f"{where}: expected 6 columns 'image_id score xmin ymin xmax ymax', got {len(fields)}: {line.strip()!r}"
            )
        try:
            values = [float(v) for v in fields[1:]]
        except ValueError as exc:
            raise DetectionFormatError(f"{where}: non-numeric value in {line.strip()!r}") from exc
        if not _all_finite(values[0], values[1:]):
            dets.count_skip("non-finite value", where)
            continue
        _flag_inverted(dets, values[1:], where)
        ids.append(fields[0])
        scores.append(values[0])
        boxes.append(values[1:])
    dets.add(class_name, ClassDetections.from_rows(ids, scores, boxes))
    return dets


def read_json_detections(path: str | Path) -> Detections:
    path = Path(path)
    records = load_json(path, "detections", DetectionFormatError, kind=list)
    return Detections.from_records(records, source=str(path))


def read_csv_detections(path: str | Path) -> Detections:
    path = Path(path)
    try:
        with path.open(newline="") as handle:
            reader = csv.DictReader(handle)
            missing = [c for c in CSV_COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise DetectionFormatError(f"{path}:1: CSV header lacks column(s) {', '.join(missing)}")
            records = []
            for line_no, row in enumerate(reader, start=2):
                if any(row.get(c) in (None, "") for c in CSV_COLUMNS):
                    raise DetectionFormatError(f"{path}:{line_no}: empty or missing cell in {row}")
                records.append((line_no, row))
    except (OSError, UnicodeDecodeError) as exc:
        raise DetectionFormatError(f"{path}: cannot read CSV: {exc}") from exc
    located = (
        (
            f"{path}:{line_no}",
            {
                "image_id": row["image_id"],
                "class": row["class"],
                "score": row["score"],
                "bbox": [row["xmin"], row["ymin"], row["xmax"], row["ymax"]],
            },
        )
        for line_no, row in records
    )
    return _records_to_detections(located, str(path))


# ----------------------------------------------------------------------------- writers


def write_voc_detections(
    dets: Detections, out_dir: str | Path, prefix: str = DEFAULT_PREFIX, class_names: Sequence[str] | None = None
) -> list[Path]:
    """Write ``<prefix><class>.txt`` files in the Darknet/Caffe layout; returns the paths.

    With ``class_names`` every listed class gets a file (empty when it has no detections), the
    way both frameworks write them, so a missing file never means "forgot to write".
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    names = list(class_names) if class_names is not None else dets.class_names
    written = []
    for name in names:
        path = out_dir / f"{prefix}{name}.txt"
        d = dets[name]
        _check_writable_ids(d.image_ids, path)
        lines = [
            f"{i} {s:.9g} {b[0]:.9g} {b[1]:.9g} {b[2]:.9g} {b[3]:.9g}\n"
            for i, s, b in zip(d.image_ids.tolist(), d.scores.tolist(), d.boxes.tolist())
        ]
        write_text(path, "".join(lines))
        written.append(path)
    return written


def _check_writable_ids(image_ids: np.ndarray, path: Path) -> None:
    """A space in an id would shift every column of the line: refuse rather than corrupt."""
    bad = [i for i in np.unique(image_ids).tolist() if not i or any(c.isspace() for c in i)]
    if bad:
        raise DetectionFormatError(f"{path}: image ids with whitespace cannot be written: {bad[:5]}")


def write_detections_csv(det_dir: Path, labelmap: LabelMap, inputs: DetectionInputs, path: Path) -> Path:
    """``harness detect``'s detections.csv: one row per box, with the user's file name next to the id the
    native tools saw."""
    dets = read_detections(det_dir, class_names=labelmap.names)
    rows = []
    for name in dets.class_names:
        found = dets[name]
        for image_id, score, box in zip(found.image_ids, found.scores, found.boxes):
            rows.append(
                [
                    inputs.files.get(str(image_id), str(image_id)),
                    str(image_id),
                    name,
                    f"{score:.6f}",
                    *(f"{v:.2f}" for v in box),
                ]
            )
    rows.sort(key=lambda r: (r[0], -float(r[3])))
    write_csv(path, ["file", "image_id", "class", "score", "xmin", "ymin", "xmax", "ymax"], rows)
    return path

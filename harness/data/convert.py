"""``harness data convert``: one validated VOC dataset → Darknet and Caffe-SSD native layouts.

Layout (docs/architecture.md): OUT/{conversion.json, labels.txt, splits/, darknet/, caffe/}.
The per-image work (full decode check, JPEG re-encode of non-JPEG sources, Darknet image and
label) runs in a process pool; the main process builds the records and is the only LMDB writer.
Every file is written atomically and each LMDB is filled under ``<name>.partial`` and renamed
when complete, so an interrupted conversion resumes with the images and records already there.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import shutil
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import lmdb

from harness.core.atomic import link_or_copy, write_bytes, write_text
from harness.data import caffe_lmdb, darknet
from harness.data.annotations import ImageAnnotation
from harness.data.audit import DatasetAudit, audit_dataset
from harness.data.audit_report import REPORT_HTML, write_dataset_report
from harness.data.classnames import ClassMap, read_class_map
from harness.data.imageinfo import ImageDecodeError, decode_image
from harness.data.input_size import InputSizeAdvice
from harness.data.pool import default_workers, worker_pool
from harness.data.report import SKIP_IMAGE, WARNING, Problem, ValidationReport
from harness.data.splits import Split, dataset_split
from harness.data.voc import MISSING_ANNOTATION, UNREADABLE_IMAGE, split_file
from harness.labels import LabelMap
from harness.progress import progress_bar

log = logging.getLogger(__name__)
FORMAT_VERSION = 2  # 2: Darknet images in darknet/JPEGImages/ (read by pjreddie and AlexeyAB alike)
NOT_IN_SPLIT = "not in any split"
SMALL_TEST_SET = "small test set"
REENCODED = "re-encoded to JPEG"
COMMIT_EVERY = 64
SPLITS = ("train", "test")
AUDIT_DIR = "audit"
# The formats a conversion can write, each a folder of OUT (a backend names the ones it reads:
# FrameworkBackend.dataset_formats). The darknet tree is written always: it holds the images
# every other format points at (the LMDB records carry its JPEG bytes, keyed by its paths).
BASE_FORMAT = "darknet"
LMDB_FORMAT = "caffe"  # train/test AnnotatedDatum LMDBs, labelmap.prototxt, test_name_size.txt
DATASET_FORMATS = (BASE_FORMAT, LMDB_FORMAT)


def check_formats(formats: Sequence[str]) -> tuple[str, ...]:
    """The formats to write (the base one always); ValueError naming a format no converter writes."""
    unknown = sorted(set(formats) - set(DATASET_FORMATS))
    if unknown:
        raise ValueError(
            f"no converter writes dataset format(s) {', '.join(unknown)}; known: {', '.join(DATASET_FORMATS)}"
        )
    return tuple(f for f in DATASET_FORMATS if f in formats or f == BASE_FORMAT)


class LeakageError(ValueError):
    """The split puts a twin of a training image in the test set."""


@dataclass
class ConvertResult:
    out_dir: Path
    labelmap: LabelMap
    train_ids: list[str]
    test_ids: list[str]
    counts: dict
    report: ValidationReport
    split_source: str = ""
    resumed: bool = False  # True when earlier work in out_dir was reused
    work: dict = field(default_factory=dict)  # {"converted": n, "reused": n}
    seconds: float = 0.0
    input_size: Optional[InputSizeAdvice] = None  # what the kept objects suggest for --size

    def summary(self) -> str:
        lines = [
            f"converted dataset: {self.out_dir}",
            f"split: {self.split_source}",
            f"train: {len(self.train_ids)} images, test: {len(self.test_ids)} images",
        ]
        for split in SPLITS:
            per_class = self.counts[split]["objects_per_class"]
            lines.append(f"{split} objects per class: " + ", ".join(f"{n}={c}" for n, c in per_class.items()))
        lines.append(
            f"work: {self.work.get('converted', 0)} images converted now, "
            f"{self.work.get('reused', 0)} reused from an earlier run ({self.seconds:.1f} s)"
        )
        lines += [self.input_size.line()] if self.input_size else []
        return "\n".join(lines) + "\n" + self.report.summary()


@dataclass(frozen=True)
class _Task:
    """One image to put into one split (picklable: sent to a worker process)."""

    split: str
    index: int
    key: bytes
    image: ImageAnnotation
    labelmap_names: tuple[str, ...]
    darknet_dir: str
    need_record: bool


def convert_dataset(
    voc_root: str | Path,
    out_dir: str | Path,
    labelmap: LabelMap | str | Path | None = None,
    seed: int = 0,
    workers: int | None = None,
    progress: bool = True,
    overwrite: bool = False,
    class_map: ClassMap | str | Path | None = None,
    allow_leakage: bool = False,
    dedupe: bool = False,
    allow_suspect_classes: bool = False,
    formats: Sequence[str] = DATASET_FORMATS,
) -> ConvertResult:
    """Validate ``voc_root`` and write the native layouts ``formats`` asks for under ``out_dir``
    (:data:`DATASET_FORMATS`; default all; a later call asking for more adds them); resumable.

    ``labelmap`` may be a ``LabelMap`` or an ``obj.names`` / ``labelmap.prototxt`` path.
    ``seed`` drives the paper's 7/100 test draw (when the dataset has no ImageSets) and the
    shuffled order of the training LMDB.  ``workers`` processes decode-check images and write the
    Darknet files (default: all cores but the one writing the LMDB).  ``overwrite`` discards an earlier conversion with
    different inputs instead of refusing.

    The dataset audit (``harness.data.audit``) runs first and is written to ``OUT/audit/``.
    ``class_map`` (a ``ClassMap`` or an ``old: new`` file) renames or drops class names.  A split
    with a test image whose twin is in train is refused unless ``dedupe`` (drop those test
    images) or ``allow_leakage``; class names that look like typos (no label map given) are
    refused unless ``allow_suspect_classes``.
    """
    started = time.monotonic()
    lmdb_wanted = LMDB_FORMAT in check_formats(formats)
    voc_root, out_dir = Path(voc_root).resolve(), Path(out_dir).resolve()
    if isinstance(labelmap, (str, Path)):
        labelmap = LabelMap.from_file(labelmap)
    if isinstance(class_map, (str, Path)):
        class_map = read_class_map(class_map)
    audit = audit_dataset(voc_root, labelmap=labelmap, class_map=class_map, seed=seed, workers=workers, dedupe=dedupe)
    _refuse_audit_findings(audit, allow_leakage, allow_suspect_classes)
    dataset, split = audit.dataset, audit.split
    report, labelmap = dataset.report, dataset.labelmap
    by_id = {image.image_id: image for image in dataset.images}
    train, test = _reconcile_split(voc_root, dataset_split(voc_root) or split, by_id, report)
    darknet.check_darknet_paths(out_dir / "darknet", train + test)

    if len(test) < 4:
        report.add(
            Problem(
                str(voc_root),
                SMALL_TEST_SET,
                WARNING,
                f"only {len(test)} test images: Darknet's `detector valid` crashes with fewer than 4",
            )
        )
    fingerprint = _fingerprint(voc_root, labelmap, seed, train, test, by_id)
    resumed = _prepare_out_dir(out_dir, fingerprint, overwrite)
    done = _finished_result(out_dir, fingerprint, report)
    if done is not None and lmdb_wanted and not (out_dir / "caffe" / "test_name_size.txt").is_file():
        done = None  # converted earlier without the LMDBs: add them (the darknet files are reused)
    if done is None or not (out_dir / AUDIT_DIR / REPORT_HTML).is_file():
        write_dataset_report(audit, out_dir / AUDIT_DIR)  # same fingerprint, same report: not redrawn on reuse
    if done is not None:
        return done

    order = {"train": _shuffled(train, seed), "test": list(test)}
    converted, reused, failed = 0, 0, set()
    for split_name in SPLITS:
        stats = _convert_split(
            out_dir, split_name, [by_id[i] for i in order[split_name]], labelmap, workers, progress, report, lmdb_wanted
        )
        converted, reused = converted + stats["converted"], reused + stats["reused"]
        failed |= stats["failed"]
    kept = {name: [i for i in order[name] if i not in failed] for name in SPLITS}
    _write_lists(out_dir, labelmap, kept, by_id, lmdb_wanted)
    result = ConvertResult(
        out_dir=out_dir,
        labelmap=labelmap,
        train_ids=sorted(kept["train"]),
        test_ids=list(kept["test"]),
        counts=_counts(kept, by_id, labelmap, report),
        report=report,
        split_source=split.source,
        resumed=resumed or reused > 0,
        work={"converted": converted, "reused": reused},
        seconds=time.monotonic() - started,
        input_size=audit.input_size,
    )
    _write_summary(out_dir, result, fingerprint, voc_root, seed)
    return result


# ----------------------------------------------------------------------------- audit and splits


def _refuse_audit_findings(audit: DatasetAudit, allow_leakage: bool, allow_suspect_classes: bool) -> None:
    """A leaking split or typo classes would ruin the reproduction silently: stop and say which files."""
    if audit.leaks and not allow_leakage:
        shown = "; ".join(f"test {leak.test_id} = train {leak.train_id} ({leak.kind})" for leak in audit.leaks[:10])
        raise LeakageError(
            f"{audit.dataset.root}: {len(audit.leaks)} test images have a twin in train ({shown}"
            f"{' ...' if len(audit.leaks) > 10 else ''}); use --dedupe to drop the test twins or "
            f"--allow-leakage to keep them ('harness data check' writes the full table)"
        )
    typos = [s for s in audit.suspects if s.similar_to or len(s.name) == 1]
    if typos and not allow_suspect_classes:
        shown = "; ".join(f"{s.name!r} {s.reason}" for s in typos)
        raise ValueError(
            f"{audit.dataset.root}: class names look like typos ({shown}); fix them with "
            f"--class-map FILE ('old: new' lines), give --labelmap, or --allow-suspect-classes"
        )


def _reconcile_split(voc_root: Path, split: Split, by_id: dict, report: ValidationReport) -> tuple[list, list]:
    """Keep split ids that survived validation; report ids that are missing or in no split."""
    overlap = sorted(set(split.train) & set(split.test))
    if overlap:
        raise ValueError(
            f"{voc_root}: {len(overlap)} image ids are in both the train and the test split "
            f"(e.g. {overlap[:5]}); fix ImageSets/Main"
        )
    known = {p.stem for p in (voc_root / "Annotations").glob("*.xml")}
    for name, ids in (("train", split.train), ("test", split.test)):
        for image_id in ids:
            if image_id not in known:
                report.images_total += 1
                listed_in = split.origin.get(image_id) or split_file(voc_root, name)
                report.add(
                    Problem(
                        str(listed_in),
                        MISSING_ANNOTATION,
                        SKIP_IMAGE,
                        f"id {image_id!r} is listed but Annotations/{image_id}.xml does not exist",
                    )
                )
    in_split = set(split.train) | set(split.test)
    for image_id in sorted(set(by_id) - in_split):
        report.add(
            Problem(
                str(by_id[image_id].image_path),
                NOT_IN_SPLIT,
                SKIP_IMAGE,
                "image is in neither the train nor the test image set",
            )
        )
        report.unkeep([b.name for b in by_id[image_id].objects])
    return [i for i in split.train if i in by_id], [i for i in split.test if i in by_id]


def _shuffled(ids: list[str], seed: int) -> list[str]:
    """Training records are shuffled like ``convert_annoset --shuffle`` (Caffe reads in key order).

    Ranked by a seeded hash, so the order is the same on every Python version.
    """
    return sorted(ids, key=lambda image_id: hashlib.sha256(f"train-order:{seed}:{image_id}".encode()).hexdigest())


# ----------------------------------------------------------------------------- resume state


def _fingerprint(voc_root: Path, labelmap: LabelMap, seed: int, train: list, test: list, by_id: dict) -> str:
    """Identity of a conversion: settings, splits, every kept box and each image file's size/mtime."""
    digest = hashlib.sha256(
        json.dumps(
            {
                "version": FORMAT_VERSION,
                "voc": str(voc_root),
                "labels": labelmap.names,
                "seed": seed,
                "train": sorted(train),
                "test": test,
            }
        ).encode()
    )
    for image_id in sorted(train + test):
        image = by_id[image_id]
        stat = image.image_path.stat()
        digest.update(
            repr(
                (
                    image_id,
                    str(image.image_path),
                    stat.st_size,
                    stat.st_mtime_ns,
                    image.width,
                    image.height,
                    image.objects,
                )
            ).encode()
        )
    return digest.hexdigest()


def _state_path(out_dir: Path) -> Path:
    return out_dir / ".convert-state.json"


def _prepare_out_dir(out_dir: Path, fingerprint: str, overwrite: bool) -> bool:
    """Record what is being converted; refuse to mix two different conversions in one directory."""
    state = _state_path(out_dir)
    if state.is_file():
        recorded = json.loads(state.read_text())
        previous = recorded.get("fingerprint")
        if recorded.get("format", 1) != FORMAT_VERSION:
            log.info(
                "%s: conversion of an older layout (format %s); converting again", out_dir, recorded.get("format", 1)
            )
            _remove_outputs(out_dir)
            previous = None
            overwrite = True
        if previous == fingerprint:
            _remove_temporaries(out_dir)
            return True
        if not overwrite:
            raise ValueError(
                f"{out_dir} holds a conversion of different inputs (annotations, image files, "
                f"label map, seed or splits changed); use another --out or --overwrite"
            )
        _remove_outputs(out_dir)
    elif out_dir.is_dir() and any(out_dir.iterdir()) and not overwrite:
        raise ValueError(
            f"{out_dir} is not empty and is not a conversion made by this tool; "
            f"use an empty or new --out (or --overwrite)"
        )
    elif overwrite and out_dir.is_dir():
        _remove_outputs(out_dir)
    write_text(state, json.dumps({"fingerprint": fingerprint, "format": FORMAT_VERSION}) + "\n")
    return False


def _remove_temporaries(out_dir: Path) -> None:
    """Half-written files of an interrupted run (atomic writes leave only these behind)."""
    for folder in (f"darknet/{darknet.DARKNET_IMAGE_DIR}", "darknet/labels", "darknet", "caffe", "splits", "."):
        for tmp in (out_dir / folder).glob(".*.tmp*"):
            tmp.unlink(missing_ok=True)


def _remove_outputs(out_dir: Path) -> None:
    for name in ("darknet", "caffe", "splits", AUDIT_DIR):
        shutil.rmtree(out_dir / name, ignore_errors=True)
    for name in ("conversion.json", "labels.txt", _state_path(out_dir).name):
        (out_dir / name).unlink(missing_ok=True)


def _finished_result(out_dir: Path, fingerprint: str, report: ValidationReport) -> Optional[ConvertResult]:
    """The earlier result when ``conversion.json`` says the same inputs were fully converted."""
    summary_path = out_dir / "conversion.json"
    if not summary_path.is_file():
        return None
    summary = json.loads(summary_path.read_text())
    if summary.get("fingerprint") != fingerprint:
        return None
    images = summary["counts"]["train"]["images"] + summary["counts"]["test"]["images"]
    return ConvertResult(
        out_dir=out_dir,
        labelmap=LabelMap.from_names(summary["labels"]),
        train_ids=summary["splits"]["train"],
        test_ids=summary["splits"]["test"],
        counts=summary["counts"],
        report=report,
        split_source=summary["split_source"],
        resumed=True,
        work={"converted": 0, "reused": images},
        input_size=InputSizeAdvice.from_dict(summary["input_size"]) if summary.get("input_size") else None,
    )


# ----------------------------------------------------------------------------- per-image work


def _convert_split(
    out_dir: Path,
    split: str,
    images: list[ImageAnnotation],
    labelmap: LabelMap,
    workers: int | None,
    progress: bool,
    report: ValidationReport,
    lmdb_wanted: bool = True,
) -> dict:
    final_dir = out_dir / "caffe" / f"{split}_lmdb"
    partial_dir = out_dir / "caffe" / f"{split}_lmdb.partial"
    darknet_dir = out_dir / "darknet"
    stats: dict[str, Any] = {"converted": 0, "reused": 0, "failed": set()}
    if final_dir.is_dir() or not lmdb_wanted:
        present = None  # LMDB finished in an earlier run (or not asked for): only darknet files may be missing
    else:
        partial_dir.mkdir(parents=True, exist_ok=True)
        present = _present_keys(partial_dir)
    tasks = []
    for index, image in enumerate(images):
        key = caffe_lmdb.record_key(index, f"darknet/{darknet.DARKNET_IMAGE_DIR}/{image.image_id}.jpg")
        need_record = present is not None and key not in present
        if not need_record and _darknet_done(darknet_dir, image.image_id):
            stats["reused"] += 1
            continue
        tasks.append(_Task(split, index, key, image, labelmap.names, str(darknet_dir), need_record))
    if tasks:
        _run_tasks(tasks, partial_dir, workers, progress, report, stats, split)
    if present is not None:
        os.replace(partial_dir, final_dir)
    return stats


def _present_keys(lmdb_dir: Path) -> set[bytes]:
    env = lmdb.open(str(lmdb_dir), map_size=1 << 20, readonly=False, subdir=True)
    try:
        with env.begin() as txn:
            return {key for key, _ in txn.cursor()}
    finally:
        env.close()


def _darknet_done(darknet_dir: Path, image_id: str) -> bool:
    return (
        darknet.darknet_image_file(darknet_dir, image_id).is_file()
        and darknet.darknet_label_file(darknet_dir, image_id).is_file()
    )


def _run_tasks(
    tasks: list[_Task],
    lmdb_dir: Path,
    workers: int | None,
    progress: bool,
    report: ValidationReport,
    stats: dict,
    split: str,
) -> None:
    workers = max(1, min(workers or default_workers(), len(tasks)))
    bar = progress_bar(len(tasks), f"convert {split}", "img", progress)
    # The pool is forked before the LMDB is opened: LMDB handles must not cross a fork.
    with worker_pool(workers) as pool:
        results = pool.imap(convert_image, tasks, chunksize=4) if pool else map(convert_image, tasks)
        env = _open_writer(lmdb_dir, tasks) if any(t.need_record for t in tasks) else None
        batch: list[tuple[bytes, bytes]] = []
        try:
            for task, outcome in zip(tasks, results):
                bar.update(1)
                if isinstance(outcome, Problem):
                    report.add(outcome)
                    report.unkeep([b.name for b in task.image.objects])
                    stats["failed"].add(task.image.image_id)
                    continue
                stats["converted"] += 1
                if task.need_record:
                    batch.append((task.key, _record(task, channels=outcome)))
                if len(batch) >= COMMIT_EVERY:
                    _commit(env, batch)
                    batch = []
            if batch:
                _commit(env, batch)
        finally:
            if env is not None:
                env.close()
            bar.close()


def _record(task: _Task, channels: int) -> bytes:
    """Serialized AnnotatedDatum holding the bytes of the Darknet image (= the source JPEG)."""
    jpeg = darknet.darknet_image_file(Path(task.darknet_dir), task.image.image_id).read_bytes()
    labelmap = LabelMap.from_names(task.labelmap_names)
    return caffe_lmdb.annotated_datum(task.image, jpeg, channels, labelmap).SerializeToString()


def _open_writer(lmdb_dir: Path, tasks: list[_Task]):
    expected = sum(t.image.image_path.stat().st_size for t in tasks if t.need_record)
    current = sum(f.stat().st_size for f in lmdb_dir.glob("*.mdb"))
    return lmdb.open(str(lmdb_dir), map_size=2 * (expected + current) + (64 << 20), subdir=True)


def _commit(env, batch: list[tuple[bytes, bytes]]) -> None:
    """Write one batch in one transaction; a crash loses at most this batch (redone on resume).

    The map size is an estimate; when it is too small the map is doubled and the batch retried.
    """
    while True:
        try:
            with env.begin(write=True) as txn:
                for key, value in batch:
                    txn.put(key, value)
            return
        except lmdb.MapFullError:
            env.set_mapsize(env.info()["map_size"] * 2)
        except lmdb.Error as exc:
            raise _lmdb_os_error(env.path(), batch, exc) from None


def _lmdb_os_error(lmdb_dir: str, batch: list[tuple[bytes, bytes]], exc: Exception) -> OSError:
    """LMDB reports a full disk as 'Input/output error': say which it is, naming the LMDB."""
    needed = sum(len(k) + len(v) for k, v in batch)
    if shutil.disk_usage(lmdb_dir).free < 2 * needed + (1 << 20):
        return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), lmdb_dir)
    return OSError(errno.EIO, f"LMDB write failed ({exc})", lmdb_dir)


def convert_image(task: _Task):
    """Worker: decode-check the image and write its Darknet image + label; returns the channel count.

    The record itself is built by the LMDB writer from the written JPEG, so only a small result
    crosses the process boundary (sending ~100 KB records back cost more than the decoding).
    """
    import cv2

    image = task.image
    try:
        raw = image.image_path.read_bytes()
    except OSError as exc:
        return Problem(str(image.image_path), UNREADABLE_IMAGE, SKIP_IMAGE, f"cannot read: {exc}")
    try:
        decoded = decode_image(raw, image.width, image.height)
    except ImageDecodeError as exc:
        return Problem(str(image.image_path), UNREADABLE_IMAGE, SKIP_IMAGE, str(exc))
    is_jpeg = raw[:2] == b"\xff\xd8"
    jpeg = raw if is_jpeg else cv2.imencode(".jpg", decoded, [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes()
    darknet_dir = Path(task.darknet_dir)
    labelmap = LabelMap.from_names(task.labelmap_names)
    target = darknet.darknet_image_file(darknet_dir, image.image_id)
    if is_jpeg:
        link_or_copy(image.image_path, target)
    else:
        write_bytes(target, jpeg)
    write_text(darknet.darknet_label_file(darknet_dir, image.image_id), darknet.yolo_label_text(image, labelmap))
    return int(decoded.shape[2])


# ----------------------------------------------------------------------------- lists and summary


def _write_lists(out_dir: Path, labelmap: LabelMap, kept: dict, by_id: dict, lmdb_wanted: bool = True) -> None:
    names = "".join(f"{n}\n" for n in labelmap.names)
    write_text(out_dir / "labels.txt", names)
    write_text(out_dir / "darknet" / "obj.names", names)
    for split, list_name in (("train", "train.txt"), ("test", "valid.txt")):
        ids = kept[split]
        write_text(out_dir / "splits" / f"{split}.txt", "".join(f"{i}\n" for i in sorted(ids)))
        images = "".join(f"{darknet.darknet_image_file(out_dir / 'darknet', i)}\n" for i in sorted(ids))
        write_text(out_dir / "darknet" / list_name, images)
    if not lmdb_wanted:
        return
    write_text(out_dir / "caffe" / "labelmap.prototxt", caffe_lmdb.labelmap_prototxt(labelmap))
    # Same order as the test LMDB: DetectionOutput pairs the n-th record with the n-th line.
    sizes = "".join(f"{i} {by_id[i].height} {by_id[i].width}\n" for i in kept["test"])
    write_text(out_dir / "caffe" / "test_name_size.txt", sizes)


def _counts(kept: dict, by_id: dict, labelmap: LabelMap, report: ValidationReport) -> dict:
    counts = {}
    for split in SPLITS:
        per_class = Counter(b.name for i in kept[split] for b in by_id[i].objects)
        counts[split] = {
            "images": len(kept[split]),
            "objects": sum(per_class.values()),
            "objects_per_class": {n: per_class.get(n, 0) for n in labelmap.names},
            "images_without_objects": sum(1 for i in kept[split] if not by_id[i].objects),
        }
    counts["validation"] = {k: v for k, v in report.to_dict().items() if k != "problems"}
    return counts


def _write_summary(out_dir: Path, result: ConvertResult, fingerprint: str, voc_root: Path, seed: int) -> None:
    summary = {
        "format_version": FORMAT_VERSION,
        "fingerprint": fingerprint,
        "voc_root": str(voc_root),
        "seed": seed,
        "labels": list(result.labelmap.names),
        "split_source": result.split_source,
        "splits": {"train": result.train_ids, "test": result.test_ids},
        "counts": result.counts,
        "input_size": result.input_size.to_dict() if result.input_size else None,
        "work": result.work,
        "seconds": round(result.seconds, 3),
        "box_conventions": {
            "darknet": "cx=((xmin+xmax)/2-1)/W, w=(xmax-xmin)/W (Darknet voc_label.py; VOC 1-based boxes)",
            "caffe": "xmin/W, ymin/H, xmax/W, ymax/H (SSD convert_annoset; VOC 1-based boxes)",
        },
        "problems": [p for p in result.report.to_dict()["problems"]],
    }
    write_text(out_dir / "conversion.json", json.dumps(summary, indent=1) + "\n")

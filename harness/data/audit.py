"""Dataset audit: what a VOC set hides before training — duplicates across the split, orphans,
class-name typos, undecodable images, empty splits — found in one pass and reported by file.

``audit_dataset`` runs the VOC validation (``load_voc``), then decodes and fingerprints every
kept image in a process pool (all cores), finds exact and near-duplicate images, chooses the
split (the dataset's ImageSets, else the paper's 7/100 draw with twins kept together and rare
classes in test) and names each test image that has a twin in train.  ``harness data check``
prints and writes it (``harness.data.audit_report``); ``harness data convert`` runs it first.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional, Union

from harness.data.classnames import ClassMap, SuspectClass, suspect_class_names
from harness.data.fingerprint import NEAR_DUPLICATE_BITS, content_hash, near_pairs, perceptual_hash
from harness.data.imageinfo import ImageDecodeError, decode_image
from harness.data.input_size import InputSizeAdvice, suggest_input_size
from harness.data.pool import default_workers, worker_pool
from harness.data.report import SKIP_IMAGE, WARNING, Problem, ValidationReport
from harness.data.splits import Split, dataset_split, paper_split
from harness.data.voc import UNREADABLE_IMAGE, VocDataset, load_voc
from harness.labels import PAPER_LABELS, LabelMap

DUPLICATE_IMAGE = "duplicate image"
LEAKAGE = "train/test leakage"
LEAKAGE_DROPPED = "test twin dropped"
SUSPECT_CLASS = "suspect class name"
EXACT, NEAR = "exact", "near"


class EmptyDatasetError(ValueError):
    """Nothing to train or test on: no usable image, or a split without a single object."""


@dataclass(frozen=True)
class ImageFacts:
    """What decoding one image told: its fingerprints and channel count."""

    image_id: str
    sha256: str
    phash: int
    channels: int
    file_bytes: int


@dataclass(frozen=True)
class Twin:
    """Two images that are the same picture: byte-identical (``exact``) or within the pHash threshold."""

    first: str
    second: str
    kind: str
    distance: int  # differing pHash bits (0 for exact copies)


@dataclass(frozen=True)
class Leak:
    """A test image whose twin is in the training split."""

    test_id: str
    train_id: str
    kind: str
    distance: int


@dataclass
class DatasetAudit:
    dataset: VocDataset
    split: Split  # ids of kept images only
    own_split: bool  # the dataset's ImageSets (True) or the paper rule (False)
    facts: dict[str, ImageFacts]
    twins: list[Twin]
    leaks: list[Leak]
    suspects: list[SuspectClass]
    class_map: Optional[ClassMap] = None
    workers: int = 1
    seconds: float = 0.0
    dropped: list[str] = field(default_factory=list)  # test twins removed by ``dedupe``
    input_size: Optional[InputSizeAdvice] = None  # which `train --size` the kept objects suggest

    @property
    def report(self) -> ValidationReport:
        return self.dataset.report

    def twin_groups(self) -> list[set[str]]:
        """Connected groups of twins (a chain of near-duplicates is one group)."""
        return _connected(self.twins)

    def summary(self, max_messages: int = 50) -> str:
        lines = [
            f"label map: {', '.join(self.dataset.labelmap.names)}",
            f"split: {self.split.source}: train {len(self.split.train)} images, test {len(self.split.test)} images",
            f"images decoded: {len(self.facts)} ({self.workers} processes, {self.seconds:.1f} s)",
            f"duplicates: {sum(t.kind == EXACT for t in self.twins)} exact pairs, "
            f"{sum(t.kind == NEAR for t in self.twins)} near pairs (pHash <= {NEAR_DUPLICATE_BITS} bits); "
            f"leakage: {len(self.leaks)} test images with a twin in train",
        ]
        lines += [
            f"  leak: test {leak.test_id} = train {leak.train_id} ({_twin_words(leak.kind, leak.distance)})"
            for leak in self.leaks[:max_messages]
        ]
        lines += [f"suspect class: {s.name!r} ({s.objects} objects) {s.reason}" for s in self.suspects]
        lines += [self.input_size.line()] if self.input_size else []
        return "\n".join(lines) + "\n" + self.report.summary(max_messages=max_messages)

    def to_dict(self) -> dict:
        return {
            "voc_root": str(self.dataset.root),
            "labels": list(self.dataset.labelmap.names),
            "class_map": None
            if self.class_map is None
            else {"file": self.class_map.source, "rules": self.class_map.rules},
            "split": {
                "source": self.split.source,
                "own_image_sets": self.own_split,
                "train": self.split.train,
                "test": self.split.test,
            },
            "near_duplicate_bits": NEAR_DUPLICATE_BITS,
            "twins": [asdict(t) for t in self.twins],
            "leaks": [asdict(leak) for leak in self.leaks],
            "dropped_test_twins": self.dropped,
            "suspect_classes": [asdict(s) for s in self.suspects],
            "decode": {"images": len(self.facts), "workers": self.workers, "seconds": round(self.seconds, 3)},
            "validation": self.report.to_dict(),
            "input_size": self.input_size.to_dict() if self.input_size else None,
        }


def audit_dataset(
    voc_root: Union[str, Path],
    out_dir: Union[str, Path, None] = None,
    *,
    labelmap: Optional[LabelMap] = None,
    class_map: Optional[ClassMap] = None,
    image_set: Union[str, Path, None] = None,
    seed: int = 0,
    workers: Optional[int] = None,
    dedupe: bool = False,
) -> DatasetAudit:
    """Audit ``voc_root``; with ``out_dir`` also write dataset_report.html, dataset.json and PNGs there.

    ``dedupe`` drops every test image that has a twin in train (reported as ``test twin dropped``).
    Raises ``EmptyDatasetError`` when no image is usable or a split has no object.
    """
    started = time.monotonic()
    root = Path(voc_root)
    if image_set is None and (root / "Annotations").is_dir() and not any((root / "Annotations").glob("*.xml")):
        raise EmptyDatasetError(f"{root / 'Annotations'}: no XML files: the dataset is empty")
    dataset = load_voc(root, image_set=image_set, labelmap=labelmap, class_map=class_map)
    workers = max(1, workers or default_workers())
    facts = _scan(dataset, workers)
    twins = find_twins([facts[i] for i in dataset.ids])
    suspects = _flag_suspect_classes(dataset) if labelmap is None else []
    split, own = _choose_split(root, dataset, twins, seed)
    audit = DatasetAudit(dataset, split, own, facts, twins, _leaks(twins, split), suspects, class_map, workers)
    _report_twins(audit)
    if dedupe:
        _drop_test_twins(audit)
    _refuse_empty(audit, whole_dataset=image_set is None)
    audit.input_size = suggest_input_size(audit.dataset.images)  # once, on the images kept after dedupe
    audit.seconds = time.monotonic() - started
    if out_dir is not None:
        from harness.data.audit_report import write_dataset_report

        write_dataset_report(audit, Path(out_dir))
    return audit


# ----------------------------------------------------------------------------- decoding


def scan_image(job: tuple[str, str, int, int]) -> Union[ImageFacts, tuple[str, str]]:
    """Worker: read, decode (size-checked) and fingerprint one image; ``(id, why)`` when it fails."""
    image_id, path, width, height = job
    try:
        raw = Path(path).read_bytes()
        decoded = decode_image(raw, width, height)
    except (OSError, ImageDecodeError) as exc:
        return image_id, str(exc)
    channels = 1 if decoded.ndim == 2 else int(decoded.shape[2])
    return ImageFacts(image_id, content_hash(raw), perceptual_hash(decoded), channels, len(raw))


def _scan(dataset: VocDataset, workers: int) -> dict[str, ImageFacts]:
    """Decode every kept image; unreadable ones are reported and taken out of the dataset."""
    jobs = [(im.image_id, str(im.image_path), im.width, im.height) for im in dataset.images]
    with worker_pool(workers if len(jobs) >= 4 * workers else 1) as pool:
        outcomes = pool.imap(scan_image, jobs, chunksize=8) if pool else map(scan_image, jobs)
        results = list(outcomes)
    facts, failed = {}, set()
    by_id = {im.image_id: im for im in dataset.images}
    for outcome in results:
        if isinstance(outcome, ImageFacts):
            facts[outcome.image_id] = outcome
            continue
        image_id, why = outcome
        image = by_id[image_id]
        dataset.report.add(Problem(str(image.image_path), UNREADABLE_IMAGE, SKIP_IMAGE, why))
        dataset.report.unkeep([b.name for b in image.objects])
        failed.add(image_id)
    dataset.images = [im for im in dataset.images if im.image_id not in failed]
    return facts


# ----------------------------------------------------------------------------- duplicates and leakage


def find_twins(facts: list[ImageFacts]) -> list[Twin]:
    """Exact copies (same SHA-256) and near-duplicates (pHash within NEAR_DUPLICATE_BITS), each pair once."""
    twins = {}
    for pair in near_pairs([f.phash for f in facts]):
        first, second = facts[pair.first], facts[pair.second]
        kind = EXACT if first.sha256 == second.sha256 else NEAR
        twins[(first.image_id, second.image_id)] = Twin(first.image_id, second.image_id, kind, pair.distance)
    by_hash: dict[str, list[str]] = {}
    for fact in facts:
        by_hash.setdefault(fact.sha256, []).append(fact.image_id)
    for ids in by_hash.values():  # byte-identical files always have equal pHashes; kept for clarity
        for other in ids[1:]:
            twins.setdefault((ids[0], other), Twin(ids[0], other, EXACT, 0))
    return sorted(twins.values(), key=lambda t: (t.first, t.second))


def _connected(twins: list[Twin]) -> list[set[str]]:
    parent: dict[str, str] = {}

    def find(node: str) -> str:
        while parent.setdefault(node, node) != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    for twin in twins:
        parent[find(twin.first)] = find(twin.second)
    groups: dict[str, set[str]] = {}
    for node in list(parent):
        groups.setdefault(find(node), set()).add(node)
    return sorted(groups.values(), key=min)


def _leaks(twins: list[Twin], split: Split) -> list[Leak]:
    """One row per test image with a twin in train (the closest twin)."""
    train, test = set(split.train), set(split.test)
    best: dict[str, Leak] = {}
    for twin in twins:
        for a, b in ((twin.first, twin.second), (twin.second, twin.first)):
            if a in test and b in train:
                leak = Leak(a, b, twin.kind, twin.distance)
                if a not in best or (leak.distance, leak.train_id) < (best[a].distance, best[a].train_id):
                    best[a] = leak
    return [best[i] for i in sorted(best)]


def _twin_words(kind: str, distance: int) -> str:
    return "byte-identical" if kind == EXACT else f"near-duplicate, pHash {distance} bits apart"


def _report_twins(audit: DatasetAudit) -> None:
    paths = {im.image_id: str(im.image_path) for im in audit.dataset.images}
    leaked = {leak.test_id: leak for leak in audit.leaks}
    for twin in audit.twins:
        audit.report.add(
            Problem(
                paths[twin.second],
                DUPLICATE_IMAGE,
                WARNING,
                f"{_twin_words(twin.kind, twin.distance)} with {Path(paths[twin.first]).name}",
            )
        )
    for test_id, leak in leaked.items():
        audit.report.add(
            Problem(
                paths[test_id],
                LEAKAGE,
                WARNING,
                f"test image is {_twin_words(leak.kind, leak.distance)} with train image "
                f"{Path(paths[leak.train_id]).name}: the test score would be inflated",
            )
        )


def _drop_test_twins(audit: DatasetAudit) -> None:
    """``--dedupe``: remove the test side of every leak; the train twin stays."""
    drop = {leak.test_id for leak in audit.leaks}
    if not drop:
        return
    for image in audit.dataset.images:
        if image.image_id in drop:
            audit.report.add(
                Problem(
                    str(image.image_path),
                    LEAKAGE_DROPPED,
                    SKIP_IMAGE,
                    "dropped from test (--dedupe): its twin is in train",
                )
            )
            audit.report.unkeep([b.name for b in image.objects])
    audit.dataset.images = [im for im in audit.dataset.images if im.image_id not in drop]
    audit.split = Split(
        audit.split.train,
        [i for i in audit.split.test if i not in drop],
        audit.split.source + f", {len(drop)} test twins dropped",
        audit.split.origin,
    )
    audit.dropped = sorted(drop)
    audit.leaks = []


# ----------------------------------------------------------------------------- classes and split


def _flag_suspect_classes(dataset: VocDataset) -> list[SuspectClass]:
    """With an inferred label map: names that look like typos of another, with the files they are in."""
    if dataset.labelmap == LabelMap.paper():
        return []
    suspects = suspect_class_names(dataset.report.objects_per_class, known=(label.abbr for label in PAPER_LABELS))
    for suspect in suspects:
        files = [
            str(dataset.root / "Annotations" / f"{im.image_id}.xml")
            for im in dataset.images
            if any(b.name == suspect.name for b in im.objects)
        ]
        hint = (
            f"likely a typo: map it with --class-map ('{suspect.name}: {suspect.similar_to}')"
            if suspect.similar_to
            else "check it, or map it with --class-map"
        )
        shown = ", ".join(Path(f).name for f in files[:5]) + (f" and {len(files) - 5} more" if len(files) > 5 else "")
        dataset.report.add(
            Problem(
                files[0],
                SUSPECT_CLASS,
                WARNING,
                f"class {suspect.name!r} ({suspect.objects} objects) {suspect.reason}; {hint}; in {shown}",
                class_name=suspect.name,
            )
        )
    return suspects


def _choose_split(root: Path, dataset: VocDataset, twins: list[Twin], seed: int) -> tuple[Split, bool]:
    """The dataset's ImageSets (kept as they are: leakage is reported, not fixed), else the paper rule
    with twins on one side and rare classes in test, drawn over every XML id as before."""
    kept = set(dataset.ids)
    own = dataset_split(root)
    if own is not None:
        return Split(
            [i for i in own.train if i in kept], [i for i in own.test if i in kept], own.source, own.origin
        ), True
    all_ids = [p.stem for p in (root / "Annotations").glob("*.xml")]
    classes = {im.image_id: [b.name for b in im.objects] for im in dataset.images}
    drawn = paper_split(all_ids, seed, groups=_connected(twins), classes=classes)
    return Split([i for i in drawn.train if i in kept], [i for i in drawn.test if i in kept], drawn.source), False


def _refuse_empty(audit: DatasetAudit, whole_dataset: bool) -> None:
    report = audit.report
    where = audit.dataset.root
    if not audit.dataset.images:
        reasons = ", ".join(f"{k} x{c}" for k, c in sorted(report.by_kind(SKIP_IMAGE).items())) or "none read"
        raise EmptyDatasetError(f"{where}: no usable image ({report.images_total} read; skipped: {reasons})")
    objects = {im.image_id: len(im.objects) for im in audit.dataset.images}
    if not whole_dataset:
        if not sum(objects.values()):
            raise EmptyDatasetError(f"{where}: the image set has {len(objects)} images but no object")
        return
    for name, ids in (("train", audit.split.train), ("test", audit.split.test)):
        if not sum(objects.get(i, 0) for i in ids):
            raise EmptyDatasetError(
                f"{where}: the {name} split ({audit.split.source}) has {len(ids)} usable "
                f"images and no object: nothing to {'train' if name == 'train' else 'score'} on"
            )

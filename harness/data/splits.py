"""Train/test splits: a dataset's own ImageSets when it has them, else the paper's 7/100 rule.

The paper draws 7 of every 100 images at random as the test set.  The draw here ranks ids by
a seeded SHA-256 hash, so it is reproducible across Python/numpy versions and an image's
membership does not change when unrelated images are added or removed.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness.data.voc import read_ids, split_file

PAPER_TEST_FRACTION = 7 / 100


@dataclass(frozen=True)
class Split:
    train: list[str]
    test: list[str]
    source: str  # e.g. "ImageSets/Main trainval.txt + test.txt" or "paper rule 7/100, seed 0"
    origin: Mapping[str, Path] = field(default_factory=dict, compare=False)  # id -> ImageSets file listing it


def _rank(seed: int, image_id: str) -> str:
    return hashlib.sha256(f"{seed}:{image_id}".encode()).hexdigest()


def paper_split(
    ids: Sequence[str],
    seed: int = 0,
    test_fraction: float = PAPER_TEST_FRACTION,
    groups: Iterable[Iterable[str]] = (),
    classes: Mapping[str, Iterable[str]] | None = None,
) -> Split:
    """Seeded random test set of round(N * 7/100) images (at least 1 when N >= 2); rest is train.

    ``groups`` are sets of ids that must land on one side (duplicate images: a twin in each split
    would leak the test set into training); a group is drawn as one unit, ranked by its first id.
    ``classes`` (id → class names of its objects) makes the draw stratified: first, for each class
    from the rarest up that the test set lacks, the best-ranked unit holding it that still fits is
    drawn, then the rest by rank.  Without groups and classes this is the plain draw.
    """
    ordered = sorted(set(ids))
    n_test = round(len(ordered) * test_fraction)
    if len(ordered) >= 2:
        n_test = min(max(n_test, 1), len(ordered) - 1)
    units = _units(ordered, groups)
    ranked = sorted(units, key=lambda unit: _rank(seed, unit[0]))
    test: set[str] = set()
    for unit in _stratified_first(ranked, classes or {}, n_test) + ranked:
        if not test.isdisjoint(unit) or len(test) + len(unit) > n_test:
            continue
        test.update(unit)
    source = f"paper rule {round(test_fraction * 100)}/100, seed {seed}"
    if any(len(unit) > 1 for unit in units):
        source += ", duplicate images kept on one side"
    if classes:
        source += ", stratified by class"
    return Split([i for i in ordered if i not in test], [i for i in ordered if i in test], source)


def _units(ordered: list[str], groups: Iterable[Iterable[str]]) -> list[tuple[str, ...]]:
    """The ids cut into draw units: each duplicate group is one unit, every other id its own."""
    present, grouped, units = set(ordered), set[str](), list[tuple[str, ...]]()
    for group in groups:
        members = tuple(sorted(set(group) & present - grouped))
        if members:
            grouped.update(members)
            units.append(members)
    return units + [(i,) for i in ordered if i not in grouped]


def _stratified_first(
    ranked: list[tuple[str, ...]], classes: Mapping[str, Iterable[str]], n_test: int
) -> list[tuple[str, ...]]:
    """For each class, rarest first, the best-ranked unit holding it that fits in the test set (classes in
    one unit only are left out: drawing their only unit would take them out of training)."""
    unit_classes = [set().union(*(set(classes.get(i, ())) for i in unit)) for unit in ranked]
    count = Counter(name for names in unit_classes for name in names)
    chosen, covered = [], set()
    for name in sorted(count, key=lambda n: (count[n], n)):
        if count[name] < 2 or name in covered:
            continue
        index = next((k for k, names in enumerate(unit_classes) if name in names and len(ranked[k]) <= n_test), None)
        if index is not None:
            chosen.append(ranked[index])
            covered |= unit_classes[index]
    return chosen


def dataset_split(voc_root: str | Path) -> Split | None:
    """The dataset's own split (trainval, else train[+val], as train; test as test), or None.
    ``origin`` names the file each id came from, so a missing id blames the right file."""
    root = Path(voc_root)
    test_file = split_file(root, "test")
    if not test_file.is_file():
        return None
    if split_file(root, "trainval").is_file():
        names, source = ["trainval"], "trainval.txt"
    elif split_file(root, "train").is_file():
        names, source = ["train"], "train.txt"
        if split_file(root, "val").is_file():
            names, source = ["train", "val"], "train.txt + val.txt"
    else:
        return None
    origin: dict[str, Path] = {}
    for name in [*names, "test"]:
        for image_id in read_ids(split_file(root, name)):
            origin.setdefault(image_id, split_file(root, name))
    train = [i for name in names for i in read_ids(split_file(root, name))]
    return Split(
        list(dict.fromkeys(train)),
        list(dict.fromkeys(read_ids(test_file))),
        f"ImageSets/Main {source} (train) + test.txt (test)",
        origin,
    )


def choose_split(voc_root: str | Path, ids: Sequence[str], seed: int = 0) -> Split:
    return dataset_split(voc_root) or paper_split(ids, seed)

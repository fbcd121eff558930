"""Train/test splits: a dataset's own ImageSets when it has them, else the paper's 7/100 rule.

The paper draws 7 of every 100 images at random as the test set.  The draw here ranks ids by
a seeded SHA-256 hash, so it is reproducible across Python/numpy versions and an image's
membership does not change when unrelated images are added or removed.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from harness.data.voc import read_ids, split_file

PAPER_TEST_FRACTION = 7 / 100


@dataclass(frozen=True)
class Split:
    train: list[str]
    test: list[str]
    source: str          # e.g. "ImageSets/Main trainval.txt + test.txt" or "paper rule 7/100, seed 0"


def paper_split(ids: Sequence[str], seed: int = 0, test_fraction: float = PAPER_TEST_FRACTION) -> Split:
    """Seeded random test set of round(N * 7/100) images (at least 1 when N >= 2); rest is train."""
    ordered = sorted(set(ids))
    n_test = round(len(ordered) * test_fraction)
    if len(ordered) >= 2:
        n_test = min(max(n_test, 1), len(ordered) - 1)
    ranked = sorted(ordered, key=lambda image_id: hashlib.sha256(f"{seed}:{image_id}".encode()).hexdigest())
    test = set(ranked[:n_test])
    return Split([i for i in ordered if i not in test], [i for i in ordered if i in test],
                 f"paper rule {round(test_fraction * 100)}/100, seed {seed}")


def dataset_split(voc_root: str | Path) -> Split | None:
    """The dataset's own split (trainval, else train[+val], as train; test as test), or None."""
    root = Path(voc_root)
    test_file = split_file(root, "test")
    if not test_file.is_file():
        return None
    if split_file(root, "trainval").is_file():
        train, source = read_ids(split_file(root, "trainval")), "trainval.txt"
    elif split_file(root, "train").is_file():
        train, source = read_ids(split_file(root, "train")), "train.txt"
        if split_file(root, "val").is_file():
            train, source = train + read_ids(split_file(root, "val")), "train.txt + val.txt"
    else:
        return None
    return Split(list(dict.fromkeys(train)), list(dict.fromkeys(read_ids(test_file))),
                 f"ImageSets/Main {source} (train) + test.txt (test)")


def choose_split(voc_root: str | Path, ids: Sequence[str], seed: int = 0) -> Split:
    return dataset_split(voc_root) or paper_split(ids, seed)

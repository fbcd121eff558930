"""The Fig 10 classification test: top-1 detection on single-object images."""
from __future__ import annotations

from pathlib import Path

import pytest

from harness.data.annotations import Box, ImageAnnotation
from harness.evaluation import EvaluationError
from harness.evaluation.classification import NO_DETECTION, classification_report
from harness.evaluation.detections import Detections
from harness.labels import LabelMap

LABELS = LabelMap.from_names(["LYM", "MO", "EO", "NRBC"], scored=["LYM", "MO", "EO"])


def image(image_id, *names):
    return ImageAnnotation(image_id, Path(f"{image_id}.jpg"), 100, 100, [Box(n, 1, 1, 50, 50) for n in names])


def det(image_id, name, score):
    return {"image_id": image_id, "class": name, "score": score, "bbox": [1, 1, 50, 50]}


GT = [
    image("l1", "LYM"), image("l2", "LYM"), image("l3", "LYM"),
    image("m1", "MO"), image("m2", "MO"),
    image("n1", "NRBC"),
    image("pair", "LYM", "MO"),   # two objects: not used
    image("empty"),               # no object: not used
]
DETS = [
    det("l1", "LYM", 0.9), det("l1", "MO", 0.4),   # right
    det("l2", "MO", 0.8), det("l2", "LYM", 0.7),   # wrong: MO wins
    # l3: no detection at all
    det("m1", "MO", 0.6),                          # right
    det("m2", "LYM", 0.3), det("m2", "EO", 0.31),  # wrong: EO wins by a hair
    det("n1", "NRBC", 0.5),                        # right, but NRBC is not scored
    det("pair", "LYM", 0.99),
]


def test_confusion_matrix_by_hand():
    r = classification_report(GT, Detections.from_records(DETS), LABELS)
    assert r["classes"] == ["LYM", "MO", "EO", "NRBC"]
    assert r["columns"] == ["LYM", "MO", "EO", "NRBC", NO_DETECTION]
    assert r["matrix"] == [
        [1, 1, 0, 0, 1],  # LYM: l1 right, l2 -> MO, l3 -> none
        [0, 1, 1, 0, 0],  # MO: m1 right, m2 -> EO
        [0, 0, 0, 0, 0],  # EO: no single-object image
        [0, 0, 0, 1, 0],  # NRBC
    ]
    assert r["per_class_recall"] == {"LYM": pytest.approx(1 / 3), "MO": 0.5, "NRBC": 1.0}
    assert r["mean_accuracy"] == pytest.approx((1 / 3 + 0.5) / 2)  # scored classes present: LYM, MO
    assert r["mean_accuracy_all_classes"] == pytest.approx((1 / 3 + 0.5 + 1.0) / 3)
    assert r["n_images"] == 6
    assert r["skipped"] == {"no_object": 1, "several_objects": 1, "class_not_in_labelmap": 0}


def test_min_score_turns_weak_tops_into_no_detection():
    r = classification_report(GT, Detections.from_records(DETS), LABELS, min_score=0.5)
    assert r["matrix"][1] == [0, 1, 0, 0, 1]  # m2's best (0.31) is below 0.5


def test_unknown_class_in_detections_is_an_error():
    with pytest.raises(EvaluationError, match="BA"):
        classification_report(GT, Detections.from_records([det("l1", "BA", 0.5)]), LABELS)

"""``<difficult>`` as written by VOC (0/1) and by other tools (true/false) marks the same objects,
and the evaluator ignores them (VOCevaldet: neither TP nor FP, not in npos)."""
from __future__ import annotations

import pytest

from harness.data.voc import load_voc
from harness.evaluation import evaluate_detections
from harness.evaluation.detections import Detections
from harness.labels import LabelMap
from test_data_voc import make_sample

LABELS = LabelMap.from_names(["cat", "dog"])


@pytest.mark.parametrize("text, difficult", [
    ("1", True), ("0", False), ("true", True), ("false", False), ("True", True), ("FALSE", False),
    (" yes ", True), ("no", False),
])
def test_difficult_flag_spellings(tmp_path, text, difficult):
    make_sample(tmp_path, "a", [("cat", 5, 5, 20, 20, text), ("cat", 30, 5, 50, 20, "0")])
    dataset = load_voc(tmp_path, labelmap=LABELS)
    assert [o.difficult for o in dataset.images[0].objects] == [difficult, False]


def test_difficult_true_object_is_ignored_by_the_evaluator(tmp_path):
    make_sample(tmp_path, "a", [("cat", 5, 5, 20, 20, "true"), ("cat", 30, 5, 50, 20, "false")])
    dataset = load_voc(tmp_path, labelmap=LABELS)
    dets = Detections.from_records([
        {"image_id": "a", "class": "cat", "score": 0.9, "bbox": [5, 5, 20, 20]},     # on the difficult one
        {"image_id": "a", "class": "cat", "score": 0.8, "bbox": [30, 5, 50, 20]},
    ])
    cat = evaluate_detections(dataset.images, dets, dataset.labelmap)["classes"]["cat"]
    assert (cat["npos"], cat["tp"], cat["fp"], cat["n_ignored_difficult"]) == (1, 1, 0, 1)
    assert cat["ap"] == pytest.approx(1.0)

"""One protocol registry (harness.evaluation.protocols): adding a protocol is one entry, and config
validation, the evaluator, the report's tables and templates and status all pick it up; an
unknown protocol is an error everywhere (docs/architecture.md, "A new protocol")."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from harness.data.annotations import Box, ImageAnnotation
from harness.evaluation import EvaluationError, evaluate_detections, protocols
from harness.evaluation.detections import Detections
from harness.labels import LabelMap

FAKE = "fake50"


@pytest.fixture
def fake_protocol():
    """A protocol that is VOC12's AP under another name, scored by every experiment."""
    entry = protocols.register(
        protocols.Protocol(
            FAKE,
            "fake AP@.5",
            "harness.evaluation.evaluator:score_voc12",
            experiment=True,
            style={"color": "tab:green"},
            description="a test's protocol",
        )
    )
    yield entry
    protocols.unregister(FAKE)


def _one_image():
    gt = [ImageAnnotation("img1", Path("img1.jpg"), 100, 100, [Box("a", 10, 10, 50, 50)])]
    dets = Detections.from_records([{"image_id": "img1", "class": "a", "score": 0.9, "bbox": [10, 10, 50, 50]}])
    return gt, dets, LabelMap(("a",), frozenset({"a"}))


def test_builtin_protocols_are_registered():
    assert protocols.names()[:4] == ("voc07", "voc12", "coco", "alexeyab")
    assert protocols.experiment_protocols() == ("voc07", "voc12")


def test_unknown_protocol_is_an_error_in_the_evaluator():
    gt, dets, labelmap = _one_image()
    with pytest.raises(EvaluationError, match="unknown protocol 'voc99'"):
        evaluate_detections(gt, dets, labelmap, protocol="voc99")


def test_unknown_protocol_is_an_error_in_the_config(tmp_path):
    from harness.config import ExperimentConfig

    data = _config_json(tmp_path)
    data["protocols"] = ["voc07", "voc99"]
    with pytest.raises(ValueError, match="unknown protocol 'voc99'"):
        ExperimentConfig.from_json(data)


def test_a_registered_protocol_is_scored_validated_and_reported(tmp_path, fake_protocol):
    from harness.config import ExperimentConfig
    from harness.report.builder import build_report
    from test_report_factory import make_run

    gt, dets, labelmap = _one_image()
    metrics = evaluate_detections(gt, dets, labelmap, protocol=FAKE)
    assert metrics["protocol"] == FAKE and metrics["map"] == pytest.approx(1.0)

    config = ExperimentConfig.from_json({**_config_json(tmp_path), "protocols": None})
    assert config.protocols == ("voc07", "voc12", FAKE)  # the default set now includes it

    written = make_run(tmp_path)
    ssd = written["run_dir"] / "models" / "ssd300_smin0.2"
    (ssd / f"metrics_{FAKE}.json").write_text(json.dumps({**written["ssd300_smin0.2"]["metrics"]["voc12"], "protocol": FAKE}))
    summary = json.loads((ssd / "summary.json").read_text())
    summary["metrics"][FAKE] = f"metrics_{FAKE}.json"
    (ssd / "summary.json").write_text(json.dumps(summary))
    outputs = build_report(written["run_dir"])
    html = outputs["html"].read_text()
    assert f"<th>mAP {FAKE}</th>" in html and f"<th>Δ {FAKE}</th>" in html
    assert f"| mAP {FAKE} |" in outputs["md"].read_text()
    with outputs["table1"].open() as handle:
        rows = [r for r in csv.DictReader(handle) if r["experiment"] == "ssd300_smin0.2" and r["row"] == "mAP"]
    assert rows[0][f"ours_{FAKE}_pct"] == rows[0]["ours_voc12_pct"] != ""


def test_status_reads_the_first_experiment_protocol(tmp_path):
    from harness.status import best_map

    (tmp_path / "metrics_voc07.json").write_text(json.dumps({"map": 0.5}))
    assert best_map(tmp_path) == 0.5
    assert np.isclose(best_map(tmp_path) or 0, 0.5)


def _config_json(tmp_path: Path) -> dict:
    return {
        "spec": {"name": "x", "framework": "caffe", "model": "ssd", "size": 300},
        "profile": "smoke",
        "comparable_with_paper": False,
        "role": "custom",
        "device": "cpu",
        "seed": 0,
        "run_dir": str(tmp_path),
        "model_dir": str(tmp_path / "models" / "x"),
        "data": None,
        "classification": None,
        "init_weights": None,
        "framework_options": {},
    }

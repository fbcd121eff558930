"""Fig 7's held-out mAP panel (results.csv) and Fig 8's precision envelopes."""
from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from harness.core.periodic import record_result
from harness.evaluation.evaluator import pr_curve
from harness.evaluation.voc import ap_voc12
from harness.report.figures import plot_loss_curves, precision_envelope, wrapped
from harness.report.loading import load_experiment
from test_report_factory import make_run

TAB_RED_BGR = np.array([40, 39, 214])          # matplotlib "tab:red" (#d62728), the voc07 mAP line


def _ranked(seed: int, n: int = 60, npos: int = 25):
    """Recall/precision at every rank of a random detection list, as the VOC evaluator builds them."""
    rng = np.random.default_rng(seed)
    tp = (rng.random(n) < 0.5).astype(float)
    ctp = np.cumsum(tp)
    recall = ctp / npos
    precision = ctp / np.arange(1, n + 1)
    scores = np.sort(rng.random(n))[::-1]
    return recall, precision, scores, tp


@pytest.mark.parametrize("seed", range(5))
def test_the_envelope_from_the_stored_points_integrates_to_voc12_ap(seed: int) -> None:
    recall, precision, scores, tp = _ranked(seed)
    stored = pr_curve(recall, precision, scores, tp)          # what metrics_*.json keeps
    x, y = precision_envelope(stored["recall"], stored["precision"])
    area = float(np.sum(np.diff(x) * y[1:]))                  # where="pre": y[i] spans (x[i-1], x[i]]
    assert area == pytest.approx(ap_voc12(recall, precision), abs=1e-5)
    assert np.all(np.diff(y[:-1]) <= 1e-12)                   # never rises with recall
    assert np.all(y[1:-1] >= np.asarray(stored["precision"]) - 1e-12)


def test_long_titles_are_wrapped_not_cut() -> None:
    title = "Fig 8 — PR curves, yolov3_416 [not comparable: smoke profile, synthetic data, 40 iterations] (AP: voc12)"
    lines = wrapped(title).splitlines()
    assert len(lines) > 1 and all(len(line) <= 70 for line in lines)
    assert " ".join(lines) == title


def _red_pixels(path) -> int:
    image = cv2.imread(str(path))
    return int(np.sum(np.all(np.abs(image.astype(int) - TAB_RED_BGR) < 30, axis=2)))


def test_fig7_draws_the_map_of_each_evaluation_point(tmp_path) -> None:
    run = make_run(tmp_path)["run_dir"]
    model_dir = run / "models" / "yolov3_416"
    without = plot_loss_curves([load_experiment(model_dir)], tmp_path / "without.png")
    for iteration, value in ((10, 0.1), (20, 0.4), (30, 0.35), (40, 0.6)):
        record_result(model_dir, {"iteration": iteration, "loss": 1.0, "avg_loss": math.nan, "lr": 1e-3,
                                  "map_voc07": value, "map_voc12": value * 0.5, "seconds": iteration}, ("voc07", "voc12"))
    exp = load_experiment(model_dir)
    assert exp.evaluations.iteration == [10, 20, 30, 40]
    assert exp.evaluations.map["voc07"] == pytest.approx([0.1, 0.4, 0.35, 0.6])
    with_map = plot_loss_curves([exp], tmp_path / "with.png")
    assert _red_pixels(with_map) > _red_pixels(without) + 100


def test_fig7_shows_a_model_with_evaluations_but_no_loss(tmp_path) -> None:
    model_dir = tmp_path / "models" / "yolov3-tiny_416"
    model_dir.mkdir(parents=True)
    record_result(model_dir, {"iteration": 4, "map_voc07": 0.2, "map_voc12": 0.25}, ("voc07", "voc12"))
    exp = load_experiment(model_dir)
    assert exp.loss is None and len(exp.evaluations) == 1
    assert plot_loss_curves([exp], tmp_path / "fig7.png").is_file()

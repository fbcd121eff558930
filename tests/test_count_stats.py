"""The count's rules and statistics against numbers worked out by hand (docs/count.md)."""
from __future__ import annotations

import math

import pytest

from harness.count.agreement import (agreement, binomial_interval, bland_altman, manual_count_interval, pearson,
                                     sensitivity_specificity)
from harness.count.cells import cells_of_image, iou
from harness.count.differential import SlideResult, count_labels
from harness.class_roles import roles_for_model
from harness.count.rules import load_thresholds
from harness.labels import PAPER_LABELS

RULES = load_thresholds()
PAPER = roles_for_model([label.abbr for label in PAPER_LABELS])


def test_pearson_r_by_hand() -> None:
    # x-mean = (-10, 0, 10), y-mean = (-9, -3, 12): Sxy = 210, Sxx = 200, Syy = 234
    r = pearson([10, 20, 30], [12, 18, 33])
    assert r == pytest.approx(210 / math.sqrt(200 * 234))
    assert r == pytest.approx(0.970725, abs=1e-6)
    assert pearson([1, 2], [1, 2]) is None            # fewer than 3 slides: undefined
    assert pearson([5, 5, 5], [1, 2, 3]) is None      # constant truth: undefined, not 0


def test_bland_altman_by_hand() -> None:
    # differences (2, -2, 3): bias 1, SD sqrt((1 + 9 + 4) / 2) = sqrt(7)
    ba = bland_altman([12, 18, 33], [10, 20, 30])
    assert ba["bias"] == pytest.approx(1.0)
    assert ba["sd"] == pytest.approx(math.sqrt(7))
    assert ba["lower"] == pytest.approx(1 - 1.96 * math.sqrt(7))
    assert ba["upper"] == pytest.approx(1 + 1.96 * math.sqrt(7))


def test_binomial_interval_closed_forms_and_rumke_table() -> None:
    # k = 0 and k = n have closed forms: upper = 1 - (alpha/2)^(1/n), lower = (alpha/2)^(1/n)
    assert binomial_interval(0, 100) == pytest.approx((0.0, 1 - 0.025 ** (1 / 100)))
    assert binomial_interval(200, 200) == pytest.approx((0.025 ** (1 / 200), 1.0))
    # Rümke's table: 50 % in a 100-cell count -> about 40-60 %; 10 % in 200 cells -> about 6-15 %
    lower, upper = manual_count_interval(50, 100)
    assert (round(lower), round(upper)) == (40, 60)
    lower, upper = manual_count_interval(10, 200)
    assert (round(lower), round(upper)) == (6, 15)
    with pytest.raises(ValueError):
        binomial_interval(5, 3)


def test_sensitivity_specificity_by_hand() -> None:
    pairs = [(True, True), (True, True), (False, True), (True, False), (False, False), (False, False)]
    s = sensitivity_specificity(pairs)
    assert (s["tp"], s["fn"], s["fp"], s["tn"]) == (2, 1, 1, 2)
    assert s["sensitivity"] == pytest.approx(2 / 3) and s["specificity"] == pytest.approx(2 / 3)
    assert sensitivity_specificity([(False, False)])["sensitivity"] is None


def test_overlapping_boxes_of_two_classes_are_one_cell_with_a_runner_up() -> None:
    boxes = [("LYM", 0.9, (100, 100, 150, 150)),
             ("rLYM", 0.6, (101, 101, 151, 151)),      # IoU ~0.92 with the LYM box: same cell
             ("MO", 0.8, (300, 300, 360, 360)),        # its own cell, no runner-up
             ("EO", 0.1, (500, 100, 540, 140)),        # below min_score, overlaps nothing: dropped
             ("BA", 0.7, (1, 200, 40, 240))]           # touches the left edge: border
    assert iou(boxes[0][2], boxes[1][2]) >= 0.7
    cells = cells_of_image("f", boxes, (732, 574), RULES)
    assert [(c.label, c.runner_up) for c in cells] == [("LYM", "rLYM"), ("MO", ""), ("BA", "")]
    lym, mo, ba = cells
    assert lym.uncertain            # runner-up 0.6 >= 0.5 x 0.9
    assert not mo.uncertain and not mo.border
    assert ba.border


def test_low_top_score_is_uncertain() -> None:
    (cell,) = cells_of_image("f", [("sNEU", 0.3, (100, 100, 160, 160))], (732, 574), RULES)
    assert cell.uncertain and not cell.runner_up


def test_differential_percentages_nrbc_and_flags() -> None:
    labels = ["sNEU"] * 80 + ["bNEU"] * 12 + ["Blast"] * 1 + ["MYE"] * 3 + ["LYM"] * 4 + ["NRBC"] * 6 + ["SM"] * 9
    d = count_labels(labels, PAPER)
    assert PAPER.name == "paper-15"
    assert d.wbc == 100                                  # NRBC and SM are outside the differential
    assert d.percent("bNEU") == pytest.approx(12.0)
    assert d.nrbc_per_100_wbc == pytest.approx(6.0)
    assert set(d.flags()) == {"blasts_any", "immature_granulocytes", "left_shift", "nrbc"}
    assert count_labels(["SM"], PAPER).flags() == [] and count_labels(["SM"], PAPER).percent("LYM") is None


def test_agreement_over_slides_uses_the_hand_computed_statistics() -> None:
    results = []
    for lym_pred, lym_true in ((12, 10), (18, 20), (33, 30)):
        r = SlideResult(f"s{lym_true}", PAPER)
        r.truth = count_labels(["LYM"] * lym_true + ["sNEU"] * (100 - lym_true), PAPER)
        r.cells = [_cell("LYM")] * lym_pred + [_cell("sNEU")] * (100 - lym_pred)
        results.append(r)
    stats = agreement(results)
    lym = stats["per_class"]["LYM"]
    assert lym["r"] == pytest.approx(0.970725, abs=1e-6) and lym["r2"] == pytest.approx(0.970725 ** 2, abs=1e-5)
    assert lym["bland_altman"]["bias"] == pytest.approx(1.0)
    assert stats["per_class"]["Blast"]["r"] is None
    assert stats["flags"]["left_shift"]["tn"] == 3


def _cell(label: str):
    from harness.count.cells import Cell

    return Cell("f", (100, 100, 150, 150), label, 0.9)

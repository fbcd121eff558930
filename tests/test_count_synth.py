"""Synthetic slides for `harness count`: known per-slide distributions, VOC ground truth."""
from __future__ import annotations

import json
from collections import Counter

import pytest

from harness.data.synth import SCENARIOS, synthesize_slides
from harness.data.voc import load_voc


def test_slides_follow_the_scenario_and_annotations_are_the_drawn_cells(tmp_path) -> None:
    out = synthesize_slides(tmp_path / "s", 2, cells_per_slide=40, scenario="lymphocytosis", seed=3, progress=False)
    drawn = json.loads((out / "slides.json").read_text())["drawn"]
    allowed = set(SCENARIOS["lymphocytosis"]["wbc"]) | set(SCENARIOS["lymphocytosis"]["per_100_wbc"])
    for slide in ("slide_000", "slide_001"):
        counts = drawn[slide]
        assert set(counts) <= allowed
        assert sum(counts.get(c, 0) for c in SCENARIOS["lymphocytosis"]["wbc"]) == 40
        annotated = Counter(b.name for im in load_voc(out / slide).images for b in im.objects)
        assert all(annotated[c] <= counts.get(c, 0) for c in annotated)     # unplaceable cells are not drawn
        assert sum(annotated.values()) >= 0.8 * sum(counts.values())
    again = synthesize_slides(tmp_path / "s", 2, cells_per_slide=40, scenario="lymphocytosis", seed=3, progress=False)
    assert json.loads((again / "slides.json").read_text())["drawn"] == drawn


def test_unknown_scenario_is_refused(tmp_path) -> None:
    with pytest.raises(ValueError, match="unknown scenario"):
        synthesize_slides(tmp_path, 1, scenario="sepsis")

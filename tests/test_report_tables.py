"""Paper numbers → percent, gaps stay gaps, differences are ours − paper."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import pytest

from harness import paper
from harness.report.loading import RunData, load_run
from harness.report.paper_numbers import adapt, paper_experiments
from harness.report.tables import NOT_IN_PAPER, NOT_TRANSCRIBED, build_accuracy, build_table1, build_table2
from test_report_factory import make_run


@dataclass
class Transcribed:
    """A harness.paper-shaped record with per-class AP transcribed, for the cases the real
    module does not (yet) have."""

    name: str = "ssd300_smin0.2"
    framework: str = "caffe"
    paper_map: Optional[float] = 0.931
    paper_ap: Optional[dict] = None
    train_hours: Optional[float] = 30.0
    ms_per_image: Optional[float] = 53.0
    mean_accuracy: Optional[float] = 90.09
    sources: dict = field(default_factory=lambda: {"paper_map": "Table 1"})


def test_every_paper_experiment_adapts():
    adapted = paper_experiments()
    assert [p.name for p in adapted] == [e.name for e in paper.EXPERIMENTS]
    for numbers, exp in zip(adapted, paper.EXPERIMENTS):
        assert numbers.map_pct == pytest.approx(exp.paper_map * 100)
        assert numbers.mean_accuracy_pct == exp.mean_accuracy          # already percent in harness.paper
        assert "paper_map" in numbers.source


def test_fraction_out_of_range_is_refused():
    with pytest.raises(ValueError, match=r"ssd300_smin0.2.paper_map = 93.1 is not a fraction"):
        adapt(Transcribed(paper_map=93.1))


def test_per_class_differences_and_gaps(tmp_path):
    written = make_run(tmp_path)
    run = load_run(written["run_dir"])
    numbers = adapt(Transcribed(paper_ap={"Blast": 0.95, "PRO": None, "NRBC": 0.5}))
    entry = next(e for e in build_table1(run, {numbers.name: numbers}) if e.run.name == "ssd300_smin0.2")
    rows = {r.name: r for r in entry.class_rows}
    ours = written["ssd300_smin0.2"]["metrics"]["voc12"]["classes"]["Blast"]["ap"] * 100
    assert rows["Blast"].paper.value == pytest.approx(95.0)
    assert rows["Blast"].diff["voc12"] == pytest.approx(ours - 95.0)
    assert rows["PRO"].paper.note == NOT_TRANSCRIBED and rows["PRO"].diff["voc07"] is None
    assert rows["MYE"].paper.note == NOT_TRANSCRIBED                   # paper class, absent from paper_ap
    # a class the paper reports but our run has no AP for is shown as a gap, not dropped
    assert rows["NRBC"].ours == {"voc07": None, "voc12": None} and rows["NRBC"].paper.value == 50.0


def test_table2_and_accuracy_against_paper(tmp_path):
    written = make_run(tmp_path)
    run = load_run(written["run_dir"])
    numbers = adapt(Transcribed())
    table2 = {e.run.name: e for e in build_table2(run, {numbers.name: numbers})}
    assert table2["ssd300_smin0.2"].hours_ratio == pytest.approx(1.5 / 30.0)
    assert table2["yolov3_416"].paper is None and table2["yolov3_416"].ms_ratio is None
    accuracy = {a.run.name: a for a in build_accuracy(run, {numbers.name: numbers})}
    ours = written["ssd300_smin0.2"]["classification"]["mean_accuracy"] * 100
    assert accuracy["ssd300_smin0.2"].diff == pytest.approx(ours - 90.09)
    assert accuracy["yolov3_416"].paper.note == NOT_IN_PAPER


def test_no_paper_module_means_no_paper_numbers(tmp_path):
    written = make_run(tmp_path)
    run: RunData = load_run(written["run_dir"])
    entries = build_table1(run, {})
    assert all(e.map_row.paper.note == NOT_IN_PAPER for e in entries)


def test_real_paper_numbers_fill_every_paper_column(tmp_path):
    """Table 1 per-class AP, Table 2 and Fig 10 come from harness.paper; Fig 10 has two models."""
    written = make_run(tmp_path)
    run = load_run(written["run_dir"])
    numbers = {p.name: p for p in paper_experiments()}
    ssd = next(e for e in build_table1(run, numbers) if e.run.name == "ssd300_smin0.2")
    assert {r.name: r.paper.value for r in ssd.class_rows} == pytest.approx(
        {c: v * 100 for c, v in paper.experiment("ssd300_smin0.2").paper_ap.items()})
    assert all(r.paper.note == "" for r in ssd.class_rows)
    accuracy = {a.run.name: a for a in build_accuracy(run, numbers)}
    assert accuracy["ssd300_smin0.2"].paper.value == 90.09
    assert accuracy["yolov3_416"].paper.value is None and accuracy["yolov3_416"].paper.note == NOT_IN_PAPER


def test_pipeline_check_shows_the_paper_but_no_difference(tmp_path):
    written = make_run(tmp_path)
    run = load_run(written["run_dir"])
    for exp in run.experiments:
        exp.in_paper = True
    smoke = next(e for e in run.experiments if e.name == "yolov3_416")
    assert not smoke.profile_comparable
    numbers = {"yolov3_416": adapt(Transcribed(name="yolov3_416", paper_ap={"RBC": 0.5}))}
    entry = next(e for e in build_table1(run, numbers) if e.run is smoke)
    assert entry.map_row.paper.value == pytest.approx(93.1) and entry.map_row.ours["voc07"] is not None
    assert entry.map_row.diff == {"voc07": None, "voc12": None}
    rbc = next(r for r in entry.class_rows if r.name == "RBC")
    assert rbc.paper.value == pytest.approx(50.0) and rbc.diff == {"voc07": None, "voc12": None}
    accuracy = next(a for a in build_accuracy(run, numbers) if a.run is smoke)
    assert accuracy.paper.value == 90.09 and accuracy.ours_pct is not None and accuracy.diff is None
    timing = next(t for t in build_table2(run, numbers) if t.run is smoke)
    assert timing.paper.train_hours == 30.0 and timing.hours_ratio is None and timing.ms_ratio is None
    assert smoke.not_comparable_because == "pipeline check: smoke profile, 40 iterations"

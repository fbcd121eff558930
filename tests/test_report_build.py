"""build_report on a hand-written run directory: the tables must carry exactly the inputs."""
from __future__ import annotations

import csv
import json
import re

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from harness import paper
from harness.cli import main
from harness.report import build_report
from harness.report.figures import row_normalised
from test_report_factory import BCCD_CLASSES, PAPER_CLASSES, make_run


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    written = make_run(tmp_path_factory.mktemp("report"))
    outputs = build_report(written["run_dir"])
    return written, outputs


def _rows(path):
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_outputs_are_listed_and_exist(built):
    written, outputs = built
    run_dir = written["run_dir"]
    expected = {"html", "md", "table1", "table2", "provenance", "fig7",
                "fig8_ssd300_smin0.2", "fig8_yolov3_416", "fig10_ssd300_smin0.2", "fig10_yolov3_416"}
    assert set(outputs) == expected
    for path in outputs.values():
        assert path.parent == run_dir and path.is_file() and path.stat().st_size > 0


def test_table1_csv_equals_inputs_and_paper(built):
    written, outputs = built
    rows = _rows(outputs["table1"])
    ssd = {r["row"]: r for r in rows if r["experiment"] == "ssd300_smin0.2"}
    metrics = written["ssd300_smin0.2"]["metrics"]
    paper_map = paper.experiment("ssd300_smin0.2").paper_map * 100
    assert set(ssd) == {"mAP", *PAPER_CLASSES}
    for protocol in ("voc07", "voc12"):
        ours = metrics[protocol]["map"] * 100
        assert float(ssd["mAP"][f"ours_{protocol}_pct"]) == pytest.approx(ours, abs=1e-8)
        assert float(ssd["mAP"][f"diff_{protocol}_pp"]) == pytest.approx(ours - paper_map, abs=1e-8)
        for name in PAPER_CLASSES:
            assert float(ssd[name][f"ours_{protocol}_pct"]) == pytest.approx(metrics[protocol]["classes"][name]["ap"] * 100, abs=1e-8)
    assert float(ssd["mAP"]["paper_pct"]) == pytest.approx(paper_map)
    assert ssd["BA"]["npos"] == str(metrics["voc07"]["classes"]["BA"]["npos"])
    # per-class AP from Table 1, differences for a comparable (paper-profile) run
    for name in PAPER_CLASSES:
        paper_ap = paper.experiment("ssd300_smin0.2").paper_ap[name] * 100
        assert float(ssd[name]["paper_pct"]) == pytest.approx(paper_ap) and ssd[name]["paper_note"] == ""
        ours = metrics["voc12"]["classes"][name]["ap"] * 100
        assert float(ssd[name]["diff_voc12_pp"]) == pytest.approx(ours - paper_ap, abs=1e-8)
    assert float(ssd["Blast"]["paper_pct"]) == pytest.approx(97.0)
    assert ssd["mAP"]["comparable_with_paper"] == "yes"


def test_table1_marks_smoke_failed_and_skipped(built):
    written, outputs = built
    rows = _rows(outputs["table1"])
    yolo = {r["row"]: r for r in rows if r["experiment"] == "yolov3_416"}
    assert set(yolo) == {"mAP", *BCCD_CLASSES}
    assert all(r["profile"] == "smoke" and r["comparable_with_paper"] == "no" for r in yolo.values())
    assert yolo["RBC"]["paper_note"] == "—"                                 # not a paper class
    # a pipeline check (smoke, 40 iterations): the paper's mAP is shown, no "-92 pp" difference
    assert yolo["mAP"]["not_comparable_because"] == "pipeline check: smoke profile, 40 iterations"
    assert float(yolo["mAP"]["paper_pct"]) == pytest.approx(92.1)
    assert yolo["mAP"]["diff_voc07_pp"] == "" and yolo["mAP"]["diff_voc12_pp"] == ""
    failed = [r for r in rows if r["experiment"] == "ssd512_smin0.2"]
    assert len(failed) == 1 and failed[0]["status"] == "failed" and "out of memory" in failed[0]["message"]
    assert failed[0]["ours_voc07_pct"] == "" and float(failed[0]["paper_pct"]) == pytest.approx(68.7)
    skipped = [r for r in rows if r["experiment"] == "yolov3-tiny_416"]
    assert skipped[0]["status"] == "skipped" and "darknet not usable" in skipped[0]["message"]


def test_table2_csv_times(built):
    written, outputs = built
    rows = {r["experiment"]: r for r in _rows(outputs["table2"])}
    ssd = rows["ssd300_smin0.2"]
    timing = written["ssd300_smin0.2"]["timing"]
    assert float(ssd["train_hours"]) == pytest.approx(5400.0 / 3600)
    assert float(ssd["median_ms"]) == timing["median_ms"] and float(ssd["p90_ms"]) == timing["p90_ms"]
    assert ssd["device"] == timing["device"] and ssd["backend"] == timing["backend"]
    paper_ms = paper.experiment("ssd300_smin0.2").ms_per_image
    assert float(ssd["paper_ms_per_image"]) == paper_ms
    assert float(ssd["ms_ratio"]) == pytest.approx(timing["median_ms"] / paper_ms)
    assert ssd["iterations"] == "300"
    assert rows["ssd512_smin0.2"]["status"] == "failed" and rows["ssd512_smin0.2"]["median_ms"] == ""
    assert float(rows["ssd512_smin0.2"]["train_hours"]) == pytest.approx(60.0 / 3600)
    assert set(rows) == {"ssd300_smin0.2", "yolov3_416", "ssd512_smin0.2", "yolov3-tiny_416"}
    assert float(ssd["paper_train_hours"]) == 101.1                                     # Table 2
    assert float(ssd["train_hours_ratio"]) == pytest.approx(1.5 / 101.1)
    smoke = rows["yolov3_416"]                                   # pipeline check: paper numbers, no ratios
    assert (float(smoke["paper_train_hours"]), float(smoke["paper_ms_per_image"])) == (60.2, 23.0)
    assert smoke["train_hours_ratio"] == "" and smoke["ms_ratio"] == ""


def test_markdown_tables_show_formatted_numbers(built):
    written, outputs = built
    md = outputs["md"].read_text()
    metrics = written["ssd300_smin0.2"]["metrics"]
    paper_map = paper.experiment("ssd300_smin0.2").paper_map * 100
    ours07, ours12 = metrics["voc07"]["map"] * 100, metrics["voc12"]["map"] * 100
    line = next(l for l in md.splitlines() if l.startswith("| ssd300_smin0.2 | caffe"))
    cells = [c.strip() for c in line.strip("|").split("|")]
    assert cells[5:10] == [f"{ours07:.2f}", f"{ours12:.2f}", f"{paper_map:.2f}",
                           f"{ours07 - paper_map:+.2f}", f"{ours12 - paper_map:+.2f}"]
    assert "SMOKE RUN — NOT COMPARABLE WITH THE PAPER" in md
    assert "`ssd512_smin0.2` — failed: Caffe aborted" in md
    assert "`yolov3-tiny_416` — skipped: darknet not usable" in md
    for name in ("fig7_loss.png", "fig8_pr_ssd300_smin0.2.png", "fig10_confusion_yolov3_416.png"):
        assert f"]({name})" in md
    # every table row has as many cells as its header
    for block in re.findall(r"(?:^\|.*\|\n)+", md, flags=re.M):
        widths = {line.count("|") - line.count("\\|") for line in block.splitlines()}
        assert len(widths) == 1, block


def test_html_has_tables_banner_and_relative_images(built):
    written, outputs = built
    html = outputs["html"].read_text()
    assert 'id="smoke-banner"' in html and 'id="table1-map"' in html and 'id="table2-time"' in html
    assert "http://" not in html and "https://" not in html                  # self-contained, no CDN
    sources = re.findall(r'<img src="([^"]+)"', html)
    assert sorted(sources) == sorted(p.name for k, p in outputs.items() if k.startswith("fig"))
    mean = written["ssd300_smin0.2"]["classification"]["mean_accuracy"] * 100
    assert f"{mean:.2f}" in html and f"{mean - 90.09:+.2f}" in html


@pytest.mark.parametrize("key", ["fig7", "fig8_ssd300_smin0.2", "fig8_yolov3_416", "fig10_ssd300_smin0.2", "fig10_yolov3_416"])
def test_figures_are_real_images(built, key):
    _, outputs = built
    image = cv2.imread(str(outputs[key]))
    assert image is not None, outputs[key]
    height, width = image.shape[:2]
    assert 400 <= width <= 3000 and 300 <= height <= 3000
    assert image.std() > 10                                                   # not blank


def test_confusion_normalisation_keeps_empty_rows_zero():
    normalised = row_normalised([[3, 1, 0], [0, 0, 0]])
    np.testing.assert_allclose(normalised, [[0.75, 0.25, 0.0], [0.0, 0.0, 0.0]])


def test_problems_appear_in_report_and_strict_fails(tmp_path):
    written = make_run(tmp_path)
    run_dir = written["run_dir"]
    (run_dir / "models/yolov3_416/metrics_voc12.json").unlink()
    outputs = build_report(run_dir)
    html = outputs["html"].read_text()
    assert "models/yolov3_416/metrics_voc12.json: file not found" in html
    assert "models/yolov3_416/metrics_voc12.json: file not found" in outputs["md"].read_text()
    result = CliRunner().invoke(main, ["report", str(run_dir), "--strict"])
    assert result.exit_code != 0 and "metrics_voc12.json" in result.output


def test_rebuild_removes_stale_figures(tmp_path):
    written = make_run(tmp_path)
    run_dir = written["run_dir"]
    build_report(run_dir)
    assert (run_dir / "fig10_confusion_yolov3_416.png").exists()
    summary = json.loads((run_dir / "models/yolov3_416/summary.json").read_text())
    summary["classification"] = None
    (run_dir / "models/yolov3_416/summary.json").write_text(json.dumps(summary))
    outputs = build_report(run_dir)
    assert not (run_dir / "fig10_confusion_yolov3_416.png").exists()
    assert "Fig 10 yolov3_416: no classification result" in outputs["md"].read_text()


def test_cli_report_verb(tmp_path):
    written = make_run(tmp_path)
    result = CliRunner().invoke(main, ["report", str(written["run_dir"])])
    assert result.exit_code == 0, result.output
    assert "report.html" in result.output and (written["run_dir"] / "table1.csv").is_file()
    missing = CliRunner().invoke(main, ["report", str(tmp_path / "nope")])
    assert missing.exit_code != 0 and "run directory not found" in missing.output


def test_provenance_from_reproduce_is_kept_and_shown(tmp_path):
    from harness.report import collect_provenance, write_provenance

    written = make_run(tmp_path)
    run_dir = written["run_dir"]
    record = collect_provenance(run_dir, seeds={"data": 7})
    record.update(profile="smoke", synthetic_data=True)
    path = write_provenance(run_dir, record)
    before = path.read_bytes()
    outputs = build_report(run_dir)
    assert outputs["provenance"] == path and path.read_bytes() == before
    md = outputs["md"].read_text()
    assert "- synthetic_data: True" in md and "seeds: data=7" in md


def test_missing_provenance_is_collected_with_a_note(built):
    written, outputs = built
    record = json.loads(outputs["provenance"].read_text())
    assert "after the fact" in record["note"]
    rendered = written["run_dir"] / "models/ssd300_smin0.2/rendered/train.prototxt"
    import hashlib
    assert record["rendered_files"]["models/ssd300_smin0.2/rendered/train.prototxt"] == \
        hashlib.sha256(rendered.read_bytes()).hexdigest()


def test_each_non_paper_profile_gets_its_own_banner_in_its_own_words(tmp_path):
    """A cpu-profile run learns for real: its report must not call it a smoke run (issue 23)."""
    written = make_run(tmp_path)
    yolo = written["run_dir"] / "models" / "yolov3_416" / "summary.json"
    summary = json.loads(yolo.read_text())
    yolo.write_text(json.dumps({**summary, "profile": "cpu", "comparable_with_paper": False}))
    outputs = build_report(written["run_dir"])
    md, html = outputs["md"].read_text(), outputs["html"].read_text()
    assert "SMOKE RUN" not in md and 'id="smoke-banner"' not in html
    assert "**CPU-PROFILE RUN — NOT COMPARABLE WITH THE PAPER.** Experiment(s) yolov3_416 ran with" in md
    assert 'id="cpu-banner"' in html and "steps scaled to --iterations" in html
    assert "(not comparable with the paper: CPU schedule: cpu profile, 40 iterations)" in md
    # Both profiles in one run: one banner each, each naming only its own experiments.
    ssd = written["run_dir"] / "models" / "ssd300_smin0.2" / "summary.json"
    ssd.write_text(json.dumps({**json.loads(ssd.read_text()), "profile": "smoke", "comparable_with_paper": False}))
    md = build_report(written["run_dir"])["md"].read_text()
    assert "**SMOKE RUN — NOT COMPARABLE WITH THE PAPER.** Experiment(s) ssd300_smin0.2 ran with" in md
    assert "**CPU-PROFILE RUN — NOT COMPARABLE WITH THE PAPER.** Experiment(s) yolov3_416 ran with" in md

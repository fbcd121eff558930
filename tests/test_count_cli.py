"""`harness count` end to end with a real Darknet model: outputs, bad input, native cross-check, browser.

The model is a 2-iteration smoke training (as in test_config_paths.py): its counts mean nothing,
but every code path — libdarknet detection, cell grouping, CSVs, pages — is the real one.
"""
from __future__ import annotations

import csv
import re
import shutil
from pathlib import Path

import pytest

from harness.count.cells import cells_of_image, detections_by_image
from harness.count.rules import load_thresholds
from test_config_paths import harness, out

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def counted(tmp_path_factory):
    """Train a tiny model, synthesise 2 slides plus a broken one, count them from another cwd."""
    root = tmp_path_factory.mktemp("count")
    (root / "cwd").mkdir()
    done = harness(["train", "yolov3-tiny", "--size", "160", "--profile", "smoke", "--iterations", "2",
                    "--project", "../projects", "--device", "cpu"], root / "cwd")
    assert done.returncode == 0, out(done)[-3000:]
    done = harness(["data", "synth", "--out", "../slides", "--slides", "2", "--cells-per-slide", "12",
                    "--scenario", "aml", "--quiet"], root / "cwd")
    assert done.returncode == 0, out(done)[-2000:]
    plain = root / "slides" / "plain slide"          # no annotations, a name with a space, one bad image
    plain.mkdir()
    for source in sorted((root / "slides" / "slide_000" / "JPEGImages").glob("*.jpg"))[:4]:
        shutil.copy(source, plain / f"my field {source.name}")
    (plain / "broken.jpg").write_bytes(b"not a jpeg")
    (root / "slides" / "empty").mkdir()
    (root / "slides" / "empty" / "notes.jpg").write_bytes(b"")
    model = "../projects/yolov3-tiny_160/models/yolov3-tiny_160"
    done = harness(["count", model, "--slides", "../slides", "--out", "../counted", "--device", "cpu", "--quiet"],
                   root / "cwd")
    return root, done


def _rows(path: Path) -> list[dict]:
    with path.open() as handle:
        return list(csv.DictReader(handle))


def test_count_writes_every_slide_and_names_what_it_skipped(counted) -> None:
    root, done = counted
    assert done.returncode == 1, out(done)[-3000:]        # one bad image, one unreadable slide
    assert "1 slide(s) not counted (empty)" in out(done) and "2 image(s) skipped" in out(done)
    rows = {r["slide"]: r for r in _rows(root / "counted" / "differential.csv")}
    assert set(rows) == {"slide_000", "slide_001", "plain slide", "empty"}
    assert rows["plain slide"]["fields"] == "4" and rows["plain slide"]["skipped_images"] == "1"
    assert rows["empty"]["fields"] == "0" and "no readable field image" in rows["empty"]["note"]
    skipped = _rows(root / "counted" / "skipped.csv")
    assert {"slide": "plain slide", "file": "broken.jpg", "reason": "not a readable image"} in skipped
    for row in rows.values():
        if row["wbc"] != "0":
            total = sum(float(row[f"{c}_pct"]) for c in ("Blast", "PRO", "MYE", "MET", "bNEU", "sNEU", "LYM", "MO",
                                                          "EO", "BA", "rLYM"))
            assert total == pytest.approx(100, abs=0.1)
    cells = _rows(root / "counted" / "cells.csv")
    per_slide = {s: sum(1 for c in cells if c["slide"] == s and c["counted"] == "1") for s in rows}
    for slide, row in rows.items():
        counted_here = int(row["wbc"]) + sum(int(row[f"{c}_n"]) for c in ("NRBC", "gPLT", "SM", "Artefact"))
        assert per_slide[slide] == counted_here
    assert any(c["image"].startswith("my field ") for c in cells if c["slide"] == "plain slide")


def test_agreement_is_computed_for_the_annotated_slides(counted) -> None:
    import json

    root, _ = counted
    stats = json.loads((root / "counted" / "agreement.json").read_text())
    assert stats["slides"] and set(stats["slides"]) <= {"slide_000", "slide_001"}     # never the plain folders
    assert set(stats["per_class"]) == {"Blast", "PRO", "MYE", "MET", "bNEU", "sNEU", "LYM", "MO", "EO", "BA", "rLYM"}
    assert set(stats["flags"]) == set(load_thresholds()["flags"])
    assert (root / "counted" / "agreement_scatter.png").stat().st_size > 0


def test_a_slide_with_no_cells_says_so(counted, tmp_path) -> None:
    root, _ = counted
    strict = tmp_path / "thresholds.json"
    rules = load_thresholds()
    rules["detection"]["min_score"] = 1.01            # nothing can pass: every slide has no cells
    strict.write_text(__import__("json").dumps(rules))
    (tmp_path / "one").mkdir()
    shutil.copytree(root / "slides" / "slide_001", tmp_path / "one" / "slide_001")
    done = harness(["count", str(root / "projects/yolov3-tiny_160/models/yolov3-tiny_160"), "--slides", "one",
                    "--out", "res", "--thresholds", str(strict), "--device", "cpu", "--quiet"], tmp_path)
    assert done.returncode == 0, out(done)[-2000:]
    (row,) = _rows(tmp_path / "res" / "differential.csv")
    assert row["note"] == "no cells detected on this slide" and row["wbc"] == "0"
    assert "no cells detected on this slide" in (tmp_path / "res" / "slide_slide_001.html").read_text()


def test_cells_equal_those_from_the_native_darknet_valid(counted, tmp_path) -> None:
    """libdarknet in-process (what count uses) vs the `darknet detector valid` binary on one slide."""
    from harness.frameworks.darknet.driver import detect_darknet_valid, read_data_file
    from harness.evaluation.detections import read_detections
    from harness.labels import LabelMap

    root, _ = counted
    model = root / "projects/yolov3-tiny_160/models/yolov3-tiny_160"
    images = sorted((root / "slides" / "slide_000" / "JPEGImages").glob("*.jpg"))
    assert len(images) >= 4                           # the binary path (short lists run in-process)
    (tmp_path / "valid.txt").write_text("".join(f"{p}\n" for p in images))
    options = read_data_file(model / "rendered" / "obj.data")
    data = tmp_path / "obj.data"
    data.write_text(f"classes={options['classes']}\nvalid={tmp_path / 'valid.txt'}\nnames={options['names']}\n"
                    f"results={tmp_path / 'native'}\neval=voc\n")
    native = detect_darknet_valid(data, model / "rendered" / "yolov3-tiny.cfg",
                                  model / "weights" / "yolov3-tiny_final.weights", tmp_path / "native")
    labels = LabelMap.from_file(options["names"])
    by_image = detections_by_image(read_detections(native, class_names=labels.names), labels.names)
    rules = load_thresholds()
    expected = sorted((c.image_id, c.label) + tuple(c.box) + (c.score,)
                      for p in images for c in cells_of_image(p.stem, by_image.get(p.stem, []), (732, 574), rules))
    got = sorted((r["image_id"], r["class"], *(float(r[k]) for k in ("xmin", "ymin", "xmax", "ymax")),
                  float(r["score"])) for r in _rows(root / "counted" / "cells.csv") if r["slide"] == "slide_000")
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        assert g[:2] == e[:2]
        assert g[2:6] == pytest.approx(e[2:6], abs=1.0) and g[6] == pytest.approx(e[6], abs=1e-3)


def test_pages_open_in_headless_chromium(counted, tmp_path) -> None:
    from test_report_browser import _dump_dom

    root, _ = counted
    for page in ("index.html", "slide_slide_000.html", "slide_plain slide.html", "slide_empty.html"):
        dom = _dump_dom(root / "counted" / page, tmp_path / "profile")
        body = re.search(r"<body([^>]*)>", dom).group(1)
        assert 'data-images-broken="0"' in body, (page, body)
        assert int(re.search(r'data-images-checked="(\d+)"', body).group(1)) >= (1 if page != "slide_empty.html" else 0)
    index = _dump_dom(root / "counted" / "index.html", tmp_path / "profile")
    assert 'id="agreement"' in index and "slide_000" in index
    slide = _dump_dom(root / "counted" / "slide_plain slide.html", tmp_path / "profile")
    assert 'id="differential"' in slide and "broken.jpg" in slide

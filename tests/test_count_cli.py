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

from harness.count.cells import cells_of_image
from harness.class_roles import roles_for_model
from harness.count.rules import load_thresholds
from harness.frameworks import detections_by_image
from test_config_paths import harness, out

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def counted(tmp_path_factory):
    """Train a tiny model, synthesise 2 slides plus a broken one, count them from another cwd.

    The 2-iteration weights are replaced by seeded random ones (unit batch-norm statistics): after
    2 iterations Darknet's rolling variances are still ≈ 0, so the net's boxes explode to the image
    edges and whether any cell survives the border rule is luck. Random weights give cells all over
    the fields, the same on every run."""
    from harness.engine.experiment import trained_model
    from tests.support.darknet import write_random_weights

    root = tmp_path_factory.mktemp("count")
    (root / "cwd").mkdir()
    done = harness(["train", "yolov3-tiny", "--size", "160", "--profile", "smoke", "--iterations", "2",
                    "--project", "../projects", "--device", "cpu"], root / "cwd")
    assert done.returncode == 0, out(done)[-3000:]
    _, files, weights = trained_model(root / "projects/yolov3-tiny_160/models/yolov3-tiny_160")
    write_random_weights(files["cfg"], weights)
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
    done = harness(["count", model, "--slides", "../slides", "--out", "../counted", "--device", "cpu", "--quiet",
                    "--backend", "opencv"], root / "cwd")
    return root, done


@pytest.fixture(scope="module")
def counted_random(counted):
    """The model with its random weights (see ``counted``), counted by both backends: thousands of
    cells with scores up to ~0.45."""
    root, _ = counted
    shutil.copytree(root / "projects/yolov3-tiny_160/models/yolov3-tiny_160", root / "random_model")
    runs = {backend: harness(["count", "../random_model", "--slides", "../slides", "--out", f"../random_{backend}",
                              "--device", "cpu", "--quiet", "--backend", backend], root / "cwd")
            for backend in ("opencv", "native")}
    return root, runs


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
    assert any(r["slide"] == "plain slide" and r["file"] == "broken.jpg" and r["reason"].startswith("not a readable image") for r in skipped)
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
    assert set(stats["flags"]) == set(roles_for_model(["LYM"]).flags)        # the paper's table
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


@pytest.mark.parametrize("backend", ["opencv", "native"])
def test_cells_equal_those_from_the_native_darknet_valid(counted_random, backend, tmp_path) -> None:
    """OpenCV DNN / libdarknet (count's backends) vs the `darknet detector valid` binary on one slide,
    same (random) weights; boxes within 1 px, scores within 1e-3."""
    from harness.frameworks.darknet.driver import detect_darknet_valid, read_data_file
    from harness.evaluation.detections import read_detections
    from harness.labels import LabelMap

    root, runs = counted_random
    assert runs[backend].returncode == 1, out(runs[backend])[-3000:]     # the broken image and empty slide
    assert f"backend: {backend}" in runs[backend].stdout and "fields/s" in runs[backend].stdout
    model = root / "random_model"
    images = sorted((root / "slides" / "slide_000" / "JPEGImages").glob("*.jpg"))
    assert len(images) >= 4                           # the binary path (short lists run in-process)
    (tmp_path / "valid.txt").write_text("".join(f"{p}\n" for p in images))
    options = read_data_file(model / "rendered" / "obj.data")
    data = tmp_path / "obj.data"
    data.write_text(f"classes={options['classes']}\nvalid={tmp_path / 'valid.txt'}\nnames={options['names']}\n"
                    f"results={tmp_path / 'native'}\neval=voc\n")
    native = detect_darknet_valid(data, model / "rendered" / "yolov3-tiny.cfg",
                                  model / "weights" / "yolov3-tiny_final.weights", tmp_path / "native")
    assert "in-process" not in (tmp_path / "native" / "valid.log").read_text()      # really the binary
    labels = LabelMap.from_file(options["names"])
    by_image = detections_by_image(read_detections(native, class_names=labels.names), labels.names)
    rules = load_thresholds()
    expected = [(c.image_id, c.label, *c.box, c.score, c.runner_up, c.runner_up_score)
                for p in images for c in cells_of_image(p.stem, by_image.get(p.stem, []), (732, 574), rules)]
    result_dir = f"random_{backend}"
    got = cell_rows(root / result_dir / "cells.csv", "slide_000")
    assert len(expected) > 100, "too few cells to compare"
    assert_same_cells(got, expected, rules["detection"]["min_score"])
    record = __import__("json").loads((root / result_dir / "count.json").read_text())
    assert record["backend"] == backend and record["network_loads"] == 1 and record["fields_per_s"] > 0


def assert_same_cells(got: list[tuple], expected: list[tuple], threshold: float, max_unmatched: float = 0.02) -> None:
    """One-to-one by image and nearest box: boxes within 1 px, scores within 1e-3, same class.

    Tuples: (image_id, class, xmin, ymin, xmax, ymax, score, runner_up, runner_up_score). Two
    classes scoring within 1e-3 of each other at one place may swap (cell class ↔ runner-up). A
    cell may exist on one side only when its score is within 1e-3 of the count threshold, or — for
    at most ``max_unmatched`` of the cells — when per-class NMS kept the other of two overlapping
    boxes whose scores differ by ~1e-5 (random weights make many such near-ties; they flip even
    between the `detector valid` binary and libdarknet).
    """
    pool, unmatched = list(expected), []
    for cell in got:
        same = [e for e in pool if e[0] == cell[0]]
        best = min(same, key=lambda e: max(abs(a - b) for a, b in zip(e[2:6], cell[2:6])), default=None)
        if best is None or max(abs(a - b) for a, b in zip(best[2:6], cell[2:6])) > 1.0:
            if abs(cell[6] - threshold) > 1e-3:
                unmatched.append(cell)
            continue
        pool.remove(best)
        assert cell[6] == pytest.approx(best[6], abs=1e-3), (cell, best)
        tied = (abs(cell[6] - cell[8]) <= 1e-3 and best[1] == cell[7]) or \
            (abs(best[6] - best[8]) <= 1e-3 and cell[1] == best[7])
        if cell[1] != best[1] and not tied:
            unmatched.append((cell, best))          # another class won a per-class NMS near-tie here
    unmatched += [e for e in pool if abs(e[6] - threshold) > 1e-3]
    assert len(unmatched) <= max_unmatched * max(len(got), len(expected)), \
        f"{len(unmatched)} of {len(expected)} cells unmatched, first: {unmatched[:3]}"


def cell_rows(path: Path, slide: str) -> list[tuple]:
    """cells.csv rows of one slide as assert_same_cells tuples."""
    return [(r["image_id"], r["class"], *(float(r[k]) for k in ("xmin", "ymin", "xmax", "ymax")), float(r["score"]),
             r["runner_up"], float(r["runner_up_score"] or 0)) for r in _rows(path) if r["slide"] == slide]


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


# ----------------------------------------------------------------------------- mode 2: a VOC root + slides.csv


def combined_voc(slides: Path, out: Path, names: list[str]) -> dict[str, str]:
    """The synthetic slides merged into one VOC root (ids prefixed by slide); returns id -> slide."""
    import re as _re

    (out / "Annotations").mkdir(parents=True)
    (out / "JPEGImages").mkdir()
    owner = {}
    for name in names:
        for xml in sorted((slides / name / "Annotations").glob("*.xml")):
            new_id = f"{name}_{xml.stem}"
            text = _re.sub(r"<filename>[^<]*</filename>", f"<filename>{new_id}.jpg</filename>", xml.read_text())
            (out / "Annotations" / f"{new_id}.xml").write_text(text)
            shutil.copy(slides / name / "JPEGImages" / f"{xml.stem}.jpg", out / "JPEGImages" / f"{new_id}.jpg")
            owner[new_id] = name
    return owner


@pytest.fixture(scope="module")
def counted_csv(counted):
    """slides_000/001 as one VOC root; slides.csv leaves one image out and lists one that does not exist."""
    root, _ = counted
    owner = combined_voc(root / "slides", root / "voc", ["slide_000", "slide_001"])
    left_out = sorted(owner)[-1]
    lines = ["image_id,slide"] + [f"{i},{s}" for i, s in owner.items() if i != left_out] + ["ghost_field,slide_001"]
    (root / "voc" / "slides.csv").write_text("\n".join(lines) + "\n")
    done = harness(["count", "../projects/yolov3-tiny_160/models/yolov3-tiny_160", "--slides", "../voc",
                    "--out", "../counted_csv", "--device", "cpu", "--quiet", "--backend", "opencv"], root / "cwd")
    return root, done, owner, left_out


def test_a_voc_root_with_slides_csv_is_counted_per_slide(counted_csv) -> None:
    import json

    root, done, owner, left_out = counted_csv
    assert done.returncode == 1, out(done)[-3000:]                # one unassigned image, one missing image
    assert "1 image(s) of the VOC root are on no slide" in out(done) and "2 image(s) skipped (1 unassigned)" in out(done)
    rows = {r["slide"]: r for r in _rows(root / "counted_csv" / "differential.csv")}
    assert set(rows) == {"slide_000", "slide_001"}
    on_001 = sum(1 for i, s in owner.items() if s == "slide_001" and i != left_out)
    assert rows["slide_001"]["fields"] == str(on_001) and rows["slide_001"]["skipped_images"] == "1"
    skipped = _rows(root / "counted_csv" / "skipped.csv")
    assert {"slide": "(unassigned)", "file": f"{left_out}.jpg", "reason": "not listed in slides.csv"} in skipped
    (ghost,) = [r for r in skipped if r["file"] == "ghost_field"]
    assert ghost["slide"] == "slide_001" and "no such image" in ghost["reason"]
    assert set(json.loads((root / "counted_csv" / "agreement.json").read_text())["slides"]) <= {"slide_000", "slide_001"}
    record = json.loads((root / "counted_csv" / "count.json").read_text())
    assert record["slides_csv"] == str((root / "voc" / "slides.csv").resolve()) and record["backend"] == "opencv"


def test_slides_csv_cells_equal_the_folder_per_slide_cells(counted, counted_csv) -> None:
    """Same images, same backend: grouping by slides.csv must not change a single cell."""
    root, _, _, _ = counted_csv
    key = lambda r: (r["slide"], r["image"].replace(f"{r['slide']}_", ""), r["class"], r["xmin"], r["ymin"])  # noqa: E731
    csv_cells = sorted((key(r), r["score"]) for r in _rows(root / "counted_csv" / "cells.csv") if r["slide"] == "slide_000")
    folder = sorted((key(r), r["score"]) for r in _rows(root / "counted" / "cells.csv") if r["slide"] == "slide_000")
    assert csv_cells == folder


@pytest.mark.parametrize("content, message", [
    ("image,slide_name\nx,y\n", "missing column(s) image_id, slide"),
    ("image_id,slide\nfield_a,\n", "table.csv:2: empty slide"),
    ("image_id,slide\nfield_a,s1\nfield_a,s2\n", "is on two slides"),
])
def test_a_malformed_slides_csv_is_a_usage_error_naming_the_file(counted, tmp_path, content, message) -> None:
    root, _ = counted
    voc = tmp_path / "voc"
    shutil.copytree(root / "slides" / "slide_000", voc)
    (tmp_path / "table.csv").write_text(content)
    done = harness(["count", str(root / "projects/yolov3-tiny_160/models/yolov3-tiny_160"), "--slides", "voc",
                    "--slides-csv", "table.csv", "--out", "res", "--device", "cpu", "--quiet"], tmp_path)
    assert done.returncode == 2 and message in out(done) and "table.csv" in out(done), out(done)[-2000:]
    done = harness(["count", str(root / "projects/yolov3-tiny_160/models/yolov3-tiny_160"), "--slides", "voc",
                    "--out", "res", "--device", "cpu", "--quiet"], tmp_path)
    assert done.returncode == 2 and "without slides.csv" in out(done), out(done)[-2000:]

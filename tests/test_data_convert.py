"""VOC → Darknet + Caffe-SSD conversion on real BCCD, plus resume, refusal and CLI checks."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from harness.cli import main as harness_main
from harness.data import caffe_lmdb, caffe_proto, convert, darknet
from harness.data.convert import convert_dataset
from harness.data.voc import load_voc
from harness.labels import LabelMap

from test_data_voc import make_sample, write_image, write_xml


@pytest.fixture(scope="module")
def bccd_converted(bccd_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("bccd") / "converted"
    return convert_dataset(bccd_root, out, seed=0, workers=2, progress=False)


def _by_id(bccd_root) -> dict:
    return {im.image_id: im for im in load_voc(bccd_root).images}


# ----------------------------------------------------------------------------- BCCD

def test_bccd_counts_and_reported_bad_boxes(bccd_converted):
    result = bccd_converted
    assert len(result.train_ids) == 292 and len(result.test_ids) == 72
    counts = result.counts
    assert counts["train"]["objects_per_class"] == {"Platelets": 292, "RBC": 3348, "WBC": 301}
    assert counts["test"]["objects_per_class"] == {"Platelets": 69, "RBC": 805, "WBC": 71}
    summary = json.loads((result.out_dir / "conversion.json").read_text())
    assert summary["counts"]["validation"]["skipped_by_reason"] == {"zero-area box": 2}
    bad = sorted(Path(p["file"]).name for p in summary["problems"] if p["action"] == "skipped object")
    assert bad == ["BloodImage_00338.xml", "BloodImage_00343.xml"]
    # the audit's one real finding on BCCD: the same field photographed twice, both in trainval
    (twin,) = [p for p in summary["problems"] if p["kind"] == "duplicate image"]
    assert Path(twin["file"]).name == "BloodImage_00038.jpg" and "BloodImage_00037.jpg" in twin["message"]
    assert (result.out_dir / "audit" / "dataset_report.html").is_file()
    text = result.summary()
    assert "BloodImage_00338.xml object #12 (RBC): zero-area box" in text
    assert "train: 292 images, test: 72 images" in text


def test_layout_files(bccd_converted):
    out = bccd_converted.out_dir
    assert (out / "labels.txt").read_text() == "Platelets\nRBC\nWBC\n"
    assert (out / "darknet" / "obj.names").read_bytes() == b"Platelets\nRBC\nWBC\n"
    valid = (out / "darknet" / "valid.txt").read_bytes().decode()
    assert "\r" not in valid
    lines = valid.splitlines()
    assert len(lines) == 72 and all(Path(p).is_absolute() and Path(p).is_file() for p in lines)
    assert (out / "splits" / "test.txt").read_text().split() == sorted(bccd_converted.test_ids)
    assert len((out / "darknet" / "train.txt").read_text().splitlines()) == 292
    assert LabelMap.from_file(out / "caffe" / "labelmap.prototxt").names == ("Platelets", "RBC", "WBC")
    assert 'label: 0\n  display_name: "background"' in (out / "caffe" / "labelmap.prototxt").read_text()
    sizes = (out / "caffe" / "test_name_size.txt").read_text().splitlines()
    assert sizes[0] == "BloodImage_00007 480 640" and len(sizes) == 72
    assert not list(out.rglob("*.tmp*")) and not list(out.glob("caffe/*.partial"))


def test_darknet_labels_are_where_darknets_rule_looks_and_round_trip(bccd_converted, bccd_root):
    out, labelmap = bccd_converted.out_dir, bccd_converted.labelmap
    truth = _by_id(bccd_root)
    for line in (out / "darknet" / "train.txt").read_text().splitlines():
        label_file = Path(darknet.darknet_label_path(line))
        image_id = label_file.stem
        assert label_file == out / "darknet" / "labels" / f"{image_id}.txt"
        image = truth[image_id]
        back = darknet.parse_yolo_labels(label_file.read_text(), image.width, image.height, labelmap)
        assert [b.name for b in back] == [b.name for b in image.objects]
        for got, want in zip(back, image.objects):
            assert max(abs(got.xmin - want.xmin), abs(got.ymin - want.ymin),
                       abs(got.xmax - want.xmax), abs(got.ymax - want.ymax)) < 1.0


def test_every_lmdb_record_decodes_to_the_same_image_and_boxes(bccd_converted, bccd_root):
    out, labelmap = bccd_converted.out_dir, bccd_converted.labelmap
    truth = _by_id(bccd_root)
    for split, ids in (("train", bccd_converted.train_ids), ("test", bccd_converted.test_ids)):
        seen = []
        for index, (key, record) in enumerate(caffe_lmdb.read_records(out / "caffe" / f"{split}_lmdb")):
            image_id = caffe_lmdb.key_image_id(key)
            assert key == f"{index:08d}_darknet/JPEGImages/{image_id}.jpg"
            image = truth[image_id]
            datum = record.datum
            assert datum.encoded and record.HasField("type") and record.type == caffe_proto.BBOX
            assert (datum.channels, datum.height, datum.width) == (3, 480, 640) and datum.label == -1
            assert datum.data == image.image_path.read_bytes()
            decoded = cv2.imdecode(np.frombuffer(datum.data, np.uint8), cv2.IMREAD_COLOR)
            assert np.array_equal(decoded, cv2.imread(str(image.image_path)))
            labels = [g.group_label for g in record.annotation_group]
            assert len(set(labels)) == len(labels) and all(1 <= lbl <= 3 for lbl in labels)
            for group in record.annotation_group:
                assert [a.instance_id for a in group.annotation] == list(range(len(group.annotation)))
            got = sorted((b.name, b.xmin, b.ymin, b.xmax, b.ymax) for b in caffe_lmdb.datum_boxes(record, labelmap))
            want = sorted((b.name, b.xmin, b.ymin, b.xmax, b.ymax) for b in image.objects)
            assert len(got) == len(want)
            for g, w in zip(got, want):
                assert g[0] == w[0] and np.allclose(g[1:], w[1:], atol=1e-3)
            seen.append(image_id)
        assert sorted(seen) == sorted(ids)
        if split == "test":      # DetectionOutput pairs record n with line n of test_name_size.txt
            names = [line.split()[0] for line in (out / "caffe" / "test_name_size.txt").read_text().splitlines()]
            assert names == seen


def test_second_run_reuses_everything(bccd_converted, bccd_root):
    again = convert_dataset(bccd_root, bccd_converted.out_dir, workers=1, progress=False)
    assert again.work == {"converted": 0, "reused": 364} and again.resumed
    assert again.counts == bccd_converted.counts


def test_reuse_keeps_the_dataset_report_and_redraws_a_missing_one(bccd_converted, bccd_root):
    audit_dir = bccd_converted.out_dir / "audit"
    written = {path.name: path.stat().st_mtime_ns for path in audit_dir.iterdir()}
    convert_dataset(bccd_root, bccd_converted.out_dir, workers=1, progress=False)
    assert {path.name: path.stat().st_mtime_ns for path in audit_dir.iterdir()} == written   # not redrawn
    (audit_dir / "dataset_report.html").unlink()
    convert_dataset(bccd_root, bccd_converted.out_dir, workers=1, progress=False)
    assert (audit_dir / "dataset_report.html").is_file()


def test_different_inputs_in_the_same_out_dir_are_refused(bccd_converted, bccd_root):
    with pytest.raises(ValueError, match="different inputs"):
        convert_dataset(bccd_root, bccd_converted.out_dir, seed=5, progress=False)


# ----------------------------------------------------------------------------- resume

def _small_voc(root: Path, n: int = 12) -> Path:
    for i in range(n):
        make_sample(root, f"im{i:03d}", [("cat", 2 + i, 2, 30 + i, 30), ("dog", 10, 10, 40, 40)])
    return root


def _lmdb_items(path: Path) -> list:
    return [(k, r.SerializeToString()) for k, r in caffe_lmdb.read_records(path)]


def test_interrupted_conversion_resumes_without_redoing_work(tmp_path, monkeypatch):
    voc_root = _small_voc(tmp_path / "voc", 150)
    reference = convert_dataset(voc_root, tmp_path / "ref", workers=1, progress=False)

    calls = []
    real = convert.convert_image

    def crash_after_100(task):
        if len(calls) == 100:
            raise KeyboardInterrupt("simulated interruption")
        calls.append(task.image.image_id)
        return real(task)

    monkeypatch.setattr(convert, "convert_image", crash_after_100)
    with pytest.raises(KeyboardInterrupt):
        convert_dataset(voc_root, tmp_path / "out", workers=1, progress=False)
    assert not (tmp_path / "out" / "conversion.json").exists()
    assert (tmp_path / "out" / "caffe" / "train_lmdb.partial").is_dir()
    monkeypatch.setattr(convert, "convert_image", real)

    resumed = convert_dataset(voc_root, tmp_path / "out", workers=1, progress=False)
    # 100 images were finished; 64 of their records were committed (one batch), the other 36
    # records are redone while their Darknet files are kept.
    assert resumed.resumed and resumed.work["reused"] == 64
    assert resumed.work["converted"] == 150 - 64
    for split in ("train", "test"):
        assert _lmdb_items(tmp_path / "out" / "caffe" / f"{split}_lmdb") == \
            _lmdb_items(tmp_path / "ref" / "caffe" / f"{split}_lmdb")
    for name in ("darknet/train.txt", "caffe/test_name_size.txt", "labels.txt"):
        ref_text = (tmp_path / "ref" / name).read_text().replace(str(tmp_path / "ref"), "X")
        assert (tmp_path / "out" / name).read_text().replace(str(tmp_path / "out"), "X") == ref_text
    labels = sorted(p.name for p in (tmp_path / "out" / "darknet" / "labels").iterdir())
    assert labels == [f"im{i:03d}.txt" for i in range(150)]
    assert resumed.counts == reference.counts
    assert not list((tmp_path / "out").rglob(".*.tmp*"))


def _committed(lmdb_dir: Path) -> int:
    import lmdb

    if not (lmdb_dir / "data.mdb").is_file():
        return 0
    env = lmdb.open(str(lmdb_dir), readonly=True, lock=False)
    try:
        return env.stat()["entries"]
    finally:
        env.close()


def test_killed_conversion_process_resumes(bccd_root, tmp_path, monkeypatch):
    """SIGKILL the real CLI (and its worker pool) mid-way; the re-run finishes with the same LMDBs."""
    import os
    import signal
    import subprocess
    import sys
    import time

    import importlib.util

    bench_file = Path(__file__).resolve().parents[1] / "bench" / "bench_convert.py"
    monkeypatch.syspath_prepend(str(bench_file.parent))  # bench/_common.py, as when the script runs
    spec = importlib.util.spec_from_file_location("bench_convert", bench_file)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    n = bench.repeated_voc(bccd_root, tmp_path / "voc", 2)
    command = [sys.executable, "-m", "harness", "data", "convert", "--voc", str(tmp_path / "voc"), "--quiet"]
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.Popen(command + ["--out", str(tmp_path / "out"), "--workers", "2"], cwd=root,
                            start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    partial = tmp_path / "out" / "caffe" / "train_lmdb.partial"
    deadline = time.monotonic() + 120
    while _committed(partial) < 128 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    committed = _committed(partial)
    assert 0 < committed < n * 292 // 364, "the conversion was not interrupted mid-way"
    assert not (tmp_path / "out" / "conversion.json").exists()

    resumed = subprocess.run(command + ["--out", str(tmp_path / "out")], cwd=root, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads((tmp_path / "out" / "conversion.json").read_text())
    assert summary["work"]["reused"] >= committed and summary["work"]["converted"] <= n - committed
    convert_dataset(tmp_path / "voc", tmp_path / "fresh", workers=2, progress=False)
    for split in ("train", "test"):
        assert _lmdb_items(tmp_path / "out" / "caffe" / f"{split}_lmdb") == \
            _lmdb_items(tmp_path / "fresh" / "caffe" / f"{split}_lmdb")
    assert len(list((tmp_path / "out" / "darknet" / "labels").iterdir())) == n
    assert not list((tmp_path / "out").rglob(".*.tmp*"))       # half-written files were cleaned up


# ----------------------------------------------------------------------------- refusals and defects

@pytest.mark.parametrize("bad_dir", ["images", "raw_data", "JPEGImages", "x.jpgs"])
def test_output_paths_that_darknet_would_rewrite_are_refused(tmp_path, bad_dir):
    voc_root = _small_voc(tmp_path / "voc", 3)
    with pytest.raises(ValueError, match="label-path rule"):
        convert_dataset(voc_root, tmp_path / bad_dir / "out", progress=False)


def test_output_path_with_spaces_is_refused(tmp_path):
    voc_root = _small_voc(tmp_path / "voc", 3)
    with pytest.raises(ValueError, match="whitespace"):
        convert_dataset(voc_root, tmp_path / "my out", progress=False)


def test_dotted_ids_are_refused(tmp_path):
    voc_root = _small_voc(tmp_path / "voc", 3)
    make_sample(voc_root, "scan.v2", [("cat", 2, 2, 30, 30)])
    with pytest.raises(ValueError, match="scan.v2"):
        convert_dataset(voc_root, tmp_path / "out", progress=False)


def test_darknet_label_path_rule():
    assert darknet.darknet_label_path("/d/images/a.jpg") == "/d/labels/a.txt"
    assert darknet.darknet_label_path("/d/JPEGImages/a.JPEG") == "/d/labels/a.txt"
    assert darknet.darknet_label_path("/my_images/images/a.jpg") == "/my_labels/images/a.txt"
    # "drawings" contains "raw": Darknet rewrites it too
    assert darknet.darknet_label_path("/drawings/labels/a.jpg") == "/dlabelsings/labels/a.txt"
    assert darknet.darknet_label_path("/d/images/a.jpeg") == "/d/labels/a.jpeg"


def test_defects_are_counted_and_non_jpeg_is_reencoded(tmp_path):
    voc_root = _small_voc(tmp_path / "voc", 20)
    make_sample(voc_root, "zero", [("cat", 5, 5, 5, 9), ("dog", 1, 1, 10, 10)])
    write_xml(voc_root, "noimage", [("cat", 2, 2, 30, 30)])
    write_image(voc_root, "png", suffix=".png")
    write_xml(voc_root, "png", [("cat", 2, 2, 30, 30)])
    write_xml(voc_root, "garbage", [("cat", 2, 2, 30, 30)])
    (voc_root / "JPEGImages" / "garbage.jpg").write_bytes(b"\xff\xd8" + b"\xff\xc0\x00\x11\x08\x00\x30\x00\x40" +
                                                           b"\x00" * 40)
    result = convert_dataset(voc_root, tmp_path / "out", workers=2, progress=False)
    validation = result.counts["validation"]
    assert validation["skipped_by_reason"] == {"missing image": 1, "unreadable image": 1, "zero-area box": 1}
    all_ids = set(result.train_ids) | set(result.test_ids)
    assert "garbage" not in all_ids and "noimage" not in all_ids and {"png", "zero"} <= all_ids
    png_copy = tmp_path / "out" / "darknet" / "JPEGImages" / "png.jpg"
    assert png_copy.read_bytes()[:2] == b"\xff\xd8"
    assert "garbage.jpg: unreadable image" in result.summary()
    report = result.report           # kept + skipped add up to what was read
    assert report.images_total == 24 and report.images_kept == 22 and report.images_skipped == 2
    assert report.images_kept == len(all_ids)
    assert sum(report.objects_per_class.values()) == report.objects_kept == \
        sum(result.counts[s]["objects"] for s in ("train", "test"))


def test_dataset_without_image_sets_uses_the_paper_rule(tmp_path):
    voc_root = _small_voc(tmp_path / "voc", 100)
    result = convert_dataset(voc_root, tmp_path / "out", seed=1, progress=False)
    assert len(result.test_ids) == 7 and len(result.train_ids) == 93
    assert result.split_source == "paper rule 7/100, seed 1, stratified by class"
    again = convert_dataset(voc_root, tmp_path / "out2", seed=1, progress=False)
    assert again.test_ids == result.test_ids


def test_ids_outside_every_split_are_reported(tmp_path):
    voc_root = _small_voc(tmp_path / "voc", 6)
    main = voc_root / "ImageSets" / "Main"
    main.mkdir(parents=True)
    (main / "trainval.txt").write_text("im000\nim001\nim002\nim003\n")
    (main / "test.txt").write_text("im004\nmissing\n")
    result = convert_dataset(voc_root, tmp_path / "out", progress=False)
    assert result.test_ids == ["im004"] and len(result.train_ids) == 4
    kinds = result.counts["validation"]["skipped_by_reason"]
    assert kinds == {"missing annotation": 1, "not in any split": 1}
    report = result.report
    assert (report.images_total, report.images_kept, report.images_skipped) == (7, 5, 2)
    assert report.objects_kept == 10 == sum(result.counts[s]["objects"] for s in ("train", "test"))


def test_cli_convert_and_check(tmp_path):
    voc_root = _small_voc(tmp_path / "voc", 8)
    make_sample(voc_root, "zero", [("cat", 5, 5, 5, 9)])
    runner = CliRunner()
    checked = runner.invoke(harness_main, ["data", "check", "--voc", str(voc_root)])
    assert checked.exit_code == 0, checked.output
    assert "zero.xml object #0 (cat): zero-area box" in checked.output
    converted = runner.invoke(harness_main, ["data", "convert", "--voc", str(voc_root), "--out",
                                             str(tmp_path / "out"), "--quiet", "--workers", "1"])
    assert converted.exit_code == 0, converted.output
    assert "conversion.json" in converted.output and (tmp_path / "out" / "conversion.json").is_file()
    refused = runner.invoke(harness_main, ["data", "convert", "--voc", str(voc_root), "--out",
                                           str(tmp_path / "raw" / "out"), "--quiet"])
    assert refused.exit_code != 0 and "label-path rule" in refused.output


def test_cli_labelmap_option(tmp_path):
    voc_root = _small_voc(tmp_path / "voc", 4)
    names = tmp_path / "obj.names"
    names.write_text("dog\ncat\nbird\n")
    result = CliRunner().invoke(harness_main, ["data", "convert", "--voc", str(voc_root), "--out",
                                               str(tmp_path / "out"), "--labelmap", str(names), "--quiet"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "labels.txt").read_text() == "dog\ncat\nbird\n"
    first = (tmp_path / "out" / "darknet" / "labels" / "im000.txt").read_text().splitlines()
    assert [line.split()[0] for line in first] == ["1", "0"]


def test_relinking_an_existing_link_leaves_no_temporary(tmp_path):
    from harness.core.atomic import link_or_copy

    src = tmp_path / "a.jpg"
    src.write_bytes(b"x")
    link_or_copy(src, tmp_path / "out" / "b.jpg")
    link_or_copy(src, tmp_path / "out" / "b.jpg")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["b.jpg"]

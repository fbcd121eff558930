"""Issue 21: hostile input and faults — no silent loss, no write outside the output folder, no traceback.

Every CLI verb runs as a subprocess from a working directory other than its inputs'. Each test
asserts the exit status, the message, and that earlier or good output was not lost. Disk full and
read-only folders are real: a small tmpfs, remounted read-only (root bypasses chmod); the tests
skip, saying why, where the kernel refuses the mount. docs/faults.md is the user's table of these
cases; ``test_docs_table_names_existing_tests`` keeps it honest.
"""
from __future__ import annotations

import contextlib
import csv
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest

from test_config_paths import REPO, harness, out

pytestmark = pytest.mark.slow


# ----------------------------------------------------------------------------- helpers and fixtures


def _rows(path: Path) -> list[dict]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def _tree(root: Path) -> set[str]:
    """Every path under ``root`` (what a verb may have written), as strings relative to it."""
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def _no_traceback(done: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in out(done), out(done)[-3000:]


def _truncated_copy(source: Path, target: Path) -> Path:
    target.write_bytes(source.read_bytes()[: source.stat().st_size // 2])
    return target


@contextlib.contextmanager
def tmpfs(path: Path, size: str = "64k", read_only: bool = False) -> Iterator[Path]:
    """A real small file system at ``path`` (disk full / read-only faults); skips where mount is refused."""
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True,
                          text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip()}): needs root and a kernel that allows it")
    try:
        if read_only:
            subprocess.run(["mount", "-o", "remount,ro", str(path)], check=True)
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


@contextlib.contextmanager
def read_only_view(folder: Path, view: Path) -> Iterator[Path]:
    """``folder`` seen read-only at ``view`` (a read-only bind mount: a shared model store)."""
    view.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "--bind", str(folder), str(view)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot bind-mount here ({done.stderr.strip()})")
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(view)], check=True)
        yield view
    finally:
        subprocess.run(["umount", "-l", str(view)], check=False)


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    """A finished yolov3-tiny MODEL_DIR (1 smoke iteration: its boxes mean nothing, every path is real)."""
    root = tmp_path_factory.mktemp("faults_model")
    (root / "cwd").mkdir()
    done = harness(["train", "yolov3-tiny", "--size", "160", "--profile", "smoke", "--iterations", "1",
                    "--project", "../projects", "--device", "cpu"], root / "cwd")
    assert done.returncode == 0, out(done)[-3000:]
    return root / "projects/yolov3-tiny_160/models/yolov3-tiny_160"


@pytest.fixture()
def fields(bccd_root: Path, tmp_path: Path) -> Path:
    """Three good BCCD fields and one truncated JPEG (a slide folder, or a plain detect folder)."""
    folder = tmp_path / "inputs" / "slide A"
    folder.mkdir(parents=True)
    for n in range(3):
        shutil.copy(bccd_root / f"JPEGImages/BloodImage_0000{n}.jpg", folder)
    _truncated_copy(bccd_root / "JPEGImages/BloodImage_00003.jpg", folder / "cut short.jpg")
    (tmp_path / "cwd").mkdir()
    return folder


def _small_voc(bccd_root: Path, root: Path, n: int = 6) -> Path:
    """A VOC root of ``n`` BCCD images with an ImageSets split."""
    for sub in ("Annotations", "JPEGImages", "ImageSets/Main"):
        (root / sub).mkdir(parents=True)
    ids = [f"BloodImage_{i:05d}" for i in range(n)]
    for image_id in ids:
        shutil.copy(bccd_root / f"Annotations/{image_id}.xml", root / "Annotations")
        shutil.copy(bccd_root / f"JPEGImages/{image_id}.jpg", root / "JPEGImages")
    (root / "ImageSets/Main/trainval.txt").write_text("\n".join(ids[:-2]) + "\n")
    (root / "ImageSets/Main/test.txt").write_text("\n".join(ids[-2:]) + "\n")
    return root


# ----------------------------------------------------------------------------- 1. silent loss


def test_detect_names_a_truncated_jpeg_and_keeps_the_good_images(model: Path, fields: Path, tmp_path: Path) -> None:
    """libdarknet used to exit(0) on it: every detection lost, images.csv 'ok', exit 0. The model
    folder is a read-only bind mount: detect's logs go to --out."""
    before = _tree(model)
    with read_only_view(model, tmp_path / "model_ro") as model_ro:
        done = harness(["detect", str(model_ro), "--images", "../inputs/slide A", "--out", "../dets",
                        "--device", "cpu"], tmp_path / "cwd")
    _no_traceback(done)
    assert done.returncode == 1, out(done)[-3000:]
    assert "1 image(s) could not be read" in out(done)
    status = {r["file"]: r["status"] for r in _rows(tmp_path / "dets/images.csv")}
    assert status["cut short.jpg"].startswith("skipped: not a readable image")
    assert [status[f"BloodImage_0000{n}.jpg"] for n in range(3)] == ["ok"] * 3
    detected = {r["file"] for r in _rows(tmp_path / "dets/detections.csv")}
    assert detected == {f"BloodImage_0000{n}.jpg" for n in range(3)}
    assert (tmp_path / "dets/libdarknet.log").is_file() and _tree(model) == before


def test_detect_on_a_voc_root_names_truncated_and_empty_images(model: Path, bccd_root: Path, tmp_path: Path) -> None:
    """A VOC root's images pass the same rule: a header-only check used to let the truncated one through."""
    voc = _small_voc(bccd_root, tmp_path / "voc", n=4)
    _truncated_copy(bccd_root / "JPEGImages/BloodImage_00002.jpg", voc / "JPEGImages/BloodImage_00002.jpg")
    (voc / "JPEGImages/BloodImage_00003.jpg").write_bytes(b"")
    (tmp_path / "cwd").mkdir()
    done = harness(["detect", str(model), "--images", "../voc", "--out", "../dets", "--device", "cpu"], tmp_path / "cwd")
    _no_traceback(done)
    assert done.returncode == 1 and "2 image(s) could not be read" in out(done), out(done)[-3000:]
    status = {Path(r["file"]).name: r["status"] for r in _rows(tmp_path / "dets/images.csv")}
    assert status == {"BloodImage_00000.jpg": "ok", "BloodImage_00001.jpg": "ok",
                      "BloodImage_00002.jpg": "skipped: not a readable image: image data cannot be decoded "
                                              "(truncated or corrupt file)",
                      "BloodImage_00003.jpg": "skipped: not a readable image"}
    assert {r["image_id"] for r in _rows(tmp_path / "dets/detections.csv")} == {"BloodImage_00000", "BloodImage_00001"}


@pytest.mark.parametrize("backend", ["opencv", "native"])
def test_count_skips_a_truncated_jpeg_and_counts_the_rest(model: Path, fields: Path, tmp_path: Path,
                                                          backend: str) -> None:
    """The OpenCV backend used to count a grey-filled truncated JPEG as a field; native lost the slide.
    The model folder is a read-only bind mount: count only reads it."""
    with read_only_view(model, tmp_path / "model_ro") as model_ro:
        done = harness(["count", str(model_ro), "--slides", "../inputs", "--out", "../counted", "--device", "cpu",
                        "--quiet", "--backend", backend], tmp_path / "cwd")
    _no_traceback(done)
    assert done.returncode == 1 and "1 image(s) skipped" in out(done), out(done)[-3000:]
    skipped = _rows(tmp_path / "counted/skipped.csv")
    assert [(r["slide"], r["file"]) for r in skipped] == [("slide A", "cut short.jpg")]
    assert skipped[0]["reason"].startswith("not a readable image")
    row = _rows(tmp_path / "counted/differential.csv")[0]
    assert (row["fields"], row["skipped_images"]) == ("3", "1")
    assert {r["image"] for r in _rows(tmp_path / "counted/cells.csv")} <= {f"BloodImage_0000{n}.jpg" for n in range(3)}


@pytest.fixture(scope="module")
def caffe_model(caffe_install, tmp_path_factory) -> Path:
    """A finished SSD300 MODEL_DIR (1 smoke iteration, no periodic evaluation)."""
    root = tmp_path_factory.mktemp("faults_caffe")
    (root / "cwd").mkdir()
    done = harness(["train", "ssd", "--profile", "smoke", "--iterations", "1", "--batch-size", "1",
                    "--eval-interval", "0", "--project", "../projects", "--device", "cpu"], root / "cwd")
    assert done.returncode == 0, out(done)[-3000:]
    return root / "projects/ssd300_smin0.2/models/ssd300_smin0.2"


@pytest.mark.caffe
def test_caffe_detect_and_count_name_a_truncated_jpeg_and_keep_the_good_images(caffe_model: Path, fields: Path,
                                                                                tmp_path: Path) -> None:
    """The same rule in front of pycaffe (detect) and both Caffe count backends."""
    done = harness(["detect", str(caffe_model), "--images", "../inputs/slide A", "--out", "../dets", "--device", "cpu"],
                   tmp_path / "cwd")
    _no_traceback(done)
    assert done.returncode == 1 and "1 image(s) could not be read" in out(done), out(done)[-3000:]
    status = {r["file"]: r["status"] for r in _rows(tmp_path / "dets/images.csv")}
    assert status["cut short.jpg"].startswith("skipped: not a readable image")
    assert sorted(k for k, v in status.items() if v == "ok") == [f"BloodImage_0000{n}.jpg" for n in range(3)]
    for backend in ("opencv", "native"):
        done = harness(["count", str(caffe_model), "--slides", "../inputs", "--out", f"../{backend}", "--device",
                        "cpu", "--quiet", "--backend", backend], tmp_path / "cwd")
        _no_traceback(done)
        assert done.returncode == 1 and "1 image(s) skipped" in out(done), (backend, out(done)[-3000:])
        row = _rows(tmp_path / backend / "differential.csv")[0]
        assert (row["fields"], row["skipped_images"]) == ("3", "1")


def test_a_native_exit_fails_the_call_not_the_process(model: Path, fields: Path, tmp_path: Path) -> None:
    """Past the image rule (called directly), libdarknet exit(0)s on the truncated JPEG: in its child
    process that is an error naming the image, and the next image is detected by a fresh child."""
    from harness.core.child import NativeExitError
    from harness.engine.experiment import trained_model
    from harness.frameworks.darknet.libdarknet import guarded_network

    _, files, weights = trained_model(model)
    with guarded_network(files["cfg"], weights, log_path=tmp_path / "libdarknet.log") as net:
        assert net.call("detect", fields / "BloodImage_00000.jpg")
        with pytest.raises(NativeExitError, match=r"exit status 0\) while detecting .*cut short\.jpg"):
            net.call("detect", fields / "cut short.jpg", doing=f"detecting {fields / 'cut short.jpg'}")
        assert net.call("detect", fields / "BloodImage_00001.jpg")


def test_data_check_and_convert_refuse_the_same_truncated_image(bccd_root: Path, tmp_path: Path) -> None:
    """Good today (one rule): check and convert both decode fully and name the file."""
    voc = _small_voc(bccd_root, tmp_path / "voc")
    _truncated_copy(bccd_root / "JPEGImages/BloodImage_00001.jpg", voc / "JPEGImages/BloodImage_00001.jpg")
    (tmp_path / "cwd").mkdir()
    check = harness(["data", "check", "--voc", "../voc", "--out", "../audit"], tmp_path / "cwd")
    convert = harness(["data", "convert", "--voc", "../voc", "--out", "../conv", "--quiet"], tmp_path / "cwd")
    for done in (check, convert):
        _no_traceback(done)
        assert re.search(r"BloodImage_00001\.jpg.*(truncated|unreadable)", out(done)), out(done)[-3000:]
    summary = json.loads((tmp_path / "conv/conversion.json").read_text())
    assert "BloodImage_00001" not in summary["splits"]["train"] + summary["splits"]["test"]


# ----------------------------------------------------------------------------- 2. confinement

HOSTILE_SLIDES = ["../../escape", "/tmp/absolute_slide", "a/b", "..", "CON", "x" * 300, ".hidden"]


def test_count_keeps_hostile_slide_names_inside_out(model: Path, bccd_root: Path, tmp_path: Path) -> None:
    """slides.csv names used to become paths: crops written outside --out, then a traceback."""
    voc = _small_voc(bccd_root, tmp_path / "work" / "voc", n=len(HOSTILE_SLIDES))
    rows = [f"BloodImage_{i:05d},\"{name}\"" for i, name in enumerate(HOSTILE_SLIDES)]
    (voc / "slides.csv").write_text("image_id,slide\n" + "\n".join(rows) + "\n")
    (tmp_path / "work" / "cwd").mkdir()
    outside = {p: _tree(p) for p in (tmp_path, Path("/tmp"))}
    done = harness(["count", str(model), "--slides", "../voc", "--out", "../counted", "--device", "cpu",
                    "--quiet", "--backend", "opencv"], tmp_path / "work" / "cwd")
    _no_traceback(done)
    assert done.returncode == 0, out(done)[-3000:]
    assert {r["slide"] for r in _rows(tmp_path / "work/counted/differential.csv")} == set(HOSTILE_SLIDES)
    pages = sorted(p.name for p in (tmp_path / "work/counted").glob("slide_*.html"))
    assert len(pages) == len(HOSTILE_SLIDES) and all(len(p) <= 100 for p in pages)
    assert not (Path("/tmp") / "absolute_slide").exists() and not (tmp_path / "escape").exists()
    for root, before in outside.items():
        new = {p for p in _tree(root) - before if not p.startswith(("work", "pytest-"))}
        assert not {p for p in new if "slide" in p or "escape" in p or "crop" in p}, new


def test_count_with_a_nul_in_slides_csv_writes_nothing_outside_out(model: Path, bccd_root: Path,
                                                                      tmp_path: Path) -> None:
    """A NUL in a slide name: refused naming slides.csv (exit 2), or mapped to a safe name; never a path."""
    voc = _small_voc(bccd_root, tmp_path / "work" / "voc", n=2)
    (voc / "slides.csv").write_text("image_id,slide\nBloodImage_00000,a\x00b\nBloodImage_00001,ok\n")
    (tmp_path / "work" / "cwd").mkdir()
    done = harness(["count", str(model), "--slides", "../voc", "--out", "../counted", "--device", "cpu",
                    "--quiet", "--backend", "opencv"], tmp_path / "work" / "cwd")
    _no_traceback(done)
    assert (done.returncode, "slides.csv" in out(done)) == (2, True) or done.returncode == 0, out(done)[-3000:]
    assert sorted(os.listdir(tmp_path)) == ["work"] and all("\x00" not in p for p in _tree(tmp_path))


def test_detect_maps_hostile_file_names_to_safe_ids(model: Path, bccd_root: Path, tmp_path: Path) -> None:
    """File names that are reserved, over-long or all punctuation become safe ids inside --out."""
    folder = tmp_path / "inputs"
    folder.mkdir()
    names = ["CON.jpg", "..jpg", ("y" * 240) + ".jpg", "a b;$(touch x).jpg"]
    for name in names:
        shutil.copy(bccd_root / "JPEGImages/BloodImage_00000.jpg", folder / name)
    (tmp_path / "cwd").mkdir()
    done = harness(["detect", str(model), "--images", "../inputs", "--out", "../dets", "--device", "cpu"],
                   tmp_path / "cwd")
    _no_traceback(done)
    assert done.returncode == 0, out(done)[-3000:]
    rows = _rows(tmp_path / "dets/images.csv")
    assert {r["file"] for r in rows} == set(names) and all(r["status"] == "ok" for r in rows)
    assert all(len(r["image_id"]) <= 80 and r["image_id"].upper() != "CON" for r in rows)
    assert not (tmp_path / "cwd/x").exists() and sorted(os.listdir(tmp_path)) == ["cwd", "dets", "inputs"]


@pytest.mark.parametrize("bad_id", ["../../outside", "/etc/passwd", "Blood Image_00001"])
def test_convert_refuses_split_ids_that_are_not_file_names(bccd_root: Path, tmp_path: Path, bad_id: str) -> None:
    """An id with a space used to be cut at it; a path would have been followed outside the dataset."""
    voc = _small_voc(bccd_root, tmp_path / "voc")
    listed = (voc / "ImageSets/Main/trainval.txt").read_text()
    (voc / "ImageSets/Main/trainval.txt").write_text(listed + bad_id + "\n")
    (tmp_path / "cwd").mkdir()
    for args in (["check", "--out", "../audit"], ["convert", "--out", "../conv", "--quiet"]):
        done = harness(["data", args[0], "--voc", "../voc", *args[1:]], tmp_path / "cwd")
        _no_traceback(done)
        assert done.returncode == 1, out(done)[-3000:]
        assert f"trainval.txt:5: {bad_id!r}" in out(done)
    assert sorted(os.listdir(tmp_path)) == ["cwd", "voc"]


def test_a_missing_split_id_blames_the_file_that_lists_it(bccd_root: Path, tmp_path: Path) -> None:
    voc = _small_voc(bccd_root, tmp_path / "voc")
    (voc / "ImageSets/Main/trainval.txt").write_text((voc / "ImageSets/Main/trainval.txt").read_text() + "ghost\n")
    (tmp_path / "cwd").mkdir()
    done = harness(["data", "convert", "--voc", "../voc", "--out", "../conv", "--quiet"], tmp_path / "cwd")
    assert done.returncode == 0, out(done)[-3000:]
    assert re.search(r"trainval\.txt: missing annotation: id 'ghost'", out(done)), out(done)[-3000:]


# ----------------------------------------------------------------------------- 3. class names


@pytest.mark.parametrize("name", ["W/BC", "W&#10;BC", "W\\BC"])
def test_class_names_the_frameworks_cannot_carry_are_refused_with_file_and_line(bccd_root: Path, tmp_path: Path,
                                                                                 name: str) -> None:
    """A '/' used to pass convert and crash Darknet's `detector valid` after training."""
    voc = _small_voc(bccd_root, tmp_path / "voc")
    xml = voc / "Annotations/BloodImage_00002.xml"
    text = xml.read_text()
    first = re.search(r"<name>[^<]*</name>", text)
    xml.write_text(text[: first.start()] + f"<name>{name}</name>" + text[first.end():])
    line = text[: first.start()].count("\n") + 1
    (tmp_path / "cwd").mkdir()
    for args in (["check", "--out", "../audit"], ["convert", "--out", "../conv", "--quiet"]):
        done = harness(["data", args[0], "--voc", "../voc", *args[1:]], tmp_path / "cwd")
        _no_traceback(done)
        assert done.returncode == 1, out(done)[-3000:]
        assert f"BloodImage_00002.xml:{line}: class" in out(done) and "--class-map" in out(done)
    assert not (tmp_path / "conv").exists()
    shown = "W\nBC" if name == "W&#10;BC" else name
    (tmp_path / "map.txt").write_text(f"{shown.splitlines()[0] if '&' in name else shown}: WBC\n")
    if "&" not in name:                           # a newline cannot be written in an 'old: new' line
        done = harness(["data", "convert", "--voc", "../voc", "--out", "../conv", "--quiet", "--class-map",
                        "../map.txt"], tmp_path / "cwd")
        assert done.returncode == 0, out(done)[-3000:]
        assert "WBC" in (tmp_path / "conv/labels.txt").read_text().split("\n")


# ----------------------------------------------------------------------------- 4. faults as errors


def _leftovers(folder: Path) -> list[str]:
    """Temporary files of an interrupted atomic write (none may be left)."""
    return [str(p) for p in folder.rglob(".*.tmp*")]


def test_disk_full_during_detect_is_one_clear_line(model: Path, fields: Path, tmp_path: Path) -> None:
    with tmpfs(tmp_path / "small", size="24k") as small:
        done = harness(["detect", str(model), "--images", "../inputs/slide A", "--out", str(small / "dets"),
                        "--device", "cpu"], tmp_path / "cwd")
        _no_traceback(done)
        assert done.returncode == 1, out(done)[-3000:]
        assert "No space left on device" in out(done) and "disk is full" in out(done)
        assert not _leftovers(small)


@pytest.mark.parametrize("size", ["96k", "200k", "400k"])      # full at the audit figures, the labels, the LMDB
def test_disk_full_during_convert_is_one_clear_line_and_a_rerun_resumes(bccd_root: Path, tmp_path: Path,
                                                                       size: str) -> None:
    """LMDB used to say 'Input/output error', matplotlib gave a traceback without a path."""
    voc = _small_voc(bccd_root, tmp_path / "voc", n=8)
    (tmp_path / "cwd").mkdir()
    with tmpfs(tmp_path / "small", size=size) as small:
        args = ["data", "convert", "--voc", str(voc), "--out", str(small / "conv"), "--quiet"]
        done = harness(args, tmp_path / "cwd")
        _no_traceback(done)
        assert done.returncode == 1, out(done)[-3000:]
        assert re.search(rf"Error: {re.escape(str(small / 'conv'))}/\S+: No space left on device — the disk is full",
                         out(done)), out(done)[-3000:]
        assert not (small / "conv/conversion.json").exists() and not _leftovers(small)
        subprocess.run(["mount", "-o", "remount,size=16m", str(small)], check=True)      # space freed
        again = harness(args, tmp_path / "cwd")
        assert again.returncode == 0, out(again)[-3000:]
        assert json.loads((small / "conv/conversion.json").read_text())["counts"]["train"]["images"] == 6


@pytest.mark.parametrize("verb", ["data check", "data convert", "count", "train", "evaluate"])
def test_read_only_output_folder_is_one_clear_line(verb: str, model: Path, bccd_root: Path, tmp_path: Path) -> None:
    voc = _small_voc(bccd_root, tmp_path / "voc")
    (tmp_path / "cwd").mkdir()
    (tmp_path / "slides" / "s1").mkdir(parents=True)
    shutil.copy(bccd_root / "JPEGImages/BloodImage_00000.jpg", tmp_path / "slides/s1")
    detections = tmp_path / "dets.json"
    detections.write_text(json.dumps([{"image_id": "BloodImage_00004", "class": "WBC", "score": 0.9,
                                       "bbox": [10, 10, 100, 100]}]))
    with tmpfs(tmp_path / "ro", read_only=True) as ro:
        target = str(ro / "out")
        args = {"data check": ["data", "check", "--voc", str(voc), "--out", target],
                "data convert": ["data", "convert", "--voc", str(voc), "--out", target, "--quiet"],
                "count": ["count", str(model), "--slides", "../slides", "--out", target, "--backend", "opencv",
                          "--quiet", "--device", "cpu"],
                "train": ["train", "yolov3-tiny", "--size", "160", "--profile", "smoke", "--iterations", "1",
                          "--project", target, "--device", "cpu"],
                "evaluate": ["evaluate", "--gt", str(voc), "--image-set", "test", "--detections",
                             str(detections), "--protocol", "voc07", "--out", target]}[verb]
        done = harness(args, tmp_path / "cwd")
    _no_traceback(done)
    assert done.returncode == 1, out(done)[-3000:]
    assert "Read-only file system" in out(done) and "choose a writable output folder" in out(done)


@pytest.fixture()
def run_copy(model: Path, tmp_path: Path) -> Path:
    """A copy of the finished run of ``model`` (a run folder moved elsewhere)."""
    return Path(shutil.copytree(model.parents[1], tmp_path / "moved run", symlinks=True))


@pytest.mark.parametrize("name", ["run.json", "models/yolov3-tiny_160/config.json",
                                  "models/yolov3-tiny_160/metrics_voc07.json"])
def test_status_on_a_truncated_record_is_one_clear_line(run_copy: Path, tmp_path: Path, name: str) -> None:
    record = run_copy / name
    record.write_text(record.read_text()[:40])
    done = harness(["status", str(run_copy)], tmp_path)
    _no_traceback(done)
    assert done.returncode == 1, out(done)[-3000:]
    assert f"{record}: the " in out(done) and "is not valid JSON" in out(done) and "rerun" in out(done)


def test_report_on_a_truncated_metrics_file_names_it(run_copy: Path, tmp_path: Path) -> None:
    """Good today: the report lists it as a problem (exit 0); --strict fails on it with one line."""
    metrics = run_copy / "models/yolov3-tiny_160/metrics_voc07.json"
    metrics.write_text(metrics.read_text()[:30])
    done = harness(["report", str(run_copy)], tmp_path)
    _no_traceback(done)
    assert done.returncode == 0 and f"warning: {metrics}: not valid JSON" in out(done), out(done)[-3000:]
    strict = harness(["report", str(run_copy), "--strict"], tmp_path)
    _no_traceback(strict)
    assert strict.returncode == 1 and f"{metrics}: not valid JSON" in out(strict), out(strict)[-3000:]


def test_atomic_write_leaves_the_old_file_when_the_disk_is_full(tmp_path: Path) -> None:
    from harness.core.atomic import write_text

    with tmpfs(tmp_path / "small", size="16k") as small:
        write_text(small / "metrics.json", json.dumps({"map": 0.5}))
        with pytest.raises(OSError):
            write_text(small / "metrics.json", json.dumps({"map": "x" * 100_000}))
        assert json.loads((small / "metrics.json").read_text()) == {"map": 0.5}
        assert not _leftovers(small)


# ----------------------------------------------------------------------------- 5. moved runs


def test_status_of_a_moved_finished_run_reads_the_moved_folder(run_copy: Path, tmp_path: Path) -> None:
    done = harness(["status", str(run_copy), "--json"], tmp_path)
    assert done.returncode == 0, out(done)[-3000:]
    (row,) = json.loads(done.stdout)
    assert row["state"] == "done" and row["log"].startswith(str(run_copy))


def test_status_of_a_moved_half_finished_run_is_not_the_originals(run_copy: Path, tmp_path: Path) -> None:
    """run.json used to hold absolute config paths: a copy answered with the original's state."""
    (run_copy / "models/yolov3-tiny_160/summary.json").unlink()      # interrupted before it finished
    done = harness(["status", str(run_copy), "--json"], tmp_path)
    assert done.returncode == 0, out(done)[-3000:]
    (row,) = json.loads(done.stdout)
    assert row["state"] != "done" and row["iterations"] == 1


def test_run_json_records_config_paths_inside_the_run(model: Path) -> None:
    record = json.loads((model.parents[1] / "run.json").read_text())
    assert record["experiments"]["yolov3-tiny_160"]["config"] == "models/yolov3-tiny_160/config.json"


# ----------------------------------------------------------------------------- the table in docs/faults.md


def test_docs_table_names_existing_tests() -> None:
    """Every row of docs/faults.md names a test of this file (or another test file) that exists."""
    table = (REPO / "docs/faults.md").read_text()
    named = re.findall(r"`(tests/[\w/]+\.py)::(\w+)`", table)
    assert len(named) >= 15, named
    for path, test in named:
        source = (REPO / path).read_text()
        assert re.search(rf"^def {test}\(", source, re.M), f"docs/faults.md names {path}::{test}, which does not exist"
    here = set(re.findall(r"^def (test_\w+)\(", Path(__file__).read_text(), re.M))
    missing = here - {t for p, t in named if p == "tests/test_faults.py"}
    assert not missing, f"tests of this file without a row in docs/faults.md: {sorted(missing)}"


# ----------------------------------------------------------------------------- 7. the smaller items


def test_a_refused_data_leaves_no_run_record_that_blocks_the_corrected_rerun(bccd_root: Path, tmp_path: Path) -> None:
    """The refused run used to write run.json first: the rerun with the corrected --data was refused as another run."""
    bad, good = _small_voc(bccd_root, tmp_path / "bad"), _small_voc(bccd_root, tmp_path / "good")
    xml = bad / "Annotations/BloodImage_00001.xml"
    xml.write_text(re.sub(r"<name>[^<]*</name>", "<name>W/BC</name>", xml.read_text(), count=1))
    (tmp_path / "cwd").mkdir()
    common = ["render", "table1", "--profile", "smoke", "--only", "yolov3-tiny_416", "--no-learning-check",
              "--project", "../runs", "--name", "mine", "--device", "cpu"]
    refused = harness([*common, "--data", "../bad"], tmp_path / "cwd")
    assert refused.returncode == 1 and "W/BC" in out(refused), out(refused)[-3000:]
    assert not (tmp_path / "runs/mine/run.json").exists()
    done = harness([*common, "--data", "../good"], tmp_path / "cwd")
    assert done.returncode == 0, out(done)[-3000:]
    assert json.loads((tmp_path / "runs/mine/run.json").read_text())["identity"]["data"] == str(good)


def test_slides_csv_row_with_an_extra_cell_is_refused_with_file_and_line(model: Path, bccd_root: Path,
                                                                           tmp_path: Path) -> None:
    """It used to end in an AttributeError traceback."""
    voc = _small_voc(bccd_root, tmp_path / "voc", n=2)
    (voc / "slides.csv").write_text("image_id,slide\nBloodImage_00000,s1\nBloodImage_00001,s 2, left\n")
    (tmp_path / "cwd").mkdir()
    done = harness(["count", str(model), "--slides", "../voc", "--out", "../counted", "--backend", "opencv",
                    "--quiet", "--device", "cpu"], tmp_path / "cwd")
    _no_traceback(done)
    assert done.returncode == 2, out(done)[-3000:]
    assert "slides.csv:3: 1 more value(s) than the header has columns" in out(done)


def test_a_reused_count_out_shows_this_counts_slides_only(model: Path, fields: Path, tmp_path: Path) -> None:
    stale = tmp_path / "counted"
    (stale / "crops/old slide").mkdir(parents=True)
    (stale / "slide_old slide.html").write_text("<p>an earlier count</p>")
    done = harness(["count", str(model), "--slides", "../inputs", "--out", "../counted", "--device", "cpu",
                    "--quiet", "--backend", "opencv"], tmp_path / "cwd")
    assert done.returncode == 1, out(done)[-3000:]                      # the truncated field
    assert sorted(p.name for p in stale.glob("slide_*.html")) == ["slide_slide A.html"]
    assert sorted(p.name for p in (stale / "crops").iterdir()) == ["slide A"]


def test_report_md_shows_html_in_names_as_text(run_copy: Path, tmp_path: Path) -> None:
    summary_path = run_copy / "models/yolov3-tiny_160/summary.json"
    summary = json.loads(summary_path.read_text())
    summary.update(status="failed", message="<script>alert(1)</script> & more")
    summary_path.write_text(json.dumps(summary))
    done = harness(["report", str(run_copy)], tmp_path)
    assert done.returncode == 0, out(done)[-3000:]
    report = (run_copy / "report.md").read_text()
    assert "<script>" not in report and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in report


def test_darknet_valid_progress_never_passes_the_list_length() -> None:
    """pjreddie's valid counts in steps of 4: it printed 12 for 11 images ("12/11")."""
    from harness.frameworks.darknet.driver import valid_progress

    assert [valid_progress(line, total=11).iteration for line in ("4", "8", "12")] == [4, 8, 11]
    assert valid_progress("mAP", total=11) is None


def test_training_time_leaves_out_a_segment_whose_work_was_discarded(tmp_path: Path) -> None:
    """A segment interrupted before its first checkpoint is redone from scratch: its time is not training time."""
    from harness.engine.experiment import _timed_training, read_segments, training_seconds
    from harness.core.types import TrainResult

    class Trainer:                       # the framework's train(): first interrupted, then a fresh full run
        calls = 0

        def train(self, files, until, **display):
            self.calls += 1
            if self.calls == 1:
                raise KeyboardInterrupt
            return TrainResult(tmp_path / "train.log", tmp_path / "loss.csv", None, 10, 1.0, resumed_from=None)

    trainer = Trainer()
    with pytest.raises(KeyboardInterrupt):
        _timed_training(trainer, {}, tmp_path)
    _timed_training(trainer, {}, tmp_path)
    segments = read_segments(tmp_path)
    assert [s.get("discarded", False) for s in segments] == [True, False]
    assert training_seconds([{**segments[0], "seconds": 50.0}, {**segments[1], "seconds": 7.0}]) == 7.0

"""weiliu89 Caffe's own tools agree with the harness on BCCD (../shared/datasets/bccd).

1. ``DetectionEvaluate`` + the solver's detection mAP (what an SSD test net prints as
   ``detection_eval``) vs ``harness evaluate --protocol voc07 --mean-over all`` on the *same*
   detections: a seeded set made from BCCD's test boxes (jittered hits, duplicates, wrong-class and
   background false positives) is written once as a Datum LMDB Caffe's Data layer reads and once as
   the harness's JSON detections. Caffe's rule — mean over every label of its label map, a label
   without detections scoring 0 — is the harness's ``mean_over="all"`` with every class scored.
2. ``convert_annoset`` vs the harness's LMDB writer (harness.data.caffe_lmdb) on all 364 images:
   362 records byte-identical; the other two differ only by the zero-area box each that the
   harness's validation drops and convert_annoset keeps; keys differ only by their path prefix.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import lmdb
import numpy as np
import pytest

from harness.data import caffe_proto
from harness.data.caffe_lmdb import read_records
from harness.data.convert import convert_dataset
from harness.data.voc import load_voc
from harness.parse.caffe_log import parse_caffe_log

pytestmark = [pytest.mark.slow, pytest.mark.caffe]

MAX_MAP_DIFFERENCE = 0.001
ZERO_AREA_IMAGES = 2


def caffe_tool(install, name: str) -> Path:
    for candidate in (install.root / "build/tools" / name, install.root / "build/tools" / f"{name}.bin"):
        if candidate.exists():
            return candidate
    pytest.fail(f"{install.root}: no build/tools/{name} — not weiliu89's SSD Caffe (scripts/install_caffe.sh builds it)")


# ----------------------------------------------------------------------------- DetectionEvaluate


def seeded_detections(images, names: list[str], seed: int = 24) -> list[dict]:
    """Hits with jitter (IoU spread around 0.5), duplicates, wrong classes and background boxes.

    Scores are distinct (ties are ordered differently by the two sorts) and boxes stay inside the
    image (Caffe clips to it, the harness does not)."""
    rng = np.random.default_rng(seed)
    dets = []
    for image in images:
        w, h = image.width, image.height
        boxes = [(b.name, b.xmin, b.ymin, b.xmax, b.ymax) for b in image.objects]
        for name, x1, y1, x2, y2 in boxes:
            for _ in range(rng.choice([0, 1, 1, 1, 2])):
                sx, sy = 0.15 * (x2 - x1), 0.15 * (y2 - y1)
                label = name if rng.random() > 0.1 else names[rng.integers(len(names))]
                dets.append((image, label, x1 + rng.normal(0, sx), y1 + rng.normal(0, sy),
                             x2 + rng.normal(0, sx), y2 + rng.normal(0, sy)))
        for _ in range(rng.integers(0, 3)):
            x, y = rng.uniform(0, w - 40), rng.uniform(0, h - 40)
            dets.append((image, names[rng.integers(len(names))], x, y, x + rng.uniform(20, 120), y + rng.uniform(20, 120)))
    scores = (rng.permutation(len(dets)) + 1) / (len(dets) + 1)
    out = []
    for (image, name, x1, y1, x2, y2), score in zip(dets, scores):
        x1, x2 = sorted(np.clip([x1, x2], 1, image.width))
        y1, y2 = sorted(np.clip([y1, y2], 1, image.height))
        if x2 - x1 < 2 or y2 - y1 < 2:
            continue
        # the normalised float32 box Caffe reads, and exactly that box in pixels for the harness
        norm = np.float32([x1 / image.width, y1 / image.height, x2 / image.width, y2 / image.height])
        pixels = [float(norm[0]) * image.width, float(norm[1]) * image.height,
                  float(norm[2]) * image.width, float(norm[3]) * image.height]
        out.append({"image_id": image.image_id, "class": name, "score": float(np.float32(score)),
                    "bbox": pixels, "norm": norm.tolist()})
    return out


def write_float_lmdb(path: Path, rows: np.ndarray) -> None:
    """One Datum (1 x 1 x N x width floats): what a Data layer with batch_size 1 hands on as one blob."""
    datum = caffe_proto.Datum(channels=1, height=rows.shape[0], width=rows.shape[1])
    datum.float_data.extend(rows.astype(np.float32).ravel().tolist())
    env = lmdb.open(str(path), map_size=1 << 28, subdir=True)
    with env.begin(write=True) as txn:
        txn.put(b"00000000", datum.SerializeToString())
    env.close()


EVAL_NET = """name: "detection_eval_only"
layer {{ name: "dummy" type: "DummyData" top: "dummy" include {{ phase: TRAIN }}
  dummy_data_param {{ shape {{ dim: 1 dim: 1 }} }} }}
layer {{ name: "silence" type: "Silence" bottom: "dummy" include {{ phase: TRAIN }} }}
layer {{ name: "det" type: "Data" top: "det" include {{ phase: TEST }}
  data_param {{ source: "{det}" batch_size: 1 backend: LMDB }} }}
layer {{ name: "gt" type: "Data" top: "gt" include {{ phase: TEST }}
  data_param {{ source: "{gt}" batch_size: 1 backend: LMDB }} }}
layer {{ name: "detection_eval" type: "DetectionEvaluate" bottom: "det" bottom: "gt" top: "detection_eval"
  include {{ phase: TEST }}
  detection_evaluate_param {{ num_classes: {num_classes} background_label_id: 0 overlap_threshold: 0.5
    evaluate_difficult_gt: false name_size_file: "{name_size}" }} }}
"""
EVAL_SOLVER = """net: "{net}"
test_iter: 1
test_interval: 1
test_initialization: true
max_iter: 0
base_lr: 0
lr_policy: "fixed"
display: 1
snapshot_after_train: false
snapshot_prefix: "{work}/unused"
solver_mode: CPU
eval_type: "detection"
ap_version: "11point"
show_per_class_result: true
"""


def caffe_detection_eval(install, work: Path, images, names: list[str], dets: list[dict]) -> tuple[float, dict]:
    """Caffe's mAP and per-class AP for ``dets`` (its solver's test pass over one DetectionEvaluate net)."""
    item = {image.image_id: i for i, image in enumerate(images)}
    label = {name: i + 1 for i, name in enumerate(names)}
    det_rows = [[item[d["image_id"]], label[d["class"]], d["score"], *d["norm"]] for d in dets]
    det_rows += [[i, -1, 0, 0, 0, 0, 0] for i in range(len(images))]   # every image counted, even without detections
    gt_rows = [[i, label[b.name], k, b.xmin / im.width, b.ymin / im.height, b.xmax / im.width, b.ymax / im.height,
                float(b.difficult)] for i, im in enumerate(images) for k, b in enumerate(im.objects)]
    write_float_lmdb(work / "det_lmdb", np.array(det_rows, dtype=np.float64))
    write_float_lmdb(work / "gt_lmdb", np.array(gt_rows, dtype=np.float64))
    (work / "name_size.txt").write_text("".join(f"{im.image_id} {im.height} {im.width}\n" for im in images))
    (work / "net.prototxt").write_text(EVAL_NET.format(det=work / "det_lmdb", gt=work / "gt_lmdb",
                                                       num_classes=len(names) + 1, name_size=work / "name_size.txt"))
    (work / "solver.prototxt").write_text(EVAL_SOLVER.format(net=work / "net.prototxt", work=work))
    log = work / "caffe.log"
    with log.open("w") as out:
        done = subprocess.run([str(install.caffe_bin), "train", f"--solver={work / 'solver.prototxt'}"], cwd=work,
                              stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **install.env()},
                              timeout=600)
    text = log.read_text()
    assert done.returncode == 0, text[-3000:]
    scores = [t.value for t in parse_caffe_log(log).test_outputs if t.name == "detection_eval"]
    assert len(scores) == 1, text[-3000:]
    per_class = {names[int(k) - 1]: float(v) for k, v in re.findall(r"\] class(\d+): (\S+)", text)}
    return scores[0], per_class


def test_detection_evaluate_agrees_with_harness_evaluate(caffe_install, bccd_root, tmp_path):
    images = load_voc(bccd_root, image_set="test").images
    names = sorted({b.name for im in images for b in im.objects})
    dets = seeded_detections(images, names)
    assert len(images) == 72 and len(dets) > 500
    caffe_map, caffe_ap = caffe_detection_eval(caffe_install, tmp_path, images, names, dets)

    det_file = tmp_path / "detections.json"
    det_file.write_text(json.dumps([{k: d[k] for k in ("image_id", "class", "score", "bbox")} for d in dets]))
    labels = tmp_path / "obj.names"
    labels.write_text("\n".join(names) + "\n")
    done = subprocess.run([sys.executable, "-m", "harness", "evaluate", "--gt", str(bccd_root), "--image-set", "test",
                           "--detections", str(det_file), "--labelmap", str(labels), "--protocol", "voc07",
                           "--mean-over", "all", "--out", str(tmp_path / "eval")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    metrics = json.loads((tmp_path / "eval/metrics.json").read_text())
    ours = {name: metrics["classes"][name]["ap"] for name in names}

    assert 0.2 < caffe_map < 0.95, "a degenerate detection set would prove little"
    assert set(caffe_ap) == set(names)
    for name in names:
        assert abs(caffe_ap[name] - ours[name]) <= MAX_MAP_DIFFERENCE, (name, caffe_ap[name], ours[name])
    assert abs(caffe_map - metrics["map"]) <= MAX_MAP_DIFFERENCE, (caffe_map, metrics["map"])


# ----------------------------------------------------------------------------- convert_annoset


def without_zero_area_boxes(record) -> tuple[object, int]:
    """A copy of ``record`` without zero-width/height boxes (instance ids renumbered, empty groups
    dropped, as the harness writes it) and how many boxes that removed."""
    kept = caffe_proto.AnnotatedDatum()
    kept.CopyFrom(record)
    del kept.annotation_group[:]
    removed = 0
    for group in record.annotation_group:
        boxes = [a for a in group.annotation if a.bbox.xmax > a.bbox.xmin and a.bbox.ymax > a.bbox.ymin]
        removed += len(group.annotation) - len(boxes)
        if boxes:
            new = kept.annotation_group.add(group_label=group.group_label)
            for index, annotation in enumerate(boxes):
                new.annotation.add(instance_id=index, bbox=annotation.bbox)
    return kept, removed


def describe_difference(ours, theirs) -> str:
    """Which parts of two AnnotatedDatum records differ (for the failure message)."""
    parts = []
    for field in ("channels", "height", "width", "label", "encoded"):
        if getattr(ours.datum, field) != getattr(theirs.datum, field):
            parts.append(f"datum.{field} {getattr(ours.datum, field)} vs {getattr(theirs.datum, field)}")
    if ours.datum.data != theirs.datum.data:
        parts.append(f"image bytes ({len(ours.datum.data)} vs {len(theirs.datum.data)})")
    if list(ours.annotation_group) != list(theirs.annotation_group):
        parts.append(f"annotations: ours {ours.annotation_group} convert_annoset {theirs.annotation_group}")
    return "; ".join(parts) or "serialisation only"


def test_convert_annoset_writes_what_the_harness_writes(caffe_install, bccd_root, tmp_path):
    tool = caffe_tool(caffe_install, "convert_annoset")
    converted = convert_dataset(bccd_root, tmp_path / "converted", progress=False)
    labelmap = converted.out_dir / "caffe/labelmap.prototxt"
    identical, box_only, other = 0, [], []
    for split in ("train", "test"):
        ours = list(read_records(converted.out_dir / f"caffe/{split}_lmdb"))
        ids = [Path(key.split("_", 1)[1]).stem for key, _ in ours]
        listing = tmp_path / f"{split}.txt"
        listing.write_text("".join(f"JPEGImages/{i}.jpg Annotations/{i}.xml\n" for i in ids))
        db = tmp_path / f"{split}_annoset_lmdb"
        done = subprocess.run([str(tool), "--anno_type=detection", "--label_type=xml", f"--label_map_file={labelmap}",
                               "--encode_type=jpg", "--encoded=true", "--backend=lmdb", f"{bccd_root}/", str(listing),
                               str(db)], capture_output=True, text=True, timeout=600,
                              env={**os.environ, **caffe_install.env()})
        assert done.returncode == 0, done.stderr[-3000:]
        theirs = list(read_records(db))
        assert len(theirs) == len(ours)
        for (key, record), (their_key, their_record) in zip(ours, theirs):
            index, path = key.split("_", 1)
            assert their_key == f"{index}_JPEGImages/{Path(path).name}", (key, their_key)
            if record.SerializeToString() == their_record.SerializeToString():
                identical += 1
                continue
            trimmed, removed = without_zero_area_boxes(their_record)
            if removed and trimmed.SerializeToString() == record.SerializeToString():
                box_only.append((Path(path).stem, removed))
            else:
                other.append(f"{Path(path).stem}: {describe_difference(record, their_record)}")
    assert not other, "new differences from convert_annoset:\n" + "\n".join(other)
    assert identical + len(box_only) == 364
    assert len(box_only) == ZERO_AREA_IMAGES and sum(n for _, n in box_only) == ZERO_AREA_IMAGES, box_only
    assert identical == 362

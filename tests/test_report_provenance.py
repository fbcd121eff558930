"""provenance.json: hashes must be the files' real sha256, the data hash must track the data."""
from __future__ import annotations

import hashlib
import json
import os
import shutil

import pytest

import harness
from harness.core.types import FrameworkStatus
from harness.report.provenance import collect_provenance, hash_dataset, write_provenance


def _sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _small_voc(root):
    (root / "Annotations").mkdir(parents=True)
    (root / "JPEGImages").mkdir()
    for i in range(3):
        (root / "Annotations" / f"img{i}.xml").write_text(f"<annotation><filename>img{i}.jpg</filename></annotation>")
        (root / "JPEGImages" / f"img{i}.jpg").write_bytes(bytes([i]) * (100 + i))
    return root


def test_collect_provenance_records_everything(tmp_path):
    run_dir = tmp_path / "run"
    rendered = run_dir / "models/ssd300_smin0.2/rendered"
    rendered.mkdir(parents=True)
    (rendered / "train.prototxt").write_text('name: "ssd"\n')
    outside = tmp_path / "yolov3.cfg"
    outside.write_text("[net]\nbatch=64\n")
    data = _small_voc(tmp_path / "voc")
    caffe = FrameworkStatus("caffe", True, version="brocolli 9.0.2", location="/opt/caffe", details={"dialect": "brocolli"})
    darknet = {"name": "darknet", "usable": False, "missing": ["no binary"]}

    record = collect_provenance(run_dir, data_dir=data, rendered_files=[rendered / "train.prototxt", outside],
                                seeds={"caffe": 1, "darknet": 2}, frameworks=[caffe, darknet])

    assert record["harness"]["version"] == harness.__version__
    assert record["rendered_files"] == {
        "models/ssd300_smin0.2/rendered/train.prototxt": _sha256(rendered / "train.prototxt"),
        str(outside.resolve()): _sha256(outside),
    }
    assert record["frameworks"][0]["name"] == "caffe" and record["frameworks"][0]["details"] == {"dialect": "brocolli"}
    assert record["frameworks"][1] == darknet
    assert record["seeds"] == {"caffe": 1, "darknet": 2}
    assert record["data"]["content_hashed"] == 3 and record["data"]["size_hashed"] == 3
    machine = record["machine"]
    assert machine["cores"] == os.cpu_count() and machine["cpu_model"] and machine["memory_gb"] > 0
    assert machine["python"].count(".") == 2 and machine["platform"]
    path = write_provenance(run_dir, record)
    assert json.loads(path.read_text()) == record


def test_data_hash_tracks_annotations_and_image_sizes(tmp_path):
    data = _small_voc(tmp_path / "voc")
    base = hash_dataset(data)["sha256"]
    assert hash_dataset(data)["sha256"] == base                                   # deterministic
    copy = shutil.copytree(data, tmp_path / "copy")
    assert hash_dataset(copy)["sha256"] == base                                   # location-independent

    xml = data / "Annotations/img1.xml"
    original = xml.read_text()
    xml.write_text(original.replace("img1.jpg", "imgX.jpg"))
    assert hash_dataset(data)["sha256"] != base                                   # annotation content
    xml.write_text(original)
    assert hash_dataset(data)["sha256"] == base

    image = data / "JPEGImages/img2.jpg"
    image.write_bytes(b"\x00" * 500)
    assert hash_dataset(data)["sha256"] != base                                   # image size
    image.write_bytes(b"\x02" * 102)
    assert hash_dataset(data)["sha256"] == base   # same name and size: by design not content-hashed (fast)
    image.rename(data / "JPEGImages/img9.jpg")
    assert hash_dataset(data)["sha256"] != base                                   # image name


def test_missing_inputs_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.prototxt"):
        collect_provenance(tmp_path, rendered_files=[tmp_path / "nope.prototxt"])
    with pytest.raises(FileNotFoundError, match="no-data"):
        collect_provenance(tmp_path, data_dir=tmp_path / "no-data")
    with pytest.raises(TypeError, match="FrameworkStatus or dict"):
        collect_provenance(tmp_path, frameworks=["caffe"])


def test_bccd_data_hash_covers_every_file(bccd_root):
    record = hash_dataset(bccd_root)
    n_xml = len(list((bccd_root / "Annotations").glob("*.xml")))
    n_jpg = len(list((bccd_root / "JPEGImages").glob("*.jpg")))
    assert n_xml == 364 and n_jpg == 364
    assert record["content_hashed"] >= n_xml and record["size_hashed"] >= n_jpg
    assert record["sha256"] == hash_dataset(bccd_root)["sha256"]

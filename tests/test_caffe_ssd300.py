"""End to end on the real pieces: BCCD → convert_dataset → render_ssd (SSD300, VGG16 body) →
caffe train → resume → pycaffe detection → the evaluation reader. Minutes on CPU: marked slow."""
from __future__ import annotations

import csv
import math

import pytest

from harness.frameworks.caffe.detect import detect_caffe

from harness.frameworks.caffe.train import train_caffe
from harness.evaluation.detections import read_detections
from harness.labels import LabelMap

pytestmark = [pytest.mark.caffe, pytest.mark.slow]


@pytest.fixture(scope="module")
def converted(bccd_root, caffe_install, tmp_path_factory):
    from harness.data.convert import convert_dataset
    from test_caffe_train import mini_voc

    base = tmp_path_factory.mktemp("ssd300_data")
    return convert_dataset(mini_voc(bccd_root, base / "voc", n_train=4, n_test=2), base / "converted", progress=False)


def test_ssd300_trains_resumes_and_detects(converted, tmp_path):
    from harness.render.ssd import render_ssd

    nets = render_ssd(tmp_path / "rendered", size=300, batch_size=1, dataset=converted.out_dir,
                      solver={"max_iter": 2, "snapshot": 2, "display": 1, "average_loss": 1, "test_interval": 1000})
    first = train_caffe(nets["solver"], tmp_path / "run", progress=False)
    assert first.iterations == 2 and first.weights.is_file()
    resumed = train_caffe(nets["solver"], tmp_path / "run", max_iter=3, progress=False)
    assert resumed.resumed_from.name.endswith("_iter_2.solverstate") and resumed.iterations == 3
    with resumed.loss_csv.open() as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["iteration"]) for r in rows] == [0, 1, 2, 3]    # both runs in one loss.csv
    assert all(math.isfinite(float(r["loss"])) for r in rows)

    labels = LabelMap.from_file(nets["labelmap"])
    images = [converted.out_dir / "darknet/JPEGImages" / f"{i}.jpg" for i in converted.test_ids]
    out = detect_caffe(nets["deploy"], resumed.weights, images, labels, tmp_path / "detections")
    dets = read_detections(out, class_names=labels.names)
    assert sorted(p.name for p in out.glob("*.txt")) == sorted(f"comp4_det_test_{n}.txt" for n in labels.names)
    assert set(dets.class_names) == set(labels.names)

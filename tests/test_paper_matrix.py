"""The paper's experiment matrix: names, render arguments, and a source for every number."""
import pytest

from harness import paper
from harness.labels import LabelMap

NAMES = ["ssd300_smin0.2", "ssd300_smin0.1", "ssd512_smin0.2", "yolov3_320", "yolov3_416", "yolov3_608",
         "yolov3-tiny_416"]


def test_table1_has_seven_experiments_in_order():
    assert [e.name for e in paper.EXPERIMENTS] == NAMES


def test_reported_map_values():
    maps = {e.name: e.paper_map for e in paper.EXPERIMENTS}
    assert maps == {"ssd300_smin0.2": 0.931, "ssd300_smin0.1": 0.831, "ssd512_smin0.2": 0.687,
                    "yolov3_320": 0.925, "yolov3_416": 0.921, "yolov3_608": 0.919, "yolov3-tiny_416": 0.772}


def test_every_number_is_traceable_and_gaps_say_so():
    rows = paper.reported_numbers()
    assert rows
    for name, quantity, value, source in rows:
        if value is None:
            assert source == paper.NOT_TRANSCRIBED, (name, quantity)
        else:
            assert source and source != paper.NOT_TRANSCRIBED, (name, quantity)


def test_known_timings_and_accuracy():
    assert paper.experiment("ssd300_smin0.2").ms_per_image == 53.0
    assert paper.experiment("yolov3_320").ms_per_image == 14.0
    assert paper.experiment("ssd300_smin0.2").mean_accuracy == 90.09
    assert "Table 2" in paper.experiment("yolov3_320").source("ms_per_image")


def test_per_class_ap_uses_scored_class_names_when_present():
    scored = set(LabelMap.paper().scored_names)
    for exp in paper.EXPERIMENTS:
        if exp.paper_ap is not None:
            assert set(exp.paper_ap) <= scored
            assert all(v is None or 0 <= v <= 1 for v in exp.paper_ap.values())


def test_render_kwargs_and_frameworks():
    ssd = paper.experiment("ssd300_smin0.1")
    assert (ssd.framework, ssd.renderer) == ("caffe", "ssd")
    assert ssd.render_kwargs() == {"size": 300, "smin": 0.1, "smax": 0.9}
    tiny = paper.experiment("yolov3-tiny_416")
    assert (tiny.framework, tiny.renderer) == ("darknet", "yolov3-tiny")
    assert tiny.render_kwargs() == {"model": "yolov3-tiny", "size": 416}
    assert all(e.smax == 0.9 for e in paper.EXPERIMENTS if e.framework == "caffe")


def test_unknown_experiment_lists_the_known_ones():
    with pytest.raises(KeyError, match="yolov3_416"):
        paper.experiment("yolov4_416")


def test_training_hyperparameters():
    assert paper.SSD_SOLVER["stepvalue"] == [14700, 147000, 294000, 735000]
    assert (paper.SSD_SOLVER["base_lr"], paper.SSD_SOLVER["batch_size"]) == (0.001, 10)
    assert paper.YOLO_NET["steps"] == [10000, 35000] and paper.YOLO_NET["max_batches"] == 50200
    assert paper.YOLO_NET["learning_rate"] == 0.0001


def test_every_experiment_renders(tmp_path):
    from harness.render.table1 import render_experiment

    for exp in paper.EXPERIMENTS:
        files = render_experiment(exp, tmp_path / exp.name, dialect="brocolli")
        assert all(p.is_file() for p in files.values())

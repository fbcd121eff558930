"""The paper's experiment matrix: names, render arguments, and a source for every number."""
import csv
from pathlib import Path

import pytest

from harness import paper
from harness.labels import LabelMap

SHARED_PAPER = Path(__file__).resolve().parents[1].parent / "shared" / "paper"
NAMES = ["ssd300_smin0.2", "ssd300_smin0.1", "ssd512_smin0.2", "yolov3_320", "yolov3_416", "yolov3_608",
         "yolov3-tiny_416"]


def test_table1_has_seven_experiments_in_order():
    assert [e.name for e in paper.EXPERIMENTS] == NAMES


def test_reported_map_values():
    maps = {e.name: e.paper_map for e in paper.EXPERIMENTS}
    assert maps == {"ssd300_smin0.2": 0.931, "ssd300_smin0.1": 0.831, "ssd512_smin0.2": 0.687,
                    "yolov3_320": 0.925, "yolov3_416": 0.921, "yolov3_608": 0.919, "yolov3-tiny_416": 0.772}


def test_every_number_is_traceable_and_nothing_is_left_untranscribed():
    rows = paper.reported_numbers()
    assert len(rows) == 7 * (len(paper.REPORTED_FIELDS) + 11) + 2
    for name, quantity, value, source in rows:
        assert source and source != paper.NOT_TRANSCRIBED, (name, quantity)
        if value is None:
            assert source.startswith(paper.NOT_REPORTED), (name, quantity)
    unreported = {(name, quantity) for name, quantity, value, _ in rows if value is None}
    assert unreported == {(n, "mean_accuracy") for n in NAMES if n not in ("ssd300_smin0.2", "yolov3_320")}


def test_known_timings_and_accuracy():
    assert paper.experiment("ssd300_smin0.2").ms_per_image == 53.0
    assert paper.experiment("yolov3_320").ms_per_image == 14.0
    assert paper.experiment("ssd512_smin0.2").train_hours == 123.2                      # Table 2
    assert paper.experiment("yolov3-tiny_416").train_hours == 9.5
    assert paper.experiment("ssd300_smin0.2").mean_accuracy == 90.09                    # Fig 10
    assert paper.experiment("yolov3_320").mean_accuracy == 89.36
    assert "Table 2" in paper.experiment("yolov3_320").source("ms_per_image")
    assert "Fig 10" in paper.experiment("yolov3_320").source("mean_accuracy")
    assert not paper.experiment("yolov3_416").reported("mean_accuracy")
    assert paper.experiment("yolov3_416").reported("train_hours")


def test_per_class_ap_covers_exactly_the_scored_classes():
    scored = LabelMap.paper().scored_names
    assert paper.TABLE1_CLASSES == scored
    for exp in paper.EXPERIMENTS:
        assert tuple(exp.paper_ap) == scored, exp.name
        assert all(0 < v <= 1 for v in exp.paper_ap.values()), exp.name
    assert paper.experiment("ssd300_smin0.2").paper_ap["Blast"] == 0.970                # Table 1
    assert paper.experiment("yolov3-tiny_416").paper_ap["MET"] == 0.372
    assert paper.experiment("ssd512_smin0.2").paper_ap["LYM"] == 0.409


def test_each_map_is_the_mean_of_its_class_aps():
    for exp in paper.EXPERIMENTS:
        mean = sum(exp.paper_ap.values()) / len(exp.paper_ap)
        assert abs(mean - exp.paper_map) <= 0.001, (exp.name, mean, exp.paper_map)


def test_abnormal_leukocyte_means():
    ssd, yolo = paper.experiment("ssd300_smin0.2"), paper.experiment("yolov3_320")
    assert round(paper.abnormal_mean_ap(ssd) * 100, 2) == 89.92
    assert round(paper.abnormal_mean_ap(yolo) * 100, 2) == 88.16
    for name, value in paper.ABNORMAL_MEAN_AP.items():
        assert paper.abnormal_mean_ap(paper.experiment(name)) == pytest.approx(value, abs=5e-5)


def test_dataset_box_counts_add_up():
    assert tuple(paper.DATASET_BOXES) == paper.TABLE1_CLASSES
    assert sum(paper.DATASET_BOXES.values()) == paper.DATASET_BOXES_TOTAL == 19258
    assert paper.PAPER_TRAIN_IMAGES + paper.PAPER_DETECTION_TEST_IMAGES == paper.PAPER_ANNOTATED_IMAGES


def _paper_csv(name: str) -> list[dict]:
    path = SHARED_PAPER / name
    if not path.is_file():
        pytest.skip(f"{path} not present (the CSVs live beside the project, not in it)")
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def _experiment_name(row: dict) -> str:
    model = row["model"].lower()
    if model.startswith("ssd"):
        return f"{model}_smin{float(row['smin'])}"
    return f"{model}_{row['input']}"


def test_package_agrees_with_the_transcribed_tables():
    table1 = _paper_csv("table1.csv")
    assert sorted(_experiment_name(r) for r in table1) == sorted(NAMES)
    for row in table1:
        exp = paper.experiment(_experiment_name(row))
        assert exp.paper_map == float(row["mAP"])
        assert exp.paper_ap == {cls: float(row[cls]) for cls in paper.TABLE1_CLASSES}
    table2 = _paper_csv("table2.csv")
    assert sorted(_experiment_name(r) for r in table2) == sorted(NAMES)
    for row in table2:
        exp = paper.experiment(_experiment_name(row))
        assert (exp.paper_map, exp.train_hours, exp.ms_per_image) == (
            float(row["mAP"]), float(row["training_hours"]), float(row["inference_ms_per_image"]))
    boxes = {row["class"]: int(row["train_boxes_all_14700_images"]) for row in _paper_csv("dataset.csv")}
    assert boxes == paper.DATASET_BOXES


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

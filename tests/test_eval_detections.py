"""Readers and writer for detection files: per-class VOC text, JSON list, CSV."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from harness.evaluation.detections import (
    DetectionFormatError,
    Detections,
    read_detections,
    write_voc_detections,
)

DARKNET_LINES = (
    "BloodImage_00001 0.912345 10.5 20.25 110.75 220.0\n"
    "BloodImage_00002 0.005123 1.000000 1.000000 640.000000 480.000000\n"
)


def test_reads_darknet_valid_directory(tmp_path):
    (tmp_path / "comp4_det_test_RBC.txt").write_text(DARKNET_LINES)
    (tmp_path / "comp4_det_test_WBC.txt").write_text("")
    dets = read_detections(tmp_path)
    assert sorted(dets.class_names) == ["RBC", "WBC"]
    rbc = dets["RBC"]
    assert rbc.image_ids.tolist() == ["BloodImage_00001", "BloodImage_00002"]
    np.testing.assert_allclose(rbc.scores, [0.912345, 0.005123])
    np.testing.assert_allclose(rbc.boxes[0], [10.5, 20.25, 110.75, 220.0])
    assert len(dets["WBC"]) == 0
    assert len(dets) == 2


def test_caffe_prefix_is_matched_against_the_label_map(tmp_path):
    # Caffe-SSD writes <output_name_prefix><class>.txt with integer pixel columns.
    (tmp_path / "ssd_run7_sNEU.txt").write_text("img1 0.5 3 4 30 40\n")
    (tmp_path / "ssd_run7_bNEU.txt").write_text("img1 0.25 5 6 50 60\n")
    dets = read_detections(tmp_path, class_names=["bNEU", "sNEU", "NEU"])
    assert sorted(dets.class_names) == ["bNEU", "sNEU"]  # longest matching name wins over "NEU"
    np.testing.assert_allclose(dets["sNEU"].boxes, [[3, 4, 30, 40]])


def test_explicit_prefix_must_match_exactly(tmp_path):
    (tmp_path / "other_RBC.txt").write_text("img1 0.5 3 4 30 40\n")
    with pytest.raises(DetectionFormatError, match="other_RBC.txt"):
        read_detections(tmp_path, class_names=["RBC"], prefix="comp4_det_test_")


def test_file_matching_no_class_is_an_error(tmp_path):
    (tmp_path / "comp4_det_test_Neutrophil.txt").write_text("img1 0.5 3 4 30 40\n")
    with pytest.raises(DetectionFormatError, match="comp4_det_test_Neutrophil.txt.*matches no class"):
        read_detections(tmp_path, class_names=["RBC", "WBC"])


def test_without_class_names_the_default_prefix_is_required(tmp_path):
    path = tmp_path / "RBC.txt"
    path.write_text("img1 0.5 3 4 30 40\n")
    with pytest.raises(DetectionFormatError, match="comp4_det_test_<class>.txt"):
        read_detections(path)


@pytest.mark.parametrize(
    "line, problem",
    [
        ("img1 0.5 3 4 30\n", "expected 6 columns"),
        ("img1 0.5 3 4 30 40 7\n", "expected 6 columns"),
        ("img1 high 3 4 30 40\n", "non-numeric"),
    ],
)
def test_malformed_line_names_file_and_line(tmp_path, line, problem):
    path = tmp_path / "comp4_det_test_RBC.txt"
    path.write_text("img0 0.9 1 1 10 10\n\n" + line)
    with pytest.raises(DetectionFormatError) as info:
        read_detections(tmp_path)
    assert f"{path}:3:" in str(info.value)
    assert problem in str(info.value)


def test_inverted_boxes_are_kept_and_counted(tmp_path):
    # Real Darknet output: xmin/ymin clamped to >= 1, ymax not, for a box predicted above the image.
    path = tmp_path / "comp4_det_test_Platelets.txt"
    path.write_text("BloodImage_00000 0.5 595.026123 1.000000 640.000000 -17.809134\nimg 0.4 1 1 5 5\n")
    dets = read_detections(tmp_path)
    assert len(dets["Platelets"]) == 2
    assert list(dets.flagged.values()) == [{"count": 1, "first": f"{path}:1"}]


def test_non_finite_values_are_skipped_and_counted(tmp_path):
    path = tmp_path / "comp4_det_test_RBC.txt"
    path.write_text("img0 0.9 1 1 10 10\nimg1 -nan 1 1 10 10\nimg2 nan 1 1 10 10\nimg3 0.5 1 1 inf 10\n")
    dets = read_detections(tmp_path)
    assert dets["RBC"].image_ids.tolist() == ["img0"]
    assert dets.skipped == {"non-finite value": {"count": 3, "first": f"{path}:2"}}


def test_json_list(tmp_path):
    records = [
        {"image_id": "a", "class": "RBC", "score": 0.7, "bbox": [1, 2, 3, 4]},
        {"image_id": "b", "class": "WBC", "score": 0.6, "bbox": [5, 6, 7, 8]},
        {"image_id": "c", "class": "RBC", "score": 0.5, "bbox": [9, 10, 11, 12]},
    ]
    path = tmp_path / "dets.json"
    path.write_text(json.dumps(records))
    dets = read_detections(path)
    assert dets["RBC"].image_ids.tolist() == ["a", "c"]
    np.testing.assert_allclose(dets["WBC"].boxes, [[5, 6, 7, 8]])
    assert read_detections(tmp_path)["RBC"].image_ids.tolist() == ["a", "c"]  # a directory with one JSON


@pytest.mark.parametrize(
    "record, problem",
    [
        ({"image_id": "a", "class": "RBC", "bbox": [1, 2, 3, 4]}, "missing key"),
        ({"image_id": "a", "class": "RBC", "score": 0.5, "bbox": [1, 2, 3]}, "'bbox' must be"),
        ({"image_id": "a", "class": "RBC", "score": "x", "bbox": [1, 2, 3, 4]}, "non-numeric"),
    ],
)
def test_malformed_json_record_names_file_and_record(tmp_path, record, problem):
    path = tmp_path / "dets.json"
    path.write_text(json.dumps([{"image_id": "z", "class": "RBC", "score": 1, "bbox": [1, 1, 2, 2]}, record]))
    with pytest.raises(DetectionFormatError, match=rf"{path}: record 1: {problem}"):
        read_detections(path)


def test_json_that_is_not_a_list(tmp_path):
    path = tmp_path / "dets.json"
    path.write_text('{"detections": []}')
    with pytest.raises(DetectionFormatError, match="expected a JSON list"):
        read_detections(path)


def test_csv(tmp_path):
    path = tmp_path / "dets.csv"
    path.write_text("image_id,class,score,xmin,ymin,xmax,ymax\na,RBC,0.5,1,2,3,4\nb,RBC,nan,1,2,3,4\n")
    dets = read_detections(path)
    np.testing.assert_allclose(dets["RBC"].boxes, [[1, 2, 3, 4]])
    assert dets.skipped["non-finite value"] == {"count": 1, "first": f"{path}:3"}


def test_csv_errors_name_file_and_line(tmp_path):
    path = tmp_path / "dets.csv"
    path.write_text("image_id,class,score,xmin,ymin,xmax\n")
    with pytest.raises(DetectionFormatError, match=rf"{path}:1: CSV header lacks column\(s\) ymax"):
        read_detections(path)
    path.write_text("image_id,class,score,xmin,ymin,xmax,ymax\na,RBC,0.5,1,2,3,4\nb,RBC,0.5,1,2,3\n")
    with pytest.raises(DetectionFormatError, match=rf"{path}:3: empty or missing cell"):
        read_detections(path)


def test_directory_without_detections(tmp_path):
    with pytest.raises(DetectionFormatError, match="no detection files"):
        read_detections(tmp_path)
    with pytest.raises(DetectionFormatError, match="no such detection file"):
        read_detections(tmp_path / "missing.txt")


def test_write_then_read_round_trip(tmp_path):
    rng = np.random.default_rng(3)
    records = [
        {"image_id": f"im{i % 7}", "class": ["RBC", "WBC"][i % 2], "score": float(rng.random()),
         "bbox": sorted(rng.uniform(1, 300, 2).tolist()) + sorted(rng.uniform(1, 300, 2).tolist())}
        for i in range(50)
    ]
    for r in records:  # sorted pairs above are (xmin, xmax), (ymin, ymax): reorder to xmin ymin xmax ymax
        x0, x1, y0, y1 = r["bbox"]
        r["bbox"] = [x0, y0, x1, y1]
    dets = Detections.from_records(records)
    paths = write_voc_detections(dets, tmp_path / "out", class_names=["Platelets", "RBC", "WBC"])
    assert [p.name for p in paths] == ["comp4_det_test_Platelets.txt", "comp4_det_test_RBC.txt", "comp4_det_test_WBC.txt"]
    assert paths[0].read_text() == ""  # every class gets a file, as the frameworks do
    back = read_detections(tmp_path / "out")
    for name in ("RBC", "WBC"):
        assert back[name].image_ids.tolist() == dets[name].image_ids.tolist()
        np.testing.assert_allclose(back[name].scores, dets[name].scores, rtol=1e-8)
        np.testing.assert_allclose(back[name].boxes, dets[name].boxes, rtol=1e-8)


def test_writer_refuses_ids_with_spaces(tmp_path):
    dets = Detections.from_records([{"image_id": "my image", "class": "RBC", "score": 1.0, "bbox": [1, 1, 2, 2]}])
    with pytest.raises(DetectionFormatError, match="whitespace"):
        write_voc_detections(dets, tmp_path)


def test_to_records_round_trip():
    records = [{"image_id": "a", "class": "RBC", "score": 0.5, "bbox": [1.0, 2.0, 3.0, 4.0]}]
    assert Detections.from_records(records).to_records() == records
    assert math.isclose(Detections.from_records(records)["RBC"].scores[0], 0.5)


# --- one run per directory: files of two prefixes are refused, --prefix picks one ------------------
RBC_LINE = "img1 0.5 3 4 30 40\n"


def test_two_prefixes_for_one_class_are_refused_naming_both_files(tmp_path):
    (tmp_path / "comp4_det_test_RBC.txt").write_text(RBC_LINE)
    (tmp_path / "results_RBC.txt").write_text(RBC_LINE)
    with pytest.raises(DetectionFormatError) as info:
        read_detections(tmp_path, class_names=["RBC", "WBC"])
    message = str(info.value)
    assert "comp4_det_test_RBC.txt" in message and "results_RBC.txt" in message and "--prefix" in message


def test_two_prefixes_on_different_classes_are_refused_too(tmp_path):
    (tmp_path / "comp4_det_test_RBC.txt").write_text(RBC_LINE)
    (tmp_path / "results_WBC.txt").write_text(RBC_LINE)
    with pytest.raises(DetectionFormatError, match="'comp4_det_test_', 'results_'"):
        read_detections(tmp_path, class_names=["RBC", "WBC"])


def test_prefix_picks_one_run(tmp_path):
    (tmp_path / "comp4_det_test_RBC.txt").write_text(RBC_LINE)
    (tmp_path / "results_RBC.txt").write_text(RBC_LINE * 3)
    (tmp_path / "results_WBC.txt").write_text("")
    picked = read_detections(tmp_path, class_names=["RBC", "WBC"], prefix="results_")
    assert len(picked["RBC"]) == 3 and sorted(picked.class_files) == ["RBC", "WBC"]
    assert picked.class_files["RBC"].endswith("results_RBC.txt")
    other = read_detections(tmp_path, class_names=["RBC", "WBC"], prefix="comp4_det_test_")
    assert len(other["RBC"]) == 1 and "WBC" not in other.class_files


def test_prefix_matching_no_file_lists_what_is_there(tmp_path):
    (tmp_path / "results_RBC.txt").write_text(RBC_LINE)
    with pytest.raises(DetectionFormatError, match=r"no detection file named 'ssd_<class>.txt' \(found: results_RBC.txt\)"):
        read_detections(tmp_path, class_names=["RBC"], prefix="ssd_")

"""YOLOv3 / YOLOv3-tiny renderer: cfg structure, .data paths, anchors, and OpenCV DNN outputs."""
from pathlib import Path

import numpy as np
import pytest

from harness import paper
from harness.labels import LabelMap
from harness.paths import PROJECT_ROOT
from harness.data.darknet import darknet_label_path
from harness.render.anchors import kmeans_anchors, read_label_boxes
from harness.frameworks.darknet.cfg import read_cfg_sections
from harness.render.verify import yolo_output_rows
from harness.render.yolo import render_yolo


def _darknet_sections(cfg: Path) -> list[dict]:
    """The cfg as ``{"type": section, key: value}`` dicts, through the harness's one cfg parser."""
    return [{"type": s.name, **s.options} for s in read_cfg_sections(cfg)]


def sections(cfg: Path, kind: str) -> list[dict]:
    return [s for s in _darknet_sections(cfg) if s["type"] == kind]


def read_data(path: Path) -> dict:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if line.strip())


@pytest.fixture
def yolov3(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return render_yolo(Path("out"), model="yolov3", size=416)


def test_writes_cfg_data_names_without_template_syntax(yolov3):
    assert set(yolov3) == {"cfg", "data", "names"} and yolov3["cfg"].name == "yolov3.cfg"
    for path in yolov3.values():
        text = path.read_text()
        assert not any(token in text for token in ("{{", "}}", "{%", "%}", "{#"))
        assert str(PROJECT_ROOT) not in text


def test_classes_and_filters_follow_the_label_map(yolov3):
    yolo_layers = sections(yolov3["cfg"], "yolo")
    assert len(yolo_layers) == 3
    assert all(s["classes"] == "15" and s["random"] == "0" and s["thresh"] == "0.005" for s in yolo_layers)
    all_sections = _darknet_sections(yolov3["cfg"])
    before_yolo = [all_sections[i - 1] for i, s in enumerate(all_sections) if s["type"] == "yolo"]
    assert [s["filters"] for s in before_yolo] == ["60"] * 3
    assert yolov3["names"].read_text().split() == list(LabelMap.paper().names)
    data = read_data(yolov3["data"])
    out = str(Path("out").resolve())     # named paths absolute; data/ placeholders relative to the .data's folder
    assert data == {"classes": "15", "train": "data/darknet/train.txt", "valid": "data/darknet/valid.txt",
                    "names": f"{out}/obj.names", "backup": f"{out}/backup", "results": f"{out}/results", "eval": "voc"}
    assert Path("out/backup").is_dir() and Path("out/results").is_dir()   # darknet fails without them


def test_net_defaults_are_the_papers(yolov3):
    net = _darknet_sections(yolov3["cfg"])[0]
    assert net["type"] == "net"
    assert (net["batch"], net["subdivisions"], net["learning_rate"]) == ("64", "16", "0.0001")
    assert (net["steps"], net["scales"], net["max_batches"]) == ("10000,35000", "0.1,0.1", "50200")
    assert (net["momentum"], net["decay"], net["burn_in"]) == ("0.9", "0.0005", "1000")
    assert (net["width"], net["height"]) == ("416", "416")
    assert int(net["max_batches"]) == paper.YOLO_NET["max_batches"]


def test_overrides_and_their_checks(tmp_path):
    files = render_yolo(tmp_path, model="yolov3-tiny", size=416, overrides={
        "batch": 8, "subdivisions": 2, "max_batches": 40, "steps": [10, 30], "scales": [0.5, 0.5],
        "learning_rate": 0.001, "burn_in": 0, "random": 1})
    net = _darknet_sections(files["cfg"])[0]
    assert (net["batch"], net["subdivisions"], net["max_batches"]) == ("8", "2", "40")
    assert (net["steps"], net["scales"], net["learning_rate"], net["burn_in"]) == ("10,30", "0.5,0.5", "0.001", "0")
    assert all(s["random"] == "1" for s in sections(files["cfg"], "yolo"))
    with pytest.raises(ValueError, match="unknown cfg setting.*max_batch\\b"):
        render_yolo(tmp_path, overrides={"max_batch": 3})
    with pytest.raises(ValueError, match="multiple of subdivisions"):
        render_yolo(tmp_path, overrides={"batch": 10, "subdivisions": 4})
    with pytest.raises(ValueError, match="same length"):
        render_yolo(tmp_path, overrides={"steps": [1, 2, 3]})


@pytest.mark.parametrize("size", [0, 330, 100])
def test_size_must_be_a_multiple_of_32(tmp_path, size):
    with pytest.raises(ValueError, match="multiple of 32"):
        render_yolo(tmp_path, size=size)


def test_paths_with_spaces_are_refused_by_name(tmp_path):
    with pytest.raises(ValueError, match="train path .*my list.txt.* contains whitespace"):
        render_yolo(tmp_path, train_list=tmp_path / "my list.txt")


def test_tiny_has_two_scales_and_its_own_anchors(tmp_path):
    files = render_yolo(tmp_path, model="yolov3-tiny", size=416)
    yolo_layers = sections(files["cfg"], "yolo")
    assert [s["mask"] for s in yolo_layers] == ["3,4,5", "0,1,2"]
    assert yolo_layers[0]["anchors"] == "10,14,23,27,37,58,81,82,135,169,344,319"
    assert yolo_layers[0]["num"] == "6"


@pytest.mark.parametrize("model, size", [("yolov3", 320), ("yolov3-tiny", 416)])
def test_opencv_outputs_match_the_grid(tmp_path, model, size):
    files = render_yolo(tmp_path, model=model, size=size)
    s = size // 32
    grids = [s * s, 4 * s * s, 16 * s * s][: 3 if model == "yolov3" else 2]
    assert sorted(yolo_output_rows(files["cfg"], size)) == sorted(3 * g for g in grids)


@pytest.mark.slow
@pytest.mark.parametrize("size", [416, 608])
def test_opencv_outputs_match_the_grid_large(tmp_path, size):
    files = render_yolo(tmp_path, model="yolov3", size=size)
    s = size // 32
    rows = yolo_output_rows(files["cfg"], size)
    assert len(rows) == 3 and sum(rows) == 3 * (s * s + 4 * s * s + 16 * s * s)


def _write_labels(directory: Path, boxes_per_file: list[list[tuple[float, float]]]) -> None:
    directory.mkdir(parents=True)
    for i, boxes in enumerate(boxes_per_file):
        (directory / f"{i}.txt").write_text("".join(f"0 0.5 0.5 {w} {h}\n" for w, h in boxes))


def test_kmeans_anchors_are_seeded_sorted_and_scaled(tmp_path):
    rng = np.random.default_rng(3)
    small = rng.normal([0.05, 0.06], 0.004, (40, 2))
    large = rng.normal([0.3, 0.28], 0.01, (40, 2))
    _write_labels(tmp_path / "labels", [list(map(tuple, small[i::4])) + list(map(tuple, large[i::4])) for i in range(4)])
    (tmp_path / "labels" / "empty.txt").write_text("0 0.5 0.5 0 0.1\n")
    files = render_yolo(tmp_path / "a", model="yolov3-tiny", size=320, anchors="auto",
                        labels_dir=tmp_path / "labels")
    again = render_yolo(tmp_path / "b", model="yolov3-tiny", size=320, anchors="auto",
                        labels_dir=tmp_path / "labels")
    anchors = [int(v) for v in sections(files["cfg"], "yolo")[0]["anchors"].split(",")]
    assert anchors == [int(v) for v in sections(again["cfg"], "yolo")[0]["anchors"].split(",")]
    pairs = list(zip(anchors[::2], anchors[1::2]))
    areas = [w * h for w, h in pairs]
    assert len(pairs) == 6 and areas == sorted(areas)
    assert 12 <= pairs[0][0] <= 20 and 85 <= pairs[-1][0] <= 110   # 0.05*320=16 ... 0.3*320=96
    assert "1 zero-size box" in files["cfg"].read_text().splitlines()[1]


def test_kmeans_recovers_well_separated_clusters():
    wh = np.array([[0.1, 0.1]] * 5 + [[0.4, 0.2]] * 5 + [[0.2, 0.5]] * 5)
    centroids = kmeans_anchors(wh, 3, seed=0)
    assert sorted(map(tuple, centroids.round(3))) == [(0.1, 0.1), (0.2, 0.5), (0.4, 0.2)]


def test_label_lookup_follows_darknet_and_bad_lines_name_the_file(tmp_path):
    assert darknet_label_path("/d/darknet/images/a.jpg") == "/d/darknet/labels/a.txt"
    assert darknet_label_path("/d/VOC/JPEGImages/b.JPEG") == "/d/VOC/labels/b.txt"
    bad = tmp_path / "bad.txt"
    bad.write_text("0 0.5 0.5 0.1 0.1\n3 0.5 oops 0.2 0.2\n")
    with pytest.raises(ValueError, match="bad.txt:2"):
        read_label_boxes([bad])
    with pytest.raises(ValueError, match="at least 9 boxes"):
        kmeans_anchors(np.ones((3, 2)) * 0.1, 9)


def test_explicit_anchors_need_the_right_count(tmp_path):
    files = render_yolo(tmp_path, model="yolov3-tiny", anchors="1,2, 3,4, 5,6, 7,8, 9,10, 11,12")
    assert sections(files["cfg"], "yolo")[1]["anchors"] == "1,2,3,4,5,6,7,8,9,10,11,12"
    with pytest.raises(ValueError, match="6 positive"):
        render_yolo(tmp_path, model="yolov3-tiny", anchors="1,2,3")

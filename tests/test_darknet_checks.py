"""Input checks that stand in for Darknet's silent failures (pure Python, no Darknet run)."""
from __future__ import annotations

import struct
from pathlib import Path

import pytest

from harness.data.darknet import darknet_label_path as label_path_for
from harness.frameworks.darknet.cfg import (
    DarknetInputError,
    edit_cfg_text,
    read_cfg_sections,
    summarize_cfg,
    write_cfg_copy,
)
from harness.frameworks.darknet.driver import (
    DarknetInstall,
    cfg_base,
    detect_darknet_valid,
    image_id,
    plan_training,
    read_data_file,
    read_weights_seen,
)
from tests.support.darknet import write_random_weights

STOCK_TINY = Path("/usr/share/darknet/cfg/yolov3-tiny.cfg")

TINY_CFG = """[net]
batch=2
subdivisions=1
width=64
height=64
channels=3
learning_rate=0.001
max_batches={max_batches}

[convolutional]
batch_normalize=1
filters=8
size=3
stride=2
pad=1
activation=leaky

[convolutional]
size=1
stride=1
pad=1
filters={filters}
activation=linear

[yolo]
mask = 0,1,2
anchors = 10,14,  23,27,  37,58
classes={classes}
num=3
random=0
"""


def make_dataset(root: Path, *, classes: int = 2, filters: int = 21, n_images: int = 3,
                 names: int = 2, max_batches: int = 5, backup: bool = True) -> dict:
    """A self-consistent tiny Darknet layout that each test then breaks in one way."""
    images = root / "data" / "images"
    labels = root / "data" / "labels"
    images.mkdir(parents=True)
    labels.mkdir(parents=True)
    paths = []
    for index in range(n_images):
        image = images / f"img{index}.jpg"
        image.write_bytes(b"\xff\xd8\xff")   # existence is what the checks look at
        (labels / f"img{index}.txt").write_text("0 0.5 0.5 0.2 0.2\n")
        paths.append(str(image))
    (root / "train.txt").write_text("\n".join(paths) + "\n")
    (root / "obj.names").write_text("\n".join(f"c{i}" for i in range(names)) + "\n")
    if backup:
        (root / "backup").mkdir()
    (root / "tiny.cfg").write_text(TINY_CFG.format(classes=classes, filters=filters, max_batches=max_batches))
    (root / "obj.data").write_text(
        f"classes={classes}\ntrain={root}/train.txt\nvalid={root}/train.txt\nnames={root}/obj.names\n"
        f"backup={root}/backup\n")
    return {"data": root / "obj.data", "cfg": root / "tiny.cfg", "labels": labels, "images": paths}


def test_consistent_inputs_pass(tmp_path: Path) -> None:
    files = make_dataset(tmp_path)
    plan = plan_training(files["data"], files["cfg"])
    assert plan.base == "tiny" and plan.n_images == 3 and plan.weights is None
    assert plan.cfg.classes == 2 and plan.cfg.max_batches == 5


def test_missing_backup_dir_refused(tmp_path: Path) -> None:
    files = make_dataset(tmp_path, backup=False)
    with pytest.raises(DarknetInputError, match="backup directory .* does not exist"):
        plan_training(files["data"], files["cfg"])


def test_missing_label_file_named(tmp_path: Path) -> None:
    files = make_dataset(tmp_path)
    (files["labels"] / "img1.txt").unlink()
    with pytest.raises(DarknetInputError, match=r"1 label files missing.*img1\.txt"):
        plan_training(files["data"], files["cfg"])


def test_bad_label_line_and_class_out_of_range(tmp_path: Path) -> None:
    files = make_dataset(tmp_path)
    (files["labels"] / "img0.txt").write_text("5 0.5 0.5 0.2 0.2\n")
    (files["labels"] / "img2.txt").write_text("0 0.5 0.5\n")
    with pytest.raises(DarknetInputError, match="2 bad label lines"):
        plan_training(files["data"], files["cfg"])


def test_names_shorter_than_classes(tmp_path: Path) -> None:
    files = make_dataset(tmp_path, names=1)
    with pytest.raises(DarknetInputError, match=r"1 names but the cfg has classes=2"):
        plan_training(files["data"], files["cfg"])


def test_filters_classes_mismatch(tmp_path: Path) -> None:
    files = make_dataset(tmp_path, classes=2, filters=255)
    with pytest.raises(DarknetInputError, match="needs filters=21, not 255"):
        plan_training(files["data"], files["cfg"])


def test_space_in_data_value_refused(tmp_path: Path) -> None:
    data = tmp_path / "x.data"
    data.write_text("train=/some dir/train.txt\n")
    with pytest.raises(DarknetInputError, match="contains a space"):
        read_data_file(data)


def test_crlf_data_file_refused(tmp_path: Path) -> None:
    data = tmp_path / "x.data"
    data.write_bytes(b"train=/a/train.txt\r\n")
    with pytest.raises(DarknetInputError, match="CRLF"):
        read_data_file(data)


def test_backup_path_longer_than_darknet_buffer(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 120) / ("e" * 120)
    deep.mkdir(parents=True)
    files = make_dataset(deep)
    with pytest.raises(DarknetInputError, match="buffer is 256"):
        plan_training(files["data"], files["cfg"])


def test_label_path_rules_follow_darknet() -> None:
    assert label_path_for("/d/images/a.jpg") == "/d/labels/a.txt"
    assert label_path_for("/d/JPEGImages/a.JPEG") == "/d/labels/a.txt"
    assert label_path_for("/d/x/a.png") == "/d/x/a.txt"
    # Darknet rewrites the first "images" anywhere in the path, and leaves lower-case .jpeg alone.
    assert label_path_for("/d/my_images/images/a.jpg") == "/d/my_labels/images/a.txt"
    assert label_path_for("/d/drawings/a.jpg") == "/d/dlabelsings/a.txt"   # "raw" in "drawings"
    assert label_path_for("/d/images/a.jpeg") == "/d/labels/a.jpeg"
    # relative list entries: the rule rewrites the entry, then Darknet opens it from its cwd
    assert label_path_for("images/a.jpg", "/raw/images") == "/raw/images/labels/a.txt"


def test_image_id_and_cfg_base_stop_at_first_dot() -> None:
    assert image_id("/a/b/Blood.Image_1.jpg") == "Blood"
    assert cfg_base(Path("/x/yolov3-tiny.bccd.cfg")) == "yolov3-tiny"


def test_resume_refused_when_weights_already_finished(tmp_path: Path) -> None:
    files = make_dataset(tmp_path, max_batches=5)
    backup = tmp_path / "backup" / "tiny.backup"
    backup.write_bytes(struct.pack("<3iQ", 0, 2, 0, 10) + b"\0" * 64)   # seen 10 images = 5 iterations
    with pytest.raises(DarknetInputError, match="already seen 5 iterations"):
        plan_training(files["data"], files["cfg"])
    plan = plan_training(files["data"], files["cfg"], resume=False)
    assert plan.weights is None
    backup.write_bytes(struct.pack("<3iQ", 0, 2, 0, 4) + b"\0" * 64)
    plan = plan_training(files["data"], files["cfg"])
    assert plan.resumed_from == backup and plan.weights == backup and not plan.clear


def test_fine_tune_weights_need_clear(tmp_path: Path) -> None:
    files = make_dataset(tmp_path, max_batches=5)
    pretrained = tmp_path / "pretrained.weights"
    pretrained.write_bytes(struct.pack("<3iQ", 0, 2, 0, 32_013_312) + b"\0" * 64)
    with pytest.raises(DarknetInputError, match="clear=True"):
        plan_training(files["data"], files["cfg"], init_weights=pretrained)
    plan = plan_training(files["data"], files["cfg"], init_weights=pretrained, clear=True)
    assert plan.clear and plan.weights == pretrained.resolve()


def test_weights_header_versions(tmp_path: Path) -> None:
    new = tmp_path / "new.weights"
    new.write_bytes(struct.pack("<3iQ", 0, 2, 0, 123456789012))
    old = tmp_path / "old.weights"
    old.write_bytes(struct.pack("<4i", 0, 1, 0, 77) + b"\0" * 8)
    assert read_weights_seen(new) == 123456789012
    assert read_weights_seen(old) == 77


def test_write_cfg_copy_overrides_only_net(tmp_path: Path) -> None:
    files = make_dataset(tmp_path, max_batches=5)
    copy = write_cfg_copy(files["cfg"], tmp_path / "copy", {"net": {"max_batches": "9"}})
    assert copy.name == "tiny.cfg"
    assert summarize_cfg(copy).max_batches == 9
    assert summarize_cfg(copy).classes == 2


def test_random_weights_have_darknet_size(tmp_path: Path) -> None:
    files = make_dataset(tmp_path)
    weights = write_random_weights(files["cfg"], tmp_path / "r.weights")
    conv1 = 8 * 4 + 8 * 3 * 3 * 3          # biases, scales, mean, var + weights
    conv2 = 21 + 21 * 8                    # biases + weights (no batch norm)
    assert weights.stat().st_size == 20 + 4 * (conv1 + conv2)


@pytest.mark.skipif(not STOCK_TINY.is_file(), reason="Debian darknet cfgs not installed")
def test_stock_yolov3_tiny_cfg_summary() -> None:
    summary = summarize_cfg(STOCK_TINY)
    assert (summary.classes, summary.yolo_layers, summary.problems) == (80, 2, [])


def test_valid_refuses_fewer_than_four_images(tmp_path: Path) -> None:
    files = make_dataset(tmp_path, n_images=3)
    weights = write_random_weights(files["cfg"], tmp_path / "r.weights")
    fake = DarknetInstall(binary=Path("/nonexistent/darknet"), library=None, flavour="debian")
    with pytest.raises(DarknetInputError, match="needs at\\s+least 4.*no libdarknet.so"):
        detect_darknet_valid(files["data"], files["cfg"], weights, tmp_path / "out", install=fake)


def test_valid_refuses_colliding_image_ids(tmp_path: Path) -> None:
    files = make_dataset(tmp_path, n_images=4)
    other = tmp_path / "other"
    other.mkdir()
    (other / "img0.jpg").write_bytes(b"\xff\xd8\xff")
    (tmp_path / "train.txt").write_text("\n".join(files["images"] + [str(other / "img0.jpg")]) + "\n")
    weights = write_random_weights(files["cfg"], tmp_path / "r.weights")
    fake = DarknetInstall(binary=Path("/nonexistent/darknet"), library=None, flavour="debian")
    with pytest.raises(DarknetInputError, match="both become id 'img0'"):
        detect_darknet_valid(files["data"], files["cfg"], weights, tmp_path / "out", install=fake)


def test_one_cfg_parser_keeps_line_numbers_and_darknet_grammar(tmp_path: Path) -> None:
    cfg = tmp_path / "a.cfg"
    cfg.write_text("# comment\n[net]\nwidth = 64\n\n[convolutional]\nfilters=8\nanchors = 1, 2,  3\n")
    sections = read_cfg_sections(cfg)
    assert [(s.name, s.line) for s in sections] == [("net", 2), ("convolutional", 5)]
    assert sections[1].options == {"filters": "8", "anchors": "1,2,3"}     # Darknet deletes every space
    cfg.write_text("[net]\nwidth=64\nnot an option\n")
    with pytest.raises(DarknetInputError, match=":3: cannot parse"):
        read_cfg_sections(cfg)
    cfg.write_text("[convolutional]\nfilters=8\n")
    with pytest.raises(DarknetInputError, match="first section must be \\[net\\]"):
        read_cfg_sections(cfg)


def test_cfg_editor_sets_net_keys_and_every_yolo_key() -> None:
    text = "[net]\nbatch=1\n# keep me\n[yolo]\nclasses=2\nthresh = 0.2\n\n[route]\nlayers=-1\n[yolo]\nclasses=2\n"
    edited = edit_cfg_text(text, {"net": {"batch": "4", "max_batches": "9"}, "yolo": {"thresh": "0.005"}})
    assert edited == ("[net]\nbatch=4\n# keep me\nmax_batches=9\n[yolo]\nclasses=2\nthresh=0.005\n\n"
                      "[route]\nlayers=-1\n[yolo]\nclasses=2\nthresh=0.005\n")

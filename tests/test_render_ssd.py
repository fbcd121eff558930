"""SSD renderer: structure, solver values, dialects, paths, and OpenCV DNN running the deploy net."""
import re
from pathlib import Path

import pytest

from harness import paper
from harness.labels import LabelMap
from harness.paths import PROJECT_ROOT
from harness.render.prototxt import first, parse_prototxt
from harness.render.ssd import render_ssd

ROLES = {"train", "test", "deploy", "solver", "labelmap"}


def layers(path: Path, kind: str = None) -> list[dict]:
    all_layers = parse_prototxt(path)["layer"]
    return [l for l in all_layers if kind is None or first(l, "type") == kind]


@pytest.fixture
def ssd300(tmp_path, monkeypatch):
    """SSD300 rendered with defaults into a relative out dir, as a user would from a shell."""
    monkeypatch.chdir(tmp_path)
    return render_ssd(Path("out"), dialect="brocolli")


def test_writes_all_five_files_without_template_syntax(ssd300):
    assert set(ssd300) == ROLES
    for path in ssd300.values():
        text = path.read_text()
        assert text.strip()
        for token in ("{{", "}}", "{%", "%}", "{#"):
            assert token not in text, f"{path} holds {token}"


def test_paths_follow_the_one_rule(ssd300, tmp_path):
    """docs/architecture.md: what the harness names is absolute (resolved against the caller's
    cwd); only the data/ placeholders are relative, to the rendered file's own folder."""
    out = (tmp_path / "out").resolve()
    for path in ssd300.values():
        for value in re.findall(r'"([^"\n]*/[^"\n]*)"', path.read_text()):
            assert value.startswith(str(out)) or value.startswith("data/"), f"{path}: {value}"
        assert str(PROJECT_ROOT) not in path.read_text()
    train_data = layers(ssd300["train"], "AnnotatedData")[0]
    assert first(train_data, "data_param.source") == "data/caffe/train_lmdb"


def test_default_label_map_is_the_papers_15_labels(ssd300):
    assert LabelMap.from_file(ssd300["labelmap"]).names == LabelMap.paper().names
    loss = layers(ssd300["train"], "MultiBoxLoss")[0]
    assert first(loss, "multibox_loss_param.num_classes") == 16
    for path in (ssd300["test"], ssd300["deploy"]):
        assert first(layers(path, "DetectionOutput")[0], "detection_output_param.num_classes") == 16
    conf = {first(l, "name"): first(l, "convolution_param.num_output") for l in layers(ssd300["deploy"], "Convolution")}
    assert conf["conv4_3_norm_mbox_conf"] == 4 * 16 and conf["fc7_mbox_conf"] == 6 * 16
    assert conf["conv4_3_norm_mbox_loc"] == 4 * 4 and conf["fc7_mbox_loc"] == 6 * 4


def test_prior_boxes_carry_the_smin_rule(tmp_path):
    files = render_ssd(tmp_path, smin=0.1, dialect="brocolli")
    priors = layers(files["deploy"], "PriorBox")
    assert [first(l, "prior_box_param.min_size") for l in priors] == [15, 30, 90, 150, 210, 270]
    assert [first(l, "prior_box_param.max_size") for l in priors] == [30, 90, 150, 210, 270, 330]
    assert [first(l, "prior_box_param.step") for l in priors] == [8, 16, 32, 64, 100, 300]


def test_solver_defaults_are_the_papers(ssd300):
    solver = parse_prototxt(ssd300["solver"])
    assert first(solver, "type") == "SGD"
    assert first(solver, "base_lr") == 0.001
    assert first(solver, "momentum") == 0.9
    assert first(solver, "weight_decay") == 0.0005
    assert first(solver, "lr_policy") == "multistep"
    assert first(solver, "gamma") == 0.1
    assert solver["stepvalue"] == [14700, 147000, 294000, 735000]
    assert first(solver, "max_iter") == 735000
    assert first(solver, "eval_type") == "detection"
    out = Path("out").resolve()
    assert first(solver, "train_net") == str(out / "train.prototxt")
    assert first(solver, "test_net") == str(out / "test.prototxt")
    assert first(solver, "snapshot_prefix") == str(out / "snapshots/ssd300")
    train_data = layers(ssd300["train"], "AnnotatedData")[0]
    assert first(train_data, "data_param.batch_size") == 10


def test_solver_and_paths_are_overridable(tmp_path):
    names = tmp_path / "name_size.txt"
    names.write_text("a 480 640\nb 480 640\nc 480 640\n")
    files = render_ssd(tmp_path / "r", dialect="brocolli", batch_size=4, test_batch_size=2,
                       train_lmdb=tmp_path / "tr", test_lmdb=tmp_path / "te", name_size_file=names,
                       detection_out_dir=tmp_path / "det", snapshot_prefix=tmp_path / "w" / "snap",
                       solver={"max_iter": 50, "base_lr": 0.01, "stepvalue": [20, 40], "snapshot": 25,
                               "test_interval": 10, "display": 1, "solver_mode": "gpu", "random_seed": 7})
    solver = parse_prototxt(files["solver"])
    assert (first(solver, "max_iter"), first(solver, "base_lr"), solver["stepvalue"]) == (50, 0.01, [20, 40])
    assert (first(solver, "snapshot"), first(solver, "test_interval"), first(solver, "display")) == (25, 10, 1)
    assert first(solver, "solver_mode") == "GPU" and first(solver, "random_seed") == 7
    assert first(solver, "test_iter") == 2             # ceil(3 test images / batch 2)
    assert first(solver, "snapshot_prefix") == str(tmp_path / "w" / "snap")
    train = layers(files["train"], "AnnotatedData")[0]
    test = layers(files["test"], "AnnotatedData")[0]
    assert first(train, "data_param.source") == str(tmp_path / "tr")
    assert first(test, "data_param.source") == str(tmp_path / "te")
    assert first(train, "data_param.batch_size") == 4 and first(test, "data_param.batch_size") == 2
    save = first(layers(files["test"], "DetectionOutput")[0], "detection_output_param.save_output_param")
    assert first(save, "output_directory") == str(tmp_path / "det")
    assert first(save, "output_name_prefix") == "comp4_det_test_"
    assert first(save, "output_format") == "VOC"
    assert first(save, "name_size_file") == str(names)
    assert first(save, "num_test_image") == 3
    assert (tmp_path / "det").is_dir() and (tmp_path / "w").is_dir()


def test_unknown_solver_key_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="unknown solver setting.*max_iters"):
        render_ssd(tmp_path, dialect="brocolli", solver={"max_iters": 5})


def test_train_and_test_data_layers_never_share_a_name(tmp_path):
    files = render_ssd(tmp_path, dialect="brocolli", train_lmdb="same_lmdb", test_lmdb="same_lmdb")
    train_name = first(layers(files["train"], "AnnotatedData")[0], "name")
    test_name = first(layers(files["test"], "AnnotatedData")[0], "name")
    assert train_name != test_name


def test_dialects_differ_where_the_caffe_protos_differ(tmp_path):
    weiliu = render_ssd(tmp_path / "w", dialect="weiliu89")
    brocolli = render_ssd(tmp_path / "b", dialect="brocolli")
    w_train = first(layers(weiliu["train"], "AnnotatedData")[0], "transform_param")
    b_train = first(layers(brocolli["train"], "AnnotatedData")[0], "transform_param")
    assert {"resize_param", "distort_param", "expand_param"} <= set(w_train)
    assert "old_resize_param" in b_train and not {"resize_param", "distort_param", "expand_param"} & set(b_train)
    assert "show_per_class_result" in parse_prototxt(weiliu["solver"])
    assert "show_per_class_result" not in parse_prototxt(brocolli["solver"])


def test_labelmap_file_and_class_count(tmp_path):
    names = tmp_path / "obj.names"
    names.write_text("RBC\nWBC\nPlatelets\n")
    files = render_ssd(tmp_path / "a", labelmap=names, dialect="brocolli")
    assert LabelMap.from_file(files["labelmap"]).names == ("RBC", "WBC", "Platelets")
    assert first(layers(files["train"], "MultiBoxLoss")[0], "multibox_loss_param.num_classes") == 4
    files = render_ssd(tmp_path / "b", classes=2, dialect="brocolli")
    assert first(layers(files["deploy"], "DetectionOutput")[0], "detection_output_param.num_classes") == 3
    with pytest.raises(ValueError, match="not both"):
        render_ssd(tmp_path / "c", labelmap=names, classes=2, dialect="brocolli")


def test_paths_that_break_a_prototxt_string_are_refused(tmp_path):
    with pytest.raises(ValueError, match='my"lmdb'):
        render_ssd(tmp_path, dialect="brocolli", train_lmdb=tmp_path / 'my"lmdb')
    files = render_ssd(tmp_path / "ok", dialect="brocolli", train_lmdb=tmp_path / "my lmdb")  # Caffe copes
    assert first(layers(files["train"], "AnnotatedData")[0], "data_param.source") == str(tmp_path / "my lmdb")


def test_unknown_dialect_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown Caffe dialect"):
        render_ssd(tmp_path, dialect="bvlc")


def test_solver_defaults_come_from_the_paper_module(ssd300):
    solver = parse_prototxt(ssd300["solver"])
    for key in ("base_lr", "momentum", "weight_decay", "gamma"):
        assert first(solver, key) == paper.SSD_SOLVER[key]


@pytest.mark.parametrize("size, expected", [(300, 8732), (512, 24564)])
def test_opencv_runs_the_deploy_net_and_counts_default_boxes(tmp_path, size, expected):
    from harness.render.verify import run_ssd_deploy

    files = render_ssd(tmp_path, size=size, dialect="brocolli")
    outputs = run_ssd_deploy(files["deploy"], size)
    priors = outputs["mbox_priorbox"]            # [1, 2, 4 * boxes]: coordinates, then variances
    assert priors.shape == (1, 2, 4 * expected)
    assert outputs["detection_out"].shape[-1] == 7   # image, label, score, xmin, ymin, xmax, ymax

"""The smoke profile's two learning checks (YOLOv3-tiny on Darknet, a compact SSD on Caffe).

Fast checks of how they are configured and rendered; the Caffe cross-check (Caffe's own
``detection_eval`` against ``harness evaluate`` on the same weights) is in
test_learning_ssd_crosscheck.py.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness.config import ExperimentConfig
from harness.data.splits import paper_split
from harness.core.profiles import SMOKE, SSD_LEARNING_CHECK, YOLO_ALEXEYAB_LEARNING_CHECK, YOLO_LEARNING_CHECK
from harness.engine.reproduce import table1_configs
from harness.engine.run import RunSettings
from harness.frameworks.configs import config_from_json
from harness.labels import LabelMap
from harness.render.priors import compact_feature_sizes, ssd_num_priors, ssd_source_layers
from harness.render.ssd import NetVariant, render_ssd


def test_compact_ssd_feature_maps_follow_caffes_layer_arithmetic() -> None:
    # 160: pools 80/40/20 -> conv4_3 20, pool4 10 -> fc7 10, stride-2 convs 5 and 3, unpadded 3x3 -> 1
    assert compact_feature_sizes(160) == [20, 10, 5, 3, 1]
    assert compact_feature_sizes(192) == [24, 12, 6, 3, 1]
    layers = ssd_source_layers(160)
    assert [layer.name for layer in layers] == ["conv4_3_norm", "fc7", "conv6_2", "conv7_2", "conv8_2"]
    assert [layer.step for layer in layers][:3] == [8, 16, 32]
    assert ssd_num_priors(160) == 20 * 20 * 4 + 10 * 10 * 6 + 5 * 5 * 6 + 3 * 3 * 6 + 1 * 4


def test_other_input_sizes_are_still_refused() -> None:
    with pytest.raises(ValueError, match="300, 512"):
        ssd_source_layers(224)


def _channels(prototxt: str) -> dict[str, int]:
    found = re.findall(r'name: "(\w+)"\s+type: "Convolution".*?num_output: (\d+)', prototxt, flags=re.S)
    return {name: int(n) for name, n in found}


def test_variant_scales_vgg_and_extras_adds_batchnorm_and_is_named(tmp_path: Path) -> None:
    files = render_ssd(tmp_path / "compact", size=160, smin=0.1, smax=0.5, classes=15, num_test_image=4,
                       variant=NetVariant(width=0.25, batch_norm=True))
    deploy = files["deploy"].read_text()
    channels = _channels(deploy)
    assert channels["conv1_1"] == 16 and channels["conv5_3"] == 128 and channels["fc7"] == 256
    assert channels["conv6_2"] == 128 and "conv9_2" not in channels
    assert channels["fc7_mbox_conf"] == 6 * 16          # heads are not scaled: priors x (15 + background)
    # BatchNorm + Scale after every base/extra convolution (13 VGG + fc6/fc7 + 6 extras), none on heads
    assert deploy.count('type: "BatchNorm"') == 21 and deploy.count('type: "Scale"') == 21
    assert "conv4_3_norm_mbox_loc_bn" not in deploy
    assert "NOT SSD300: VGG width x0.25, BatchNorm" in deploy.splitlines()[0]
    assert files["train"].read_text().count("batch_sampler {") == 7     # SSD's whole-image + 6 crop samplers


def test_variant_without_crop_sampling_keeps_only_the_whole_image_sampler(tmp_path: Path) -> None:
    files = render_ssd(tmp_path / "nocrop", size=160, smin=0.1, smax=0.5, classes=15, num_test_image=4,
                       variant=NetVariant(width=0.125, batch_norm=True, crop_sampling=False))
    train = files["train"].read_text()
    assert train.count("batch_sampler {") == 1 and "min_jaccard_overlap" not in train
    assert "no random-crop sampling" in train.splitlines()[0]


@pytest.mark.parametrize("distortion, named", [(True, "no zoom-out expansion"),
                                               (False, "no zoom-out expansion, no photometric distortion")])
def test_variant_can_leave_out_expansion_and_distortion(tmp_path: Path, distortion: bool, named: str) -> None:
    files = render_ssd(tmp_path / "v", size=160, smin=0.1, smax=0.5, classes=15, num_test_image=4, dialect="weiliu89",
                       variant=NetVariant(width=0.125, crop_sampling=False, expansion=False, distortion=distortion))
    train = files["train"].read_text()
    assert "expand_param {" not in train and ("distort_param {" in train) == distortion
    header = train.splitlines()[0]
    assert named in header and ("no photometric distortion" in header) != distortion


def test_default_variant_is_ssd300_unchanged(tmp_path: Path) -> None:
    deploy = render_ssd(tmp_path / "ssd300", classes=15, num_test_image=4)["deploy"].read_text()
    channels = _channels(deploy)
    assert channels["conv1_1"] == 64 and channels["conv5_3"] == 512 and channels["fc7"] == 1024
    assert channels["conv9_2"] == 256
    assert "BatchNorm" not in deploy and "NOT SSD300" not in deploy


def _smoke_configs(tmp_path: Path) -> dict[str, ExperimentConfig]:
    settings = RunSettings(tmp_path / "run", SMOKE, device="cpu")
    return {c.name: c for c in table1_configs(settings)}


def test_smoke_profile_has_both_learning_checks_scored_on_the_whole_test_split(tmp_path: Path) -> None:
    configs = _smoke_configs(tmp_path)
    checks = {name: c for name, c in configs.items() if c.role == "learning-check"}
    assert {c.framework for c in checks.values()} == {"caffe", "darknet"}
    # make demo's three: one YOLOv3-tiny check per Darknet (same model and size) and the compact SSD
    assert set(checks) == {YOLO_LEARNING_CHECK.name, YOLO_ALEXEYAB_LEARNING_CHECK.name, SSD_LEARNING_CHECK.name}
    assert checks[YOLO_LEARNING_CHECK.name].framework_options.get("fork") == "pjreddie"
    assert checks[YOLO_ALEXEYAB_LEARNING_CHECK.name].framework_options.get("fork") == "alexeyab"
    same = ("batch", "subdivisions", "learning_rate", "burn_in", "scales")
    ab, pj = checks[YOLO_ALEXEYAB_LEARNING_CHECK.name], checks[YOLO_LEARNING_CHECK.name]
    assert (ab.spec.model, ab.spec.size) == (pj.spec.model, pj.spec.size)
    assert all(ab.framework_options["cfg"][key] == pj.framework_options["cfg"][key] for key in same)
    # AlexeyAB's own schedule: no crop jitter, twice the iterations (harness/core/profiles.py says why)
    assert ab.framework_options["cfg"]["jitter"] == 0.0 and "jitter" not in pj.framework_options["cfg"]
    assert ab.framework_options["cfg"]["max_batches"] == 2 * pj.framework_options["cfg"]["max_batches"]
    assert checks[SSD_LEARNING_CHECK.name].framework_options.get("fork") is None
    for config in checks.values():
        assert config.limit("test_images") is None and config.limit("classification_images") is None
    # the Table 1 rows keep their few-image limits
    assert configs["ssd300_smin0.2"].limit("test_images") == 4
    assert configs["ssd300_smin0.2"].framework_options["network"] == {}
    assert configs["ssd300_smin0.2"].framework_options["solver"]["max_iter"] == 2


def test_ssd_learning_check_config_carries_its_network_solver_and_batch(tmp_path: Path) -> None:
    config = _smoke_configs(tmp_path)[SSD_LEARNING_CHECK.name]
    assert config.spec.size == 160 and config.spec.smin == 0.1 and config.spec.smax == 0.5
    assert config.framework_options["network"] == {"width": 0.125, "batch_norm": True, "crop_sampling": False, "expansion": False,
                              "distortion": False}
    assert config.framework_options["batch_size"] == SSD_LEARNING_CHECK.batch_size
    assert config.framework_options["solver"]["max_iter"] == SSD_LEARNING_CHECK.overrides["max_iter"]
    # Caffe tests once, on the final weights, over the whole test split (test_iter from its size)
    assert config.framework_options["solver"]["test_interval"] == config.framework_options["solver"]["max_iter"]
    assert config.framework_options["solver"]["test_iter"] is None
    assert ExperimentConfig.from_json(config.to_json()) == config


def test_darknet_option_reaches_the_yolo_rows_only(tmp_path: Path) -> None:
    """`--darknet alexeyab`: every YOLO row and the pjreddie-named check keep their own; SSD has none."""
    configs = {c.name: c for c in table1_configs(RunSettings(tmp_path / "run", SMOKE, device="cpu",
                                                             darknet="alexeyab"))}
    assert configs["yolov3_320"].framework_options.get("fork") == "alexeyab" and configs["ssd300_smin0.2"].framework_options.get("fork") is None
    assert configs[YOLO_LEARNING_CHECK.name].framework_options.get("fork") == "alexeyab"      # the run's Darknet
    assert configs["yolov3_320"].framework_options["cfg"] == _smoke_configs(tmp_path / "p")["yolov3_320"].framework_options["cfg"]
    assert ExperimentConfig.from_json(configs["yolov3_320"].to_json()) == configs["yolov3_320"]
    old = configs["yolov3_320"].to_json()
    old["cfg"] = old.pop("framework_options")["cfg"]       # a config.json written before the option
    old.update(solver={}, ssd_batch_size=None, network={})  # (and before framework_options)
    assert config_from_json(old).framework_options == {**configs["yolov3_320"].framework_options,
                                                                 "fork": "pjreddie"}
    old["darknet"] = "alexeyab"                              # written with --darknet, before framework_options
    assert config_from_json(old) == configs["yolov3_320"]


def test_a_caffe_config_written_before_framework_options_still_loads(tmp_path: Path) -> None:
    config = _smoke_configs(tmp_path)[SSD_LEARNING_CHECK.name]
    old = config.to_json()
    options = old.pop("framework_options")
    old.update(solver=options["solver"], ssd_batch_size=options["batch_size"], network=options["network"],
               cfg={}, darknet=None)
    assert config_from_json(old) == config


def test_smoke_synthetic_set_gives_100_test_images_and_10_cells_per_class() -> None:
    ids = [f"smear_{i:06d}" for i in range(SMOKE.synthetic_images)]
    assert len(paper_split(ids, seed=0).test) >= 100
    assert SMOKE.synthetic_classification_images >= 10 * len(LabelMap.paper())


def test_only_a_learning_check_runs_just_that_check(tmp_path: Path) -> None:
    settings = RunSettings(tmp_path / "run", SMOKE, device="cpu")
    only_check = table1_configs(settings, only=[SSD_LEARNING_CHECK.name])
    assert [c.name for c in only_check] == [SSD_LEARNING_CHECK.name]
    row_and_checks = [c.name for c in table1_configs(settings, only=["yolov3-tiny_416"])]
    assert row_and_checks == ["yolov3-tiny_416", YOLO_LEARNING_CHECK.name, YOLO_ALEXEYAB_LEARNING_CHECK.name,
                              SSD_LEARNING_CHECK.name]
    assert [c.name for c in table1_configs(settings, only=[YOLO_ALEXEYAB_LEARNING_CHECK.name])] == \
        [YOLO_ALEXEYAB_LEARNING_CHECK.name]
    assert [c.name for c in table1_configs(settings, only=["yolov3-tiny_416"], learning_check=False)] == \
        ["yolov3-tiny_416"]


def _train_ssd_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str]) -> ExperimentConfig:
    """The config `harness train ssd ARGS --profile cpu` would train (the run itself stubbed out)."""
    from click.testing import CliRunner

    from harness.core.profiles import CPU
    from harness.engine import cli as engine_cli

    seen: dict = {}
    monkeypatch.setattr(engine_cli, "_run_train", lambda spec, network=None, **kw: seen.update(spec=spec, network=network))
    done = CliRunner().invoke(engine_cli.train, ["ssd", *args, "--profile", "cpu"])
    assert done.exit_code == 0, done.output
    settings = RunSettings(tmp_path / "run", CPU, device="cpu")
    return settings.config_for(seen["spec"], role="custom", network=seen["network"])


def test_train_ssd_default_is_still_ssd300_full_width(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = _train_ssd_config(tmp_path, monkeypatch, [])
    assert config.name == "ssd300_smin0.2" and config.spec.size == 300
    assert config.framework_options["network"] == {}            # what every SSD300 config has recorded


def test_train_ssd_compact_variant_is_recorded_and_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The BCCD CI recipe (--size 160 --width 0.125 --batch-norm, no crops/zoom-out/distortion)."""
    config = _train_ssd_config(tmp_path, monkeypatch, ["--size", "160", "--smin", "0.1", "--smax", "0.5", "--width",
                                                      "0.125", "--batch-norm", "--no-crop-sampling",
                                                      "--no-expansion", "--no-distortion"])
    assert config.name == "ssd160_smin0.1_w0.125_bn_nocrop_noexpand_nodistort"
    assert config.framework_options["network"] == {"width": 0.125, "batch_norm": True, "crop_sampling": False,
                                                   "expansion": False, "distortion": False}
    assert ExperimentConfig.from_json(config.to_json()) == config
    assert _train_ssd_config(tmp_path, monkeypatch, ["--width", "0.5"]).name == "ssd300_smin0.2_w0.5"


@pytest.mark.parametrize("args", [["--size", "224"], ["--width", "0"], ["--width", "1.5"]])
def test_train_ssd_refuses_sizes_and_widths_the_renderer_cannot_build(args: list[str]) -> None:
    from click.testing import CliRunner

    from harness.engine import cli as engine_cli

    done = CliRunner().invoke(engine_cli.train, ["ssd", *args])
    assert done.exit_code == 2 and ("--size" in done.output or "--width" in done.output)

"""The rendered SSD files against the paper's Caffe itself: weiliu89 `ssd` at the pinned commit.

The pinned source tree (scripts/fetch_source.sh, no build needed) gives the real caffe.proto — every
rendered file must parse strictly with it — and examples/ssd/ssd_pascal.py, whose train-time
augmentation (distort_param, expand_param, batch_sampler) the SSD300 train net must carry exactly.
"""
from __future__ import annotations

import ast
import shutil
from pathlib import Path

import pytest

from harness.render.dialect import dialect_from_proto_text, ssd_augmentation_in
from harness.render.prototxt import first, parse_prototxt
from harness.render.ssd import NetVariant, render_ssd
from harness.render.verify import parse_with_caffe_proto


@pytest.fixture(scope="module")
def proto(weiliu89_source: Path) -> Path:
    from conftest import _missing_framework

    if shutil.which("protoc") is None:
        _missing_framework("protoc not installed (apt-get install protobuf-compiler; scripts/install_caffe.sh does)")
    return weiliu89_source / "src/caffe/proto/caffe.proto"


def ssd_pascal_values(tree: Path) -> dict:
    """``batch_sampler`` and train_transform_param's distort/expand dicts, read from ssd_pascal.py's source."""
    module = ast.parse((tree / "examples/ssd/ssd_pascal.py").read_text())
    found = {}
    for node in module.body:
        if not (isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)):
            continue
        name = node.targets[0].id
        if name == "batch_sampler":
            found["batch_sampler"] = ast.literal_eval(node.value)
        elif name == "train_transform_param":
            for key, value in zip(node.value.keys, node.value.values):
                if key.value in ("distort_param", "expand_param"):
                    found[key.value] = ast.literal_eval(value)
    assert set(found) == {"batch_sampler", "distort_param", "expand_param"}, found.keys()
    return found


def flat(message: dict) -> dict:
    """parse_prototxt's ``{field: [value]}`` as ``{field: value}`` (one level of nesting flattened too)."""
    return {k: flat(v[0]) if isinstance(v[0], dict) else v[0] for k, v in message.items()}


@pytest.mark.parametrize("size, smin", [(300, 0.2), (300, 0.1), (512, 0.2)])
def test_weiliu89_dialect_parses_with_the_real_caffe_proto(tmp_path, proto, size, smin):
    files = render_ssd(tmp_path / "r", size=size, smin=smin, dialect="weiliu89")
    parse_with_caffe_proto(list(files.values()), proto, tmp_path / "pb")
    assert "show_per_class_result: true" in files["solver"].read_text()


def test_ssd300_train_net_augments_exactly_as_ssd_pascal(tmp_path, weiliu89_source):
    """Golden test: distort_param, expand_param and the 7 batch_samplers, value for value."""
    expected = ssd_pascal_values(weiliu89_source)
    files = render_ssd(tmp_path / "r", size=300, dialect="weiliu89")
    net = parse_prototxt(files["train"])
    data = [layer for layer in net["layer"] if first(layer, "type") == "AnnotatedData"]
    assert len(data) == 1
    transform = data[0]["transform_param"][0]
    assert flat({"d": transform["distort_param"]})["d"] == pytest.approx(expected["distort_param"])
    assert flat({"e": transform["expand_param"]})["e"] == pytest.approx(expected["expand_param"])
    samplers = [flat(s) for s in data[0]["annotated_data_param"][0]["batch_sampler"]]
    want = [{k: v for k, v in s.items() if v != {}} for s in expected["batch_sampler"]]   # `sampler: {}` = defaults
    assert [{k: v for k, v in s.items() if v != {}} for s in samplers] == want
    test_transform = parse_prototxt(files["test"])["layer"][0]["transform_param"][0]
    assert "distort_param" not in test_transform and "expand_param" not in test_transform


def test_brocolli_dialect_is_rejected_by_the_real_proto(tmp_path, proto):
    """The strict parse can fail: brocolli's old_resize_param is no weiliu89 field."""
    files = render_ssd(tmp_path / "r", dialect="brocolli")
    with pytest.raises(ValueError, match="old_resize_param"):
        parse_with_caffe_proto([files["train"]], proto, tmp_path / "pb")


def test_auto_dialect_reads_weiliu89_from_the_real_proto(proto):
    assert dialect_from_proto_text(proto.read_text(), str(proto)).dialect == "weiliu89"


def test_augmentation_reader_sees_only_real_fields(tmp_path):
    """The brocolli train net mentions distort_param in a comment: that must not count as on."""
    weiliu89 = render_ssd(tmp_path / "w", dialect="weiliu89")["train"]
    brocolli = render_ssd(tmp_path / "b", dialect="brocolli")["train"]
    assert "distort_param" in brocolli.read_text()
    crops = "random-crop batch_sampler"
    assert ssd_augmentation_in(weiliu89) == {"distort_param": True, "expand_param": True, crops: True}
    assert ssd_augmentation_in(brocolli) == {"distort_param": False, "expand_param": False, crops: True}
    compact = render_ssd(tmp_path / "c", size=160, dialect="weiliu89",
                         variant=NetVariant(width=0.125, batch_norm=True, crop_sampling=False, expansion=False))["train"]
    assert ssd_augmentation_in(compact) == {"distort_param": True, "expand_param": False, crops: False}


def test_augmentation_unknown_without_a_data_transform(tmp_path):
    net = tmp_path / "train.prototxt"
    net.write_text('name: "stub"\nlayer { name: "data" }\n')
    assert ssd_augmentation_in(net) == {}

"""The paper's Caffe dialect (weiliu89 `ssd`) against the in-project schema of weiliu89's caffe.proto.

Runs everywhere (no Caffe, no protoc): the GPU image's Caffe is weiliu89's, which these machines
cannot build, so this is what keeps the files the image trains on parseable.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness.render.dialect import candidate_proto_files, ssd_augmentation_in
from harness.render.ssd import render_ssd
from harness.render.weiliu89_schema import (
    WEILIU89_ONLY, WEILIU89_ONLY_MESSAGES, parse_with_weiliu89_schema, schema_fields,
)

# weiliu89/caffe examples/ssd/ssd_pascal.py: train_transform_param's distort_param and expand_param.
SSD_PASCAL_DISTORT = {"brightness_prob": 0.5, "brightness_delta": 32, "contrast_prob": 0.5,
                      "contrast_lower": 0.5, "contrast_upper": 1.5, "hue_prob": 0.5, "hue_delta": 18,
                      "saturation_prob": 0.5, "saturation_lower": 0.5, "saturation_upper": 1.5,
                      "random_order_prob": 0.0}
SSD_PASCAL_EXPAND = {"prob": 0.5, "max_expand_ratio": 4.0}


@pytest.mark.parametrize("size, smin", [(300, 0.2), (300, 0.1), (512, 0.2)])
def test_weiliu89_dialect_parses_with_the_schema(tmp_path, size, smin):
    files = render_ssd(tmp_path / "r", size=size, smin=smin, dialect="weiliu89")
    parsed = parse_with_weiliu89_schema(files.values())
    assert set(parsed) == {"train.prototxt", "test.prototxt", "deploy.prototxt", "solver.prototxt",
                           "labelmap.prototxt"}
    assert parsed["solver.prototxt"].show_per_class_result is True


def test_train_net_augments_exactly_as_ssd_pascal(tmp_path):
    files = render_ssd(tmp_path / "r", dialect="weiliu89")
    net = parse_with_weiliu89_schema([files["train"]])["train.prototxt"]
    data = [layer for layer in net.layer if layer.type == "AnnotatedData"]
    assert len(data) == 1
    transform = data[0].transform_param
    distort = {field.name: value for field, value in transform.distort_param.ListFields()}
    expand = {field.name: value for field, value in transform.expand_param.ListFields()}
    assert distort == pytest.approx(SSD_PASCAL_DISTORT) and set(distort) == set(SSD_PASCAL_DISTORT)
    assert expand == pytest.approx(SSD_PASCAL_EXPAND) and set(expand) == set(SSD_PASCAL_EXPAND)
    assert transform.resize_param.height == transform.resize_param.width == 300
    assert len(transform.resize_param.interp_mode) == 5          # LINEAR AREA NEAREST CUBIC LANCZOS4
    test_net = parse_with_weiliu89_schema([files["test"]])["test.prototxt"]
    test_transform = test_net.layer[0].transform_param
    assert not test_transform.HasField("distort_param") and not test_transform.HasField("expand_param")


def test_brocolli_dialect_is_rejected_by_the_weiliu89_schema(tmp_path):
    files = render_ssd(tmp_path / "r", dialect="brocolli")
    with pytest.raises(ValueError, match="old_resize_param"):
        parse_with_weiliu89_schema(files.values())


def test_unknown_enum_values_and_fields_fail(tmp_path):
    files = render_ssd(tmp_path / "r", dialect="weiliu89")
    train = files["train"]
    train.write_text(train.read_text().replace("LANCZOS4", "LANCZOS5", 1))
    with pytest.raises(ValueError, match="LANCZOS5"):
        parse_with_weiliu89_schema([train])
    solver = files["solver"]
    solver.write_text(solver.read_text() + "plateau_patience: 3\n")
    with pytest.raises(ValueError, match="plateau_patience"):
        parse_with_weiliu89_schema([solver])


def test_augmentation_reader_sees_only_real_fields(tmp_path):
    """The brocolli train net mentions distort_param in a comment: that must not count as on."""
    weiliu89 = render_ssd(tmp_path / "w", dialect="weiliu89")["train"]
    brocolli = render_ssd(tmp_path / "b", dialect="brocolli")["train"]
    assert "distort_param" in brocolli.read_text()
    assert ssd_augmentation_in(weiliu89) == {"distort_param": True, "expand_param": True}
    assert ssd_augmentation_in(brocolli) == {"distort_param": False, "expand_param": False}


def _proto_text_from_schema() -> str:
    """A caffe.proto-shaped text of the schema: what the image's $HARNESS_CAFFE_ROOT proto looks like to auto."""
    lines = ['syntax = "proto2";', "package caffe;"]
    for message, fields in schema_fields().items():
        lines.append(f"message {message} {{")
        lines += [f"  {'repeated' if rep else 'optional'} {kind} {name} = {number};"
                  for name, (number, kind, rep) in fields.items()]
        lines.append("}")
    return "\n".join(lines) + "\n"


def test_auto_picks_weiliu89_for_a_weiliu89_caffe_root(tmp_path, monkeypatch):
    root = tmp_path / "caffe-weiliu89"
    proto = root / "src/caffe/proto/caffe.proto"
    proto.parent.mkdir(parents=True)
    proto.write_text(_proto_text_from_schema())
    monkeypatch.setenv("HARNESS_CAFFE_ROOT", str(root))
    monkeypatch.setattr("harness.render.dialect._from_caffe_pb2", lambda: None)   # no pycaffe here
    files = render_ssd(tmp_path / "r", dialect="auto")
    assert "caffe dialect weiliu89" in files["train"].read_text()
    parse_with_weiliu89_schema(files.values())


def _proto_fields(proto_text: str) -> dict[str, dict[str, tuple[int, str, bool]]]:
    """message -> field -> (number, type, repeated) read from a caffe.proto (top-level and nested)."""
    text = re.sub(r"//[^\n]*", "", proto_text)
    found: dict[str, dict] = {}
    for match in re.finditer(r"\bmessage\s+(\w+)\s*\{", text):
        depth, i = 1, match.end()
        while depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        body = re.sub(r"\b(message|enum)\s+\w+\s*\{[^{}]*\}", "", text[match.end():i - 1])
        found[match.group(1)] = {name: (int(number), kind.rsplit(".", 1)[-1], label == "repeated")
                                 for label, kind, name, number in
                                 re.findall(r"(optional|repeated|required)\s+([\w.]+)\s+(\w+)\s*=\s*(\d+)", body)}
    return found


def test_shared_fields_match_the_brocolli_proto_numbers():
    """Every field both forks have: same number, type and label as brocolli's real caffe.proto."""
    from conftest import _missing_framework

    protos = [p for p in candidate_proto_files() if p.is_file() and "old_resize_param" in p.read_text(errors="replace")]
    if not protos:
        _missing_framework("no brocolli caffe.proto (scripts/install_caffe.sh unpacks it into the cache)")
    real = _proto_fields(protos[0].read_text(errors="replace"))
    checked = 0
    for message, fields in schema_fields().items():
        if message in WEILIU89_ONLY_MESSAGES:
            continue
        assert message in real, f"{message} not in {protos[0]}"
        for name, spec in fields.items():
            if (message, name) in WEILIU89_ONLY:
                assert name not in real[message], f"{message}.{name} is in brocolli too: not weiliu89-only"
                continue
            assert real[message].get(name) == spec, f"{message}.{name}: schema {spec}, brocolli {real[message].get(name)}"
            checked += 1
    assert checked > 150          # the table really was compared, not skipped field by field


def test_augmentation_unknown_without_a_data_transform(tmp_path):
    net = tmp_path / "train.prototxt"
    net.write_text('name: "stub"\nlayer { name: "data" }\n')
    assert ssd_augmentation_in(net) == {}

"""The runtime-declared SSD messages match caffe.proto, and real Caffe reads our LMDB records."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from google.protobuf import text_format

from harness.data import caffe_lmdb, caffe_proto
from harness.data.convert import convert_dataset
from harness.labels import LabelMap

from test_data_voc import make_sample

# (message, field, number, label: 1 optional / 3 repeated) as in weiliu89's SSD caffe.proto.
SSD_FIELDS = {
    ("Datum", "channels", 1, 1), ("Datum", "height", 2, 1), ("Datum", "width", 3, 1),
    ("Datum", "data", 4, 1), ("Datum", "label", 5, 1), ("Datum", "float_data", 6, 3),
    ("Datum", "encoded", 7, 1),
    ("LabelMapItem", "name", 1, 1), ("LabelMapItem", "label", 2, 1), ("LabelMapItem", "display_name", 3, 1),
    ("LabelMap", "item", 1, 3),
    ("NormalizedBBox", "xmin", 1, 1), ("NormalizedBBox", "ymin", 2, 1), ("NormalizedBBox", "xmax", 3, 1),
    ("NormalizedBBox", "ymax", 4, 1), ("NormalizedBBox", "label", 5, 1), ("NormalizedBBox", "difficult", 6, 1),
    ("NormalizedBBox", "score", 7, 1), ("NormalizedBBox", "size", 8, 1),
    ("Annotation", "instance_id", 1, 1), ("Annotation", "bbox", 2, 1),
    ("AnnotationGroup", "group_label", 1, 1), ("AnnotationGroup", "annotation", 2, 3),
    ("AnnotatedDatum", "datum", 1, 1), ("AnnotatedDatum", "type", 2, 1), ("AnnotatedDatum", "annotation_group", 3, 3),
}
MESSAGES = sorted({m for m, *_ in SSD_FIELDS})


def _declared_fields(cls) -> set:
    return {(cls.DESCRIPTOR.name, f.name, f.number, 3 if f.is_repeated else 1) for f in cls.DESCRIPTOR.fields}


def test_declared_messages_have_ssds_field_numbers():
    declared = set().union(*(_declared_fields(getattr(caffe_proto, m)) for m in MESSAGES))
    assert declared == SSD_FIELDS
    assert caffe_proto.AnnotatedDatum.DESCRIPTOR.full_name == "caffe.AnnotatedDatum"
    assert caffe_proto.AnnotatedDatum.AnnotationType.Value("BBOX") == caffe_proto.BBOX == 0


def test_labelmap_prototxt_is_valid_protobuf_text():
    labelmap = LabelMap.paper()
    parsed = text_format.Parse(caffe_lmdb.labelmap_prototxt(labelmap), caffe_proto.LabelMap())
    assert [(i.label, i.display_name) for i in parsed.item][:2] == [(0, "background"), (1, "Blast")]
    assert [i.name for i in parsed.item[1:]] == list(labelmap.names)


def test_groups_follow_first_appearance_and_type_is_always_present(tmp_path):
    from harness.data.annotations import Box, ImageAnnotation

    image = ImageAnnotation("x", tmp_path / "x.jpg", 100, 50, [
        Box("dog", 1, 1, 50, 25), Box("cat", 10, 5, 100, 50, difficult=True), Box("dog", 2, 2, 3, 3)])
    record = caffe_lmdb.annotated_datum(image, b"\xff\xd8", 3, LabelMap.from_names(["cat", "dog"]))
    parsed = caffe_proto.AnnotatedDatum.FromString(record.SerializeToString())
    assert parsed.HasField("type") and [g.group_label for g in parsed.annotation_group] == [2, 1]
    assert [a.instance_id for a in parsed.annotation_group[0].annotation] == [0, 1]
    cat = parsed.annotation_group[1].annotation[0].bbox
    assert [cat.xmin, cat.ymin, cat.xmax, cat.ymax] == pytest.approx([0.1, 0.1, 1.0, 1.0]) and cat.difficult


# ----------------------------------------------------------------------------- against a real Caffe

def _compile_caffe_pb2(proto: Path, out: Path):
    protoc = shutil.which("protoc")
    if protoc is None:
        pytest.skip("protoc not installed")
    subprocess.run([protoc, f"-I{proto.parent}", f"--python_out={out}", str(proto)], check=True)
    return out


@pytest.fixture
def caffe_proto_file() -> Path:
    """$HARNESS_CAFFE_PROTO, else the caffe.proto of the (possibly still building) cached Caffe."""
    import os

    from harness.frameworks.caffe.install import default_build_root

    explicit = os.environ.get("HARNESS_CAFFE_PROTO")
    candidates = [Path(explicit)] if explicit else []
    candidates.append(default_build_root() / "src/caffe/proto/caffe.proto")
    for path in candidates:
        if path.is_file():
            return path
    pytest.skip(f"no caffe.proto found (looked at {[str(p) for p in candidates]}; set HARNESS_CAFFE_PROTO)")


def test_matches_the_installed_caffe_proto(caffe_proto_file, tmp_path):
    """Field-by-field comparison with the caffe.proto of the Caffe build (compiled by protoc)."""
    out = _compile_caffe_pb2(caffe_proto_file, tmp_path)
    code = textwrap.dedent(f"""
        import json, sys
        sys.path.insert(0, {str(out)!r})
        try:
            import caffe_pb2
        except Exception as exc:
            print(exc, file=sys.stderr)
            sys.exit(3)
        fields = [(m, f.name, f.number, 3 if f.is_repeated else 1) for m in {MESSAGES!r}
                  for f in getattr(caffe_pb2, m).DESCRIPTOR.fields]
        print(json.dumps(fields))
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if done.returncode == 3:
        pytest.skip(f"protoc output not importable with this protobuf: {done.stderr[-300:]}")
    assert done.returncode == 0, done.stderr[-2000:]
    assert {tuple(f) for f in json.loads(done.stdout)} == SSD_FIELDS


@pytest.mark.caffe
def test_caffe_annotated_data_layer_reads_our_lmdb(caffe_install, tmp_path):
    """Caffe's own AnnotatedData layer reads a converted LMDB and yields our boxes and labels."""
    voc = tmp_path / "voc"
    for i in range(4):
        make_sample(voc, f"im{i}", [("cat", 2, 3, 30, 40), ("dog", 10, 10, 60, 45), ("cat", 5, 5, 9, 9)])
    result = convert_dataset(voc, tmp_path / "out", workers=1, progress=False)
    lmdb_dir, labelmap_file = result.out_dir / "caffe" / "test_lmdb", result.out_dir / "caffe" / "labelmap.prototxt"
    net = tmp_path / "net.prototxt"
    net.write_text(textwrap.dedent(f"""
        layer {{ name: "data" type: "AnnotatedData" top: "data" top: "label"
          include {{ phase: TEST }}
          data_param {{ source: "{lmdb_dir}" batch_size: 1 backend: LMDB }}
          annotated_data_param {{ label_map_file: "{labelmap_file}" }} }}
    """))
    code = textwrap.dedent(f"""
        import json, caffe
        caffe.set_mode_cpu()
        net = caffe.Net({str(net)!r}, caffe.TEST)
        net.forward()
        print("HARNESS-JSON " + json.dumps({{"label": net.blobs["label"].data.reshape(-1, 8).tolist(),
                                              "data": list(net.blobs["data"].data.shape)}}))
    """)
    env = dict(__import__("os").environ, **caffe_install.env(quiet=True))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    payload = json.loads([l for l in done.stdout.splitlines() if l.startswith("HARNESS-JSON ")][0][13:])
    assert payload["data"] == [1, 3, 48, 64]
    rows = sorted(tuple(round(v, 4) for v in row) for row in payload["label"])
    # [item_id, group_label, instance_id, xmin, ymin, xmax, ymax, difficult]
    want_boxes = {
        (1, 0): (2, 3, 30, 40), (1, 1): (5, 5, 9, 9), (2, 0): (10, 10, 60, 45),
    }
    assert len(rows) == 3
    for item, group, instance, *coords, difficult in rows:
        x0, y0, x1, y1 = want_boxes[(int(group), int(instance))]
        assert coords == pytest.approx([x0 / 64, y0 / 48, x1 / 64, y1 / 48], abs=1e-4)
        assert item == 0 and difficult == 0

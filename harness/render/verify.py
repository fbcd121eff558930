"""Run rendered nets in OpenCV DNN with random weights: proof that a file is a working network.

OpenCV reads Caffe prototxts and Darknet cfgs natively (opencv-python-headless < 5), so the
structure check needs neither Caffe nor Darknet: the default-box count comes out of the real
PriorBox layers and the YOLO box count out of the real [yolo] layers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Union

import numpy as np

from harness.render.prototxt import first, parse_prototxt

PathLike = Union[str, Path]
_CHANNEL_PRESERVING = {"ReLU", "Pooling", "Normalize", "Dropout", "BatchNorm", "Scale"}


def _normalize_channels(deploy: Path) -> dict[str, int]:
    """Channels of every Normalize layer (its per-channel scale blob)."""
    return {name: shape for name, shape in _walk(deploy)[1].items()}


def _conv_shapes(deploy: Path) -> dict[str, tuple[int, int, int, int]]:
    """Weight shape (out, in, k, k) of every Convolution, by following blob channels from the input."""
    return _walk(deploy)[0]


def _walk(deploy: Path) -> tuple[dict[str, tuple[int, int, int, int]], dict[str, int]]:
    net = parse_prototxt(Path(deploy))
    norms: dict[str, int] = {}
    channels: dict[str, int] = {}
    shapes = {}
    for layer in net.get("layer", []):
        kind, tops, bottoms = first(layer, "type"), layer.get("top", []), layer.get("bottom", [])
        if kind == "Input":
            channels[tops[0]] = int(first(layer, "input_param.shape")["dim"][1])
        elif kind == "Convolution":
            param = first(layer, "convolution_param")
            out, k = int(param["num_output"][0]), int(param["kernel_size"][0])
            shapes[first(layer, "name")] = (out, channels[bottoms[0]], k, k)
            channels[tops[0]] = out
        elif kind in _CHANNEL_PRESERVING and bottoms:
            channels[tops[0]] = channels[bottoms[0]]
            if kind == "Normalize":
                norms[first(layer, "name")] = channels[bottoms[0]]
    return shapes, norms


def _weights_message_class():
    """A 4-message subset of caffe.proto (field numbers as upstream) to write .caffemodel files.

    Only ``NetParameter.layer``, ``LayerParameter.name/type/blobs`` and ``BlobProto.shape/data`` are
    declared; that is all a weights file needs, and it keeps this check free of a Caffe build.
    """
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    F = descriptor_pb2.FieldDescriptorProto
    file = descriptor_pb2.FileDescriptorProto(name="harness_caffe_weights.proto", package="harness_caffe_weights")

    def message(name, fields):
        msg = file.message_type.add(name=name)
        for field_name, number, kind, label, type_name, packed in fields:
            field = msg.field.add(name=field_name, number=number, type=kind, label=label)
            if type_name:
                field.type_name = f".harness_caffe_weights.{type_name}"
            if packed:
                field.options.packed = True

    message("BlobShape", [("dim", 1, F.TYPE_INT64, F.LABEL_REPEATED, None, True)])
    message(
        "BlobProto",
        [
            ("shape", 7, F.TYPE_MESSAGE, F.LABEL_OPTIONAL, "BlobShape", False),
            ("data", 5, F.TYPE_FLOAT, F.LABEL_REPEATED, None, True),
        ],
    )
    message(
        "LayerParameter",
        [
            ("name", 1, F.TYPE_STRING, F.LABEL_OPTIONAL, None, False),
            ("type", 2, F.TYPE_STRING, F.LABEL_OPTIONAL, None, False),
            ("blobs", 7, F.TYPE_MESSAGE, F.LABEL_REPEATED, "BlobProto", False),
        ],
    )
    message("NetParameter", [("layer", 100, F.TYPE_MESSAGE, F.LABEL_REPEATED, "LayerParameter", False)])
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("harness_caffe_weights.NetParameter"))


def random_caffemodel(deploy: PathLike, seed: int = 0) -> bytes:
    """Serialized .caffemodel with random convolution weights and Normalize scales of 20."""
    deploy = Path(deploy)
    rng = np.random.default_rng(seed)
    net = _weights_message_class()()
    for name, shape in _conv_shapes(deploy).items():
        layer = net.layer.add(name=name, type="Convolution")
        fan_in = shape[1] * shape[2] * shape[3]
        _add_blob(layer, rng.standard_normal(shape, dtype=np.float32) * np.float32(1 / np.sqrt(fan_in)))
        _add_blob(layer, np.zeros(shape[0]))
    for name, channels in _normalize_channels(deploy).items():
        _add_blob(net.layer.add(name=name, type="Normalize"), np.full(channels, 20.0))
    return net.SerializeToString()


def _add_blob(layer, values: np.ndarray) -> None:
    blob = layer.blobs.add()
    blob.shape.dim.extend(values.shape)
    # packed ``repeated float data = 5``: appending the wire bytes is ~100x faster than extend()
    raw = values.astype("<f4").tobytes()
    blob.MergeFromString(b"\x2a" + _varint(len(raw)) + raw)


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def caffe_net_with_random_weights(deploy: PathLike, seed: int = 0):
    """``cv2.dnn`` net from a deploy prototxt with random weights (no trained model needed)."""
    import cv2

    weights = np.frombuffer(random_caffemodel(deploy, seed), np.uint8)
    proto = np.frombuffer(Path(deploy).read_bytes(), np.uint8)
    return cv2.dnn.readNetFromCaffe(proto, weights)


def run_ssd_deploy(deploy: PathLike, size: int, seed: int = 0) -> dict[str, np.ndarray]:
    """One forward pass of a deploy net with random weights: ``mbox_priorbox`` and ``detection_out``."""
    net = caffe_net_with_random_weights(deploy, seed)
    image = np.random.default_rng(seed).random((1, 3, size, size), dtype=np.float32) * 255
    net.setInput(image)
    priors, detections = net.forward(["mbox_priorbox", "detection_out"])
    return {"mbox_priorbox": priors, "detection_out": detections}


def ssd_prior_count(deploy: PathLike, size: int) -> int:
    """Default boxes the rendered deploy net generates (``mbox_priorbox`` holds 4 coords x 2 rows)."""
    return int(run_ssd_deploy(deploy, size)["mbox_priorbox"].shape[-1] // 4)


def yolo_output_rows(cfg: PathLike, size: int) -> list[int]:
    """Rows (candidate boxes) of each [yolo] output of a rendered cfg run with random weights."""
    import cv2

    from harness.frameworks.darknet.cfg import random_weights_bytes

    cfg_bytes = np.frombuffer(Path(cfg).read_bytes(), np.uint8)
    weights = np.frombuffer(random_weights_bytes(cfg), np.uint8)
    net = cv2.dnn.readNetFromDarknet(cfg_bytes, weights)
    blob = np.random.default_rng(0).random((1, 3, size, size), dtype=np.float32)
    net.setInput(blob)
    outputs = net.forward(net.getUnconnectedOutLayersNames())
    return [int(out.shape[0]) for out in outputs]


_STRICT_PARSE_SCRIPT = r"""
import sys
from google.protobuf import text_format
sys.path.insert(0, sys.argv[1])
import caffe_pb2
failures = []
for path in sys.argv[2:]:
    message = caffe_pb2.SolverParameter() if path.endswith("solver.prototxt") else (
        caffe_pb2.LabelMap() if path.endswith("labelmap.prototxt") else caffe_pb2.NetParameter())
    try:
        text_format.Parse(open(path).read(), message)
    except text_format.ParseError as exc:
        failures.append(f"{path}: {exc}")
print("\n".join(failures))
sys.exit(1 if failures else 0)
"""


def parse_with_caffe_proto(prototxts: list[PathLike], caffe_proto: PathLike, work_dir: PathLike) -> None:
    """Parse rendered files with the real caffe.proto schema (strict: unknown fields fail).

    Compiles ``caffe_proto`` with ``protoc`` into ``work_dir`` and parses in a child process, so the
    generated ``caffe`` package cannot clash with a pycaffe ``caffe_pb2`` imported in this process.
    Raises ``ValueError`` listing every file that does not parse.
    """
    import shutil
    import subprocess
    import sys

    protoc = shutil.which("protoc")
    if protoc is None:
        raise FileNotFoundError("protoc not found (apt-get install protobuf-compiler)")
    proto = Path(caffe_proto)
    out = Path(work_dir)
    out.mkdir(parents=True, exist_ok=True)
    shutil.copy(proto, out / "caffe.proto")
    subprocess.run(
        [protoc, f"--proto_path={out}", f"--python_out={out}", str(out / "caffe.proto")],
        check=True,
        capture_output=True,
        text=True,
    )
    result = subprocess.run(
        [sys.executable, "-c", _STRICT_PARSE_SCRIPT, str(out), *map(str, prototxts)], capture_output=True, text=True
    )
    if result.returncode:
        raise ValueError(f"rendered files do not parse with {proto}:\n{result.stdout}{result.stderr}")

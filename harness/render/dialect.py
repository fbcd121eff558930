"""Which caffe.proto the rendered prototxts must parse under.

The paper used weiliu89's SSD Caffe, the one scripts/install_caffe.sh builds. Other SSD forks differ:
brocolli-caffe (a PyPI fork the harness built before) renamed ``resize_param`` to
``old_resize_param`` and lacks distort/expand and several other SSD fields (docs/rendering.md lists
them); a stock ssd_pascal prototxt does not parse there. The renderer writes the installed dialect.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

DIALECTS = ("weiliu89", "brocolli")


@dataclass(frozen=True)
class DialectChoice:
    dialect: str
    reason: str  # human-readable: where the decision came from


def dialect_from_proto_text(text: str, origin: str) -> DialectChoice:
    """Classify a caffe.proto (or generated caffe_pb2 source) by the SSD fields it defines."""
    if "AnnotatedDataParameter" not in text:
        raise ValueError(
            f"{origin}: this Caffe has no SSD layers (no AnnotatedDataParameter); "
            "build weiliu89's SSD Caffe (bash scripts/install_caffe.sh)"
        )
    if "old_resize_param" in text:
        return DialectChoice("brocolli", f"brocolli (old_resize_param) from {origin}")
    if "resize_param" in text and "distort_param" in text:
        return DialectChoice("weiliu89", f"weiliu89 (resize_param, distort_param) from {origin}")
    raise ValueError(
        f"{origin}: unrecognised SSD caffe.proto (neither resize_param+distort_param nor old_resize_param)"
    )


def _from_caffe_pb2() -> Optional[DialectChoice]:
    try:
        caffe_pb2 = importlib.import_module("caffe.proto.caffe_pb2")
    except Exception:  # no pycaffe, or a pycaffe that fails to import: try the proto files next
        return None
    fields = {f.name for f in caffe_pb2.TransformationParameter.DESCRIPTOR.fields}
    names = " ".join(fields)
    has_ssd = hasattr(caffe_pb2, "AnnotatedDataParameter")
    text = ("AnnotatedDataParameter " if has_ssd else "") + names
    return dialect_from_proto_text(text, f"installed caffe_pb2 ({caffe_pb2.__file__})")


def candidate_proto_files() -> list[Path]:
    """caffe.proto files the auto detection looks at, in order."""
    candidates = []
    root = os.environ.get("HARNESS_CAFFE_ROOT")
    if root:
        candidates.append(Path(root) / "src/caffe/proto/caffe.proto")
    from harness.frameworks.caffe.install import default_build_root

    candidates.append(default_build_root() / "src/caffe/proto/caffe.proto")
    return candidates


def detect_dialect(requested: str = "auto") -> DialectChoice:
    """Resolve ``weiliu89`` / ``brocolli`` / ``auto`` to a dialect and say why."""
    if requested in DIALECTS:
        return DialectChoice(requested, f"{requested} (requested)")
    if requested != "auto":
        raise ValueError(f"unknown Caffe dialect {requested!r}; choose one of {', '.join(DIALECTS)} or auto")
    found = _from_caffe_pb2()
    if found:
        return found
    for proto in candidate_proto_files():
        if proto.is_file():
            return dialect_from_proto_text(proto.read_text(errors="replace"), str(proto))
    return DialectChoice(
        "weiliu89",
        "weiliu89 (default: no Caffe found - no importable caffe_pb2, "
        "no caffe.proto under $HARNESS_CAFFE_ROOT or the harness cache)",
    )


# SSD's data augmentation beyond mirroring (examples/ssd/ssd_pascal.py): photometric distortion,
# zoom-out expansion (TransformationParameter fields only weiliu89's Caffe has) and random crops
# (batch_samplers beyond the whole-image one).
SSD_AUGMENTATION_FIELDS = ("distort_param", "expand_param")
RANDOM_CROPS = "random-crop batch_sampler"


def dialect_has_ssd_augmentation(dialect: str) -> bool:
    """Whether a Caffe of this dialect can apply SSD's distortion and expansion at all."""
    return dialect == "weiliu89"


def ssd_augmentation_in(train_prototxt: Path) -> dict[str, bool]:
    """Which of SSD's augmentations the rendered training net's data layers actually request.

    Empty when the net has no transform_param at all: then nothing can be said either way.
    """
    from harness.render.prototxt import parse_prototxt

    net = parse_prototxt(Path(train_prototxt))
    layers = net.get("layer", [])
    transforms = [t for layer in layers for t in layer.get("transform_param", [])]
    if not transforms:
        return {}
    found = {name: any(bool(t.get(name)) for t in transforms) for name in SSD_AUGMENTATION_FIELDS}
    samplers = [len(p.get("batch_sampler", [])) for layer in layers for p in layer.get("annotated_data_param", [])]
    found[RANDOM_CROPS] = any(n > 1 for n in samplers)
    return found

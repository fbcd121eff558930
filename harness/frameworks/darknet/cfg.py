"""Darknet .cfg files: the one parser, the one editor, the .weights layout and the one random-weights writer.

The grammar is Darknet's own (``read_cfg`` in parser.c): every space and tab in a line is deleted
(even inside values), blank lines and lines starting with ``#`` or ``;`` are skipped, ``[name]``
opens a section, and every other line must be ``key=value`` inside a section. Everything in the
harness that reads a cfg (training checks, libdarknet, OpenCV, render verification) goes through
:func:`read_cfg_sections`; everything that writes an edited copy goes through :func:`write_cfg_copy`.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Union

PathLike = Union[str, Path]
NET_SECTIONS = ("net", "network")


class DarknetInputError(ValueError):
    """Inputs Darknet would mishandle silently; the message names the file and the problem."""


@dataclass
class CfgSection:
    """One ``[name]`` section: its options in file order and the line its header is on (1-based)."""

    name: str
    options: dict[str, str]
    line: int

    def __iter__(self):  # ``for name, options in sections``
        return iter((self.name, self.options))


def _classify(line: str) -> tuple[str, str, str]:
    """(kind, key-or-section, value) of one line: kind is ``skip``, ``section``, ``option`` or ``bad``."""
    stripped = line.replace(" ", "").replace("\t", "").strip()
    if not stripped or stripped[0] in "#;":
        return "skip", "", ""
    if stripped.startswith("["):
        return "section", stripped.strip("[]"), ""
    if "=" in stripped:
        key, value = stripped.split("=", 1)
        return "option", key, value
    return "bad", "", ""


def parse_cfg(text: str, source: PathLike = "<cfg>") -> list[CfgSection]:
    """Sections in file order; raises :class:`DarknetInputError` naming ``source:line`` on a bad line."""
    sections: list[CfgSection] = []
    for number, line in enumerate(text.splitlines(), 1):
        kind, key, value = _classify(line)
        if kind == "skip":
            continue
        if kind == "section":
            sections.append(CfgSection(key, {}, number))
        elif kind == "option" and sections:
            sections[-1].options[key] = value
        else:
            raise DarknetInputError(f"{source}:{number}: cannot parse {line!r}")
    if not sections or sections[0].name not in NET_SECTIONS:
        raise DarknetInputError(f"{source}: first section must be [net]")
    return sections


def read_cfg_sections(cfg_path: PathLike) -> list[CfgSection]:
    """The sections of a cfg file (see :func:`parse_cfg`)."""
    cfg_path = Path(cfg_path)
    if not cfg_path.is_file():
        raise DarknetInputError(f"{cfg_path}: cfg file not found")
    return parse_cfg(cfg_path.read_text(), cfg_path)


def edit_cfg_text(text: str, edits: Mapping[str, Mapping[str, str]], source: PathLike = "<cfg>") -> str:
    """``text`` with, in every section named in ``edits`` (``"net"`` also matches ``[network]``), each
    given key set to its value: existing lines are replaced in place, missing keys are added at the
    end of the section. Every other line (comments included) is kept as it is."""
    parse_cfg(text, source)  # refuse what Darknet could not read
    wanted = {("net" if name in NET_SECTIONS else name): dict(values) for name, values in edits.items()}
    out: list[str] = []
    pending: dict[str, str] = {}

    def close_section() -> None:
        out.extend(f"{key}={value}" for key, value in pending.items())
        pending.clear()

    current: Optional[dict[str, str]] = None
    for line in text.splitlines():
        kind, key, _value = _classify(line)
        if kind == "section":
            close_section()
            current = wanted.get("net" if key in NET_SECTIONS else key)
            pending.update(current or {})
        elif kind == "option" and current is not None and key in current:
            line = f"{key}={current[key]}"
            pending.pop(key, None)
        out.append(line)
    close_section()
    return "\n".join(out) + "\n"


def write_cfg_copy(cfg_path: PathLike, out_dir: Path, edits: Mapping[str, Mapping[str, str]]) -> Path:
    """Edited copy of a cfg (see :func:`edit_cfg_text`) under ``out_dir`` with the *same file name*,
    so the weight files Darknet names after it stay the same."""
    cfg_path = Path(cfg_path)
    if not cfg_path.is_file():
        raise DarknetInputError(f"{cfg_path}: cfg file not found")
    text = edit_cfg_text(cfg_path.read_text(), edits, cfg_path)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / cfg_path.name
    target.write_text(text)
    return target


# --------------------------------------------------------------------------- summary


@dataclass
class CfgSummary:
    """The [net] and output-layer settings that training and checks depend on."""

    batch: int
    subdivisions: int
    max_batches: int
    width: int
    height: int
    classes: int
    yolo_layers: int
    problems: list[str] = field(default_factory=list)
    letter_box: bool = False  # AlexeyAB's [net] letter_box (pjreddie always letterboxes at inference)
    nms_kinds: set = field(default_factory=set)  # AlexeyAB's [yolo] nms_kind values (greedynms default)


def summarize_cfg(cfg_path: PathLike) -> CfgSummary:
    """Batch, input size, classes, and filters/classes consistency of every [yolo] head."""
    sections = read_cfg_sections(cfg_path)
    net = sections[0].options
    summary = CfgSummary(
        batch=int(net.get("batch", 1)),
        subdivisions=int(net.get("subdivisions", 1)),
        max_batches=int(net.get("max_batches", 0)),
        width=int(net.get("width", 0)),
        height=int(net.get("height", 0)),
        classes=0,
        yolo_layers=0,
        letter_box=int(net.get("letter_box", 0)) != 0,
    )
    for index, section in enumerate(sections):
        name, options = section.name, section.options
        if name not in ("yolo", "region"):
            continue
        summary.yolo_layers += 1
        summary.classes = int(options.get("classes", 20))
        summary.nms_kinds.add(options.get("nms_kind", "greedynms"))
        expected = _expected_filters(name, options)
        conv = _previous_conv(sections, index)
        if conv is not None and expected is not None and int(conv.get("filters", 1)) != expected:
            summary.problems.append(
                f"{cfg_path}: [{name}] #{summary.yolo_layers} has classes={summary.classes} so the "
                f"[convolutional] before it needs filters={expected}, not {conv.get('filters')}"
            )
    return summary


def _expected_filters(name: str, options: dict[str, str]) -> Optional[int]:
    classes = int(options.get("classes", 20))
    if name == "yolo":
        anchors_per_head = len(options["mask"].split(",")) if "mask" in options else int(options.get("num", 1))
        return anchors_per_head * (classes + 5)
    return int(options.get("num", 1)) * (classes + int(options.get("coords", 4)) + 1)


def _previous_conv(sections: list[CfgSection], index: int) -> Optional[dict[str, str]]:
    """The layer feeding a detection head; its filters must match the head's classes."""
    if index == 0:
        return None
    previous = sections[index - 1]
    return previous.options if previous.name in ("convolutional", "conv") else None


# --------------------------------------------------------------------------- weights layout, random weights


ConvShape = tuple[int, int, int, bool]  # filters, in_channels, size, batch_normalize
WEIGHTS_HEADER_BYTES = 20  # major, minor, revision (int32 each) and images seen (uint64), as Darknet writes it


def _layer_convs(cfg_path: PathLike) -> list[Optional[ConvShape]]:
    """Per layer (Darknet's layer index), the shape of a [convolutional], None for any other layer."""
    sections = read_cfg_sections(cfg_path)
    channels = [int(sections[0].options.get("channels", 3))]  # input, then one entry per layer
    layers: list[Optional[ConvShape]] = []
    for section in sections[1:]:
        name, options, in_c = section.name, section.options, channels[-1]
        if name in ("convolutional", "conv"):
            filters = int(options["filters"])
            layers.append((filters, in_c, int(options.get("size", 1)), bool(int(options.get("batch_normalize", 0)))))
            channels.append(filters)
            continue
        if name == "route":
            current = len(channels) - 1
            indices = [int(v) for v in options["layers"].split(",")]
            channels.append(sum(channels[1 + (current + i if i < 0 else i)] for i in indices))
        elif name in ("maxpool", "upsample", "yolo", "region", "shortcut", "avgpool", "dropout"):
            channels.append(in_c)
        else:
            raise DarknetInputError(f"{cfg_path}:{section.line}: weights layout: layer type [{name}] not supported")
        layers.append(None)
    return layers


def conv_shapes(cfg_path: PathLike) -> list[ConvShape]:
    """(filters, in_channels, size, batch_normalize) of each [convolutional], in file order."""
    return [shape for shape in _layer_convs(cfg_path) if shape is not None]


def layer_weight_counts(cfg_path: PathLike) -> list[int]:
    """How many floats each layer stores in a .weights file, by layer index (0: a layer without
    weights): biases, [scales, rolling mean, rolling variance,] weights of each convolution."""
    return [
        0 if shape is None else shape[0] * (4 if shape[3] else 1) + shape[0] * shape[1] * shape[2] ** 2
        for shape in _layer_convs(cfg_path)
    ]


def weights_file_bytes(cfg_path: PathLike, layers: Optional[int] = None, header: int = WEIGHTS_HEADER_BYTES) -> int:
    """The size of a .weights file holding layers 0..``layers``-1 (None: all) of ``cfg_path``."""
    return header + 4 * sum(layer_weight_counts(cfg_path)[:layers])


def weights_header_bytes(head: bytes) -> int:
    """The header length of a .weights file from its first 8 bytes, as Darknet's load_weights reads
    it: 20, or 16 before version 0.2 (a 32-bit images-seen count)."""
    major, minor = struct.unpack("<2i", head[:8])
    return WEIGHTS_HEADER_BYTES if major * 10 + minor >= 2 and major < 1000 and minor < 1000 else 16


def random_weights_bytes(cfg_path: PathLike, seed: int = 0) -> bytes:
    """A well-conditioned random Darknet .weights file (version 0.2.0) for a cfg: no training needed.

    He-scaled convolutions with identity batch-norm statistics keep activations O(1), so the
    detection scores spread over (0, 1) instead of saturating as a barely-trained net does.
    Layout per convolution, Darknet's on-disk order: biases, [scales, rolling mean, rolling
    variance,] weights.
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    parts = [struct.pack("<3iQ", 0, 2, 0, 0)]
    for filters, in_c, size, batch_norm in conv_shapes(cfg_path):
        fan_in = in_c * size * size
        weights = rng.normal(0.0, math.sqrt(2.0 / fan_in), filters * fan_in)
        biases = rng.normal(0.0, 0.1, filters)
        if batch_norm:
            blob = np.concatenate([biases, np.ones(filters), np.zeros(filters), np.ones(filters), weights])
        else:
            blob = np.concatenate([biases, weights * 0.5])
        parts.append(blob.astype("<f4").tobytes())
    return b"".join(parts)

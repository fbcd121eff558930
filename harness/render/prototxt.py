"""A small reader for protobuf text format (prototxt), independent of any caffe.proto.

Tests and checks use it to look inside rendered files without a Caffe build: it keeps the structure
(messages, repeated fields, enums, strings) but knows no schema, so it cannot tell an unknown field
from a known one — parse with the real caffe_pb2 for that (docs/rendering.md).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Union

_TOKEN = re.compile(r'\s*(?:(#[^\n]*)|("(?:[^"\\]|\\.)*")|([{}:])|([^\s{}:"#]+))', re.S)


def _tokens(text: str, origin: str) -> list[str]:
    tokens, pos = [], 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            if text[pos:].strip():
                raise ValueError(f"{origin}: cannot parse prototxt near {text[pos : pos + 40]!r}")
            break
        pos = match.end()
        comment, string, punct, word = match.groups()
        if comment is None:
            tokens.append(string or punct or word)
    return tokens


def _scalar(token: str) -> Any:
    if token.startswith('"'):
        return bytes(token[1:-1], "utf-8").decode("unicode_escape")
    if token in ("true", "false"):
        return token == "true"
    try:
        return int(token)
    except ValueError:
        pass
    try:
        return float(token)
    except ValueError:
        return token  # enum value


def _message(tokens: list[str], i: int, origin: str, closing: bool) -> tuple[dict[str, list], int]:
    fields: dict[str, list] = {}
    while i < len(tokens):
        key = tokens[i]
        if key == "}":
            if not closing:
                raise ValueError(f"{origin}: unbalanced '}}'")
            return fields, i + 1
        i += 1
        if i < len(tokens) and tokens[i] == ":":
            i += 1
        if i >= len(tokens):
            raise ValueError(f"{origin}: field {key!r} has no value")
        if tokens[i] == "{":
            value, i = _message(tokens, i + 1, origin, closing=True)
        else:
            value, i = _scalar(tokens[i]), i + 1
        fields.setdefault(key, []).append(value)
    if closing:
        raise ValueError(f"{origin}: missing '}}' at end of file")
    return fields, i


def parse_prototxt(source: Union[str, Path]) -> dict[str, list]:
    """Parse prototxt text (or a file path) into ``{field: [values...]}``, nested for messages."""
    if isinstance(source, Path):
        text, origin = source.read_text(), str(source)
    else:
        text, origin = source, "<prototxt>"
    fields, _ = _message(_tokens(text, origin), 0, origin, closing=False)
    return fields


def first(message: dict[str, list], dotted: str, default: Any = None) -> Any:
    """First value at a dotted path, e.g. ``first(layer, "prior_box_param.min_size")``."""
    node: Any = message
    for part in dotted.split("."):
        values = node.get(part) if isinstance(node, dict) else None
        if not values:
            return default
        node = values[0]
    return node

"""Where the harness finds its templates and keeps its caches.

Templates live at the top of the repository (``prototxt_templates/``, ``cfg_templates/``) so
that framework users can read and edit them as plain Caffe/Darknet files.
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
from collections.abc import Container
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# A non-editable install puts the templates under <prefix>/share (setup.cfg data_files).
_SHARE = Path(sys.prefix) / "share" / "leukonet-harness"
_TEMPLATE_ROOT = PROJECT_ROOT if (PROJECT_ROOT / "prototxt_templates").is_dir() else _SHARE
PROTOTXT_TEMPLATES = Path(os.environ.get("HARNESS_PROTOTXT_TEMPLATES", _TEMPLATE_ROOT / "prototxt_templates"))
CFG_TEMPLATES = Path(os.environ.get("HARNESS_CFG_TEMPLATES", _TEMPLATE_ROOT / "cfg_templates"))
SCRIPTS = PROJECT_ROOT / "scripts"


def cache_dir() -> Path:
    """Heavy builds (Caffe, Darknet) are cached here, keyed by version, outside the checkout."""
    base = os.environ.get("HARNESS_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "leukonet-harness"
    )
    return Path(base)


def pinned_commit(name: str) -> str:
    """The commit scripts/sources.lock pins for framework source ``name`` (what the install scripts build)."""
    lock = SCRIPTS / "sources.lock"
    for line in lock.read_text().splitlines():
        fields = line.split()
        if fields and fields[0] == name and not line.startswith("#"):
            return fields[2]
    raise KeyError(f"{lock}: no source named {name!r}")


def recorded_path(path: Path, base_dir: Path) -> str:
    """How a JSON file stores a path: relative to its own folder when inside it, else absolute.

    A run directory can then be moved or read from any working directory (docs/architecture.md).
    """
    path, base_dir = Path(path).resolve(), Path(base_dir).resolve()
    return str(path.relative_to(base_dir)) if path.is_relative_to(base_dir) else str(path)


def from_recorded(value: str, base_dir: Path) -> Path:
    """The inverse of :func:`recorded_path`."""
    path = Path(value)
    return path if path.is_absolute() else Path(base_dir).resolve() / path


_UNSAFE_CHARACTERS = re.compile(r"[^A-Za-z0-9 ._+-]+")
_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)), *(f"LPT{i}" for i in range(1, 10))}
MAX_NAME = 80


def safe_file_name(name: str, taken: Container[str] = ()) -> str:
    """``name`` (from user data: a slide name, an image id) as one path component that stays inside
    its folder on any file system: no separators, NUL or control characters, no leading dot (``..``,
    hidden files), no trailing dot or space, not a Windows device name, at most MAX_NAME characters
    (a shortened or emptied name gets a hash of the original), and not in ``taken`` (``_2``, ``_3``...).
    Unchanged when it already is all that."""
    safe = _UNSAFE_CHARACTERS.sub("_", name).strip(" .")
    if not safe or safe.split(".")[0].upper() in _RESERVED:
        safe = f"_{safe}"
    if len(safe) > MAX_NAME or (safe != name and safe.strip("_") == ""):
        digest = hashlib.sha1(name.encode("utf-8", "surrogatepass")).hexdigest()[:8]
        safe = f"{safe[: MAX_NAME - 9]}_{digest}"
    candidate, n = safe, 2
    while candidate in taken:
        candidate, n = f"{safe}_{n}", n + 1
    return candidate

"""The count's detection thresholds, read from one file (``thresholds.json`` beside this module, docs/count.md).

What each class means (differential categories, reference ranges, flags) is the model's class-roles
table (:mod:`harness.class_roles`), not this file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from harness.core.atomic import load_json

DEFAULT_THRESHOLDS = Path(__file__).with_name("thresholds.json")
SECTIONS = ("detection", "uncertain", "border")
MOVED_TO_ROLES = ("flags", "reference_ranges_percent")


def load_thresholds(path: Optional[Path] = None) -> dict:
    """The default file, or a user's copy; a missing section is an error naming the file."""
    path = Path(path or DEFAULT_THRESHOLDS)
    rules = load_json(path, "thresholds", kind=dict)
    moved = [k for k in MOVED_TO_ROLES if k in rules]
    if moved:
        raise ValueError(
            f"{path}: {moved} now belong to the class-roles table of the model's label set "
            "(harness/class_roles/*.json, --classes FILE; docs/count.md): move them there"
        )
    missing = [k for k in SECTIONS if k not in rules]
    if missing:
        raise ValueError(f"{path}: thresholds file lacks section(s) {missing}")
    return rules

"""The count's thresholds, read from one file (``thresholds.json`` beside this module, docs/count.md)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

DEFAULT_THRESHOLDS = Path(__file__).with_name("thresholds.json")
WBC_CLASSES = ("Blast", "PRO", "MYE", "MET", "bNEU", "sNEU", "LYM", "MO", "EO", "BA", "rLYM")
OUTSIDE_DIFFERENTIAL = ("NRBC", "gPLT", "SM", "Artefact")


def load_thresholds(path: Optional[Path] = None) -> dict:
    """The default file, or a user's copy; a missing section is an error naming the file."""
    path = Path(path or DEFAULT_THRESHOLDS)
    try:
        rules = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: cannot read thresholds: {exc}") from None
    missing = [k for k in ("detection", "uncertain", "border", "flags", "reference_ranges_percent") if k not in rules]
    if missing:
        raise ValueError(f"{path}: thresholds file lacks section(s) {missing}")
    return rules

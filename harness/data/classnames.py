"""Class-name hygiene: a class map that renames or drops names, and the search for likely typos.

A class map file has one ``old: new`` line per rule (``#`` starts a comment); ``new`` may be
``<drop>`` to remove those objects::

    Platlets: Platelets
    platelets: Platelets
    dog: <drop>

Without a label map the audit flags names that look like typos of another name (the rules are
in ``suspect_class_names``), so "Platlets" does not silently become a fourth class.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

DROP = "<drop>"
RARE_OBJECTS = 10  # a class with fewer objects than this …
RARE_FRACTION = 0.1  # … and under 10 % of the largest class is "rare"


@dataclass(frozen=True)
class ClassMap:
    """``rules[old] = new`` (``None`` = drop); ``source`` names the file for messages."""

    rules: dict[str, Optional[str]]
    source: str = "class map"

    def apply(self, name: Optional[str]) -> tuple[bool, Optional[str]]:
        """``(matched, new name)``; a dropped name returns ``(True, None)``."""
        if name is None or name not in self.rules:
            return False, name
        return True, self.rules[name]


def read_class_map(path: str | Path) -> ClassMap:
    """Parse an ``old: new`` file; raises ValueError naming the file and line on bad input."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ValueError(f"{path}: cannot read class map: {exc}") from exc
    rules: dict[str, Optional[str]] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        old, sep, new = (part.strip().strip("'\"") for part in line.rpartition(":"))
        if not sep or not old or not new:
            raise ValueError(f"{path}:{number}: expected 'old name: new name' (or 'name: {DROP}'), got {line!r}")
        if old in rules:
            raise ValueError(f"{path}:{number}: {old!r} is mapped twice")
        rules[old] = None if new == DROP else new
    if not rules:
        raise ValueError(f"{path}: class map has no rules")
    return ClassMap(rules, str(path))


@dataclass(frozen=True)
class SuspectClass:
    name: str
    objects: int
    reason: str
    similar_to: Optional[str] = None


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (insertions, deletions, substitutions)."""
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, start=1):
        current = [i]
        for j, char_b in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char_a != char_b)))
        previous = current
    return previous[-1]


def _folded(name: str) -> str:
    return re.sub(r"[\s_\-.]+", "", name).casefold()


def _close(a: str, b: str) -> Optional[str]:
    """Why ``a`` and ``b`` look like one class written two ways, or None.

    Same letters up to case and separators; else one edit apart when both have ≥ 5 letters, two
    apart when both have ≥ 8 (so RBC/WBC and the paper's sNEU/bNEU stay two classes each).
    """
    if _folded(a) == _folded(b):
        return "differs only in case or separators from"
    shortest = min(len(a), len(b))
    allowed = 2 if shortest >= 8 else 1 if shortest >= 5 else 0
    distance = edit_distance(a.casefold(), b.casefold())
    if distance <= allowed:
        return f"is {distance} letter{'s' if distance > 1 else ''} away from"
    return None


def suspect_class_names(counts: Counter, known: Iterable[str] = ()) -> list[SuspectClass]:
    """Names that are probably typos: close to a more frequent name, one letter long, or rare.

    Of two close names the one with fewer objects is flagged (ties: the later one by name);
    ``known`` names (the paper's labels) are never flagged themselves.
    """
    known = set(known)
    ordered = sorted(counts, key=lambda n: (-counts[n], n))
    largest = counts[ordered[0]] if ordered else 0
    suspects = []
    for position, name in enumerate(ordered):
        if name in known:
            continue
        match = next(((other, why) for other in ordered[:position] if (why := _close(name, other))), None)
        if match:
            suspects.append(SuspectClass(name, counts[name], f"{match[1]} {match[0]!r}", match[0]))
        elif len(name) == 1:
            suspects.append(SuspectClass(name, counts[name], "is a one-letter name"))
        elif counts[name] < RARE_OBJECTS and counts[name] < RARE_FRACTION * largest:
            suspects.append(
                SuspectClass(name, counts[name], f"is rare ({counts[name]} objects, the largest class has {largest})")
            )
    return suspects

"""The paper's label set, in one place, and label maps for other datasets.

Wang et al. 2019 train 15 labels: 11 leukocyte classes that are scored in Table 1, and four
non-leukocyte labels (NRBC, gPLT, SM, Artefact) that are trained but not scored.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Label:
    abbr: str
    name: str
    scored: bool


PAPER_LABELS: tuple[Label, ...] = (
    Label("Blast", "blast", True),
    Label("PRO", "promyelocyte", True),
    Label("MYE", "myelocyte", True),
    Label("MET", "metamyelocyte", True),
    Label("bNEU", "band neutrophil", True),
    Label("sNEU", "segmented neutrophil", True),
    Label("LYM", "lymphocyte", True),
    Label("MO", "monocyte", True),
    Label("EO", "eosinophil", True),
    Label("BA", "basophil", True),
    Label("rLYM", "reactive lymphocyte", True),
    Label("NRBC", "nucleated red blood cell", False),
    Label("gPLT", "giant platelet", False),
    Label("SM", "smudge cell", False),
    Label("Artefact", "artefact", False),
)


MAX_CLASS_NAME = 64


def class_name_problem(name: str) -> str:
    """Why Caffe or Darknet cannot carry class ``name`` ("" when they can). A name is a line of
    Darknet's obj.names, a quoted string in Caffe's labelmap.prototxt and part of the file name
    ``comp4_det_test_<name>.txt``; Darknet's ``detector valid`` crashes on a '/' long after training."""
    if not name.strip():
        return "empty class name"
    if name != name.strip():
        return "leading or trailing white space"
    if "/" in name or "\\" in name:
        return "contains a path separator ('/' or '\\')"
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
        return "contains a control character (a newline, tab or NUL)"
    if '"' in name:
        return "contains a double quote (Caffe's labelmap.prototxt cannot quote it)"
    if len(name) > MAX_CLASS_NAME:
        return f"longer than {MAX_CLASS_NAME} characters"
    return ""


@dataclass(frozen=True)
class LabelMap:
    """Ordered class names (index 0 = first class; Caffe adds background as label 0 itself)."""

    names: tuple[str, ...]
    scored: frozenset[str]

    @classmethod
    def paper(cls) -> LabelMap:
        return cls(tuple(lb.abbr for lb in PAPER_LABELS), frozenset(lb.abbr for lb in PAPER_LABELS if lb.scored))

    @classmethod
    def from_names(cls, names: Iterable[str], scored: Iterable[str] | None = None) -> LabelMap:
        """Every class is scored unless said otherwise, except that the paper's own labels keep the
        paper's rule (NRBC, gPLT, SM, Artefact trained but not scored) wherever the map comes from."""
        names = tuple(names)
        for name in names:
            if class_name_problem(name):
                raise ValueError(
                    f"class name {name!r}: {class_name_problem(name)}; rename it (data convert --class-map 'old: new')"
                )
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate class names in label map: {names}")
        if not names:
            raise ValueError("empty label map")
        if scored is None:
            paper = {label.abbr: label.scored for label in PAPER_LABELS}
            scored = [n for n in names if paper[n]] if set(names) <= set(paper) else names
        return cls(names, frozenset(scored))

    @classmethod
    def from_file(cls, path: str | Path) -> LabelMap:
        """Read Darknet ``obj.names`` (one name per line) or an SSD ``labelmap.prototxt``."""
        path = Path(path)
        try:
            text = path.read_text()
        except OSError as exc:
            raise ValueError(f"{path}: cannot read label map: {exc}") from exc
        if "item" in text and "{" in text:
            return cls.from_names(_labelmap_prototxt_names(text, path))
        names = [line.strip() for line in text.splitlines() if line.strip()]
        if not names:
            raise ValueError(f"{path}: label map is empty")
        return cls.from_names(names)

    def __len__(self) -> int:
        return len(self.names)

    def index(self, name: str) -> int:
        return self.names.index(name)

    @property
    def scored_names(self) -> tuple[str, ...]:
        return tuple(n for n in self.names if n in self.scored)


def _labelmap_prototxt_names(text: str, path: Path) -> Sequence[str]:
    """Names ordered by ``label`` from an SSD labelmap, without the background item (label 0)."""
    import re

    items = re.findall(r"item\s*\{(.*?)\}", text, flags=re.S)
    pairs = []
    for item in items:
        name = re.search(r'name:\s*"([^"]*)"', item)
        label = re.search(r"label:\s*(\d+)", item)
        display = re.search(r'display_name:\s*"([^"]*)"', item)
        if not label or not (name or display):
            raise ValueError(f"{path}: labelmap item without name/label: {item.strip()!r}")
        found = display or name
        assert found is not None  # checked above
        pairs.append((int(label.group(1)), found.group(1)))
    pairs.sort()
    return [n for lbl, n in pairs if lbl != 0]

"""One slide's differential: counts over the 11 leukocyte classes, what is kept outside, flags."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Optional

from harness.count.rules import OUTSIDE_DIFFERENTIAL, WBC_CLASSES


@dataclass
class Differential:
    counts: dict[str, int]                       # every label (WBC and outside), border cells excluded

    @property
    def wbc(self) -> int:
        return sum(self.counts.get(c, 0) for c in WBC_CLASSES)

    def percent(self, name: str) -> Optional[float]:
        """Percent of the differential; None when the slide has no leukocytes to divide by."""
        return 100.0 * self.counts.get(name, 0) / self.wbc if self.wbc else None

    @property
    def nrbc_per_100_wbc(self) -> Optional[float]:
        return 100.0 * self.counts.get("NRBC", 0) / self.wbc if self.wbc else None

    def flags(self, rules: dict) -> list[str]:
        """Names of the flags in the thresholds file that this slide raises."""
        raised = []
        for name, rule in rules["flags"].items():
            if "classes" in rule:
                total = sum(self.percent(c) or 0.0 for c in rule["classes"])
                if self.wbc and total > rule["percent_above"]:
                    raised.append(name)
            elif "nrbc_per_100_wbc_at_least" in rule:
                if self.wbc and self.nrbc_per_100_wbc >= rule["nrbc_per_100_wbc_at_least"]:
                    raised.append(name)
        return raised


def count_labels(labels: Iterable[str]) -> Differential:
    counts = {name: 0 for name in (*WBC_CLASSES, *OUTSIDE_DIFFERENTIAL)}
    for label in labels:
        counts[label] = counts.get(label, 0) + 1
    return Differential(counts)


@dataclass
class SlideResult:
    slide: str
    fields: int = 0                                # images read
    skipped: dict[str, str] = field(default_factory=dict)   # file -> why
    cells: list = field(default_factory=list)      # harness.count.cells.Cell
    truth: Optional[Differential] = None          # from VOC annotations, same border rule
    error: str = ""                                # the slide could not be counted at all
    seconds: float = 0.0                           # detection wall time
    files: dict = field(default_factory=dict)      # image id -> the user's file name
    paths: dict = field(default_factory=dict)      # image id -> readable image path (crops)

    @property
    def counted(self) -> list:
        return [c for c in self.cells if not c.border]

    @property
    def differential(self) -> Differential:
        return count_labels(c.label for c in self.counted)

    @property
    def uncertain(self) -> list:
        return [c for c in self.counted if c.uncertain]

    @property
    def note(self) -> str:
        if self.error:
            return self.error
        if not self.counted:
            return "no cells detected on this slide"
        if not self.differential.wbc:
            return "no leukocytes detected: no differential"
        return ""

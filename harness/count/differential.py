"""One slide's count: the differential over the model's leukocyte categories, the other roles'
counts per field and their ratios, and the flags — all as the class-roles table says."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Optional

from harness.class_roles import RATIOS, ClassRoles


@dataclass
class Differential:
    counts: dict[str, int]  # every detected label, border cells excluded
    roles: ClassRoles
    fields: int = 0  # fields the counts come from (per-field figures)

    def role_total(self, role: str) -> int:
        return sum(n for label, n in self.counts.items() if self.roles.role(label) == role)

    @property
    def wbc(self) -> int:
        return self.role_total("leukocyte")

    def category_count(self, category: str) -> int:
        return sum(
            n
            for label, n in self.counts.items()
            if self.roles.role(label) == "leukocyte" and self.roles.category(label) == category
        )

    def percent(self, category: str) -> Optional[float]:
        """Percent of the differential; None when the slide has no leukocytes to divide by."""
        return 100.0 * self.category_count(category) / self.wbc if self.wbc else None

    @property
    def nrbc_per_100_wbc(self) -> Optional[float]:
        return 100.0 * self.role_total("nrbc") / self.wbc if self.wbc else None

    def per_field(self, role: str) -> Optional[float]:
        return self.role_total(role) / self.fields if self.fields else None

    def ratio(self, name: str) -> Optional[float]:
        """e.g. platelets per 1000 RBC; None without red cells to divide by."""
        top, bottom, scale = RATIOS[name]
        below = self.role_total(bottom)
        return scale * self.role_total(top) / below if below else None

    def flags(self) -> list[str]:
        """Names of the table's flags that this slide raises."""
        raised = []
        for name, rule in self.roles.flags.items():
            if "categories" in rule:
                total = sum(self.percent(c) or 0.0 for c in rule["categories"])
                if self.wbc and total > rule["percent_above"]:
                    raised.append(name)
            elif "ratio" in rule:
                value = self.ratio(rule["ratio"])
                if value is not None and (
                    value < rule.get("below", float("-inf")) or value > rule.get("above", float("inf"))
                ):
                    raised.append(name)
            elif (
                "nrbc_per_100_wbc_at_least" in rule
                and self.wbc
                and self.nrbc_per_100_wbc >= rule["nrbc_per_100_wbc_at_least"]
            ):
                raised.append(name)
        return raised


def count_labels(labels: Iterable[str], roles: ClassRoles, fields: int = 0) -> Differential:
    counts = {name: 0 for name in roles.roles}
    for label in labels:
        counts[label] = counts.get(label, 0) + 1
    return Differential(counts, roles, fields)


@dataclass
class SlideResult:
    slide: str
    roles: ClassRoles
    fields: int = 0  # images read
    skipped: dict[str, str] = field(default_factory=dict)  # file -> why
    cells: list = field(default_factory=list)  # harness.count.cells.Cell
    truth: Optional[Differential] = None  # from VOC annotations, same border rule
    error: str = ""  # the slide could not be counted at all
    seconds: float = 0.0  # detection wall time
    files: dict = field(default_factory=dict)  # image id -> the user's file name
    paths: dict = field(default_factory=dict)  # image id -> readable image path (crops)

    def is_counted(self, cell) -> bool:
        """Cut by the border, or of a class the table does not count: detected, listed, not counted."""
        return not cell.border and self.roles.role(cell.label) != "not_counted"

    @property
    def counted(self) -> list:
        return [c for c in self.cells if self.is_counted(c)]

    @property
    def differential(self) -> Differential:
        return count_labels((c.label for c in self.counted), self.roles, self.fields)

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

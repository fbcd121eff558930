"""Validation report: every problem found while reading a dataset, with the file it came from.

Nothing is dropped silently: each skipped image/object and each fix is a ``Problem`` here, and
``summary()`` ends every command with what was kept, fixed and skipped, and why.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Optional

# What the reader did about a problem.
SKIP_IMAGE = "skipped image"
SKIP_OBJECT = "skipped object"
FIXED = "fixed"
WARNING = "kept (warning)"
ACTIONS = (SKIP_IMAGE, SKIP_OBJECT, FIXED, WARNING)


@dataclass(frozen=True)
class Problem:
    """One defect: ``kind`` is a short stable key (e.g. ``zero-area box``) that tests and reports count."""

    file: str
    kind: str
    action: str
    message: str
    object_index: Optional[int] = None  # 0-based position of the <object> in the XML
    class_name: Optional[str] = None

    def __str__(self) -> str:
        where = self.file if self.object_index is None else f"{self.file} object #{self.object_index}"
        if self.class_name:
            where += f" ({self.class_name})"
        return f"{where}: {self.kind}: {self.message} -> {self.action}"


@dataclass
class ValidationReport:
    """Counts of what was kept/fixed/skipped plus the per-problem messages."""

    images_total: int = 0
    images_kept: int = 0
    objects_total: int = 0
    objects_kept: int = 0
    objects_fixed: int = 0
    problems: list[Problem] = field(default_factory=list)
    objects_per_class: Counter = field(default_factory=Counter)

    def add(self, problem: Problem) -> None:
        if problem.action not in ACTIONS:
            raise ValueError(f"unknown action {problem.action!r}")
        self.problems.append(problem)

    def unkeep(self, class_names: list[str]) -> None:
        """An image counted as kept was skipped by a later step: take it and its objects back out."""
        self.images_kept -= 1
        self.objects_kept -= len(class_names)
        self.objects_per_class.subtract(class_names)
        self.objects_per_class += Counter()  # drop zero counts

    @property
    def images_skipped(self) -> int:
        return sum(1 for p in self.problems if p.action == SKIP_IMAGE)

    @property
    def objects_skipped(self) -> int:
        return sum(1 for p in self.problems if p.action == SKIP_OBJECT)

    def by_kind(self, action: str | None = None) -> Counter:
        return Counter(p.kind for p in self.problems if action is None or p.action == action)

    def of_kind(self, kind: str) -> list[Problem]:
        return [p for p in self.problems if p.kind == kind]

    def merge(self, other: ValidationReport) -> None:
        """Fold in problems found by a later step (e.g. image decoding during conversion)."""
        self.problems.extend(other.problems)
        self.objects_per_class.update(other.objects_per_class)

    def summary(self, max_messages: int = 50) -> str:
        lines = [
            f"images: {self.images_total} read, {self.images_kept} kept, {self.images_skipped} skipped",
            f"objects: {self.objects_total} read, {self.objects_kept} kept "
            f"({self.objects_fixed} of them fixed), {self.objects_skipped} skipped",
        ]
        if self.objects_per_class:
            per_class = ", ".join(f"{n}={c}" for n, c in sorted(self.objects_per_class.items()))
            lines.append(f"kept objects per class: {per_class}")
        for action in ACTIONS:
            kinds = self.by_kind(action)
            if kinds:
                lines.append(f"{action}: " + ", ".join(f"{k} x{c}" for k, c in sorted(kinds.items())))
        if self.problems:
            lines.append(f"problems ({len(self.problems)}):")
            lines += [f"  {p}" for p in self.problems[:max_messages]]
            if len(self.problems) > max_messages:
                lines.append(f"  ... {len(self.problems) - max_messages} more (see conversion.json)")
        else:
            lines.append("no problems found")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {
            "images": {"read": self.images_total, "kept": self.images_kept, "skipped": self.images_skipped},
            "objects": {
                "read": self.objects_total,
                "kept": self.objects_kept,
                "fixed": self.objects_fixed,
                "skipped": self.objects_skipped,
            },
            "objects_per_class": dict(sorted(self.objects_per_class.items())),
            "skipped_by_reason": dict(sorted((self.by_kind(SKIP_IMAGE) + self.by_kind(SKIP_OBJECT)).items())),
            "fixed_by_reason": dict(sorted(self.by_kind(FIXED).items())),
            "warnings_by_reason": dict(sorted(self.by_kind(WARNING).items())),
            "problems": [asdict(p) for p in self.problems],
        }

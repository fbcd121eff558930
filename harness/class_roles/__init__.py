"""What each class of a model means for the count: one class-roles table per label set.

A table (JSON, docs/count.md) gives every class a role — ``leukocyte`` (with the differential
category it counts towards), ``nrbc`` (counted per 100 leukocytes), ``red_cell``, ``platelet``,
``other`` (counted, outside the differential) or ``not_counted`` — plus the differential's
reference ranges, ratio ranges and flags. Built-in tables: the paper's 15 labels, RBC/WBC/Platelets
sets such as BCCD, and the five-part differential; a model with other classes needs ``--classes FILE``
(or a ``class_roles.json`` in its model folder, which ``harness train --classes FILE`` writes).

It sits below the stages (with :mod:`harness.labels`, tests/test_layers.py) because two of them read
it: ``harness count`` to count, and the run (``harness.engine``) to check a training's ``--classes``
table against the model's classes before anything trains.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Optional

from harness.core.atomic import load_json

ROLES = ("leukocyte", "nrbc", "red_cell", "platelet", "other", "not_counted")
BUILTIN_DIR = Path(__file__).parent  # the built-in tables: <name>.json
MODEL_ROLES_FILE = "class_roles.json"  # beside config.json: the model's own table, if any
RATIOS = {
    "platelets_per_1000_rbc": ("platelet", "red_cell", 1000.0),
    "wbc_per_1000_rbc": ("leukocyte", "red_cell", 1000.0),
}


class ClassRolesError(ValueError):
    """A class-roles table that cannot be used, or a model none fits; the message names the file."""


@dataclass(frozen=True)
class ClassRoles:
    name: str
    source: Path
    roles: dict[str, str]  # class -> role
    categories: dict[str, str]  # leukocyte class -> differential category
    long_names: dict[str, str] = field(default_factory=dict)
    reference_ranges: dict = field(default_factory=dict)  # category -> [low, high]; "_source"
    reference_ratios: dict = field(default_factory=dict)  # ratio name -> [low, high]; "_source"
    flags: dict = field(default_factory=dict)

    def role(self, label: str) -> str:
        """Classes match whatever their case ('platelets' = 'Platelets'); unknown ones are not counted."""
        return self._folded_roles.get(label.casefold(), "not_counted")

    # Built once per table (role() and category() run for every cell of every slide).
    @cached_property
    def _folded_roles(self) -> dict[str, str]:
        return {name.casefold(): role for name, role in self.roles.items()}

    @cached_property
    def _folded_categories(self) -> dict[str, str]:
        return {name.casefold(): cat for name, cat in self.categories.items()}

    def category(self, label: str) -> Optional[str]:
        return self._folded_categories.get(label.casefold())

    def classes_with(self, role: str) -> list[str]:
        return [name for name, r in self.roles.items() if r == role]

    @property
    def differential(self) -> list[str]:
        """The differential's categories, in the table's order."""
        return list(dict.fromkeys(self.categories.values()))

    @property
    def has_red_cells(self) -> bool:
        return bool(self.classes_with("red_cell"))

    def ratios(self) -> list[str]:
        """The ratios this label set can give (platelets per 1000 RBC needs red cells and platelets)."""
        return [
            name for name, (top, bottom, _) in RATIOS.items() if self.classes_with(top) and self.classes_with(bottom)
        ]

    def covers(self, classes: Iterable[str]) -> bool:
        return all(name.casefold() in self._folded_roles for name in classes)

    def display_name(self, label: str) -> str:
        long = self.long_names.get(label)
        return f"{label} ({long})" if long else label

    def record(self) -> dict:
        return {"name": self.name, "file": str(self.source)}


def load_roles(path: Path) -> ClassRoles:
    """Read and check one table; every problem names the file."""
    path = Path(path)
    data = load_json(path, "class-roles table", ClassRolesError)
    if not isinstance(data, dict) or not isinstance(data.get("classes"), dict) or not data["classes"]:
        raise ClassRolesError(f'{path}: a class-roles table needs a non-empty "classes" object')
    roles, categories = {}, {}
    for name, entry in data["classes"].items():
        role = entry.get("role") if isinstance(entry, dict) else entry
        if role not in ROLES:
            raise ClassRolesError(f"{path}: class {name!r} has role {role!r}; roles are {', '.join(ROLES)}")
        roles[name] = role
        if role == "leukocyte":
            categories[name] = (entry.get("category") if isinstance(entry, dict) else None) or name
    roles_table = ClassRoles(
        data.get("name") or path.stem,
        path.resolve(),
        roles,
        categories,
        dict(data.get("long_names", {})),
        dict(data.get("reference_ranges_percent", {})),
        dict(data.get("reference_ratios", {})),
        dict(data.get("flags", {})),
    )
    _check_flags(roles_table, path)
    return roles_table


def _check_flags(table: ClassRoles, path: Path) -> None:
    for name, rule in table.flags.items():
        if "categories" in rule:
            unknown = [c for c in rule["categories"] if c not in table.differential]
            if unknown or "percent_above" not in rule:
                raise ClassRolesError(
                    f"{path}: flag {name!r} needs percent_above and categories of the differential (unknown: {unknown})"
                )
        elif "ratio" in rule:
            if rule["ratio"] not in RATIOS or not ({"below", "above"} & set(rule)):
                raise ClassRolesError(f"{path}: flag {name!r} needs a ratio of {', '.join(RATIOS)} and below/above")
        elif "nrbc_per_100_wbc_at_least" not in rule:
            raise ClassRolesError(
                f"{path}: flag {name!r} is none of categories/percent_above, ratio/below|above, "
                "nrbc_per_100_wbc_at_least"
            )
        if "text" not in rule:
            raise ClassRolesError(f"{path}: flag {name!r} has no text")


def builtin_tables() -> list[ClassRoles]:
    return [load_roles(path) for path in sorted(BUILTIN_DIR.glob("*.json"))]


def covering(table: ClassRoles, classes: Iterable[str]) -> ClassRoles:
    """``table`` when it gives every class a role; else the error names the file and what is missing
    (a class the count would ignore must be said so: role ``not_counted``)."""
    missing = [c for c in classes if not table.covers([c])]
    if missing:
        raise ClassRolesError(
            f"{table.source}: the model's classes {missing} are not in this class-roles "
            "table (give them a role; 'not_counted' if the count should ignore them)"
        )
    return table


def roles_for_model(
    classes: Iterable[str], explicit: Optional[Path] = None, model_dir: Optional[Path] = None
) -> ClassRoles:
    """``--classes FILE``, else the model folder's ``class_roles.json``, else the first built-in table
    that knows every class of the model. Classes missing from the chosen table are an error: a
    class the count would ignore must be said so (role ``not_counted``)."""
    classes = list(classes)
    if explicit is not None or (model_dir is not None and (Path(model_dir) / MODEL_ROLES_FILE).is_file()):
        table = load_roles(explicit if explicit is not None else Path(str(model_dir)) / MODEL_ROLES_FILE)
        return covering(table, classes)
    for table in builtin_tables():
        if table.covers(classes):
            return table
    names = ", ".join(t.name for t in builtin_tables())
    raise ClassRolesError(
        f"no built-in class-roles table ({names}) knows all of the model's classes {classes}: "
        "give --classes FILE (format in docs/count.md)"
    )

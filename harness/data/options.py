"""The data options of every verb that reads a VOC root, as one value (kept import-light for the CLI)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Optional


@dataclass(frozen=True)
class DataOptions:
    """What a conversion may fix or accept in the user's VOC data: the same five options on every
    verb that reads a VOC root (``data convert``, ``train``, ``reproduce``, ``render table1``),
    recorded in run.json as part of the run's identity."""

    class_map: Optional[Path] = None  # 'old: new' lines (harness.data.classnames)
    labelmap: Optional[Path] = None  # obj.names or labelmap.prototxt; None: from the data
    dedupe: bool = False  # drop test images that have a twin in train
    allow_leakage: bool = False  # keep them
    allow_suspect_classes: bool = False  # accept class names that look like typos

    def __post_init__(self) -> None:
        if self.dedupe and self.allow_leakage:
            raise ValueError("--dedupe and --allow-leakage exclude each other: drop the test twins or keep them")

    def identity(self) -> dict:
        """As run.json records it: paths as text."""
        return {key: str(value) if isinstance(value, Path) else value for key, value in self.convert_kwargs().items()}

    @classmethod
    def from_identity(cls, record: Optional[dict]) -> DataOptions:
        record = record or {}
        paths = {key: Path(record[key]) if record.get(key) else None for key in ("class_map", "labelmap")}
        return cls(
            paths["class_map"],
            paths["labelmap"],
            bool(record.get("dedupe")),
            bool(record.get("allow_leakage")),
            bool(record.get("allow_suspect_classes")),
        )

    def convert_kwargs(self) -> dict:
        """The keyword arguments of :func:`convert_dataset` these options stand for (same names)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

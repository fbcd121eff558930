"""The data options of every verb that reads a VOC root, as one value (kept import-light for the CLI)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional


@dataclass(frozen=True)
class DataOptions:
    """What a conversion may fix or accept in the user's VOC data: the same five options on every
    verb that reads a VOC root (``data convert``, ``train``, ``reproduce``, ``render table1``),
    recorded in run.json as part of the run's identity."""

    class_map: Optional[Path] = None          # 'old: new' lines (harness.data.classnames)
    labelmap: Optional[Path] = None           # obj.names or labelmap.prototxt; None: from the data
    dedupe: bool = False                      # drop test images that have a twin in train
    allow_leakage: bool = False               # keep them
    allow_suspect_classes: bool = False       # accept class names that look like typos

    def __post_init__(self) -> None:
        if self.dedupe and self.allow_leakage:
            raise ValueError("--dedupe and --allow-leakage exclude each other: drop the test twins or keep them")

    def identity(self) -> dict:
        return {"class_map": str(self.class_map) if self.class_map else None,
                "labelmap": str(self.labelmap) if self.labelmap else None,
                "dedupe": self.dedupe, "allow_leakage": self.allow_leakage,
                "allow_suspect_classes": self.allow_suspect_classes}

    @classmethod
    def from_identity(cls, record: Optional[dict]) -> "DataOptions":
        record = record or {}
        paths = {key: Path(record[key]) if record.get(key) else None for key in ("class_map", "labelmap")}
        return cls(paths["class_map"], paths["labelmap"], bool(record.get("dedupe")),
                   bool(record.get("allow_leakage")), bool(record.get("allow_suspect_classes")))

    def convert_kwargs(self) -> dict:
        """The keyword arguments of :func:`convert_dataset` these options stand for."""
        return {"class_map": self.class_map, "labelmap": self.labelmap, "dedupe": self.dedupe,
                "allow_leakage": self.allow_leakage, "allow_suspect_classes": self.allow_suspect_classes}

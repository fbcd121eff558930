"""In-memory annotation records shared by every stage (data, evaluation, report).

Boxes keep the Pascal VOC convention: pixel coordinates, 1-based, inclusive
(``width = xmax - xmin + 1``), exactly as the VOC devkit and Darknet's ``valid`` output use them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Box:
    name: str
    xmin: float
    ymin: float
    xmax: float
    ymax: float
    difficult: bool = False
    truncated: bool = False


@dataclass
class ImageAnnotation:
    image_id: str
    image_path: Path
    width: int
    height: int
    objects: list[Box] = field(default_factory=list)

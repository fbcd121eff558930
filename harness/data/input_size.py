"""Which network input size fits a dataset's objects: the audit's advice for ``train --size``.

Both frameworks resize the whole field to the square network input, so an object's side in network
pixels is its side as a fraction of the image times ``--size``. The smallest class decides. The
16-px floor is a rule of thumb, not a measured optimum: one cell of YOLOv3-tiny's finer (stride-16)
grid; BCCD's platelets at 160 px have a median side of ~12 px and were YOLOv3-tiny's weakest class
there (23-28 % AP, docs/benchmarks.md). Training time grows roughly with the square of the size, so
the advice is the smallest size that clears the floor.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from harness.data.annotations import ImageAnnotation

MIN_OBJECT_PX = 16
CANDIDATE_SIZES = tuple(range(160, 609, 32))  # Darknet and the SSD templates take multiples of 32
SHOWN_SIZES = (160, 320, 416, 608)


@dataclass(frozen=True)
class InputSizeAdvice:
    """Median object side per class (fraction of the image) and the smallest size that keeps the
    smallest class at ``MIN_OBJECT_PX`` or more (``reached`` False: not even the largest candidate)."""

    median_side: dict[str, float]
    smallest_class: str
    size: int
    reached: bool

    def pixels(self, name: str, size: int) -> float:
        return self.median_side[name] * size

    def to_dict(self) -> dict:
        return {
            "median_side_fraction": {n: round(v, 5) for n, v in self.median_side.items()},
            "smallest_class": self.smallest_class,
            "suggested_size": self.size,
            "reached_min_object_px": self.reached,
            "min_object_px": MIN_OBJECT_PX,
            "median_px": {n: {s: round(self.pixels(n, s), 1) for s in SHOWN_SIZES} for n in self.median_side},
        }

    @classmethod
    def from_dict(cls, record: dict) -> InputSizeAdvice:
        """Back from ``to_dict`` (a resumed conversion reads it from conversion.json)."""
        return cls(
            dict(record["median_side_fraction"]),
            record["smallest_class"],
            record["suggested_size"],
            record["reached_min_object_px"],
        )

    def too_small_at(self, size: int) -> bool:
        """Whether ``size`` puts the smallest class's median object under ``MIN_OBJECT_PX``."""
        return self.pixels(self.smallest_class, size) < MIN_OBJECT_PX

    def line(self) -> str:
        """One line for `data check`: the suggestion and the numbers behind it."""
        at = ", ".join(f"{self.pixels(self.smallest_class, s):.0f} px at {s}" for s in SHOWN_SIZES)
        side = self.median_side[self.smallest_class]
        verdict = (
            f"--size {self.size} keeps them at >= {MIN_OBJECT_PX} px"
            if self.reached
            else f"even --size {self.size} leaves them under {MIN_OBJECT_PX} px: crop or tile the fields"
        )
        return (
            f"input size: smallest objects {self.smallest_class} (median side {side:.3f} of the image: {at}); {verdict}"
        )


def median_object_sides(images: Iterable[ImageAnnotation]) -> dict[str, float]:
    """Median of sqrt(w*h) per class, each box as a fraction of its own image's width and height."""
    sides: dict[str, list[float]] = {}
    for image in images:
        for box in image.objects:
            width = (box.xmax - box.xmin + 1) / image.width
            height = (box.ymax - box.ymin + 1) / image.height
            sides.setdefault(box.name, []).append(math.sqrt(width * height))
    return {name: float(np.median(values)) for name, values in sides.items()}


def suggest_input_size(images: Iterable[ImageAnnotation]) -> InputSizeAdvice | None:
    """The advice for these images' objects; None when there is no object to measure."""
    median_side = median_object_sides(images)
    if not median_side:
        return None
    smallest = min(median_side, key=median_side.__getitem__)
    fitting = [s for s in CANDIDATE_SIZES if median_side[smallest] * s >= MIN_OBJECT_PX]
    return InputSizeAdvice(median_side, smallest, fitting[0] if fitting else CANDIDATE_SIZES[-1], bool(fitting))

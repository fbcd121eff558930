"""SSD default boxes: which feature maps carry them, how big they are, and how many there are.

The sizes follow the rule of SSD's ``ssd_pascal.py`` generalised to any Smin/Smax and any number
of source layers, so that the paper's Smin 0.1 / 0.2 experiments are plain parameters
(docs/rendering.md writes the rule out).
"""
from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class SourceLayer:
    """One feature map that predicts boxes (``mbox_source_layers`` in SSD's scripts)."""

    name: str
    feature_size: int           # square feature map side at the network's input size
    step: int                   # pixels between neighbouring prior centres
    aspect_ratios: tuple[float, ...]
    normalize: bool = False     # conv4_3 is L2-normalised before its heads

    @property
    def priors_per_location(self) -> int:
        # one box at min_size, one at sqrt(min*max), and two (r, 1/r) per ratio with flip
        return 2 + 2 * len(self.aspect_ratios)


_SSD300 = (
    SourceLayer("conv4_3_norm", 38, 8, (2.0,), normalize=True),
    SourceLayer("fc7", 19, 16, (2.0, 3.0)),
    SourceLayer("conv6_2", 10, 32, (2.0, 3.0)),
    SourceLayer("conv7_2", 5, 64, (2.0, 3.0)),
    SourceLayer("conv8_2", 3, 100, (2.0,)),
    SourceLayer("conv9_2", 1, 300, (2.0,)),
)
_SSD512 = (
    SourceLayer("conv4_3_norm", 64, 8, (2.0,), normalize=True),
    SourceLayer("fc7", 32, 16, (2.0, 3.0)),
    SourceLayer("conv6_2", 16, 32, (2.0, 3.0)),
    SourceLayer("conv7_2", 8, 64, (2.0, 3.0)),
    SourceLayer("conv8_2", 4, 128, (2.0, 3.0)),
    SourceLayer("conv9_2", 2, 256, (2.0,)),
    SourceLayer("conv10_2", 1, 512, (2.0,)),
)
SSD_SIZES = (300, 512)


def ssd_source_layers(size: int) -> tuple[SourceLayer, ...]:
    """The source layers of SSD300 or SSD512 (the only two input sizes the SSD design defines)."""
    if size == 300:
        return _SSD300
    if size == 512:
        return _SSD512
    raise ValueError(f"SSD input size must be one of {SSD_SIZES}, got {size}")


def _percent(value: float, what: str) -> int:
    """Scales are written as whole percent (as ssd_pascal.py does); refuse finer values."""
    pct = round(value * 100)
    if abs(value * 100 - pct) > 1e-6:
        raise ValueError(f"{what}={value} must be a whole percentage (e.g. 0.2, 0.15)")
    return pct


def ssd_prior_sizes(size: int, smin: float = 0.2, smax: float = 0.9) -> tuple[list[float], list[float]]:
    """``(min_sizes, max_sizes)`` in pixels, one entry per source layer.

    Layers 2..n get scales from Smin to Smax in integer-percent steps of
    ``floor((Smax - Smin)·100 / (n - 2))``; layer 1 (conv4_3) gets Smin/2 and Smin.
    """
    layers = ssd_source_layers(size)
    lo, hi = _percent(smin, "smin"), _percent(smax, "smax")
    if not 0 < lo < hi <= 100:
        raise ValueError(f"need 0 < smin < smax <= 1, got smin={smin}, smax={smax}")
    n = len(layers)
    step = math.floor((hi - lo) / (n - 2))
    if step < 1:
        raise ValueError(f"smax - smin = {smax - smin:.2f} is too small to spread over {n - 1} layers")
    ratios = [lo + i * step for i in range(n - 1)]
    min_sizes = [size * lo / 2 / 100] + [size * r / 100 for r in ratios]
    max_sizes = [size * lo / 100] + [size * (r + step) / 100 for r in ratios]
    return min_sizes, max_sizes


def ssd_num_priors(size: int, smin: float = 0.2, smax: float = 0.9) -> int:
    """Default boxes per image (SSD300: 8732). Smin/Smax change box sizes, never the count."""
    ssd_prior_sizes(size, smin, smax)  # validates the scales
    return sum(layer.feature_size ** 2 * layer.priors_per_location for layer in ssd_source_layers(size))

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
    feature_size: int  # square feature map side at the network's input size
    step: float  # pixels between neighbouring prior centres
    aspect_ratios: tuple[float, ...]
    normalize: bool = False  # conv4_3 is L2-normalised before its heads

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
# Not in the SSD paper: small inputs for the CPU learning check (docs/rendering.md, "compact SSD").
COMPACT_SSD_SIZES = (160, 192)


def ssd_source_layers(size: int) -> tuple[SourceLayer, ...]:
    """The source layers of SSD300 or SSD512 (the two input sizes the SSD design defines), or of
    a compact SSD at 160/192 (the harness's CPU learning check, not a paper model)."""
    if size == 300:
        return _SSD300
    if size == 512:
        return _SSD512
    if size in COMPACT_SSD_SIZES:
        return compact_source_layers(size)
    raise ValueError(
        f"SSD input size must be one of {SSD_SIZES} (or {COMPACT_SSD_SIZES} for the compact "
        f"learning-check SSD), got {size}"
    )


def compact_feature_sizes(size: int) -> list[int]:
    """Feature-map sides of conv4_3, fc7, conv6_2, conv7_2, conv8_2 at a small input.

    Same arithmetic as Caffe's layers in the SSD300 body: three ceil-mode 2x2 pools before conv4_3,
    one more before fc7 (pool5 keeps the size), two stride-2 3x3 convolutions (pad 1), then one
    unpadded 3x3 convolution. At 160 and 192 that ends on a 1x1 map after five source layers, so
    conv9 of SSD300 is left out.
    """
    side = size
    for _ in range(3):
        side = -(-side // 2)
    sides = [side, -(-side // 2)]
    for _ in range(2):
        sides.append((sides[-1] - 1) // 2 + 1)
    sides.append(sides[-1] - 2)
    if sides[-1] < 1:
        raise ValueError(f"input {size} is too small for the compact SSD")
    return sides


def compact_source_layers(size: int) -> tuple[SourceLayer, ...]:
    """SSD300's source layers and aspect ratios, minus conv9_2, with steps = input / feature side."""
    names = ("conv4_3_norm", "fc7", "conv6_2", "conv7_2", "conv8_2")
    ratios = ((2.0,), (2.0, 3.0), (2.0, 3.0), (2.0, 3.0), (2.0,))
    sides = compact_feature_sizes(size)
    return tuple(
        SourceLayer(name, side, round(size / side, 4), ratio, normalize=(name == "conv4_3_norm"))
        for name, side, ratio in zip(names, sides, ratios)
    )


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
    return sum(layer.feature_size**2 * layer.priors_per_location for layer in ssd_source_layers(size))

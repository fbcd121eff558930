"""Darknet test helpers: random weights on disk, and pairing detections of two implementations."""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence, Union

from harness.frameworks.darknet.cfg import random_weights_bytes
from harness.frameworks.darknet.libdarknet import RawDetection


def write_random_weights(cfg_path: Union[str, Path], out_path: Union[str, Path], seed: int = 0) -> Path:
    """:func:`harness.frameworks.darknet.cfg.random_weights_bytes` written to ``out_path``."""
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_bytes(random_weights_bytes(cfg_path, seed))
    return out_path


def match_detections(reference: Sequence[RawDetection], other: Sequence[RawDetection],
                     max_box_px: float = 1.0, max_score: float = 1e-3) -> tuple[int, list[str]]:
    """Pair detections by image/class/nearest box; returns (matched count, mismatch descriptions)."""
    problems = []
    pool: dict[tuple[str, int], list[RawDetection]] = {}
    for det in other:
        pool.setdefault((det.image_id, det.class_index), []).append(det)
    matched = 0
    for det in reference:
        candidates = pool.get((det.image_id, det.class_index), [])
        best = _closest(det, candidates)
        if best is None:
            problems.append(f"no counterpart for {det}")
            continue
        candidates.remove(best)
        box_error = max(abs(a - b) for a, b in zip(_corners(det), _corners(best)))
        if box_error > max_box_px or abs(det.score - best.score) > max_score:
            problems.append(f"{det} vs {best}: box error {box_error:.3f} px, score error {abs(det.score - best.score):.2e}")
        else:
            matched += 1
    problems += [f"extra detection {d}" for left in pool.values() for d in left]
    return matched, problems


def _corners(det: RawDetection) -> tuple[float, float, float, float]:
    return det.xmin, det.ymin, det.xmax, det.ymax


def _closest(det: RawDetection, candidates: list[RawDetection]) -> Optional[RawDetection]:
    if not candidates:
        return None
    return min(candidates, key=lambda c: max(abs(a - b) for a, b in zip(_corners(det), _corners(c)))
               + abs(c.score - det.score))

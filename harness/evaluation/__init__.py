"""Evaluate stage: one exact protocol (harness.evaluation.protocols: VOC07, VOC12, COCO, AlexeyAB) for
both frameworks.

``evaluate_detections(gt, dets, labelmap, protocol, iou)`` returns the metrics.json dict;
``harness.evaluation.detections`` reads and writes the frameworks' detection files;
``harness.evaluation.classification.classification_report`` is the paper's Fig 10 test.

The names below are imported when first used, so ``harness.evaluation.protocols`` (which the config
validates against) stays light to import.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "PROTOCOLS": "harness.evaluation.protocols",
    "Protocol": "harness.evaluation.protocols",
    "register": "harness.evaluation.protocols",
    "Detections": "harness.evaluation.detections",
    "read_detections": "harness.evaluation.detections",
    "write_voc_detections": "harness.evaluation.detections",
    "EvaluationError": "harness.evaluation.evaluator",
    "UnknownProtocol": "harness.evaluation.evaluator",
    "evaluate_detections": "harness.evaluation.evaluator",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)

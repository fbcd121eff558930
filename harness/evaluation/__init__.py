"""Evaluate stage: one exact protocol (VOC07, VOC12, COCO) for both frameworks.

``evaluate_detections(gt, dets, labelmap, protocol, iou)`` returns the metrics.json dict;
``harness.evaluation.detections`` reads and writes the frameworks' detection files;
``harness.evaluation.classification.classification_report`` is the paper's Fig 10 test.
"""

from harness.evaluation.detections import Detections, read_detections, write_voc_detections
from harness.evaluation.evaluator import PROTOCOLS, EvaluationError, evaluate_detections

__all__ = [
    "PROTOCOLS",
    "Detections",
    "EvaluationError",
    "evaluate_detections",
    "read_detections",
    "write_voc_detections",
]

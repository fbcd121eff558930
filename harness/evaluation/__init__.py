"""Evaluate stage: one exact protocol (harness.evaluation.protocols: VOC07, VOC12, COCO, AlexeyAB) for both frameworks.

``evaluate_detections(gt, dets, labelmap, protocol, iou)`` returns the metrics.json dict;
``harness.evaluation.detections`` reads and writes the frameworks' detection files;
``harness.evaluation.classification.classification_report`` is the paper's Fig 10 test.
"""

from harness.evaluation.detections import Detections, read_detections, write_voc_detections
from harness.evaluation.evaluator import EvaluationError, UnknownProtocol, evaluate_detections
from harness.evaluation.protocols import PROTOCOLS, Protocol, register

__all__ = [
    "PROTOCOLS",
    "Detections",
    "EvaluationError",
    "Protocol",
    "UnknownProtocol",
    "evaluate_detections",
    "read_detections",
    "register",
    "write_voc_detections",
]

"""The evaluation protocols, one registry: name → how one class is scored, the IoU rule, labels.

``evaluate_detections`` (harness/evaluation/evaluator.py), the experiment config's
``protocols``, the report's tables and figures and ``harness status`` all iterate
:data:`PROTOCOLS`; nothing else lists protocol names. An unknown name is an error everywhere
(:func:`protocol`). Adding a protocol is one :func:`register` call with its per-class scorer
(tests/test_eval_protocols.py registers a fake one and sees it in config validation and the report).

This module imports nothing else of the harness: the per-class scorers live in the evaluator
and are referenced as ``"module:function"`` (imported when first scored), so the config can
validate names without importing the evaluation code.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Callable, Optional


class UnknownProtocolError(ValueError):
    """A protocol name that is not in :data:`PROTOCOLS`."""


@dataclass(frozen=True)
class Protocol:
    """One way of scoring detections.

    ``scorer``: ``"module:function"`` with the signature
    ``(image_index, scores, boxes, truth, name, iou, points, warnings) -> (class entry, pr curve)``.
    ``iou_rule``: ``"threshold"`` (a single threshold, ``--iou``) or ``"coco-range"`` (IoU .50:.95,
    no threshold). ``mean_over``: the mean-over-classes rule the protocol forces (None: the
    caller's). ``experiment``: scored by every experiment by default (``results.csv``'s
    ``map_<name>`` columns, the report's tables). ``pr_rank``: which protocol's PR points Fig 8
    draws (lowest first; None: never). ``style``: matplotlib style of its mAP line in Fig 7.
    """

    name: str
    label: str
    scorer: str
    iou_rule: str = "threshold"
    mean_over: Optional[str] = None
    experiment: bool = False
    pr_rank: Optional[int] = None
    style: dict = field(default_factory=dict)
    description: str = ""
    truth: Optional[str] = None  # "module:function" (gt, labelmap) -> gt: the protocol's own ground truth
    points: bool = False  # takes ``points`` (detector map's -points)

    def score_class(self) -> Callable[..., Any]:
        return _load(self.scorer)

    def ground_truth(self) -> Optional[Callable[..., Any]]:
        return _load(self.truth) if self.truth else None


def _load(target: str) -> Callable[..., Any]:
    module, attr = target.split(":")
    return getattr(importlib.import_module(module), attr)


PROTOCOLS: dict[str, Protocol] = {}


def register(entry: Protocol) -> Protocol:
    """Add ``entry`` (a name already registered is replaced: tests re-register freely)."""
    PROTOCOLS[entry.name] = entry
    return entry


def unregister(name: str) -> None:
    PROTOCOLS.pop(name, None)


def protocol(name: str) -> Protocol:
    """The registered protocol ``name``; :class:`UnknownProtocolError` naming the known ones."""
    try:
        return PROTOCOLS[name]
    except KeyError:
        raise UnknownProtocolError(f"unknown protocol {name!r}; choose one of {', '.join(PROTOCOLS)}") from None


def names() -> tuple[str, ...]:
    return tuple(PROTOCOLS)


def experiment_protocols() -> tuple[str, ...]:
    """What every experiment scores by default (the first one picks the best weights)."""
    return tuple(name for name, entry in PROTOCOLS.items() if entry.experiment)


def check_protocols(values: Any) -> tuple[str, ...]:
    """``values`` as a tuple of known protocol names; UnknownProtocolError otherwise."""
    return tuple(protocol(str(name)).name for name in values)


def pr_preference() -> list[str]:
    """Protocols whose PR points Fig 8 may draw, preferred first."""
    ranked = [entry for entry in PROTOCOLS.values() if entry.pr_rank is not None]
    return [entry.name for entry in sorted(ranked, key=lambda e: e.pr_rank or 0)]


_EVALUATOR = "harness.evaluation.evaluator"

register(
    Protocol(
        "voc07",
        "VOC2007 11-point",
        f"{_EVALUATOR}:score_voc07",
        experiment=True,
        pr_rank=1,
        style={"color": "tab:red", "marker": "o"},
        description="the VOC devkit, VOC2007's 11-point AP",
    )
)
register(
    Protocol(
        "voc12",
        "VOC2012 area",
        f"{_EVALUATOR}:score_voc12",
        experiment=True,
        pr_rank=0,
        style={"color": "tab:purple", "marker": "s"},
        description="the VOC devkit, VOC2010+ area under the precision envelope",
    )
)
register(
    Protocol(
        "coco",
        "COCO mAP@[.5:.95]",
        f"{_EVALUATOR}:score_coco",
        iou_rule="coco-range",
        description="pycocotools' mAP@[.5:.95]",
    )
)
register(
    Protocol(
        "alexeyab",
        "AlexeyAB detector map",
        f"{_EVALUATOR}:score_alexeyab",
        mean_over="network",
        truth="harness.evaluation.alexeyab:label_file_truth",
        points=True,
        description="AlexeyAB Darknet's detector map",
    )
)

"""Table 1 (mAP / per-class AP), Table 2 (time) and the Fig 10 accuracy summary, ours beside the paper.

All accuracy figures are percentages; differences are ``ours - paper`` in percentage points.
Our metrics files hold fractions (pycocotools' contract), the paper prints percentages.
A pipeline check (a profile not comparable with the paper, e.g. smoke) shows the paper's number
beside ours but no difference or ratio: "-93.10 pp" after 40 iterations says nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from harness.core.atomic import write_csv
from harness.labels import PAPER_LABELS
from harness.report.loading import ExperimentRun, RunData, report_protocols
from harness.report.paper_numbers import PaperNumbers

NOT_TRANSCRIBED = "n/t"  # the paper has this number but it is not in harness.paper yet
NOT_IN_PAPER = "—"  # the paper has no such number (other class / experiment)
_PAPER_CLASSES = {label.abbr for label in PAPER_LABELS}


@dataclass
class PaperCell:
    value: Optional[float]
    note: str = ""  # NOT_TRANSCRIBED or NOT_IN_PAPER when value is None


@dataclass
class APRow:
    """One line of Table 1: the mAP (name 'mAP') or one class's AP."""

    name: str
    ours: dict[str, Optional[float]]  # protocol -> percent
    paper: PaperCell
    npos: Optional[int] = None
    scored: bool = True  # False: trained but not in the mAP (paper: NRBC …)
    compared: bool = True  # False: pipeline check, no difference shown

    @property
    def diff(self) -> dict[str, Optional[float]]:
        return {p: _difference(v, self.paper.value) if self.compared else None for p, v in self.ours.items()}


@dataclass
class Table1Entry:
    run: ExperimentRun
    paper: Optional[PaperNumbers]
    map_row: APRow
    class_rows: list[APRow] = field(default_factory=list)


@dataclass
class Table2Entry:
    run: ExperimentRun
    paper: Optional[PaperNumbers]
    train_hours: Optional[float]
    median_ms: Optional[float]
    p90_ms: Optional[float]
    n_images: Optional[int]
    device: str
    backend: str

    @property
    def hours_ratio(self) -> Optional[float]:
        """Only for a finished, comparable run: a failed run's minutes over the paper's hours say nothing."""
        if not self.run.comparable:
            return None
        return _ratio(self.train_hours, self.paper.train_hours if self.paper else None)

    @property
    def ms_ratio(self) -> Optional[float]:
        if not self.run.comparable:
            return None
        return _ratio(self.median_ms, self.paper.ms_per_image if self.paper else None)


@dataclass
class AccuracyEntry:
    run: ExperimentRun
    ours_pct: Optional[float]
    paper: PaperCell
    n_images: Optional[int]

    @property
    def diff(self) -> Optional[float]:
        return _difference(self.ours_pct, self.paper.value) if self.run.profile_comparable else None


def build_table1(run: RunData, paper: dict[str, PaperNumbers]) -> list[Table1Entry]:
    return [_table1_entry(exp, paper.get(exp.name)) for exp in run.experiments]


def _table1_entry(exp: ExperimentRun, paper: Optional[PaperNumbers]) -> Table1Entry:
    ours_map = {p: _percent(exp.metrics[p].get("map")) if p in exp.metrics else None for p in report_protocols()}
    map_paper = _paper_cell(paper, paper.map_pct if paper else None, True)
    entry = Table1Entry(exp, paper, APRow("mAP", ours_map, map_paper, compared=exp.profile_comparable))
    for name in _class_names(exp, paper):
        entry.class_rows.append(_class_row(exp, paper, name))
    return entry


def _class_names(exp: ExperimentRun, paper: Optional[PaperNumbers]) -> list[str]:
    """Our classes in metrics order, then paper classes we have no AP for (so they show as gaps) —
    only when the run used the paper's classes at all: a BCCD run gets no eleven empty rows."""
    names: list[str] = []
    for protocol in report_protocols():
        for name in (exp.metrics.get(protocol) or {}).get("classes", {}):
            if name not in names:
                names.append(name)
    if paper is not None and any(name in paper.ap_pct or name in _PAPER_CLASSES for name in names):
        names += [name for name in paper.ap_pct if name not in names]
    return names


def _class_row(exp: ExperimentRun, paper: Optional[PaperNumbers], name: str) -> APRow:
    ours: dict[str, Optional[float]] = {}
    npos, scored = None, True
    for protocol in report_protocols():
        record = (exp.metrics.get(protocol) or {}).get("classes", {}).get(name)
        ours[protocol] = _percent(record.get("ap")) if record else None
        if record and npos is None and record.get("npos") is not None:
            npos = int(record["npos"])
        if record and record.get("scored") is False:
            scored = False
    known = paper is not None and (name in paper.ap_pct or name in _PAPER_CLASSES)
    value = paper.ap_pct.get(name) if paper is not None else None
    return APRow(name, ours, _paper_cell(paper, value, known), npos, scored, compared=exp.profile_comparable)


def _paper_cell(paper: Optional[PaperNumbers], value: Optional[float], in_paper: bool) -> PaperCell:
    if paper is None or not in_paper:
        return PaperCell(None, NOT_IN_PAPER)
    return PaperCell(value, "" if value is not None else NOT_TRANSCRIBED)


def build_table2(run: RunData, paper: dict[str, PaperNumbers]) -> list[Table2Entry]:
    entries = []
    for exp in run.experiments:
        timing = exp.timing or {}
        seconds = exp.train_seconds
        entries.append(
            Table2Entry(
                run=exp,
                paper=paper.get(exp.name),
                train_hours=None if seconds is None else seconds / 3600.0,
                median_ms=_maybe_float(timing.get("median_ms")),
                p90_ms=_maybe_float(timing.get("p90_ms")),
                n_images=_maybe_int(timing.get("n_images")),
                device=_timed_on(timing),
                backend=str(timing.get("backend") or ""),
            )
        )
    return entries


def _timed_on(timing: dict) -> str:
    """The device, and that the time was taken beside other experiments (``reproduce --jobs``)."""
    device = str(timing.get("device") or "")
    jobs = timing.get("concurrent_experiments")
    return f"{device}, under load: {jobs} experiments at once" if jobs and int(jobs) > 1 else device


def build_accuracy(run: RunData, paper: dict[str, PaperNumbers]) -> list[AccuracyEntry]:
    entries = []
    for exp in run.experiments:
        numbers = paper.get(exp.name)
        cls = exp.classification or {}
        entries.append(
            AccuracyEntry(
                run=exp,
                ours_pct=_percent(cls.get("mean_accuracy")),
                paper=_paper_cell(
                    numbers,
                    numbers.mean_accuracy_pct if numbers else None,
                    numbers is not None and "mean_accuracy" not in numbers.not_reported,
                ),
                n_images=_maybe_int(cls.get("n_images")),
            )
        )
    return entries


TABLE1_HEAD = [
    "experiment",
    "framework",
    "profile",
    "status",
    "comparable_with_paper",
    "not_comparable_because",
    "row",
    "scored",
]


def table1_columns() -> list[str]:
    """table1.csv's columns: one ours/diff column per experiment protocol of the registry."""
    names = report_protocols()
    return [
        *TABLE1_HEAD,
        *(f"ours_{p}_pct" for p in names),
        "paper_pct",
        "paper_note",
        *(f"diff_{p}_pp" for p in names),
        "npos",
        "message",
    ]


TABLE2_COLUMNS = [
    "experiment",
    "framework",
    "profile",
    "status",
    "comparable_with_paper",
    "not_comparable_because",
    "iterations",
    "train_hours",
    "paper_train_hours",
    "train_hours_ratio",
    "median_ms",
    "p90_ms",
    "n_images",
    "device",
    "backend",
    "paper_ms_per_image",
    "paper_device",
    "ms_ratio",
    "message",
]


def write_table1_csv(entries: list[Table1Entry], path: Path) -> Path:
    """Long format: one line per experiment x (mAP | class), so any class set fits."""
    write_csv(
        path,
        table1_columns(),
        (_table1_csv_line(entry.run, row) for entry in entries for row in [entry.map_row, *entry.class_rows]),
    )
    return path


def _table1_csv_line(exp: ExperimentRun, row: APRow) -> list:
    diff = row.diff
    return [
        exp.name,
        exp.framework_build,
        exp.profile,
        exp.status,
        _yes_no(exp.comparable),
        exp.not_comparable_because,
        row.name,
        _yes_no(row.scored),
        *(_cell(row.ours.get(p)) for p in report_protocols()),
        _cell(row.paper.value),
        row.paper.note,
        *(_cell(diff.get(p)) for p in report_protocols()),
        _cell(row.npos),
        exp.message,
    ]


def write_table2_csv(entries: list[Table2Entry], path: Path) -> Path:
    write_csv(path, TABLE2_COLUMNS, (_table2_csv_line(e) for e in entries))
    return path


def _table2_csv_line(e: Table2Entry) -> list:
    paper = e.paper
    return [
        e.run.name,
        e.run.framework_build,
        e.run.profile,
        e.run.status,
        _yes_no(e.run.comparable),
        e.run.not_comparable_because,
        _cell(e.run.train_iterations),
        _cell(e.train_hours),
        _cell(paper.train_hours if paper else None),
        _cell(e.hours_ratio),
        _cell(e.median_ms),
        _cell(e.p90_ms),
        _cell(e.n_images),
        e.device,
        e.backend,
        _cell(paper.ms_per_image if paper else None),
        paper.device if paper else "",
        _cell(e.ms_ratio),
        e.run.message,
    ]


def _percent(value) -> Optional[float]:
    number = _maybe_float(value)
    return None if number is None else number * 100.0


def _difference(ours: Optional[float], paper: Optional[float]) -> Optional[float]:
    return None if ours is None or paper is None else ours - paper


def _ratio(ours: Optional[float], paper: Optional[float]) -> Optional[float]:
    return None if ours is None or not paper else ours / paper


def _maybe_float(value) -> Optional[float]:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if value == value else None


def _maybe_int(value) -> Optional[int]:
    number = _maybe_float(value)
    return None if number is None else int(number)


def _cell(value) -> str:
    if value is None:
        return ""
    # 10 significant digits: exact for the inputs, without 93.10000000000001 noise from 0.931 * 100
    return f"{value:.10g}" if isinstance(value, float) else str(value)


def _yes_no(flag: bool) -> str:
    return "yes" if flag else "no"

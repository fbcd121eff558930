"""Read a run directory (``runs/<name>/``) into plain records the tables and figures share.

Every file named by a ``summary.json`` is checked here, once. A missing or malformed file does
not abort the report: it becomes a *problem* string naming the file, shown in the report next
to the experiment, so nothing disappears silently. ``strict=True`` turns problems into errors.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from harness.core.atomic import load_json
from harness.evaluation import protocols as _protocols

LOSS_COLUMNS = ("iteration", "loss", "avg_loss", "lr", "seconds")
SUMMARY_FILE = "summary.json"
MODELS_DIR = "models"


def report_protocols() -> tuple[str, ...]:
    """The protocols the report's tables show: every experiment protocol of the registry."""
    return _protocols.experiment_protocols()


class ReportError(ValueError):
    """The run directory cannot be reported on (message names the file and the problem)."""


@dataclass
class LossCurve:
    """Columns of ``loss.csv``; NaN where the framework does not log a value (e.g. Caffe avg)."""

    iteration: list[int]
    loss: list[float]
    avg_loss: list[float]
    lr: list[float]
    seconds: list[float]

    def __len__(self) -> int:
        return len(self.iteration)


@dataclass
class EvaluationCurve:
    """``results.csv``: held-out mAP of the weights at each evaluation point (NaN: not scorable)."""

    iteration: list[int]
    map: dict[str, list[float]]  # protocol -> mAP per row, 0..1
    seconds: list[float]

    def __len__(self) -> int:
        return len(self.iteration)


@dataclass
class ExperimentRun:
    """Everything one ``models/<experiment>/`` directory holds, already validated."""

    name: str
    directory: Path
    summary: dict = field(default_factory=dict)
    metrics: dict[str, dict] = field(default_factory=dict)  # protocol -> metrics json
    classification: Optional[dict] = None
    timing: Optional[dict] = None
    loss: Optional[LossCurve] = None
    evaluations: Optional[EvaluationCurve] = None
    problems: list[str] = field(default_factory=list)
    in_paper: Optional[bool] = None  # set by the report builder from harness.paper

    @property
    def framework(self) -> str:
        return str(self.summary.get("framework") or "?")

    @property
    def framework_build(self) -> str:
        """The framework as the tables name it, as its backend says (e.g. ``darknet (alexeyab)``)."""
        from harness.frameworks import display_name

        return display_name(self.framework, self.summary)

    @property
    def profile(self) -> str:
        return str(self.summary.get("profile") or "unknown")

    @property
    def status(self) -> str:
        return str(self.summary.get("status") or "missing")

    @property
    def message(self) -> str:
        return str(self.summary.get("message") or "")

    @property
    def comparable(self) -> bool:
        """Only a finished run of a paper experiment under a paper-comparable profile."""
        return not self.not_comparable_because

    @property
    def not_comparable_because(self) -> str:
        """Why these numbers must not be set against the paper's ('' when they may)."""
        if self.status != "ok":
            return f"status {self.status}"
        if self.in_paper is False:
            return "not a paper experiment"
        if not self.profile_comparable:
            return self.pipeline_check_label
        return ""

    @property
    def pipeline_check_label(self) -> str:
        """What a run under a non-paper profile is, in its profile's words (smoke: a pipeline check;
        cpu: a CPU schedule), with its iterations."""
        from harness.core.profiles import PROFILES

        known = PROFILES.get(self.profile)
        label = known.report_label if known else "pipeline check"
        iterations = self.train_iterations
        counted = f", {iterations} iterations" if iterations is not None else ""
        return f"{label}: {self.profile} profile{counted}"

    @property
    def profile_comparable(self) -> bool:
        """The engine's ``comparable_with_paper`` flag, else: anything but a smoke/unknown profile."""
        flag = self.summary.get("comparable_with_paper")
        return bool(flag) if flag is not None else self.profile not in ("smoke", "unknown")

    @property
    def missing_augmentation(self) -> list[str]:
        """SSD augmentations (distort_param, expand_param, random crops) the paper used but this Caffe run did not."""
        from harness.frameworks import backend_class
        from harness.paths import from_recorded

        try:
            backend = backend_class(self.framework)
        except KeyError:
            return []
        rendered = {role: from_recorded(p, self.directory) for role, p in (self.summary.get("rendered") or {}).items()}
        return list(backend.paper_deviations(self.directory, rendered))

    @property
    def train_seconds(self) -> Optional[float]:
        return _number((self.summary.get("train") or {}).get("seconds"))

    @property
    def train_iterations(self) -> Optional[int]:
        value = _number((self.summary.get("train") or {}).get("iterations"))
        return None if value is None else int(value)


@dataclass
class RunData:
    run_dir: Path
    experiments: list[ExperimentRun]
    problems: list[str] = field(default_factory=list)  # run-level problems

    @property
    def name(self) -> str:
        return self.run_dir.name

    @property
    def all_problems(self) -> list[str]:
        return self.problems + [p for exp in self.experiments for p in exp.problems]

    @property
    def profiles(self) -> list[str]:
        return sorted({exp.profile for exp in self.experiments})


def load_run(run_dir: Path, *, order: Optional[list[str]] = None, strict: bool = False) -> RunData:
    """Load every experiment under ``run_dir/models``; ``order`` lists names to put first."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ReportError(f"{run_dir}: run directory not found")
    models = run_dir / MODELS_DIR
    if not models.is_dir():
        raise ReportError(f"{models}: no models/ directory — is {run_dir} a run directory?")
    experiments = [load_experiment(d) for d in sorted(models.iterdir()) if d.is_dir()]
    if not experiments:
        raise ReportError(f"{models}: no experiment directories inside")
    run = RunData(run_dir, _ordered(experiments, order or []))
    if strict and run.all_problems:
        raise ReportError("problems in the run directory:\n  " + "\n  ".join(run.all_problems))
    return run


def _ordered(experiments: list[ExperimentRun], order: list[str]) -> list[ExperimentRun]:
    rank = {name: i for i, name in enumerate(order)}
    return sorted(experiments, key=lambda e: (rank.get(e.name, len(rank)), e.name))


def load_experiment(directory: Path) -> ExperimentRun:
    """Read one experiment directory; problems are collected, not raised."""
    exp = ExperimentRun(name=directory.name, directory=directory)
    summary_path = directory / SUMMARY_FILE
    if not summary_path.is_file():
        found = _load_conventional_files(exp)
        listing = f"; read by their standard names: {', '.join(found)}" if found else ""
        exp.problems.append(
            f"{summary_path}: file not found — experiment has no summary (interrupted run?), "
            f"shown as 'missing'{listing}"
        )
        exp.evaluations = read_evaluations(directory)
        return exp
    try:
        exp.summary = _read_json_object(summary_path)
    except ReportError as exc:
        exp.problems.append(str(exc))
        return exp
    _check_summary(exp, summary_path)
    _load_named_files(exp, exp.summary)
    exp.evaluations = read_evaluations(directory)
    return exp


def read_evaluations(directory: Path) -> Optional[EvaluationCurve]:
    """The periodic evaluation rows, by their standard name (absent for runs made before it)."""
    from harness.core.periodic import RESULTS_FILE, read_results

    if not (directory / RESULTS_FILE).is_file():
        return None
    rows = read_results(directory)
    protocols = [p for p in _protocols.names() if rows and f"map_{p}" in rows[0]]
    return EvaluationCurve(
        [r["iteration"] for r in rows],
        {p: [r[f"map_{p}"] for r in rows] for p in protocols},
        [r.get("seconds", math.nan) for r in rows],
    )


def _load_conventional_files(exp: ExperimentRun) -> list[str]:
    """An interrupted run leaves no summary but may hold results under the architecture's
    standard names: show them (status stays 'missing') rather than hide finished work."""
    standard: dict[str, Any] = {
        "metrics": {p: f"metrics_{p}.json" for p in _protocols.names()},
        "classification": "classification.json",
        "timing": "timing.json",
        "train": {"loss_csv": "loss.csv"},
    }
    present = {p: n for p, n in standard["metrics"].items() if (exp.directory / n).is_file()}
    named: dict[str, Any] = {
        "metrics": present,
        "train": {"loss_csv": "loss.csv"} if (exp.directory / "loss.csv").is_file() else {},
    }
    for key in ("classification", "timing"):
        named[key] = standard[key] if (exp.directory / standard[key]).is_file() else None
    _load_named_files(exp, named)
    return sorted(
        [
            *present.values(),
            *(v for k, v in named.items() if k in ("classification", "timing") and v),
            *named["train"].values(),
        ]
    )


def _check_summary(exp: ExperimentRun, path: Path) -> None:
    named = exp.summary.get("experiment")
    if named and named != exp.name:
        exp.problems.append(f"{path}: names experiment {named!r} but lives in directory {exp.name!r}")
    if exp.status == "running":
        exp.problems.append(f"{path}: status 'running' — the experiment never finished (interrupted?)")
    elif exp.status not in ("ok", "failed", "skipped"):
        exp.problems.append(f"{path}: status {exp.status!r} is not one of ok/failed/skipped")
    if exp.status != "ok" and not exp.message:
        exp.problems.append(f"{path}: status {exp.status!r} without a message saying why")


def _load_named_files(exp: ExperimentRun, named: dict) -> None:
    """Follow the file names in summary.json; for a failed run, a missing file is expected."""
    expected = exp.status == "ok"
    metrics_names = named.get("metrics") or {}
    unknown = [p for p in metrics_names if p not in _protocols.PROTOCOLS]
    if unknown:
        exp.problems.append(
            f"{exp.directory / SUMMARY_FILE}: metrics for unknown protocol(s) {', '.join(map(repr, unknown))} "
            f"(known: {', '.join(_protocols.names())})"
        )
    expected_protocols = report_protocols()
    for protocol in dict.fromkeys([*expected_protocols, *(p for p in _protocols.names() if p in metrics_names)]):
        data = _optional_json(exp, metrics_names.get(protocol), expected, f"metrics {protocol}")
        if data is not None and _valid_metrics(exp, data, metrics_names[protocol]):
            exp.metrics[protocol] = data
    exp.classification = _optional_json(exp, named.get("classification"), False, "classification")
    if exp.classification is not None and not _valid_classification(exp, named["classification"]):
        exp.classification = None
    exp.timing = _optional_json(exp, named.get("timing"), False, "timing")
    loss_name = (named.get("train") or {}).get("loss_csv")
    if loss_name:
        path = exp.directory / loss_name
        if path.is_file():
            try:
                exp.loss = read_loss_csv(path)
            except ReportError as exc:
                exp.problems.append(str(exc))
        elif expected:
            exp.problems.append(f"{path}: file not found (named in summary.json train.loss_csv)")


def _optional_json(exp: ExperimentRun, name: Any, expected: bool, what: str) -> Optional[dict]:
    if not name:
        if expected and what.startswith("metrics"):
            exp.problems.append(f"{exp.directory / SUMMARY_FILE}: status ok but no {what} file named")
        return None
    path = exp.directory / str(name)
    if not path.is_file():
        if expected or exp.status == "ok":
            exp.problems.append(f"{path}: file not found (named in summary.json as {what})")
        return None
    try:
        return _read_json_object(path)
    except ReportError as exc:
        exp.problems.append(str(exc))
        return None


def _valid_metrics(exp: ExperimentRun, data: dict, name: str) -> bool:
    path = exp.directory / name
    classes = data.get("classes")
    if "map" not in data or not _number_or_null(data["map"]) or not isinstance(classes, dict):
        exp.problems.append(f"{path}: metrics file needs a 'map' (number or null) and a 'classes' object")
        return False
    bad = [c for c, v in classes.items() if not isinstance(v, dict) or not _number_or_null(v.get("ap", "absent"))]
    if bad:
        exp.problems.append(f"{path}: classes without an 'ap' value (number or null): {', '.join(bad)}")
        return False
    return True


def _number_or_null(value: Any) -> bool:
    """null is legitimate: the evaluator writes it for a class without ground truth."""
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))


def _valid_classification(exp: ExperimentRun, name: str) -> bool:
    path = exp.directory / name
    data = exp.classification or {}
    matrix, classes, columns = data.get("matrix"), data.get("classes"), data.get("columns")
    if not isinstance(matrix, list) or not isinstance(classes, list) or not isinstance(columns, list):
        exp.problems.append(f"{path}: classification file needs 'classes', 'columns' and 'matrix' lists")
        return False
    if len(matrix) != len(classes) or any(len(row) != len(columns) for row in matrix):
        exp.problems.append(f"{path}: matrix shape does not match {len(classes)} classes x {len(columns)} columns")
        return False
    return True


def read_loss_csv(path: Path) -> LossCurve:
    """Parse ``iteration,loss,avg_loss,lr,seconds``; empty cells and 'nan' become NaN.

    Paper-length logs have ~10^5 rows, so rows are read positionally rather than as dicts."""
    with path.open(newline="") as handle:
        reader = csv.reader(handle)
        header = [name.strip() for name in next(reader, [])]
        missing = {"iteration", "loss"} - set(header)
        if missing:
            raise ReportError(f"{path}: loss CSV lacks column(s) {', '.join(sorted(missing))}")
        columns = [header.index(name) if name in header else None for name in LOSS_COLUMNS]
        curve = LossCurve([], [], [], [], [])
        targets = (curve.loss, curve.avg_loss, curve.lr, curve.seconds)
        for line_no, row in enumerate(reader, start=2):
            if not row:
                continue
            cells = [row[i] if i is not None and i < len(row) else "" for i in columns]
            try:
                curve.iteration.append(int(float(cells[0])))
            except ValueError:
                raise ReportError(f"{path}:{line_no}: iteration {cells[0]!r} is not a number") from None
            for target, cell in zip(targets, cells[1:]):
                target.append(_float_cell(cell))
    return curve


def _float_cell(text: Optional[str]) -> float:
    try:
        return float(text) if text not in (None, "") else math.nan
    except ValueError:
        return math.nan


def _read_json_object(path: Path) -> dict:
    return load_json(path, path.name, ReportError, kind=dict)


def _number(value: Any) -> Optional[float]:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return None if math.isnan(value) else float(value)

"""``build_report(run_dir)``: run directory in, paper-style tables, figures and HTML/Markdown out."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

import jinja2

import harness
from harness.core.atomic import load_json, write_text
from harness.html import environment as page_environment
from harness.html import format_number
from harness.report.figures import plot_confusion, plot_loss_curves, plot_pr_curves, safe_name
from harness.report.loading import ReportError, RunData, load_run, report_protocols
from harness.report.paper_numbers import PaperNumbers, paper_available, paper_experiments
from harness.report.provenance import PROVENANCE_FILE, collect_provenance, write_provenance
from harness.report.tables import (
    build_accuracy,
    build_table1,
    build_table2,
    write_table1_csv,
    write_table2_csv,
)

TEMPLATES = Path(__file__).resolve().parent / "templates"
GENERATED_FIGURE_GLOBS = ("fig7_loss.png", "fig8_pr_*.png", "fig10_confusion_*.png")
# Where the data stage's audit may sit in a run directory: written by ``audit_dataset(voc, RUN_DIR)``,
# or by ``convert_dataset`` into the converted dataset (``harness reproduce`` converts into RUN_DIR/dataset).
DATASET_REPORTS = ("dataset_report.html", "dataset/audit/dataset_report.html")


@dataclass
class Figure:
    kind: str  # "fig7" | "fig8" | "fig10"
    experiment: str  # "" for the combined Fig 7
    path: Path
    caption: str


def build_report(run_dir: Path, *, strict: bool = False, data_dir: Optional[Path] = None) -> dict[str, Path]:
    """Write report.html/.md, table1/2.csv, Fig 7/8/10 PNGs and provenance.json into ``run_dir``.

    Returns the written files by key ("html", "md", "table1", "table2", "provenance", "fig7",
    "fig8_<exp>", "fig10_<exp>"). An existing provenance.json (from ``harness reproduce``) is kept.
    """
    run_dir = Path(run_dir)
    paper_list = paper_experiments()
    paper = {p.name: p for p in paper_list}
    run = load_run(run_dir, order=[p.name for p in paper_list], strict=strict)
    for exp in run.experiments:
        exp.in_paper = exp.name in paper if paper else None
    written: dict[str, Path] = {"provenance": _ensure_provenance(run_dir, data_dir)}
    _remove_stale_figures(run_dir)
    figures = _draw_figures(run, paper)
    written.update({_figure_key(f): f.path for f in figures})
    table1, table2 = build_table1(run, paper), build_table2(run, paper)
    written["table1"] = write_table1_csv(table1, run_dir / "table1.csv")
    written["table2"] = write_table2_csv(table2, run_dir / "table2.csv")
    context = _context(run, paper, figures, table1, table2, _read_provenance(written["provenance"]))
    context["protocols"] = report_protocols()  # the tables' protocol columns (harness.evaluation.protocols)
    for key, template, name in (("html", "report.html.j2", "report.html"), ("md", "report.md.j2", "report.md")):
        path = run_dir / name
        write_text(path, _environment(markdown=key == "md").get_template(template).render(**context))
        written[key] = path
    return written


def _ensure_provenance(run_dir: Path, data_dir: Optional[Path]) -> Path:
    """Keep the record ``harness reproduce`` wrote; collect a minimal one for hand-made runs."""
    path = run_dir / PROVENANCE_FILE
    if path.is_file():
        return path
    rendered = sorted(p for p in (run_dir / "models").glob("*/rendered/**/*") if p.is_file())
    record = collect_provenance(run_dir, data_dir=data_dir, rendered_files=rendered)
    record["note"] = (
        "collected by 'harness report' after the fact: framework builds and seeds were not "
        "recorded by 'harness reproduce' for this run"
    )
    return write_provenance(run_dir, record)


def _read_provenance(path: Path) -> dict:
    data = load_json(path, "provenance", ReportError)
    return data if isinstance(data, dict) else {}


def _remove_stale_figures(run_dir: Path) -> None:
    """Figures from an earlier build of this report must not outlive the data they showed."""
    for pattern in GENERATED_FIGURE_GLOBS:
        for path in run_dir.glob(pattern):
            path.unlink()


def _draw_figures(run: RunData, paper: dict[str, PaperNumbers]) -> list[Figure]:
    figures = []
    fig7 = plot_loss_curves(run.experiments, run.run_dir / "fig7_loss.png")
    if fig7:
        figures.append(Figure("fig7", "", fig7, "Fig 7 — training loss per experiment"))
    for exp in run.experiments:
        stem = safe_name(exp.name)
        pr = plot_pr_curves(exp, run.run_dir / f"fig8_pr_{stem}.png")
        if pr:
            figures.append(Figure("fig8", exp.name, pr, f"Fig 8 — per-class PR curves, {exp.name}"))
        numbers = paper.get(exp.name)
        confusion = plot_confusion(
            exp, run.run_dir / f"fig10_confusion_{stem}.png", numbers.mean_accuracy_pct if numbers else None
        )
        if confusion:
            figures.append(Figure("fig10", exp.name, confusion, f"Fig 10 — confusion matrix, {exp.name}"))
    return figures


def _figure_key(figure: Figure) -> str:
    return figure.kind if not figure.experiment else f"{figure.kind}_{figure.experiment}"


def _missing_figures(run: RunData, figures: list[Figure]) -> list[str]:
    """Say why an experiment has no Fig 8 / Fig 10 instead of leaving it out silently."""
    have = {(f.kind, f.experiment) for f in figures}
    notes = []
    for exp in run.experiments:
        why = f"status {exp.status}" + (f": {exp.message}" if exp.message else "")
        if ("fig8", exp.name) not in have:
            notes.append(f"Fig 8 {exp.name}: no PR data ({why if exp.status != 'ok' else 'metrics without pr curves'})")
        if ("fig10", exp.name) not in have:
            detail = exp.summary.get("classification_note") or "classification.json not named in summary.json"
            notes.append(f"Fig 10 {exp.name}: no classification result ({why if exp.status != 'ok' else detail})")
    if not any(f.kind == "fig7" for f in figures):
        notes.append("Fig 7: no experiment has a loss.csv with rows")
    else:
        notes += [f"Fig 7 {e.name}: no loss curve" for e in run.experiments if e.loss is None or not len(e.loss)]
    return notes


def _dataset_report(run_dir: Path) -> Optional[str]:
    """Relative link to the dataset audit report when the run directory holds one."""
    return next((name for name in DATASET_REPORTS if (run_dir / name).is_file()), None)


def _profile_banners(run) -> list[dict]:
    """One banner per profile not comparable with the paper, in its own words (harness.core.profiles):
    a smoke run only checks plumbing, a cpu run learns for real, and neither may be read as the paper's."""
    from harness.core.profiles import PROFILES

    experiments: dict[str, list[str]] = {}
    for exp in run.experiments:
        if exp.summary and not exp.profile_comparable:
            experiments.setdefault(exp.profile, []).append(exp.name)
    banners = []
    for name, names in sorted(experiments.items()):
        known = PROFILES.get(name)
        heading, reason = (
            known.report_banner
            if known and known.report_banner[0]
            else (f"{name.upper()} PROFILE RUN", "a profile other than the paper's")
        )
        banners.append(
            {"id": f"{name}-banner", "profile": name, "heading": heading, "reason": reason, "experiments": names}
        )
    return banners


def _context(run, paper, figures, table1, table2, provenance) -> dict:
    return {
        "run": run,
        "dataset_report": _dataset_report(run.run_dir),
        "title": f"leukonet-harness report — {run.name}",
        "generated": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "harness_version": harness.__version__,
        "profile_banners": _profile_banners(run),
        "not_comparable": [e.name for e in run.experiments if not e.comparable],
        "without_augmentation": {e.name: e.missing_augmentation for e in run.experiments if e.missing_augmentation},
        "paper_available": paper_available(),
        "paper": paper,
        "table1": table1,
        "table2": table2,
        "accuracy": build_accuracy(run, paper),
        "mean_rules": mean_rules(run),
        "fig7": [f for f in figures if f.kind == "fig7"],
        "fig8": [f for f in figures if f.kind == "fig8"],
        "fig10": [f for f in figures if f.kind == "fig10"],
        "missing_figures": _missing_figures(run, figures),
        "not_ok": [e for e in run.experiments if e.status != "ok"],
        "problems": run.all_problems,
        "provenance": provenance,
        "provenance_extras": _provenance_extras(provenance),
        "sources": [(p.name, p.source) for p in paper.values() if p.source],
    }


LEGACY_MEAN_RULE = (
    "not recorded in metrics.json (written before the evaluator stated it; "
    "its rule then: mean over scored classes with at least one object)"
)


def mean_rules(run: RunData) -> list[tuple[str, list[str]]]:
    """Which mean-over-classes rule made each mAP (metrics.json ``mean_over``/``mean_rule``),
    grouped, so a reader can tell our number from Caffe's or Darknet's own averaging."""
    groups: dict[str, list[str]] = {}
    for exp in run.experiments:
        rules = {_mean_rule_text(m) for m in exp.metrics.values()}
        for rule in sorted(rules):
            groups.setdefault(rule, []).append(exp.name)
    return list(groups.items())


def _mean_rule_text(metrics: dict) -> str:
    if not metrics.get("mean_over"):
        return LEGACY_MEAN_RULE
    return f"{metrics['mean_over']}: {metrics.get('mean_rule') or 'see docs/evaluation.md'}"


_PROVENANCE_SHOWN = {
    "created",
    "run_dir",
    "harness",
    "frameworks",
    "rendered_files",
    "data",
    "seeds",
    "machine",
    "note",
}


def _provenance_extras(provenance: dict) -> list[tuple[str, str]]:
    """Whatever else the caller recorded (profile, synthetic data, initialisation note …)."""
    extras = []
    for key, value in provenance.items():
        if key in _PROVENANCE_SHOWN or value is None:
            continue
        extras.append(
            (
                key,
                ", ".join(map(str, value))
                if isinstance(value, list)
                else json.dumps(value)
                if isinstance(value, dict)
                else str(value),
            )
        )
    return extras


def framework_identity(framework: dict) -> str:
    """One line naming the exact build behind the numbers (fork/upstream, commit, build, …), as the
    backend of that build words it; a build no registered backend owns: its version."""
    from harness.frameworks import backend_of_build

    backend = backend_of_build(str(framework.get("name") or ""))
    details = framework.get("details") or {}
    parts = backend.describe_build(details) if backend is not None else [framework.get("version")]
    return ", ".join(str(part) for part in parts if part)


def _environment(markdown: bool = False) -> jinja2.Environment:
    """The HTML templates autoescape; in Markdown every inserted text has <, > and & escaped
    (:func:`markdown_text`), so a name like ``<script>`` from user data is shown, never run."""
    env = page_environment(TEMPLATES, markdown=markdown)  # harness.html: the shared page setup
    env.globals["framework_identity"] = framework_identity
    env.filters.update(cell=format_paper_cell, ratio=format_ratio)
    return env


def format_paper_cell(cell, digits: int = 2) -> str:
    return format_number(cell.value, digits) if cell.value is not None else cell.note


def format_ratio(value: Optional[float]) -> str:
    return "—" if value is None else f"×{value:.2f}"

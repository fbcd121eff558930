"""``harness report RUN_DIR``: turn a finished (or partly failed) run into the paper's tables and figures."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("report")
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--strict", is_flag=True, help="Fail on any missing or malformed file instead of listing it in the report."
)
@click.option(
    "--data",
    "data_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Dataset to hash into provenance.json when the run has none yet.",
)
def report(run_dir: Path, strict: bool, data_dir: Path | None) -> None:
    """Write report.html/.md, table1/2.csv and Fig 7/8/10 PNGs into RUN_DIR."""
    from harness.report.builder import build_report
    from harness.report.loading import ReportError, load_run

    try:
        written = build_report(run_dir, strict=strict, data_dir=data_dir)
        problems = load_run(run_dir).all_problems
    except ReportError as exc:
        raise click.ClickException(str(exc)) from exc
    for key, path in written.items():
        click.echo(f"{key:>24}  {path}")
    for problem in problems:
        click.echo(f"warning: {problem}", err=True)

"""``harness experiment run|report``: one unit of work, from files in the run directory alone.

This is what a batch-system task runs (and what the local runner runs in-process): its only
input is the experiment's resolved ``MODEL_DIR/config.json``; the run's shared data settings come
from ``RUN_DIR/run.json``, and the data itself was prepared by the submitter, so tasks only reuse it.
"""

from __future__ import annotations

import errno
import json
import sys
from pathlib import Path

import click


def run_from_config(config_path: Path) -> dict:
    """Run the experiment described by ``config_path``; returns its summary."""
    from harness.engine.experiment import dataset_formats, stop_on_sigterm
    from harness.engine.run import prepare_run_data, run_unless_busy, settings_of
    from harness.frameworks.configs import config_from_json

    stop_on_sigterm()
    config = config_from_json(json.loads(Path(config_path).read_text()))
    prepared = prepare_run_data(settings_of(config.run_dir), dataset_formats([config]))
    return run_unless_busy(config, prepared, overwrite=False)


def report_run(run_dir: Path) -> list[dict]:
    """The report step after all tasks: provenance, report files; returns every summary."""
    from harness.engine.experiment import dataset_formats, read_summary
    from harness.engine.reproduce import write_provenance
    from harness.engine.run import experiment_config_path, prepare_run_data, read_run_file, settings_of
    from harness.frameworks.configs import read_config
    from harness.report.builder import build_report

    run_dir = Path(run_dir).resolve()
    record = read_run_file(run_dir)
    configs = []
    for name, entry in record["experiments"].items():
        config = read_config(experiment_config_path(run_dir, name, entry).parent)
        if config is None:
            raise FileNotFoundError(
                errno.ENOENT, "experiment config missing", str(experiment_config_path(run_dir, name, entry))
            )
        configs.append(config)
    summaries = [
        read_summary(c.model_dir)
        or {"experiment": c.name, "status": "failed", "message": "never ran (no summary.json)"}
        for c in configs
    ]
    prepared = prepare_run_data(settings_of(run_dir), dataset_formats(configs))
    write_provenance(run_dir, prepared, configs, seconds=None)
    outputs = build_report(run_dir)
    for role, path in outputs.items():
        click.echo(f"  {role}: {path}")
    return summaries


@click.group("experiment")
def experiment() -> None:
    """Single units of work, as batch-system tasks run them (resubmittable by hand)."""


@experiment.command("run")
@click.argument("config_json", type=click.Path(exists=True, dir_okay=False, path_type=Path, resolve_path=True))
def run_command(config_json: Path) -> None:
    """Run one experiment from its MODEL_DIR/config.json. Exit 1 when it failed."""
    from harness.engine.run import exit_for

    summary = run_from_config(config_json)
    exit_for([summary], Path(json.loads(config_json.read_text())["run_dir"]))
    click.secho(f"{summary['experiment']}: ok", fg="green")


@experiment.command("report")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path, resolve_path=True))
def report_command(run_dir: Path) -> None:
    """Build the run's report from what its experiments left; exit 1 when any failed."""
    from harness.engine.run import exit_for

    exit_for(report_run(run_dir), run_dir)
    sys.exit(0)

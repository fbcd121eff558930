"""``harness`` command line: one verb per pipeline stage, Ultralytics-style good defaults.

Sub-commands are imported lazily so that ``harness render …`` does not pay for importing the
evaluation or framework modules.
"""

from __future__ import annotations

import errno
import importlib
import json
import logging
from pathlib import Path

import click

from harness import __version__

# verb -> "module:attribute"; each stage owns its own click command in its own package.
COMMANDS = {
    "data": "harness.data.cli:data",
    "render": "harness.render.cli:render",
    "train": "harness.engine.cli:train",
    "detect": "harness.engine.cli:detect",
    "doctor": "harness.engine.cli:doctor",
    "weights": "harness.engine.cli:weights",
    "evaluate": "harness.evaluation.cli:evaluate",
    "report": "harness.report.cli:report",
    "reproduce": "harness.engine.reproduce:reproduce",
    "count": "harness.count.cli:count",
    "status": "harness.cli:status",
    "cancel": "harness.cli:cancel",
    "experiment": "harness.engine.task:experiment",
}


class SpeakingContext(click.Context):
    """The library raises (harness.core.errors), the command line speaks: a domain exception raised
    while a verb runs becomes click's message and exit status *with that verb's usage line* (this
    context is the verb's own)."""

    def invoke(self, callback, /, *args, **kwargs):
        from harness.core.errors import HarnessError, RunFailed, UsageProblem

        try:
            return super().invoke(callback, *args, **kwargs)
        except UsageProblem as exc:
            raise click.UsageError(str(exc), ctx=self) from None
        except RunFailed:
            raise click.exceptions.Exit(1) from None
        except HarnessError as exc:
            raise click.ClickException(str(exc)) from None


def _speaking(command: click.Command) -> click.Command:
    """``command`` and its sub-commands run in :class:`SpeakingContext`."""
    command.context_class = SpeakingContext
    for sub in getattr(command, "commands", {}).values():
        _speaking(sub)
    return command


class LazyGroup(click.Group):
    def invoke(self, ctx: click.Context):
        """Faults of the machine (disk full, read-only or forbidden folder, a vanished file) and files of
        ours cut short by them end any verb with one line naming the path and what to do, exit status 1,
        never a traceback."""
        from harness.core.atomic import CorruptFileError

        try:
            return super().invoke(ctx)
        except OSError as exc:
            raise click.ClickException(describe_os_error(exc)) from None
        except CorruptFileError as exc:
            raise click.ClickException(str(exc)) from None

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = COMMANDS.get(name)
        if target is None:
            return None
        module, attr = target.split(":")
        return _speaking(getattr(importlib.import_module(module), attr))


class EchoHandler(logging.Handler):
    """The harness's log records as the command line has always shown them: the message alone, INFO on
    stdout, WARNING and above on stderr, coloured on a terminal by the record's ``style`` (click.style
    keywords, e.g. ``extra={"style": {"fg": "green"}}``)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            style = getattr(record, "style", None) or {}
            click.secho(self.format(record), err=record.levelno >= logging.WARNING, **style)
        except Exception:
            self.handleError(record)


def configure_logging() -> None:
    """Route the ``harness`` loggers to the console (once per process); library code only logs."""
    logger = logging.getLogger("harness")
    if not any(isinstance(h, EchoHandler) for h in logger.handlers):
        logger.addHandler(EchoHandler())
    logger.setLevel(logging.INFO)


_OS_ERROR_HINTS = {
    errno.ENOSPC: "the disk is full: free space there and run the same command again (finished steps are kept)",
    errno.EDQUOT: "the disk quota is used up: free space there and run the same command again",
    errno.EROFS: "the file system is read-only: choose a writable output folder (--out / --project)",
    errno.EACCES: "permission denied: choose a folder you may write to, or fix its permissions",
    errno.EPERM: "operation not permitted: choose a folder you may write to, or fix its permissions",
}


def describe_os_error(exc: OSError) -> str:
    """``path: what happened — what to do`` for an OSError that reached the command line."""
    where = " -> ".join(str(f) for f in (exc.filename, exc.filename2) if f) or "(no path)"
    hint = _OS_ERROR_HINTS.get(exc.errno or 0)
    return f"{where}: {exc.strerror or exc}" + (f" — {hint}" if hint else "")


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="harness")
@click.option(
    "-v",
    "--verbose",
    is_flag=True,
    default=False,
    help="Stream the native frameworks' output (also kept in the log files whose paths are printed).",
)
def main(verbose: bool) -> None:
    """Reproduce Wang et al. 2019 (PLoS ONE e0218808) on native Caffe-SSD and Darknet."""
    configure_logging()
    if verbose:
        import os

        os.environ["HARNESS_VERBOSE"] = "1"  # child processes (pycaffe workers) see it too


RUN_DIR = click.Path(exists=True, file_okay=False, path_type=Path, resolve_path=True)


def _run_dir_runner(run_dir: Path):
    """The runner recorded in RUN_DIR/run.json (usage error when there is none or it is unknown)."""
    from harness.runners import runner_of

    if not (run_dir / "run.json").is_file():
        raise click.UsageError(f"{run_dir} holds no run.json: not a harness run directory")
    try:
        return runner_of(run_dir)
    except KeyError as exc:
        raise click.UsageError(f"{run_dir / 'run.json'}: {exc.args[0]}") from None


@click.command("status")
@click.argument("run_dir", type=RUN_DIR)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def status(run_dir: Path, as_json: bool) -> None:
    """Per experiment of RUN_DIR: pending / running / done / failed (with its log), iterations
    reached, last loss, best VOC07 mAP so far; the scheduler's job states for runs its runner queued
    (e.g. --runner slurm)."""
    from harness.status import format_table, run_status

    runner = _run_dir_runner(run_dir)
    try:
        rows = run_status(run_dir, runner.status(run_dir))
    except ValueError as exc:  # a corrupt run.json or config.json, named in the message
        raise click.ClickException(str(exc)) from None
    except KeyError as exc:
        raise click.ClickException(f"{run_dir / 'run.json'}: no field {exc}: not a harness run record") from None
    if as_json:
        click.echo(json.dumps([{k: v for k, v in vars(r).items() if k != "summary"} for r in rows], indent=2))
    else:
        click.echo(format_table(rows))


@click.command("cancel")
@click.argument("run_dir", type=RUN_DIR)
def cancel(run_dir: Path) -> None:
    """Stop RUN_DIR's queued and running work through the runner that started it (e.g. scancel for
    --runner slurm). A local run is stopped with Ctrl-C on its command; a rerun resumes either way."""
    runner = _run_dir_runner(run_dir)
    cancelled = runner.cancel(run_dir)
    if cancelled:
        click.echo(f"{runner.name}: cancelled {', '.join(cancelled)}")
    else:
        click.echo(f"{runner.name}: nothing queued to cancel (stop a local run with Ctrl-C; a rerun resumes)")

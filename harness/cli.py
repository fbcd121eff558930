"""``harness`` command line: one verb per pipeline stage, Ultralytics-style good defaults.

Sub-commands are imported lazily so that ``harness render …`` does not pay for importing the
evaluation or framework modules.
"""

from __future__ import annotations

import errno
import importlib

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
    "status": "harness.status:status",
    "experiment": "harness.engine.task:experiment",
}


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
        return getattr(importlib.import_module(module), attr)


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
    if verbose:
        import os

        os.environ["HARNESS_VERBOSE"] = "1"  # child processes (pycaffe workers) see it too

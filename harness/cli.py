"""``harness`` command line: one verb per pipeline stage, Ultralytics-style good defaults.

Sub-commands are imported lazily so that ``harness render …`` does not pay for importing the
evaluation or framework modules.
"""
from __future__ import annotations

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
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = COMMANDS.get(name)
        if target is None:
            return None
        module, attr = target.split(":")
        return getattr(importlib.import_module(module), attr)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="harness")
@click.option("-v", "--verbose", is_flag=True, default=False,
              help="Stream the native frameworks' output (also kept in the log files whose paths are printed).")
def main(verbose: bool) -> None:
    """Reproduce Wang et al. 2019 (PLoS ONE e0218808) on native Caffe-SSD and Darknet."""
    if verbose:
        import os

        os.environ["HARNESS_VERBOSE"] = "1"     # child processes (pycaffe workers) see it too

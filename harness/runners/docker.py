"""The docker runner: this same command line again, inside the harness GPU image."""

from __future__ import annotations

from harness.runners import Outcome, Submission


class DockerRunner:
    name = "docker"

    def submit(self, submission: Submission) -> Outcome:
        """Does not return: exits with the container's status (see ``rerun_in_docker``)."""
        from harness.engine.cli import rerun_in_docker

        rerun_in_docker(
            submission.options.get("image"),
            read_only=submission.options.get("read_only", []),
            writable=submission.options.get("writable", []),
        )
        return Outcome()

    def status(self, run_dir) -> dict[str, str]:
        return {}  # the container writes the same run directory a local run does

    def cancel(self, run_dir) -> list[str]:
        return []

"""The local runner: every experiment in this process, one after the other."""
from __future__ import annotations

from harness.runners import Outcome, Submission


class LocalRunner:
    name = "local"

    def submit(self, submission: Submission) -> Outcome:
        """Prepare data once, then each experiment through ``run_experiment`` (as tasks do)."""
        from harness.engine.run import execute

        prepared, summaries = execute(submission.settings, submission.configs, submission.overwrite,
                                      on_start=submission.options.get("on_start"))
        return Outcome(summaries=summaries, prepared=prepared)

    def status(self, run_dir) -> dict[str, str]:
        return {}   # no scheduler: the run directory (locks, summaries) is the whole truth

    def cancel(self, run_dir) -> list[str]:
        return []   # Ctrl-C / SIGTERM on the process; a rerun resumes

"""Every run goes through a Runner picked from harness.runners.RUNNERS: a runner registered with one
line gets its ``--runner`` choice, is recorded in run.json by the runs it makes, and is what
``harness status`` and ``harness cancel`` ask (docs/architecture.md, "A new runner")."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from harness.cli import main
from harness.config import ModelSpec
from harness.core.profiles import SMOKE
from harness.engine.run import RunSettings, settings_of, write_run_file
from harness.options import runner_options
from harness.runners import RUNNERS, Outcome, Submission, get_runner, runner_names, runner_of
from harness.status import TaskState

CANCELLED: list[str] = []


class FakeRunner:
    """A scheduler that 'queues' every experiment and says the first one runs."""

    name = "fake"

    def submit(self, submission: Submission) -> Outcome:
        settings = RunSettings(**{**vars(submission.settings), "runner": self.name})
        write_run_file(settings, submission.configs)
        return Outcome(jobs={c.name: f"f{i}" for i, c in enumerate(submission.configs)})

    def status(self, run_dir) -> dict[str, TaskState]:
        names = list(json.loads((Path(run_dir) / "run.json").read_text())["experiments"])
        return {name: TaskState(f"f{i}", "running" if i == 0 else "pending", "RUN" if i == 0 else "WAIT", "/q/log")
                for i, name in enumerate(names)}

    def cancel(self, run_dir) -> list[str]:
        CANCELLED.append(str(run_dir))
        return ["f0", "f1"]


@pytest.fixture
def fake_runner(monkeypatch):
    monkeypatch.setitem(RUNNERS, "fake", "test_runner_registry:FakeRunner")
    CANCELLED.clear()
    return get_runner("fake")


def _submitted(tmp_path: Path, runner) -> Path:
    settings = RunSettings(tmp_path / "run", SMOKE)
    configs = [settings.config_for(ModelSpec(f"yolov3-tiny_{s}", "darknet", "yolov3-tiny", s), role="custom")
               for s in (128, 160)]
    runner.submit(Submission(settings, configs))
    for config in configs:
        config.write()
    return settings.run_dir


def test_the_runner_choices_are_the_registry(fake_runner) -> None:
    assert runner_names()[:3] == ("local", "docker", "slurm") and "fake" in runner_names()

    @click.command()
    @runner_options
    def verb(runner, **_):
        click.echo(f"runner={runner}")

    result = CliRunner().invoke(verb, ["--runner", "nope"])
    assert result.exit_code == 2 and all(name in result.output for name in ("local", "slurm", "fake"))


def test_status_and_cancel_ask_the_runner_recorded_in_run_json(tmp_path: Path, fake_runner) -> None:
    run_dir = _submitted(tmp_path, fake_runner)
    assert json.loads((run_dir / "run.json").read_text())["runner"] == "fake"
    assert settings_of(run_dir).runner == "fake" and runner_of(run_dir).name == "fake"

    shown = CliRunner().invoke(main, ["status", str(run_dir)])
    assert shown.exit_code == 0, shown.output
    rows = {line.split()[0]: line for line in shown.output.splitlines()[1:]}
    assert "running" in rows["yolov3-tiny_128"] and "f0 RUN" in rows["yolov3-tiny_128"]
    assert "pending" in rows["yolov3-tiny_160"] and "f1 WAIT" in rows["yolov3-tiny_160"]

    cancelled = CliRunner().invoke(main, ["cancel", str(run_dir)])
    assert cancelled.exit_code == 0 and "fake: cancelled f0, f1" in cancelled.output
    assert CANCELLED == [str(run_dir)]


def test_a_local_run_has_no_scheduler_and_nothing_to_cancel(tmp_path: Path) -> None:
    settings = RunSettings(tmp_path / "run", SMOKE)
    write_run_file(settings, [])
    assert runner_of(settings.run_dir).name == "local" and runner_of(settings.run_dir).status(settings.run_dir) == {}
    result = CliRunner().invoke(main, ["cancel", str(settings.run_dir)])
    assert result.exit_code == 0 and "local: nothing queued to cancel" in result.output


def test_an_unknown_runner_in_run_json_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "run.json").write_text(json.dumps({"runner": "nope", "experiments": {}}))
    result = CliRunner().invoke(main, ["status", str(tmp_path)])
    assert result.exit_code == 2 and "unknown runner 'nope'" in result.output

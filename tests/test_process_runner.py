"""The native-process runner, exercised with tiny real child processes (no mocks)."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.core import process
from harness.core.process import describe_returncode, line_buffered, read_log_tail, run_native
from harness.core.types import NativeFrameworkError, Progress

STEP = re.compile(r"^(\d+): loss=(\S+)$")


def parse_step(line: str) -> Progress | None:
    match = STEP.match(line)
    return Progress(int(match.group(1)), float(match.group(2))) if match else None


def python_child(code: str) -> list[str]:
    return [sys.executable, "-u", "-c", code]


def test_merges_stdout_and_stderr_and_parses_progress(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "print('starting')\n"
        "print('layer table', file=sys.stderr)\n"
        "for i in range(1, 6): print(f'{i}: loss={10.0 / i}')\n"
    )
    run = run_native(python_child(code), tmp_path / "logs" / "train.log", parse_step, 5, label="toy")
    log = (tmp_path / "logs" / "train.log").read_text()
    assert run.returncode == 0 and not run.crashed
    assert "starting" in log and "layer table" in log and "5: loss=2.0" in log
    assert run.progress_lines == 5
    assert run.last == Progress(5, 2.0)
    assert run.seconds > 0


def test_nonzero_exit_is_returned_not_raised(tmp_path: Path) -> None:
    run = run_native(python_child("print('boom'); raise SystemExit(3)"), tmp_path / "x.log", parse_step, None)
    assert run.returncode == 3
    assert "boom" in run.log_tail()


def test_segfault_is_reported_as_signal(tmp_path: Path) -> None:
    code = "import os, signal; print('before crash'); os.kill(os.getpid(), signal.SIGSEGV)"
    run = run_native(python_child(code), tmp_path / "x.log", parse_step, None)
    assert run.crashed
    assert "SIGSEGV" in run.describe_returncode()
    assert "before crash" in run.log_tail()


def test_describe_returncode_shell_style() -> None:
    assert "SIGSEGV" in describe_returncode(139)
    assert "SIGABRT" in describe_returncode(134)
    assert describe_returncode(0) == "exit 0"


def test_missing_executable_raises_clear_error(tmp_path: Path) -> None:
    with pytest.raises(NativeFrameworkError, match="no-such-framework-binary"):
        run_native(["/nonexistent/no-such-framework-binary"], tmp_path / "x.log", parse_step, None, unbuffer=False)


def test_env_and_cwd_reach_the_child(tmp_path: Path) -> None:
    code = "import os; print(os.environ['HARNESS_TEST_VALUE']); print(os.getcwd())"
    run = run_native(python_child(code), tmp_path / "x.log", parse_step, None,
                     env={"HARNESS_TEST_VALUE": "hello-env"}, cwd=tmp_path)
    tail = run.log_tail()
    assert run.returncode == 0
    assert "hello-env" in tail and str(tmp_path.resolve()) in tail


def test_lines_arrive_while_the_child_is_still_running(tmp_path: Path) -> None:
    code = "import time\nprint('1: loss=1.0')\ntime.sleep(1.5)\nprint('2: loss=0.5')\n"
    seen: list[float] = []
    start = time.monotonic()
    run_native(python_child(code), tmp_path / "x.log", parse_step, 2,
               on_progress=lambda p: seen.append(time.monotonic() - start))
    assert len(seen) == 2
    assert seen[0] < 1.2 < seen[1]


def test_parser_errors_are_recorded_not_fatal(tmp_path: Path) -> None:
    def bad_parser(line: str) -> Progress | None:
        if line.startswith("bad"):
            raise ValueError("cannot parse")
        return parse_step(line)

    code = "print('bad line'); print('1: loss=3.0')"
    run = run_native(python_child(code), tmp_path / "x.log", bad_parser, 1)
    assert run.last == Progress(1, 3.0)
    assert len(run.parse_errors) == 1 and "bad line" in run.parse_errors[0]


def test_append_keeps_earlier_log(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    run_native(python_child("print('first run')"), log, parse_step, None)
    run_native(python_child("print('second run')"), log, parse_step, None, append=True)
    text = log.read_text()
    assert "first run" in text and "second run" in text


def test_log_tail_reads_last_lines(tmp_path: Path) -> None:
    log = tmp_path / "big.log"
    log.write_text("".join(f"line {i}\n" for i in range(10000)))
    assert read_log_tail(log, 3).splitlines() == ["line 9997", "line 9998", "line 9999"]
    assert read_log_tail(tmp_path / "missing.log") == ""


def test_line_buffered_wraps_with_stdbuf_when_available() -> None:
    wrapped = line_buffered(["darknet", "detector"])
    if wrapped[0] != "darknet":
        assert Path(wrapped[0]).name == "stdbuf" and wrapped[1:3] == ["-oL", "-eL"]
    assert wrapped[-2:] == ["darknet", "detector"]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); it has exited, which is what matters here.
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def _interrupt_run(tmp_path: Path, child_code: str) -> tuple[NativeFrameworkError, int, float]:
    """Start a child, press 'Ctrl-C' (SIGINT to ourselves) once it has reported one step."""
    pids: list[int] = []

    def on_progress(progress: Progress) -> None:
        os.kill(os.getpid(), signal.SIGINT)

    def parse(line: str) -> Progress | None:
        if line.startswith("pid "):
            pids.append(int(line.split()[1]))
        return parse_step(line)

    start = time.monotonic()
    with pytest.raises(NativeFrameworkError) as caught:
        run_native(python_child(child_code), tmp_path / "int.log", parse, 100, on_progress=on_progress)
    return caught.value, pids[0], time.monotonic() - start


def test_ctrl_c_terminates_child_and_keeps_log(tmp_path: Path) -> None:
    code = "import os, time\nprint('pid', os.getpid())\nprint('1: loss=5.0')\ntime.sleep(60)\n"
    error, pid, seconds = _interrupt_run(tmp_path, code)
    assert seconds < 10
    assert "interrupted" in str(error) and str(tmp_path / "int.log") in str(error)
    assert "1: loss=5.0" in error.log_tail
    assert not _pid_alive(pid)
    assert "1: loss=5.0" in (tmp_path / "int.log").read_text()


def test_ctrl_c_kills_child_that_ignores_sigterm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(process, "TERMINATE_GRACE_SECONDS", 0.5)
    code = (
        "import os, signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "print('pid', os.getpid())\nprint('1: loss=5.0')\ntime.sleep(60)\n"
    )
    error, pid, seconds = _interrupt_run(tmp_path, code)
    assert seconds < 10
    assert not _pid_alive(pid)


def test_timeout_terminates_child(tmp_path: Path) -> None:
    start = time.monotonic()
    with pytest.raises(NativeFrameworkError, match="still running after"):
        run_native(python_child("import time; print('waiting'); time.sleep(60)"), tmp_path / "x.log",
                   parse_step, None, timeout=1.0)
    assert time.monotonic() - start < 10


def test_progress_bar_renders_when_forced(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code = "for i in range(1, 4): print(f'{i}: loss={1.0 / i}')"
    run_native(python_child(code), tmp_path / "x.log", parse_step, 3, label="toybar", show_progress=True)
    err = capsys.readouterr().err
    assert "toybar" in err and "3/3" in err and "loss=" in err


HARNESS_SCRIPT = """
import sys
from pathlib import Path
from harness.core.process import run_native
from harness.core.types import NativeFrameworkError
child = [sys.executable, "-u", "-c", "import os, time; print('pid', os.getpid()); time.sleep(60)"]
try:
    run_native(child, Path(sys.argv[1]), lambda line: None, None)
except NativeFrameworkError as exc:
    print("HARNESS-ERROR", str(exc).splitlines()[0], flush=True)
    sys.exit(3)
"""


def _start_harness(tmp_path: Path) -> tuple[subprocess.Popen, int]:
    """A separate Python process running run_native; returns it and its child's pid."""
    log = tmp_path / "child.log"
    root = Path(__file__).resolve().parents[1]
    harness = subprocess.Popen([sys.executable, "-c", HARNESS_SCRIPT, str(log)], cwd=root,
                               stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(root)})
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        text = log.read_text() if log.exists() else ""
        if text.startswith("pid "):
            return harness, int(text.split()[1])
        time.sleep(0.05)
    harness.kill()
    raise AssertionError("child never started")


def _wait_gone(pid: int, seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not _pid_alive(pid):
            return True
        time.sleep(0.05)
    return False


def test_sigterm_to_harness_stops_child(tmp_path: Path) -> None:
    harness, child_pid = _start_harness(tmp_path)
    harness.send_signal(signal.SIGTERM)
    out, _ = harness.communicate(timeout=20)
    assert harness.returncode == 3 and "terminated (SIGTERM)" in out
    assert _wait_gone(child_pid)


def test_killed_harness_does_not_leave_child_running(tmp_path: Path) -> None:
    harness, child_pid = _start_harness(tmp_path)
    harness.kill()
    harness.wait(timeout=20)
    assert _wait_gone(child_pid), "child survived its harness (PR_SET_PDEATHSIG)"

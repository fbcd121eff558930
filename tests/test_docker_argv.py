"""`--runner docker`: the `docker run` argument lists and how they are executed.

Unit level: a stand-in `docker` executable records the argument list it receives (the contract
relied on here is only "argv reaches docker unchanged"). The real engine, images and runs are in
tests/test_docker_image.py.
"""
from __future__ import annotations

import json
import os
import shutil
import stat
import sys
from pathlib import Path

import pytest

from harness.runners import docker_argv as dk
from harness.runners.docker_argv import (
    IMAGES,
    DockerUnavailableError,
    Mount,
    docker_run_argv,
    order_mounts,
    run_docker_argv,
    run_in_docker,
    wrap_for_docker,
)


def option_values(argv: list[str], flag: str) -> list[str]:
    """Every value given to ``flag`` before the image name."""
    return [argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg == flag]


def test_basic_shape_image_then_command():
    argv = docker_run_argv("img:tag", ["python3", "-m", "harness", "doctor"], user=(1000, 1000))
    assert argv[:4] == ["docker", "run", "--rm", "--init"]
    image_at = argv.index("img:tag")
    assert argv[image_at + 1:] == ["python3", "-m", "harness", "doctor"]
    # every option comes before the image, or docker would pass it to the command
    assert all(not a.startswith("-") or i < image_at for i, a in enumerate(argv) if i <= image_at)


def test_user_defaults_to_caller_and_can_be_given():
    assert option_values(docker_run_argv("i", ["true"]), "-u") == [f"{os.getuid()}:{os.getgid()}"]
    assert option_values(docker_run_argv("i", ["true"], user=(1234, 99)), "-u") == ["1234:99"]


@pytest.mark.parametrize("gpus, expected", [
    ("all", ["--gpus", "all"]),
    ("2", ["--gpus", "2"]),                      # a count, Docker's meaning of a bare number
    ("device=1", ["--gpus", "device=1"]),
    ("0,1", ["--gpus", '"device=0,1"']),         # Docker parses --gpus as CSV: inner quotes
    ("device=GPU-3a1b,GPU-77ff", ["--gpus", '"device=GPU-3a1b,GPU-77ff"']),
])
def test_gpus_flag(gpus, expected):
    argv = docker_run_argv("i", ["true"], gpus=gpus)
    at = argv.index("--gpus")
    assert argv[at:at + 2] == expected


@pytest.mark.parametrize("gpus", [None, "", "none", "cpu"])
def test_no_gpus_flag_for_cpu_containers(gpus):
    assert "--gpus" not in docker_run_argv("i", ["true"], gpus=gpus)


def test_bad_gpus_value_is_refused():
    with pytest.raises(ValueError, match="invalid --gpus"):
        docker_run_argv("i", ["true"], gpus="0;rm -rf /")


def test_env_values_names_and_defaults():
    argv = docker_run_argv("i", ["true"], env={"HARNESS_CAFFE_GPU": "1", "A_B": "x y=z"},
                           env_passthrough=["SECRET_TOKEN"])
    values = option_values(argv, "-e")
    assert "HARNESS_CAFFE_GPU=1" in values
    assert "A_B=x y=z" in values                  # one argv element, spaces and '=' intact
    assert "HOME=/tmp" in values                  # the container user has no home of its own
    assert "SECRET_TOKEN" in values               # passed by name: the value never shows in argv
    assert not any(v.startswith("SECRET_TOKEN=") for v in values)


def test_env_home_can_be_overridden():
    values = option_values(docker_run_argv("i", ["true"], env={"HOME": "/work/home"}), "-e")
    assert "HOME=/work/home" in values and "HOME=/tmp" not in values


@pytest.mark.parametrize("env", [{"BAD-NAME": "1"}, {"1X": "1"}, {"OK": "a\nb"}])
def test_env_errors(env):
    with pytest.raises(ValueError):
        docker_run_argv("i", ["true"], env=env)


def test_mounts_read_only_and_read_write():
    argv = docker_run_argv("i", ["true"], mounts=[
        Mount(Path("/data/bccd"), read_only=True), Mount(Path("/home/u/runs")),
    ])
    assert option_values(argv, "-v") == ["/data/bccd:/data/bccd:ro", "/home/u/runs:/home/u/runs"]


def test_paths_with_spaces_stay_single_arguments():
    argv = docker_run_argv("i", ["ls", "/my data/x y"], workdir="/my runs",
                           mounts=[Mount(Path("/my data"), read_only=True), Mount(Path("/my runs"))])
    assert option_values(argv, "-v") == ["/my data:/my data:ro", "/my runs:/my runs"]
    assert option_values(argv, "-w") == ["/my runs"]
    assert argv[-1] == "/my data/x y"


def test_colon_in_path_uses_mount_syntax_with_csv_quoting():
    argv = docker_run_argv("i", ["true"], mounts=[Mount(Path("/d/a:b,c"), read_only=True)])
    assert "-v" not in argv
    assert option_values(argv, "--mount") == ['type=bind,"source=/d/a:b,c","target=/d/a:b,c",readonly']


def test_container_paths_must_be_absolute():
    with pytest.raises(ValueError, match="absolute"):
        docker_run_argv("i", ["true"], workdir="relative/dir")
    with pytest.raises(ValueError, match="absolute"):
        docker_run_argv("i", ["true"], mounts=[Mount(Path("/x"), container="rel")])


def test_image_and_command_are_checked():
    with pytest.raises(ValueError):
        docker_run_argv("", ["true"])
    with pytest.raises(ValueError):
        docker_run_argv("--privileged", ["true"])
    with pytest.raises(ValueError):
        docker_run_argv("i", [])


def test_mount_order_parents_first_and_duplicates_merged():
    mounts = order_mounts([
        Mount(Path("/w/repo/data"), read_only=True),
        Mount(Path("/w/repo")),
        Mount(Path("/w/repo/runs")),               # same mode as its parent: already visible
        Mount(Path("/x")), Mount(Path("/x"), read_only=True),  # both ways: read-write wins
    ])
    assert [(str(m.host), m.read_only) for m in mounts] == [
        ("/x", False), ("/w/repo", False), ("/w/repo/data", True),
    ]


def test_wrap_for_docker_mounts_and_keeps_paths(tmp_path, monkeypatch):
    data = tmp_path / "voc data"
    (data / "Annotations").mkdir(parents=True)
    runs = tmp_path / "runs"                       # does not exist yet
    monkeypatch.chdir(tmp_path)
    argv = wrap_for_docker(
        [sys.executable, "-m", "harness", "reproduce", "table1", "--data", str(data), "--project", "runs"],
        "img", [runs], read_only=[data], env={"HARNESS_CAFFE_GPU": "1"}, user=(1000, 1000))
    assert runs.is_dir(), "the run directory is created by the caller, not root-owned by dockerd"
    assert f"{data}:{data}:ro" in option_values(argv, "-v")
    assert f"{runs}:{runs}" in option_values(argv, "-v")
    # cwd (tmp_path) is not mounted: no -w, so relative paths would not resolve -> caller mounts cwd
    assert "-w" not in argv
    assert argv[argv.index("img") + 1:] == ["python3", "-m", "harness", "reproduce", "table1",
                                            "--data", str(data), "--project", "runs"]


def test_wrap_for_docker_uses_cwd_when_mounted(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = wrap_for_docker(["harness", "doctor"], "img", [tmp_path], user=(1, 1))
    assert option_values(argv, "-w") == [str(tmp_path.resolve())]
    assert argv[-2:] == ["harness", "doctor"]


def test_wrap_for_docker_missing_input_names_the_path(tmp_path):
    missing = tmp_path / "no-such-data"
    with pytest.raises(FileNotFoundError, match="no-such-data"):
        wrap_for_docker(["harness", "doctor"], "img", [], read_only=[missing])


def test_default_image_follows_the_device(monkeypatch):
    monkeypatch.delenv("HARNESS_DOCKER_IMAGE", raising=False)
    assert dk.default_image(gpu=False) == IMAGES["cpu"] == "leukonet-harness:cpu"
    assert dk.default_image(gpu=True) == IMAGES["gpu"] == "leukonet-harness:gpu"
    monkeypatch.setenv("HARNESS_DOCKER_IMAGE", "mine:1")
    assert dk.default_image(gpu=True) == "mine:1"


@pytest.mark.parametrize("argv, device, gpu", [
    (["reproduce", "table1"], "auto", None),
    (["train", "ssd", "--device", "cpu"], "cpu", False),
    (["train", "ssd", "--device=gpu"], "gpu", True),
    (["reproduce", "table1", "--device", "gpu:1"], "gpu:1", True),
])
def test_device_picks_image_and_gpus(argv, device, gpu):
    from harness.runners.docker import device_of, gpus_for, wants_gpu

    assert device_of(argv) == device
    if gpu is not None:
        assert wants_gpu(device) is gpu
    assert gpus_for(device) == ("1" if device == "gpu:1" else "all")


# --- execution -------------------------------------------------------------------------------

FAKE_DOCKER = """#!{python}
import json, sys
if sys.argv[1] == "info":
    mode = {mode!r}
    if mode == "down":
        sys.stderr.write("Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?\\n")
        sys.exit(1)
    print("27.3.1|io.containerd.runc.v2 nvidia runc ")
    sys.exit(0)
if sys.argv[1:3] == ["image", "inspect"]:
    sys.exit(0)
json.dump(sys.argv[1:], open({record!r}, "w"))
print("inside: training failed, see its log")
sys.exit(7)
"""


def fake_docker(tmp_path: Path, mode: str) -> Path:
    """A stand-in `docker` CLI: answers `info` like an engine that is up or down, records `run`."""
    record = tmp_path / "argv.json"
    exe = tmp_path / "bin" / "docker"
    exe.parent.mkdir()
    exe.write_text(FAKE_DOCKER.format(python=sys.executable, mode=mode, record=str(record)))
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    return exe


def test_run_passes_argv_unchanged_and_returns_status(tmp_path):
    exe = fake_docker(tmp_path, "up")
    argv = docker_run_argv("img", ["echo", "a b", "--x=1"], docker=str(exe),
                           mounts=[Mount(Path("/p q"), read_only=True)], user=(5, 6))
    result = run_docker_argv(argv)
    assert result.returncode == 7                  # the command's status, not judged
    assert json.loads((tmp_path / "argv.json").read_text()) == argv[1:]


def test_run_in_docker_builds_and_runs(tmp_path):
    exe = fake_docker(tmp_path, "up")
    runs = tmp_path / "runs"
    result = run_in_docker("img", ["harness", "doctor"], paths=[runs], docker=str(exe), user=(5, 6))
    recorded = json.loads((tmp_path / "argv.json").read_text())
    assert result.returncode == 7
    assert recorded[-3:] == ["img", "harness", "doctor"]
    assert f"{runs.resolve()}:{runs.resolve()}" in recorded


def test_engine_down_is_a_clear_error(tmp_path):
    exe = fake_docker(tmp_path, "down")
    with pytest.raises(DockerUnavailableError, match="no Docker engine reachable.*Cannot connect"):
        run_docker_argv(docker_run_argv("img", ["true"], docker=str(exe)))
    assert not (tmp_path / "argv.json").exists(), "nothing is run when the engine is down"


def test_missing_client_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(DockerUnavailableError, match="not found on PATH"):
        run_in_docker("img", ["true"], paths=[])


@pytest.mark.skipif(shutil.which("docker") is None, reason="no docker client installed")
def test_real_client_without_engine(tmp_path):
    """The machines here have the docker client only: the real failure must be the clear one."""
    try:
        version = dk.check_docker_engine(need_gpus=False)
    except DockerUnavailableError as exc:
        assert "no Docker engine reachable" in str(exc)
    else:
        pytest.skip(f"a Docker engine {version} is reachable here; covered by the GPU workflow")


def test_symlinked_path_is_mounted_where_the_command_line_says(tmp_path):
    real = tmp_path / "disk" / "bccd"
    real.mkdir(parents=True)
    link = tmp_path / "data"
    link.symlink_to(real)
    argv = wrap_for_docker(["harness", "evaluate", "--data", str(link)], "img", [], read_only=[link], user=(1, 1))
    assert option_values(argv, "-v") == [f"{real.resolve()}:{link}:ro"]


def test_reproduce_runner_docker_reruns_the_command_in_the_image(tmp_path, monkeypatch):
    """`harness reproduce table1 --runner docker`: same command inside, data read-only, exit status kept."""
    from click.testing import CliRunner

    from harness.cli import main

    exe = fake_docker(tmp_path, "up")
    monkeypatch.setenv("PATH", f"{exe.parent}:{os.environ['PATH']}")
    data = tmp_path / "voc"
    data.mkdir()
    project = tmp_path / "runs"
    argv = ["reproduce", "table1", "--profile", "paper", "--data", str(data), "--project", str(project),
            "--runner", "docker", "--image", "my/image:tag"]
    monkeypatch.setattr(sys, "argv", ["harness", *argv])
    result = CliRunner().invoke(main, argv)                         # click >= 8.2: output holds stderr too
    assert result.exit_code == 1, result.output                     # the container failed (status 7)
    logs = list((project / "docker-logs").glob("reproduce-table1-*.log"))
    assert len(logs) == 1 and str(logs[0]) in result.output
    assert "exited with status 7" in result.output
    assert "inside: training failed" in logs[0].read_text()         # the container's output is kept
    recorded = json.loads((tmp_path / "argv.json").read_text())
    image_at = recorded.index("my/image:tag")
    assert recorded[image_at + 1:] == ["python3", "-m", "harness", "reproduce", "table1", "--profile", "paper",
                                       "--data", str(data), "--project", str(project)]
    assert f"{data.resolve()}:{data.resolve()}:ro" in recorded
    assert f"{project.resolve()}:{project.resolve()}" in recorded
    assert not any(a.startswith("HARNESS_CACHE=") for a in recorded)


def test_reproduce_runner_docker_without_engine_is_a_clean_error(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from harness.cli import main

    exe = fake_docker(tmp_path, "down")
    monkeypatch.setenv("PATH", f"{exe.parent}:{os.environ['PATH']}")
    argv = ["reproduce", "table1", "--project", str(tmp_path / "runs"), "--runner", "docker"]
    monkeypatch.setattr(sys, "argv", ["harness", *argv])
    result = CliRunner().invoke(main, argv)
    assert result.exit_code == 1 and "no Docker engine reachable" in result.output
    assert "Traceback" not in result.output

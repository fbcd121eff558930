"""The docker runner: this same command line again, inside the harness image (docker/Dockerfile).

``harness train … --runner docker`` and ``harness reproduce table1 … --runner docker`` hand their
command line (without ``--runner``/``--image``) to :meth:`DockerRunner.submit`, which runs it with
``python3 -m harness`` in the image: inputs mounted read-only and the project folder read-write,
each at its own path, as the calling user, so the run folder on the host is the one a local run
writes, owned by the caller. ``--device gpu`` (or ``auto`` on a host where ``nvidia-smi`` sees a
GPU) picks the ``gpu`` image and passes ``--gpus``; otherwise the ``cpu`` image runs without.
The container's output is streamed and kept in ``PROJECT/docker-logs/``; a failing container makes
the command exit 1 naming that log.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Optional

from harness.core.errors import RunFailed, UsageProblem
from harness.runners import Outcome, Submission
from harness.runners.docker_argv import (
    DockerUnavailableError,
    check_docker_engine,
    default_image,
    wrap_for_docker,
)

LOG_DIR = "docker-logs"
log = logging.getLogger(__name__)


class DockerRunner:
    name = "docker"

    def submit(self, submission: Submission) -> Outcome:
        """The command line in the image; raises RunFailed (UsageProblem for a usage error inside)
        when the container did not succeed. The run folder on the host holds the results."""
        options = submission.options
        status = self.rerun(
            list(options.get("argv", sys.argv[1:])),
            image=options.get("image"),
            read_only=options.get("read_only", []),
            writable=options.get("writable", []),
        )
        if status == 2:
            raise UsageProblem("the command was refused inside the container (its log is named above)")
        if status:
            raise RunFailed()
        return Outcome()

    def rerun(self, argv: Sequence[str], *, image: Optional[str], read_only, writable) -> int:
        """``harness ARGV`` in the image; the exit status the host command should have (0, 1 or 2).
        Raises DockerUnavailableError when there is no engine or no image."""
        return run_command_in_image(argv, image=image, read_only=read_only, writable=writable)

    def status(self, run_dir) -> dict[str, str]:
        return {}  # the container writes the same run directory a local run does

    def cancel(self, run_dir) -> list[str]:
        return []


def device_of(argv: Sequence[str]) -> str:
    """The ``--device`` value of a harness command line (``auto`` when absent)."""
    value = "auto"
    for i, arg in enumerate(argv):
        if arg == "--device" and i + 1 < len(argv):
            value = argv[i + 1]
        elif arg.startswith("--device="):
            value = arg.split("=", 1)[1]
    return value.strip().lower()


def wants_gpu(device: str) -> bool:
    """gpu / gpu:N: yes; cpu: no; auto: when the host's nvidia-smi lists a GPU."""
    if device == "auto":
        from harness.device import visible_gpus

        return bool(visible_gpus())
    return device.startswith("gpu")


def gpus_for(device: str) -> str:
    """``--gpus`` value: the one device for ``gpu:N`` (it is GPU 0 inside), else all."""
    return device.split(":", 1)[1] if device.startswith("gpu:") else "all"


def run_command_in_image(
    argv: Sequence[str],
    *,
    image: Optional[str],
    read_only: Sequence[Path],
    writable: Sequence[Path],
    docker: str = "docker",
) -> int:
    """Run ``harness ARGV`` in the image; returns the exit status the host command should have."""
    device = device_of(argv)
    gpu = wants_gpu(device)
    image = image or default_image(gpu)
    command = list(argv)
    if device.startswith("gpu:"):
        # only that GPU is visible in the container, where it is GPU 0
        command = [("gpu" if arg == device else arg.replace(f"={device}", "=gpu")) for arg in command]
    writable = [Path(p).resolve() for p in writable]
    for path in writable:
        path.mkdir(parents=True, exist_ok=True)  # by the caller: dockerd would create it as root
    check_docker_engine(docker, need_gpus=gpu)
    if subprocess.run([docker, "image", "inspect", image], capture_output=True).returncode != 0:
        raise DockerUnavailableError(
            f"image {image} not found in the Docker engine: build it with "
            f"`make {'docker-image-gpu' if gpu else 'docker-image'}` (docs/gpu.md), or pass --image"
        )
    docker_argv = wrap_for_docker(
        ["python3", "-m", "harness", *command],
        image,
        [*writable, Path.cwd().resolve()],
        read_only=[Path(p).resolve() for p in read_only],
        gpus=gpus_for(device) if gpu else None,
        workdir=Path.cwd(),
        docker=docker,
    )
    log_file = log_path(writable[0] if writable else Path.cwd(), command)
    log.warning("[docker] %s%s; output also in %s", image, " with --gpus " + gpus_for(device) if gpu else "", log_file)
    status = stream(docker_argv, log_file)
    if status == 0:
        return 0
    log.error("[docker] the container exited with status %s (%s); its output: %s", status, image, log_file)
    return 2 if status == 2 else 1


def log_path(project: Path, command: Sequence[str]) -> Path:
    verb = "-".join(arg for arg in command[:2] if not arg.startswith("-")) or "harness"
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    return project / LOG_DIR / f"{verb}-{stamp}.log"


def stream(docker_argv: Sequence[str], log_file: Path) -> int:
    """Run ``docker run …``, copying its output here and into ``log_file``; returns its exit status."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "wb") as sink:
        sink.write(("$ " + " ".join(docker_argv) + "\n").encode())
        process = subprocess.Popen(docker_argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        assert process.stdout is not None
        try:
            for line in iter(process.stdout.readline, b""):
                sink.write(line)
                sink.flush()
                sys.stdout.buffer.write(line)
                sys.stdout.flush()
        finally:
            status = process.wait()
    return status

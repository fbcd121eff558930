"""Run a harness command inside the Docker images (``--runner docker``).

The images (docker/Dockerfile: ``cpu`` and ``gpu``) hold the builds of Caffe-SSD and Darknet plus
the harness itself, so a host needs only Docker (and the NVIDIA Container Toolkit for ``gpu``). Host paths are bind-mounted at the *same*
absolute path inside the container: every path already in the command line stays valid without
rewriting. The container runs as the calling user so files written to the run directory belong
to that user, and input data is mounted read-only so a run cannot damage it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Optional, Union

PathLike = Union[str, "os.PathLike[str]"]

# Tags made by `make docker-image` / `make docker-image-gpu` (docker/Dockerfile targets cpu and gpu;
# docs/gpu.md). HARNESS_DOCKER_IMAGE overrides both.
IMAGES = {
    "cpu": "leukonet-harness:cpu",
    "gpu": "leukonet-harness:gpu",
}


def default_image(gpu: bool) -> str:
    """The image ``--runner docker`` uses without ``--image``: the gpu one for GPU runs, else the cpu one."""
    return os.environ.get("HARNESS_DOCKER_IMAGE") or IMAGES["gpu" if gpu else "cpu"]


# The container user usually has no passwd entry and no home: give it a writable one.
CONTAINER_HOME = "/tmp"
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_GPU_COUNT = re.compile(r"^[0-9]+$")
_GPU_DEVICES = re.compile(r"^[0-9A-Za-z-]+(,[0-9A-Za-z-]+)*$")
ENGINE_CHECK_SECONDS = 20


class DockerUnavailableError(RuntimeError):
    """No usable Docker engine (client missing, daemon unreachable, or no GPU support)."""


@dataclass(frozen=True)
class Mount:
    """One bind mount: ``host`` appears at ``container`` (default: the same path) inside."""

    host: Path
    container: Optional[str] = None
    read_only: bool = False

    @property
    def target(self) -> str:
        return self.container or str(self.host)


def docker_run_argv(
    image: str,
    command: Sequence[str],
    *,
    workdir: Optional[PathLike] = None,
    mounts: Iterable[Mount] = (),
    gpus: Optional[str] = "all",
    user: Optional[tuple[int, int]] = None,
    env: Optional[Mapping[str, str]] = None,
    env_passthrough: Sequence[str] = (),
    docker: str = "docker",
    extra_args: Sequence[str] = (),
) -> list[str]:
    """The ``docker run`` argument list for ``command`` in ``image``, for subprocess without a shell.

    ``user`` defaults to the caller's (uid, gid); ``gpus`` is ``"all"``, a count (``"2"``), device
    ids (``"0,1"``) or None for a CPU-only container. ``env`` values are passed as ``-e K=V``;
    names in ``env_passthrough`` are passed as ``-e K`` (value taken from the caller's
    environment, so secrets never appear in the argument list).
    """
    if not image or image.startswith("-"):
        raise ValueError(f"invalid Docker image name {image!r}")
    if not command:
        raise ValueError("docker_run_argv: empty command")
    uid, gid = user if user is not None else (os.getuid(), os.getgid())
    argv = [docker, "run", "--rm", "--init"]
    argv += gpus_args(gpus)
    argv += ["-u", f"{int(uid)}:{int(gid)}"]
    argv += env_args(env, env_passthrough)
    for mount in order_mounts(mounts):
        argv += mount_args(mount)
    if workdir is not None:
        argv += ["-w", container_path(str(workdir), what="workdir")]
    argv += list(extra_args)
    argv.append(image)
    argv += [str(part) for part in command]
    return argv


def gpus_args(gpus: Optional[str]) -> list[str]:
    """``--gpus`` in the form Docker's CSV parser accepts (device lists need inner quotes)."""
    if gpus is None or str(gpus).strip() in ("", "none", "cpu"):
        return []
    value = str(gpus).strip()
    if value == "all" or _GPU_COUNT.match(value):
        return ["--gpus", value]
    devices = value[len("device=") :] if value.startswith("device=") else value
    if not _GPU_DEVICES.match(devices):
        raise ValueError(f"invalid --gpus value {gpus!r}: use 'all', a count, or device ids like '0,1'")
    return ["--gpus", f'"device={devices}"' if "," in devices else f"device={devices}"]


def env_args(env: Optional[Mapping[str, str]], passthrough: Sequence[str] = ()) -> list[str]:
    """``-e`` flags; HOME is pointed at a writable directory unless the caller sets it."""
    merged = {"HOME": CONTAINER_HOME, "PYTHONUNBUFFERED": "1"}
    merged.update(env or {})
    args: list[str] = []
    for name, value in merged.items():
        check_env_name(name)
        if "\n" in str(value) or "\0" in str(value):
            raise ValueError(f"environment variable {name}: value contains a newline or NUL byte")
        args += ["-e", f"{name}={value}"]
    for name in passthrough:
        check_env_name(name)
        if name not in merged:
            args += ["-e", name]
    return args


def check_env_name(name: str) -> None:
    if not _ENV_NAME.match(name):
        raise ValueError(f"invalid environment variable name {name!r}")


def container_path(path: str, *, what: str) -> str:
    """Container paths must be absolute POSIX paths (Docker refuses relative targets)."""
    if not PurePosixPath(path).is_absolute():
        raise ValueError(f"{what} {path!r} must be an absolute path inside the container")
    return path


def mount_args(mount: Mount) -> list[str]:
    """``-v host:target[:ro]``, or ``--mount`` when a path holds a ':' that ``-v`` would split on."""
    host = str(mount.host)
    target = container_path(mount.target, what="mount target")
    if ":" not in host and ":" not in target:
        return ["-v", f"{host}:{target}" + (":ro" if mount.read_only else "")]
    fields = ["type=bind", csv_field(f"source={host}"), csv_field(f"target={target}")]
    if mount.read_only:
        fields.append("readonly")
    return ["--mount", ",".join(fields)]


def csv_field(text: str) -> str:
    """Quote one --mount field the way Docker's CSV reader expects when it holds , or \"."""
    if "," in text or '"' in text:
        return '"' + text.replace('"', '""') + '"'
    return text


def order_mounts(mounts: Iterable[Mount]) -> list[Mount]:
    """Parents before children (Docker applies mounts in order), duplicates merged.

    A path given both read-only and read-write is mounted read-write once; a child with the same
    mode as a mounted parent is already visible through it and is dropped.
    """
    by_target: dict[str, Mount] = {}
    for mount in mounts:
        previous = by_target.get(mount.target)
        if previous is None or (previous.read_only and not mount.read_only):
            by_target[mount.target] = mount
    ordered = sorted(by_target.values(), key=lambda m: (len(PurePosixPath(m.target).parts), m.target))
    kept: list[Mount] = []
    for mount in ordered:
        parent = _innermost_parent(mount, kept)
        same_source = (
            parent is not None
            and _is_within(mount.host, parent.host)
            and (
                PurePosixPath(mount.target).relative_to(parent.target)
                == PurePosixPath(mount.host.as_posix()).relative_to(parent.host.as_posix())
            )
        )
        if parent is not None and parent.read_only == mount.read_only and same_source:
            continue
        kept.append(mount)
    return kept


def _innermost_parent(mount: Mount, kept: Sequence[Mount]) -> Optional[Mount]:
    parents = [m for m in kept if _is_within(PurePosixPath(mount.target), PurePosixPath(m.target))]
    return max(parents, key=lambda m: len(PurePosixPath(m.target).parts), default=None)


def _is_within(child, parent) -> bool:
    child, parent = PurePosixPath(str(child)), PurePosixPath(str(parent))
    return child == parent or parent in child.parents


def identity_mounts(paths: Iterable[PathLike], read_only: Iterable[PathLike] = ()) -> list[Mount]:
    """Mount each host path at the same absolute path; ``read_only`` ones with ``:ro``.

    The target is the path as written (made absolute, symlinks kept) because that is what the
    command line says; the source is the resolved path. Read-only paths must exist (they are
    inputs). A missing read-write path is created first as a directory, by the calling user:
    otherwise the Docker daemon would create it owned by root.
    """
    read_only_set = {absolute(p) for p in read_only}
    mounts = []
    for path in [*map(absolute, paths), *sorted(read_only_set)]:
        is_ro = path in read_only_set
        if not path.exists():
            if is_ro:
                raise FileNotFoundError(f"{path}: input path to mount read-only does not exist")
            path.mkdir(parents=True, exist_ok=True)
        mounts.append(Mount(host=path.resolve(), container=str(path), read_only=is_ro))
    return mounts


def absolute(path: PathLike) -> Path:
    """Absolute host path, ``~`` expanded, symlinks kept (they are resolved for the mount source)."""
    return Path(os.path.abspath(os.path.expanduser(os.fspath(path))))


def wrap_for_docker(
    argv: Sequence[str],
    image: str,
    paths: Sequence[PathLike],
    *,
    read_only: Sequence[PathLike] = (),
    gpus: Optional[str] = "all",
    env: Optional[Mapping[str, str]] = None,
    env_passthrough: Sequence[str] = (),
    workdir: Optional[PathLike] = None,
    user: Optional[tuple[int, int]] = None,
    docker: str = "docker",
) -> list[str]:
    """Turn a host command line into the same command run inside ``image``.

    ``paths`` are the host paths the command reads or writes (run directory, repository);
    ``read_only`` the inputs it must not change (data). All are mounted at their own path, so
    ``argv`` is kept as is, except that the host's Python interpreter (``sys.executable`` or any
    absolute ``.../pythonX.Y``) becomes the image's ``python3``. The working directory is the
    current one when it is mounted (relative paths in ``argv`` then still resolve).
    """
    if not argv:
        raise ValueError("wrap_for_docker: empty command")
    mounts = identity_mounts(paths, read_only)
    if workdir is None:
        cwd = absolute(os.environ.get("PWD") or Path.cwd())
        if not Path(cwd).samefile(Path.cwd()):
            cwd = absolute(Path.cwd())
        if any(_is_within(cwd, m.target) for m in mounts):
            workdir = cwd
    return docker_run_argv(
        image,
        container_command(argv),
        workdir=workdir,
        mounts=mounts,
        gpus=gpus,
        user=user,
        env=env,
        env_passthrough=[name for name in env_passthrough if name in os.environ],
        docker=docker,
    )


def container_command(argv: Sequence[str]) -> list[str]:
    """Replace a host interpreter path by the image's ``python3``; keep everything else."""
    first = str(argv[0])
    is_host_python = first == sys.executable or (
        os.path.isabs(first) and re.match(r"^python(\d+(\.\d+)?)?$", os.path.basename(first))
    )
    return ["python3" if is_host_python else first, *map(str, argv[1:])]


def check_docker_engine(docker: str = "docker", *, need_gpus: bool = True) -> str:
    """The engine's server version; raises DockerUnavailableError saying what is missing."""
    client = shutil.which(docker)
    if client is None:
        raise DockerUnavailableError(
            f"'{docker}' not found on PATH: install Docker Engine and the NVIDIA Container "
            "Toolkit (docs/gpu.md), or run without --runner docker"
        )
    fmt = "{{.ServerVersion}}|{{range $name, $_ := .Runtimes}}{{$name}} {{end}}"
    try:
        probe = subprocess.run(
            [client, "info", "--format", fmt], capture_output=True, text=True, timeout=ENGINE_CHECK_SECONDS
        )
    except subprocess.TimeoutExpired as exc:
        raise DockerUnavailableError(f"'{client} info' did not answer within {ENGINE_CHECK_SECONDS}s") from exc
    version, _, runtimes = probe.stdout.strip().partition("|")
    if probe.returncode != 0 or not version:
        reason = (probe.stderr or probe.stdout).strip().splitlines()
        raise DockerUnavailableError(
            f"no Docker engine reachable through '{client}' (a client alone is not enough): "
            f"{reason[-1] if reason else 'docker info failed'} (start the daemon or set DOCKER_HOST; "
            "see docs/gpu.md)"
        )
    if need_gpus and "nvidia" not in runtimes.split() and not Path("/etc/cdi").is_dir():
        # Not fatal by itself (the toolkit may hook in another way): the run reports it precisely.
        print(
            f"[docker] engine {version} lists no 'nvidia' runtime (runtimes: {runtimes.strip() or 'none'}); "
            "--gpus needs the NVIDIA Container Toolkit",
            file=sys.stderr,
        )
    return version


def run_docker_argv(
    docker_argv: Sequence[str],
    *,
    check_engine: bool = True,
    timeout: Optional[float] = None,
    **run_kwargs,
) -> subprocess.CompletedProcess:
    """Execute a ``docker run`` argument list (from docker_run_argv / wrap_for_docker).

    The engine is probed first so "no daemon" is reported as such instead of as a failed run.
    The exit status is returned, not judged: like the native frameworks, the caller checks the
    files the run should have written.
    """
    argv = [str(part) for part in docker_argv]
    if check_engine:
        check_docker_engine(argv[0], need_gpus="--gpus" in argv)
    result = subprocess.run(argv, timeout=timeout, **run_kwargs)
    stderr = result.stderr if isinstance(result.stderr, str) else ""
    if result.returncode == 125 and "could not select device driver" in stderr:
        raise DockerUnavailableError(
            "Docker cannot give the container a GPU (could not select device driver with "
            "capabilities [[gpu]]): install the NVIDIA Container Toolkit and restart the daemon"
        )
    return result


def run_in_docker(
    image: str,
    command: Sequence[str],
    *,
    paths: Sequence[PathLike] = (),
    read_only: Sequence[PathLike] = (),
    workdir: Optional[PathLike] = None,
    gpus: Optional[str] = "all",
    env: Optional[Mapping[str, str]] = None,
    user: Optional[tuple[int, int]] = None,
    docker: str = "docker",
    check_engine: bool = True,
    timeout: Optional[float] = None,
    **run_kwargs,
) -> subprocess.CompletedProcess:
    """Run ``command`` in ``image`` with ``paths`` (read-write) and ``read_only`` mounted at their own paths.

    Raises DockerUnavailableError when no engine is reachable; returns the finished process
    (its ``returncode`` is the command's exit status, 125-127 for Docker's own failures).
    """
    argv = wrap_for_docker(
        command, image, paths, read_only=read_only, gpus=gpus, env=env, workdir=workdir, user=user, docker=docker
    )
    return run_docker_argv(argv, check_engine=check_engine, timeout=timeout, **run_kwargs)

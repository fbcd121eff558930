"""The images for real: the `cpu` image built by a real engine and `--runner docker` runs inside it.

Needs a Docker engine (the `dockerd` fixture: the running one, else Debian's dockerd started as root
and stopped afterwards). The `cpu` image is built once per session by scripts/docker_build.sh, which
reuses an image whose inputs hash label matches (a rebuild costs minutes; from a fresh machine see
docs/benchmarks.md). Without docker.io or root the tests skip, unless HARNESS_REQUIRE_DOCKER=1 (CI)
makes that a failure. The `gpu` image is not built by the tests (about an hour on 2 cores): its
check runs when `make docker-image-gpu` has made it.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness.runners.docker_argv import IMAGES

ROOT = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.slow]
# A user that exists neither on the host nor in the image: files it ends up owning were written as
# the caller (docker run -u UID:GID), not as root.
CALLER = 4321
TWO = ["reproduce", "table1", "--profile", "smoke", "--only", "yolov3-tiny_416", "--only", "ssd300_smin0.2",
       "--no-learning-check", "--device", "cpu", "--project", "runs"]


def lock_commit(name: str) -> str:
    for line in (ROOT / "scripts" / "sources.lock").read_text().splitlines():
        if line.startswith(name + " "):
            return line.split()[2]
    raise KeyError(name)


@pytest.fixture(scope="session")
def cpu_image(dockerd: str, tmp_path_factory) -> str:
    """leukonet-harness:cpu for this checkout (built, or reused when its inputs hash matches)."""
    log = tmp_path_factory.mktemp("docker-build") / "build.log"
    env = {**os.environ, "DOCKER": dockerd, "DOCKER_BUILD_LOG": str(log)}
    done = subprocess.run(["bash", str(ROOT / "scripts/docker_build.sh"), "cpu"], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        pytest.fail(f"cpu image build failed:\n{done.stderr[-4000:]}", pytrace=False)
    return done.stdout.strip().splitlines()[-1]


def docker(client: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([client, *args], capture_output=True, text=True, timeout=timeout)


def as_caller(args: list[str], cwd: Path, timeout: float = 2400) -> subprocess.CompletedProcess:
    """`python -m harness ARGS` on the host as uid/gid CALLER (in the docker group so it reaches the
    engine; CAP_DAC_READ_SEARCH only so it can read the interpreter and checkout under /root)."""
    setpriv = shutil.which("setpriv")
    if setpriv is None or os.geteuid() != 0:
        pytest.fail("needs root and setpriv (util-linux) to run the host command as another user", pytrace=False)
    groups = [str(CALLER)]
    try:
        import grp

        groups.append(str(grp.getgrnam("docker").gr_gid))
    except KeyError:
        pass
    env = {**os.environ, "HOME": str(cwd), "PYTHONPATH": str(ROOT)}
    env.pop("HARNESS_DOCKER_IMAGE", None)
    return subprocess.run(
        [setpriv, f"--reuid={CALLER}", f"--regid={CALLER}", f"--groups={','.join(groups)}",
         "--inh-caps=+dac_read_search", "--ambient-caps=+dac_read_search",
         sys.executable, "-m", "harness", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def caller_work():
    """A folder of CALLER's in a place every user can reach (pytest's tmp_path is under a 0700 folder of
    root's, which a non-root caller's access() checks cannot pass); removed afterwards."""
    import tempfile

    work = Path(tempfile.mkdtemp(prefix="harness-docker-test-")) / "work"
    work.mkdir()
    os.chmod(work.parent, 0o755)
    os.chown(work, CALLER, CALLER)
    yield work
    shutil.rmtree(work.parent, ignore_errors=True)


def not_owned_by_caller(root: Path) -> list[str]:
    return [str(p) for p in [root, *root.rglob("*")] if p.lstat().st_uid != CALLER or p.lstat().st_gid != CALLER]


def test_cpu_image_says_what_it_was_built_from(dockerd, cpu_image):
    labels = json.loads(docker(dockerd, "image", "inspect", "--format", "{{json .Config.Labels}}", cpu_image).stdout)
    assert labels["leukonet.target"] == "cpu"
    assert labels["leukonet.caffe.commit"] == lock_commit("weiliu89-caffe")
    assert labels["leukonet.alexeyab.commit"] == lock_commit("alexeyab-darknet")
    assert labels["org.opencontainers.image.base.name"], labels
    assert len(labels["leukonet.inputs.sha256"]) == 64
    # harness doctor inside, offline and as an unknown user: every framework usable, and the image's origin
    done = docker(dockerd, "run", "--rm", "--network", "none", "-u", "65534:65534", "-e", "HOME=/tmp",
                  cpu_image, "python3", "-m", "harness", "doctor")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"base_image: {labels['org.opencontainers.image.base.name']}" in done.stdout
    assert f"caffe: weiliu89 {lock_commit('weiliu89-caffe')}" in done.stdout
    assert f"darknet_alexeyab: {lock_commit('alexeyab-darknet')}" in done.stdout
    assert "debian: 12." in done.stdout


def test_reproduce_two_experiments_through_runner_docker(dockerd, cpu_image, caller_work):
    """One Caffe and one Darknet experiment of the smoke profile, run in the image through `--runner docker`:
    exit 0, the report on the host, every file owned by the calling user, the layout of a local run."""
    work = caller_work
    done = as_caller([*TWO, "--name", "d", "--runner", "docker", "--image", cpu_image], work)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    run_dir = work / "runs" / "d"
    assert (run_dir / "report.html").is_file() and (run_dir / "report.md").is_file()
    for name in ("yolov3-tiny_416", "ssd300_smin0.2"):
        summary = json.loads((run_dir / "models" / name / "summary.json").read_text())
        assert summary["status"] == "ok", summary
    assert not_owned_by_caller(work / "runs") == []
    logs = list((work / "runs" / "docker-logs").glob("reproduce-table1-*.log"))
    assert len(logs) == 1 and "--gpus" not in logs[0].read_text().splitlines()[0]

    # the same command run locally (this host's builds) leaves the same files
    local = work.parent / "local"
    local.mkdir()
    here = subprocess.run([sys.executable, "-m", "harness", *TWO, "--name", "d"], cwd=local,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=2400)
    assert here.returncode == 0, here.stdout[-3000:] + here.stderr[-3000:]
    assert structure(run_dir) == structure(local / "runs" / "d")


def structure(run_dir: Path) -> set[str]:
    """Relative paths a run leaves, minus locks (as tests/test_slurm_runner.py compares them)."""
    return {str(p.relative_to(run_dir)) for p in run_dir.rglob("*") if p.name not in (".lock", ".prepare.lock")}


def test_train_through_runner_docker_then_a_failing_container_names_its_log(dockerd, cpu_image, caller_work):
    work = caller_work
    ok = as_caller(["train", "yolov3-tiny", "--profile", "smoke", "--size", "128", "--iterations", "2",
                    "--device", "cpu", "--project", "runs", "--name", "t", "--runner", "docker",
                    "--image", cpu_image], work)
    assert ok.returncode == 0, ok.stdout[-4000:] + ok.stderr[-4000:]
    assert (work / "runs" / "t" / "models").is_dir() and not_owned_by_caller(work / "runs") == []

    # A VOC root whose only annotation is broken XML: the harness inside fails, the container exits non-zero.
    bad = work / "bad-voc"
    (bad / "Annotations").mkdir(parents=True)
    (bad / "JPEGImages").mkdir()
    (bad / "Annotations" / "x.xml").write_text("<annotation><object>")
    for path in (bad, *bad.rglob("*")):
        os.chown(path, CALLER, CALLER)  # the caller's own data
    failed = as_caller(["train", "yolov3-tiny", "--profile", "smoke", "--iterations", "2", "--data", str(bad),
                        "--device", "cpu", "--project", "runs", "--name", "f", "--runner", "docker",
                        "--image", cpu_image], work)
    assert failed.returncode == 1, failed.stdout[-3000:] + failed.stderr[-3000:]
    logs = sorted((work / "runs" / "docker-logs").glob("train-yolov3-tiny-*.log"))
    assert len(logs) == 2
    named = [log for log in logs if str(log) in failed.stderr]
    assert len(named) == 1 and "the container exited with status" in failed.stderr
    assert named[0].stat().st_uid == CALLER and named[0].stat().st_size > 0


def test_missing_image_is_a_clear_error(dockerd, caller_work):
    work = caller_work
    done = as_caller([*TWO, "--runner", "docker", "--image", "leukonet-harness:no-such-tag"], work, timeout=120)
    assert done.returncode == 1
    assert "image leukonet-harness:no-such-tag not found" in done.stderr and "make docker-image" in done.stderr
    assert "Traceback" not in done.stderr


GPU_BINARIES = {
    "caffe": "/opt/leukonet-harness/caffe-gpu/build/tools/caffe",
    "libcaffe": "/opt/leukonet-harness/caffe-gpu/build/lib/libcaffe.so",
    "darknet": "/opt/leukonet-harness/darknet-gpu/bin/darknet",
    "libdarknet": "/opt/leukonet-harness/darknet-gpu/lib/libdarknet.so",
    "darknet (AlexeyAB)": "/opt/leukonet-harness/alexeyab-gpu/bin/darknet",
    "libdarknet (AlexeyAB)": "/opt/leukonet-harness/alexeyab-gpu/lib/libdarknet.so",
}


def test_gpu_image_resolves_every_cuda_library(dockerd):
    """In the gpu image, without a GPU: ldd finds cudart, cuBLAS and cuRAND for every framework binary and
    library. The one library left to the host is the driver's libcuda.so.1, which the NVIDIA Container
    Toolkit mounts into the container at `docker run --gpus` time."""
    image = IMAGES["gpu"]
    if docker(dockerd, "image", "inspect", image).returncode != 0:
        pytest.skip(f"{image} not built here (make docker-image-gpu: about an hour on 2 cores)")
    for what, path in GPU_BINARIES.items():
        done = docker(dockerd, "run", "--rm", "--network", "none", "--entrypoint", "ldd", image, path)
        assert done.returncode == 0, f"{what}: {done.stdout}{done.stderr}"
        lines = [line.strip() for line in done.stdout.splitlines()]
        missing = [line for line in lines if "not found" in line and not line.startswith("libcuda.so.1 ")]
        assert not missing, f"{what} ({path}): unresolved {missing}"
        cuda = {line.split()[0].split(".so")[0]: line.split("=>")[1].split()[0]
                for line in lines if "=>" in line and line.startswith(("libcudart", "libcublas", "libcurand"))}
        assert {"libcudart", "libcublas", "libcurand"} <= set(cuda), f"{what}: CUDA libraries {cuda}"
        assert all(p.startswith(("/usr/local/cuda/", "/opt/cuda-wheels/")) for p in cuda.values()), cuda

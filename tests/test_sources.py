"""scripts/fetch_source.sh: pinned sources from a mirror folder are checked by sha256 before any build."""
from __future__ import annotations

import hashlib
import os
import subprocess
import tarfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts/fetch_source.sh"
LOCK = REPO / "scripts/sources.lock"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def fetch(name: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), name], env={**os.environ, **env}, capture_output=True,
                          text=True, timeout=120)


def make_tarball(folder: Path, prefix: str) -> tuple[Path, str]:
    tree = folder / "tree" / f"{prefix}-{COMMIT}"
    tree.mkdir(parents=True)
    (tree / "Makefile").write_text("all:\n")
    tarball = folder / "mirror" / f"tiny-fw-{COMMIT}.tar.gz"
    tarball.parent.mkdir()
    with tarfile.open(tarball, "w:gz") as tar:
        tar.add(tree, arcname=tree.name)
    return tarball, hashlib.sha256(tarball.read_bytes()).hexdigest()


def test_lock_pins_the_mirror_tarballs_of_shared_vendor():
    rows = [line.split() for line in LOCK.read_text().splitlines() if line.strip() and not line.startswith("#")]
    assert {row[0] for row in rows} == {"weiliu89-caffe", "alexeyab-darknet"}
    vendor = REPO.parent / "shared/vendor"
    readme = (vendor / "README.md").read_text() if (vendor / "README.md").is_file() else ""
    for name, _repo, commit, sha256, _prefix in rows:
        if readme:  # the mirror's own README states the same commit and sha256
            assert commit in readme and sha256 in readme, name


def test_good_tarball_is_unpacked_once_then_cached(tmp_path: Path):
    tarball, digest = make_tarball(tmp_path, "fw")
    lock = tmp_path / "sources.lock"
    lock.write_text(f"# test\ntiny-fw https://example.invalid/fw {COMMIT} {digest} fw\n")
    env = {"HARNESS_CACHE": str(tmp_path / "cache"), "HARNESS_SOURCES": str(tarball.parent),
           "HARNESS_SOURCES_LOCK": str(lock)}
    first = fetch("tiny-fw", env)
    assert first.returncode == 0, first.stderr
    tree = Path(first.stdout.strip())
    assert (tree / "Makefile").is_file()
    stamp = (tree / ".harness-source").read_text()
    assert f"commit={COMMIT}" in stamp and f"sha256={digest}" in stamp and "origin=mirror:" in stamp
    tarball.unlink()  # the second call must not need the tarball
    second = fetch("tiny-fw", env)
    assert second.returncode == 0 and Path(second.stdout.strip()) == tree
    assert "cached" in second.stderr


def test_tarball_with_wrong_sha256_is_refused_naming_file_and_hashes(tmp_path: Path):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    name, _repo, commit, pinned, _prefix = next(
        line.split() for line in LOCK.read_text().splitlines() if line.startswith("weiliu89-caffe"))
    bad = mirror / f"{name}-{commit}.tar.gz"
    bad.write_bytes(b"not the pinned tarball")
    done = fetch(name, {"HARNESS_CACHE": str(tmp_path / "cache"), "HARNESS_SOURCES": str(mirror)})
    assert done.returncode != 0
    assert "sha256 mismatch" in done.stderr and str(bad) in done.stderr and pinned in done.stderr
    assert not (tmp_path / "cache/src" / f"{name}-{commit}").exists()


def test_unknown_name_and_unreachable_source_are_clear_errors(tmp_path: Path):
    unknown = fetch("no-such-framework", {"HARNESS_CACHE": str(tmp_path)})
    assert unknown.returncode != 0 and "no source named 'no-such-framework'" in unknown.stderr
    lock = tmp_path / "sources.lock"
    lock.write_text(f"tiny-fw file:///nonexistent/repo {COMMIT} {'0' * 64} fw\n")
    missing = fetch("tiny-fw", {"HARNESS_CACHE": str(tmp_path / "c"), "HARNESS_SOURCES": str(tmp_path),
                                "HARNESS_SOURCES_LOCK": str(lock)})
    assert missing.returncode != 0
    assert "HARNESS_SOURCES" in missing.stderr and "github.com" in missing.stderr

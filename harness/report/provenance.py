"""What produced a run: code version, framework builds, exact native files, data, seeds, machine.

Collected by ``harness reproduce`` before training and written to ``runs/<name>/provenance.json``
so a reader of the report can tell whether two runs are comparable at all.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import platform
import subprocess
import sys
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

import harness
from harness.paths import PROJECT_ROOT

PROVENANCE_FILE = "provenance.json"
# Annotation-like files are hashed by content; everything else (images, LMDB pages) by name + size,
# which is fast and still changes when a file is added, removed, renamed or replaced by another size.
CONTENT_HASHED_SUFFIXES = {".xml", ".txt", ".json", ".prototxt", ".names", ".csv", ".data", ".cfg"}
_CHUNK = 1 << 20


def collect_provenance(
    run_dir: Path,
    *,
    data_dir: Optional[Path] = None,
    rendered_files: Iterable[Path] = (),
    seeds: Optional[dict] = None,
    frameworks: Optional[Iterable[Any]] = None,
) -> dict:
    """Assemble the provenance record; ``frameworks`` are FrameworkStatus objects or dicts."""
    run_dir = Path(run_dir)
    return {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "run_dir": str(run_dir.resolve()),
        "harness": harness_version(),
        "frameworks": [_as_dict(fw) for fw in (frameworks or [])],
        "rendered_files": hash_files(rendered_files, relative_to=run_dir),
        "data": hash_dataset(Path(data_dir)) if data_dir is not None else None,
        "seeds": dict(seeds) if seeds else {},
        "machine": machine_info(),
    }


def write_provenance(run_dir: Path, provenance: dict) -> Path:
    from harness.core.atomic import write_json

    return write_json(Path(run_dir) / PROVENANCE_FILE, provenance)


def harness_version() -> dict:
    """Package version plus the git commit, when the package runs from a checkout."""
    info: dict[str, Any] = {"version": harness.__version__, "git_commit": None, "git_dirty": None}
    if not (PROJECT_ROOT / ".git").exists():
        return info
    commit = _git("rev-parse", "HEAD")
    if commit:
        info["git_commit"] = commit
        info["git_dirty"] = bool(_git("status", "--porcelain", "--untracked-files=no"))
    return info


def _git(*args: str) -> str:
    try:
        done = subprocess.run(["git", "-C", str(PROJECT_ROOT), *args], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


def _as_dict(framework: Any) -> dict:
    if dataclasses.is_dataclass(framework) and not isinstance(framework, type):
        return json.loads(json.dumps(dataclasses.asdict(framework), default=str))
    if isinstance(framework, dict):
        return json.loads(json.dumps(framework, default=str))
    raise TypeError(f"framework status must be a FrameworkStatus or dict, got {type(framework).__name__}")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def hash_files(paths: Iterable[Path], *, relative_to: Path) -> dict[str, str]:
    """sha256 per file, keyed by path relative to the run dir when inside it."""
    hashes = {}
    for path in paths:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: rendered file not found, cannot record its hash")
        hashes[_display_path(path, relative_to)] = sha256_file(path)
    return dict(sorted(hashes.items()))


def _display_path(path: Path, base: Path) -> str:
    try:
        return path.resolve().relative_to(base.resolve()).as_posix()
    except ValueError:
        return str(path.resolve())


def hash_dataset(data_dir: Path) -> dict:
    """One digest over annotation contents and image names + sizes, in sorted path order."""
    if not data_dir.is_dir():
        raise FileNotFoundError(f"{data_dir}: data directory not found, cannot hash it")
    digest = hashlib.sha256()
    counts = {"content_hashed": 0, "size_hashed": 0, "bytes": 0}
    for path in sorted(p for p in data_dir.rglob("*") if p.is_file()):
        relative = path.relative_to(data_dir).as_posix()
        size = path.stat().st_size
        counts["bytes"] += size
        if path.suffix.lower() in CONTENT_HASHED_SUFFIXES:
            digest.update(f"C {relative} {sha256_file(path)}\n".encode())
            counts["content_hashed"] += 1
        else:
            digest.update(f"S {relative} {size}\n".encode())
            counts["size_hashed"] += 1
    return {
        "path": str(data_dir.resolve()),
        "sha256": digest.hexdigest(),
        **counts,
        "method": "sha256 over sorted 'C path sha256(content)' for annotation files and 'S path size' for other files",
    }


def machine_info() -> dict:
    return {
        "platform": platform.platform(),
        "cpu_model": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gb": _memory_gb(),
        "python": sys.version.split()[0],
        "python_implementation": platform.python_implementation(),
        "gpus": _gpu_names(),
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gb() -> Optional[float]:
    try:
        pages, page_size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None
    return round(pages * page_size / 2**30, 2)


def _gpu_names() -> list[str]:
    """NVIDIA GPUs via nvidia-smi when present; an empty list on CPU-only machines."""
    try:
        done = subprocess.run(
            ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in done.stdout.splitlines() if line.strip()] if done.returncode == 0 else []

"""Find, inspect and drive Darknet: pjreddie's (Debian's binary or the harness's OpenMP build) or
AlexeyAB's fork (the harness's LIBSO build of the pinned commit); ``fork`` picks which.

Darknet reports most failures only as text and still exits 0 (missing backup dir, missing label
file, names file too short), and segfaults on others (``valid`` with < 4 images, missing results
dir). So every run here is: check the inputs the way Darknet will read them, run it, then check
the files it should have written and explain what went wrong when they are missing.
"""

from __future__ import annotations

import functools
import json
import math
import os
import re
import shutil
import struct
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from harness.core.process import NativeRun, run_native
from harness.core.types import FrameworkStatus, NativeFrameworkError, Progress, TrainResult
from harness.data.darknet import darknet_label_path
from harness.device import Device
from harness.frameworks.darknet import check_fork
from harness.frameworks.darknet.cfg import CfgSummary, DarknetInputError, summarize_cfg, write_cfg_copy
from harness.parse.darknet_log import (
    DarknetLogFindings,
    latest_per_iteration,
    parse_darknet_line,
    parse_darknet_map,
    read_darknet_log,
    write_loss_csv,
)
from harness.paths import cache_dir

INSTALL_HINT = "bash scripts/install_darknet.sh"
INSTALL_HINTS = {"pjreddie": INSTALL_HINT, "alexeyab": INSTALL_HINT + " --fork alexeyab"}
DEBIAN_BINARY = Path("/usr/bin/darknet")
DEBIAN_LIBRARY = Path("/usr/lib/darknet/libdarknet.so")
PATH_BUFFER = 256  # char buff[256] for backup weight paths in train_detector
VALID_MIN_IMAGES = 4  # validate_detector's 4 loader threads read past a shorter list


# --------------------------------------------------------------------------- installation


@dataclass(frozen=True)
class DarknetInstall:
    """One usable Darknet: the CLI binary and (for ctypes inference) its shared library."""

    binary: Path
    library: Optional[Path]
    flavour: str  # "omp" (harness build), "gpu", "debian" or "custom" (HARNESS_DARKNET)
    version: str = ""
    openmp: bool = False
    gpu: bool = False
    stamp: dict = field(default_factory=dict, compare=False)
    alexeyab: bool = False  # AlexeyAB's fork: other CLI flags, weight names and C API

    @property
    def fork(self) -> str:
        """``pjreddie`` or ``alexeyab`` (one of :data:`harness.frameworks.darknet.FORKS`)."""
        return "alexeyab" if self.alexeyab else "pjreddie"

    @property
    def commit(self) -> Optional[str]:
        """The source commit: the AlexeyAB stamp's, or the git hash in Debian's version string."""
        if self.stamp.get("commit"):
            return self.stamp["commit"]
        found = re.search(r"git\d{8}\.([0-9a-f]{7,40})", self.version)
        return found.group(1) if found else None

    @property
    def backend(self) -> str:
        """Short description used in timing.json and reports."""
        prefix = "darknet-alexeyab" if self.alexeyab else "darknet"
        if self.gpu:
            return f"{prefix}-gpu"
        if self.stamp.get("blas") == "openblas":
            return f"{prefix}-cpu-openblas"
        return f"{prefix}-cpu-openmp" if self.openmp else f"{prefix}-cpu-1thread"


def find_darknet(prefer: str = "auto", fork: str = "pjreddie") -> DarknetInstall:
    """The Darknet to use. pjreddie: $HARNESS_DARKNET, else the cached OpenMP build, else Debian's.
    alexeyab: $HARNESS_DARKNET_ALEXEYAB (or $HARNESS_DARKNET when it is AlexeyAB's), else the cached
    build of ``install_darknet.sh --fork alexeyab``.

    ``prefer``: "auto", "omp"/"cpu" (cached CPU build), "gpu" (cached GPU=1 build) or "debian".
    """
    check_fork(fork)
    if prefer == "auto":
        from_env = _install_from_env(fork)
        if from_env is not None:
            return from_env
    if fork == "alexeyab":
        candidates = {"cpu": lambda: _cached_build("cpu", "alexeyab"), "gpu": lambda: _cached_build("gpu", "alexeyab")}
        candidates["omp"] = candidates["cpu"]
        order = ["cpu"] if prefer == "auto" else [prefer]
    else:
        candidates = {
            "omp": lambda: _cached_build("omp"),
            "gpu": lambda: _cached_build("gpu"),
            "debian": _debian_install,
        }
        order = ["omp", "debian"] if prefer == "auto" else [prefer]
    for name in order:
        if name not in candidates:
            raise ValueError(f"unknown {fork} Darknet preference {prefer!r} (auto, {', '.join(candidates)})")
        found = candidates[name]()
        if found is not None:
            return found
    raise NativeFrameworkError(
        f"{fork} Darknet not found (looked for: {', '.join(order)}); install it with: {INSTALL_HINTS[fork]}"
    )


def _install_from_env(fork: str) -> Optional[DarknetInstall]:
    """$HARNESS_DARKNET_ALEXEYAB for AlexeyAB; $HARNESS_DARKNET for whichever fork it turns out to be."""
    variable = (
        "HARNESS_DARKNET_ALEXEYAB"
        if fork == "alexeyab" and os.environ.get("HARNESS_DARKNET_ALEXEYAB")
        else "HARNESS_DARKNET"
    )
    if not os.environ.get(variable):
        return None
    install = _install_from_path(Path(os.environ[variable]), variable)
    return install if install.fork == fork else None


def darknet_at(binary: Path) -> DarknetInstall:
    """The Darknet install of this binary (either fork; its library beside it), e.g. for benchmarks."""
    return _install_from_path(Path(binary), "binary")


def _install_from_path(binary: Path, variable: str) -> DarknetInstall:
    if binary.is_dir():
        binary = binary / "darknet"
    if not (binary.is_file() and os.access(binary, os.X_OK)):
        raise NativeFrameworkError(f"{variable}={binary}: not an executable Darknet binary")
    library = os.environ.get("HARNESS_DARKNET_LIB") if variable == "HARNESS_DARKNET" else None
    lib_path = Path(library) if library else _library_beside(binary)
    if library and not (lib_path is not None and lib_path.is_file()):
        raise NativeFrameworkError(f"HARNESS_DARKNET_LIB={library}: no such file")
    data = binary.read_bytes()
    stamp = _stamp_beside(binary)  # a build of scripts/install_darknet.sh (e.g. the GPU image's)
    alexeyab = stamp.get("fork") == "alexeyab" or b"dont_show" in data
    return DarknetInstall(
        binary,
        lib_path,
        "custom",
        version=stamp.get("debian_version", ""),
        openmp=b"libgomp" in data,
        gpu=b"libcudart" in data or b"cudaMalloc" in data,
        stamp=stamp,
        alexeyab=alexeyab,
    )


def _stamp_beside(binary: Path) -> dict:
    """The install script's ``.stamp`` of the build this binary belongs to, if it is one."""
    stamp = binary.resolve().parent.parent / ".stamp"
    try:
        return json.loads(stamp.read_text()) if stamp.is_file() else {}
    except (OSError, json.JSONDecodeError):
        return {}


def _library_beside(binary: Path) -> Optional[Path]:
    for candidate in (
        binary.parent / "libdarknet.so",
        binary.parent.parent / "lib" / "libdarknet.so",
        binary.parent.parent / "lib" / "darknet" / "libdarknet.so",
    ):
        if candidate.is_file():
            return candidate
    return None


def _cached_build(variant: str, fork: str = "pjreddie") -> Optional[DarknetInstall]:
    """Newest complete build (``.stamp`` written last by the install script) of this fork and variant."""
    builds = []
    pattern = f"darknet-alexeyab-*-{variant}*" if fork == "alexeyab" else f"darknet-*-{variant}*"
    for directory in cache_dir().glob(pattern):
        stamp_path = directory / ".stamp"
        binary = directory / "bin" / "darknet"
        if stamp_path.is_file() and binary.is_file():
            builds.append((stamp_path.stat().st_mtime, directory, binary))
    stamps = {directory: json.loads((directory / ".stamp").read_text()) for _, directory, _ in builds}
    builds = [b for b in builds if stamps[b[1]].get("fork", "pjreddie") == fork]
    if not builds:
        return None
    _, directory, binary = max(builds)
    stamp = stamps[directory]
    library = directory / "lib" / "libdarknet.so"
    return DarknetInstall(
        binary,
        library if library.is_file() else None,
        variant,
        version=stamp.get("debian_version") or f"alexeyab@{stamp.get('commit', '')[:8]}",
        openmp=bool(stamp.get("openmp")),
        gpu=bool(stamp.get("gpu")),
        stamp=stamp,
        alexeyab=fork == "alexeyab",
    )


def _debian_install() -> Optional[DarknetInstall]:
    binary = DEBIAN_BINARY if DEBIAN_BINARY.is_file() else None
    if binary is None:
        which = shutil.which("darknet")
        binary = Path(which) if which else None
    if binary is None:
        return None
    library = DEBIAN_LIBRARY if DEBIAN_LIBRARY.is_file() else _library_beside(binary)
    return DarknetInstall(binary, library, "debian", version=_dpkg_version("darknet"))


def _dpkg_version(package: str) -> str:
    try:
        out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


def inspect_darknet(prefer: str = "auto", fork: str = "pjreddie") -> FrameworkStatus:
    """What ``harness doctor`` shows: which Darknet, its fork, version/commit, source sha256, CPU/GPU, OpenMP."""
    name = "darknet" if fork == "pjreddie" else f"darknet-{fork}"
    try:
        install = find_darknet(prefer, fork)
    except NativeFrameworkError as exc:
        return FrameworkStatus(name, False, missing=[str(exc)], install_hint=INSTALL_HINTS[fork])
    missing = []
    runs = _binary_runs(install.binary)
    if not runs:
        missing.append(f"{install.binary} does not run (no usage line)")
    if install.library is None:
        missing.append("libdarknet.so not found: in-process (ctypes) inference and timing unavailable")
    details = {
        "fork": install.fork,
        "flavour": install.flavour,
        "binary": str(install.binary),
        "library": str(install.library) if install.library else None,
        "openmp": install.openmp,
        "threads": _openmp_threads() if install.openmp else 1,
        "commit": install.commit,
        "source_sha256": install.stamp.get("source_sha256") or _debian_orig_sha256(install),
        "upstream": (
            "AlexeyAB/darknet"
            if install.alexeyab
            else "pjreddie/darknet"
            if install.flavour != "custom" or install.stamp
            else "unknown (HARNESS_DARKNET)"
        ),
        "backend": install.backend,
    }
    if install.stamp:
        details["build"] = {k: install.stamp.get(k) for k in ("opts", "make_args", "built")}
    return FrameworkStatus(
        name,
        runs,
        version=install.version,
        location=str(install.binary),
        device="GPU" if install.gpu else "CPU",
        details=details,
        missing=missing,
        install_hint=""
        if runs and install.flavour != "debian"
        else INSTALL_HINTS[fork] + "  (builds the faster OpenMP variant)",
    )


def _debian_orig_sha256(install: DarknetInstall) -> Optional[str]:
    """sha256 of Debian's orig tarball the pjreddie build came from (Debian's .dsc lists it)."""
    if install.alexeyab or not install.version:
        return None
    upstream = install.version.rsplit("-", 1)[0]
    for dsc in sorted(cache_dir().glob(f"src/darknet-debian/darknet_{install.version}.dsc")):
        found = re.search(
            r"^ ([0-9a-f]{64}) \d+ darknet_" + re.escape(upstream) + r"\.orig\.tar\.\w+$", dsc.read_text(), re.M
        )
        if found:
            return found.group(1)
    return None


def _binary_runs(binary: Path) -> bool:
    """Darknet without arguments prints ``usage: darknet <function>``."""
    try:
        out = subprocess.run([str(binary)], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return "usage" in (out.stdout + out.stderr)


def _openmp_threads() -> int:
    value = os.environ.get("OMP_NUM_THREADS", "")
    return int(value) if value.isdigit() else (os.cpu_count() or 1)


# --------------------------------------------------------------------------- native files


def read_data_file(data_path: Path) -> dict[str, str]:
    """A .data file as Darknet reads it, refusing what Darknet would silently corrupt.

    Darknet deletes every space and tab in a line (even inside paths) and skips ``#``/``;`` lines.
    """
    data_path = Path(data_path)
    text = _read_lf_text(data_path, ".data file", "Darknet keeps the '\\r' in paths")
    options: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped[0] in "#;":
            continue
        if "=" not in stripped:
            raise DarknetInputError(f"{data_path}:{number}: not a key=value line: {line!r}")
        key, value = (part.strip() for part in stripped.split("=", 1))
        if re.search(r"\s", value):
            raise DarknetInputError(
                f"{data_path}:{number}: {key}={value!r} contains a space; "
                "Darknet deletes spaces in .data values, so this path would be wrong"
            )
        options[key] = value
    return options


def resolve(value: str, cwd: Path) -> Path:
    """Darknet opens relative paths from its working directory."""
    path = Path(value)
    return path if path.is_absolute() else cwd / path


def read_image_list(list_path: Path) -> list[str]:
    """Image paths of a train/valid list; CRLF and blank lines are errors Darknet would not report."""
    text = _read_lf_text(Path(list_path), "image list", "Darknet would look for 'x.jpg\\r'")
    return [line for line in text.split("\n") if line]


def _read_lf_text(path: Path, what: str, crlf_consequence: str) -> str:
    """A text file Darknet reads: it must exist and use LF line endings (CR is kept in values)."""
    if not path.is_file():
        raise DarknetInputError(f"{path}: {what} not found")
    raw = path.read_bytes()
    if b"\r" in raw:
        raise DarknetInputError(f"{path}: CRLF line endings; {crlf_consequence}")
    return raw.decode("utf-8")


def read_weights_seen(weights: Path) -> int:
    """Images already seen, from a weights header (int32 major, minor, revision, then seen)."""
    with open(weights, "rb") as handle:
        header = handle.read(20)
    if len(header) < 16:
        raise DarknetInputError(f"{weights}: too short to be Darknet weights")
    major, minor, _revision = struct.unpack("<3i", header[:12])
    if major * 10 + minor >= 2 and major < 1000 and minor < 1000:
        return struct.unpack("<Q", header[12:20])[0] if len(header) >= 20 else 0
    return struct.unpack("<i", header[12:16])[0]


def cfg_base(cfg_path: Path) -> str:
    """Darknet's basecfg(): file name up to its first '.' — the stem of every weight file."""
    return Path(cfg_path).name.split(".", 1)[0]


# --------------------------------------------------------------------------- training


@dataclass
class TrainPlan:
    """Everything checked before launching ``darknet detector train``."""

    data_path: Path
    cfg_path: Path
    cwd: Path
    backup_dir: Path
    base: str
    cfg: CfgSummary
    weights: Optional[Path]
    clear: bool
    resumed_from: Optional[Path]
    n_images: int


def train_darknet(
    data_path: Path,
    cfg_path: Path,
    workdir: Path,
    *,
    init_weights: Optional[Path] = None,
    clear: bool = False,
    progress: Optional[Callable[[Progress], None]] = None,
    max_batches: Optional[int] = None,
    install: Optional[DarknetInstall] = None,
    resume: bool = True,
    timeout: Optional[float] = None,
    show_progress: Optional[bool] = None,
    device: Device = Device("cpu"),
    label: Optional[str] = None,
    display_total: Optional[int] = None,
) -> TrainResult:
    """Train with ``darknet detector train``; resume from ``<backup>/<cfgbase>.backup`` if present.

    Writes ``workdir/train.log`` (appended on resume) and ``workdir/loss.csv``. ``max_batches``
    overrides the cfg's value in a copy written to ``workdir/cfg/``. Relative paths in the
    .data file are resolved from the .data file's folder, which is Darknet's working directory.
    Raises :class:`DarknetInputError` before launching, :class:`NativeFrameworkError` after.
    """
    install = install or find_darknet()
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    if max_batches is not None:
        cfg_path = write_cfg_copy(cfg_path, workdir / "cfg", {"net": {"max_batches": str(max_batches)}})
    if resume and not clear:
        done = _already_trained(data_path, cfg_path, workdir)
        if done is not None:
            return done
    plan = plan_training(data_path, cfg_path, init_weights=init_weights, clear=clear, resume=resume, fork=install.fork)
    argv = train_argv(install, plan, device)
    log_path = workdir / "train.log"
    run = run_native(
        argv,
        log_path,
        parse_darknet_line,
        display_total or plan.cfg.max_batches,
        cwd=plan.cwd,
        label=label or f"darknet {plan.base}",
        on_progress=progress,
        append=plan.resumed_from is not None,
        timeout=timeout,
        show_progress=show_progress,
    )
    findings = read_darknet_log(log_path)
    loss_csv = write_loss_csv(latest_per_iteration(findings.steps), workdir / "loss.csv")
    final = check_training(plan, run, findings)
    return TrainResult(
        log_path=log_path,
        loss_csv=loss_csv,
        weights=final,
        iterations=findings.last_iteration,
        seconds=run.seconds,
        resumed_from=plan.resumed_from,
    )


def device_args(device: Device, alexeyab: bool = False) -> list[str]:
    """pjreddie and AlexeyAB both read ``-i N``; ``-nogpu`` keeps a pjreddie GPU build on the CPU.
    AlexeyAB has no ``-nogpu`` (it would read it as the weights path): its CPU runs get nothing."""
    if device.gpu:
        return ["-i", str(device.index)]
    return [] if alexeyab else ["-nogpu"]


def train_argv(install: DarknetInstall, plan: TrainPlan, device: Device = Device("cpu")) -> list[str]:
    """``darknet detector train <data> <cfg> [weights] [-clear] (-i N | -nogpu)``."""
    argv = [str(install.binary), "detector", "train", str(plan.data_path), str(plan.cfg_path)]
    if plan.weights is not None:
        argv.append(str(plan.weights))
    if plan.clear:
        argv.append("-clear")
    if install.alexeyab:
        argv.append("-dont_show")  # its OpenCV builds otherwise open a loss-chart window
    return argv + device_args(device, install.alexeyab)


def plan_training(
    data_path: Path,
    cfg_path: Path,
    *,
    init_weights: Optional[Path] = None,
    clear: bool = False,
    resume: bool = True,
    fork: str = "pjreddie",
) -> TrainPlan:
    """Check what Darknet ``fork`` would get wrong silently; collect every problem in one error."""
    data_path, cfg_path = Path(data_path).resolve(), Path(cfg_path).resolve()
    options = read_data_file(data_path)
    cwd = data_path.parent
    cfg = summarize_cfg(cfg_path)
    problems = list(cfg.problems)
    problems += _path_problems({"data file": data_path, "cfg": cfg_path})
    backup_dir = resolve(options.get("backup", "/backup/"), cwd)
    base = cfg_base(cfg_path)
    problems += _backup_problems(backup_dir, base)
    train_list = options.get("train")
    images: list[str] = []
    if train_list is None:
        problems.append(f"{data_path}: no train= entry")
    else:
        images = read_image_list(resolve(train_list, cwd))
        problems += _training_image_problems(images, resolve(train_list, cwd), cwd, cfg.classes, fork)
    problems += _names_problems(options, cwd, cfg.classes, data_path)
    if cfg.max_batches <= 0:
        problems.append(f"{cfg_path}: max_batches must be > 0")
    weights, resumed_from, clear = _choose_start(backup_dir, base, init_weights, clear, resume, cfg, problems)
    if problems:
        raise DarknetInputError("Darknet training inputs are not usable:\n  - " + "\n  - ".join(problems))
    return TrainPlan(data_path, cfg_path, cwd, backup_dir, base, cfg, weights, clear, resumed_from, len(images))


def _path_problems(paths: dict[str, Path]) -> list[str]:
    return [
        f"{what} path {path} contains a space (Darknet splits/deletes spaces)"
        for what, path in paths.items()
        if " " in str(path)
    ]


def _backup_problems(backup_dir: Path, base: str) -> list[str]:
    problems = []
    if not backup_dir.is_dir():
        problems.append(
            f"backup directory {backup_dir} does not exist (Darknet would train, fail to save "
            'with "Couldn\'t open file" and exit 0); create it'
        )
    if " " in str(backup_dir):
        problems.append(f"backup directory {backup_dir} contains a space")
    longest = f"{backup_dir}/{base}_{10**7}.weights"
    if len(longest) >= PATH_BUFFER:
        problems.append(
            f"weight path {longest!r} is {len(longest)} chars; Darknet's buffer is {PATH_BUFFER}: "
            "use a shorter backup directory"
        )
    return problems


def _training_image_problems(
    images: list[str], list_path: Path, cwd: Path, classes: int, fork: str = "pjreddie"
) -> list[str]:
    """Every image and its label file (by ``fork``'s path rule) must exist and parse; report counts
    and the first few."""
    if not images:
        return [f"{list_path}: no images listed"]
    missing_images, missing_labels, bad_labels = [], [], []
    for image in images:
        image_path = resolve(image, cwd)
        if " " in image:
            bad_labels.append(f"{image}: path contains a space")
        if not image_path.is_file():
            missing_images.append(image)
            continue
        label = Path(darknet_label_path(image, cwd, fork))
        if not label.is_file():
            missing_labels.append(f"{image} -> {label} ({fork}'s label-path rule)")
            continue
        bad_labels += _label_file_problems(label, classes)
    problems = []
    for what, items in (
        ("images missing", missing_images),
        ("label files missing", missing_labels),
        ("bad label lines", bad_labels),
    ):
        if items:
            problems.append(f"{list_path}: {len(items)} {what}, e.g. " + "; ".join(items[:3]))
    return problems


def _label_file_problems(label: Path, classes: int) -> list[str]:
    problems = []
    for number, line in enumerate(label.read_text().splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        try:
            cls, values = int(fields[0]), [float(v) for v in fields[1:]]
        except ValueError:
            problems.append(f"{label}:{number}: not 'cls cx cy w h': {line!r}")
            continue
        if len(values) != 4 or not 0 <= cls < classes or not all(0.0 <= v <= 1.0 for v in values):
            problems.append(f"{label}:{number}: expected class in [0,{classes}) and 4 values in [0,1]: {line!r}")
    return problems


def _names_problems(options: dict[str, str], cwd: Path, classes: int, data_path: Path) -> list[str]:
    names = options.get("names")
    if names is None:
        return []
    names_path = resolve(names, cwd)
    if not names_path.is_file():
        return [f"{data_path}: names file {names_path} not found"]
    count = len([n for n in names_path.read_text().splitlines() if n.strip()])
    if count < classes:
        return [
            f"{names_path}: {count} names but the cfg has classes={classes} "
            "(Darknet would write comp4_det_test_(null).txt)"
        ]
    return []


def _choose_start(
    backup_dir: Path, base: str, init_weights, clear: bool, resume: bool, cfg: CfgSummary, problems: list[str]
) -> tuple[Optional[Path], Optional[Path], bool]:
    """Resume from the .backup when present; else start from init_weights (or random)."""
    backup = _resume_file(backup_dir, base, cfg.batch)
    if resume and backup is not None and not clear:
        weights, resumed_from = backup, backup
    elif init_weights is not None:
        weights, resumed_from = Path(init_weights).resolve(), None
        if not weights.is_file():
            problems.append(f"initial weights {weights} not found")
            return weights, None, clear
    else:
        return None, None, clear
    images_per_iteration = max(1, cfg.batch)
    seen_iterations = read_weights_seen(weights) // images_per_iteration
    if not clear and seen_iterations >= cfg.max_batches:
        problems.append(
            f"{weights} has already seen {seen_iterations} iterations >= max_batches={cfg.max_batches}: "
            "Darknet would save _final at once without training. Use clear=True (-clear) to "
            "fine-tune from it, or raise max_batches to continue"
        )
    return weights, resumed_from, clear


def _resume_file(backup_dir: Path, base: str, batch: int = 1) -> Optional[Path]:
    """The checkpoint with the most iterations seen (its header), ties to the latest written:
    pjreddie saves ``<base>.backup`` every 100 iterations and ``<base>_final.weights`` at
    max_batches; AlexeyAB ``<base>_last.weights``. Training segment by segment (periodic
    evaluation) ends segments between backups, so the newest state is often ``_final``."""
    checkpoints = _checkpoints(backup_dir, base, batch)
    return checkpoints[-1][1] if checkpoints else None


def _checkpoints(backup_dir: Path, base: str, batch: int) -> list[tuple[int, Path]]:
    """(iterations seen, path) of every resumable file, oldest state first; at the same iteration
    Darknet's own resume file (``.backup``) sorts last, so it stays the one resumed from."""
    found = []
    for rank, name in enumerate((f"{base}_final.weights", f"{base}_last.weights", f"{base}.backup")):
        path = backup_dir / name
        if path.is_file():
            try:
                found.append((read_weights_seen(path) // max(1, batch), rank, path))
            except (OSError, DarknetInputError):
                continue
    return [(iteration, path) for iteration, _, path in sorted(found)]


def _already_trained(data_path: Path, cfg_path: Path, workdir: Path) -> Optional[TrainResult]:
    """The newest checkpoint has reached max_batches (a finished segment, or a finished run that
    is resumed for a later step): report it instead of starting Darknet, which would only save
    ``_final`` again without training."""
    data_path, cfg_path = Path(data_path).resolve(), Path(cfg_path).resolve()
    cfg = summarize_cfg(cfg_path)
    options = read_data_file(data_path)
    backup_dir = resolve(options.get("backup", "/backup/"), data_path.parent)
    checkpoints = _checkpoints(backup_dir, cfg_base(cfg_path), cfg.batch)
    if not checkpoints or checkpoints[-1][0] < cfg.max_batches or cfg.max_batches <= 0:
        return None
    iteration = checkpoints[-1][0]
    newest = [path for seen, path in checkpoints if seen == iteration]
    weights = next((path for path in newest if path.name.endswith("_final.weights")), newest[-1])
    log_path = workdir / "train.log"
    loss_csv = workdir / "loss.csv"
    if log_path.is_file():
        write_loss_csv(latest_per_iteration(read_darknet_log(log_path).steps), loss_csv)
    return TrainResult(
        log_path=log_path, loss_csv=loss_csv, weights=weights, iterations=iteration, seconds=0.0, resumed_from=weights
    )


def check_training(plan: TrainPlan, run: NativeRun, findings: DarknetLogFindings) -> Path:
    """The run's evidence, not its exit code: final weights, finite loss, no unopened files."""
    final = plan.backup_dir / f"{plan.base}_final.weights"
    problems = []
    if findings.label_problem:
        problems.append(
            f"{findings.label_problem} (log: {run.log_path}); each fork finds labels by its own "
            "path rule (harness.data.darknet.darknet_label_path)"
        )
    elif findings.could_not_open:
        problems.append(
            f"Darknet could not open {findings.could_not_open[0]!r}: " + _open_cause(findings.could_not_open[0], plan)
        )
    if run.crashed:
        problems.append(
            f"darknet died with {run.describe_returncode()}; likely causes: "
            "a label/image it could not read, classes/filters mismatch in the cfg, out of memory"
        )
    bad = findings.first_nonfinite
    if bad is not None:
        problems.append(
            f"loss became {bad.loss} at iteration {bad.iteration}: training diverged "
            "(lower learning_rate, longer burn_in, or check labels)"
        )
    if not final.is_file():
        problems.append(f"no final weights {final} (last iteration seen in the log: {findings.last_iteration})")
    elif read_weights_seen(final) // max(1, plan.cfg.batch) < plan.cfg.max_batches:
        problems.append(
            f"{final} is from an earlier segment (iteration {read_weights_seen(final) // max(1, plan.cfg.batch)}"
            f" < max_batches={plan.cfg.max_batches}): this run never finished"
        )
    if problems:
        raise NativeFrameworkError(
            f"Darknet training failed (exit status {run.returncode}):\n  - " + "\n  - ".join(problems), run.log_tail()
        )
    return final


def _open_cause(path: str, plan: TrainPlan) -> str:
    if path.startswith(str(plan.backup_dir)) or path.endswith((".weights", ".backup")):
        return "the backup directory is missing or not writable"
    return "a file named in the .data/.cfg is missing"


# --------------------------------------------------------------------------- detector valid


def detect_darknet_valid(
    data_path: Path,
    cfg_path: Path,
    weights: Path,
    out_dir: Path,
    *,
    install: Optional[DarknetInstall] = None,
    timeout: Optional[float] = None,
    show_progress: Optional[bool] = None,
    device: Device = Device("cpu"),
) -> Path:
    """Run ``darknet detector valid`` over the .data file's ``valid=`` list into ``out_dir``.

    Writes ``out_dir/comp4_det_test_<class>.txt`` (VOC pixels, 1-based, threshold 0.005, NMS 0.45
    — both hard-coded in pjreddie's valid) and ``out_dir/valid.log``; returns ``out_dir``.
    """
    install = install or find_darknet()
    data_path, cfg_path, weights = Path(data_path).resolve(), Path(cfg_path).resolve(), Path(weights).resolve()
    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    options = read_data_file(data_path)
    cwd = data_path.parent
    cfg = summarize_cfg(cfg_path)
    short_list_in_process = _valid_list_length(options, cwd) < VALID_MIN_IMAGES and _can_run_in_process(install)
    images, names = _check_valid_inputs(
        options, cwd, cfg, weights, data_path, out_dir, allow_short=short_list_in_process
    )
    if short_list_in_process:
        return _valid_in_process(
            install, cfg_path, weights, [resolve(i, cwd) for i in images], names, cfg, out_dir, device
        )
    run_data = _write_valid_data(options, cwd, out_dir)
    argv = valid_argv(install, run_data, cfg_path, weights, device)
    progress = functools.partial(valid_progress, total=len(images))
    run = run_native(
        argv,
        out_dir / "valid.log",
        progress,
        len(images),
        cwd=cwd,
        label=f"darknet valid {cfg_base(cfg_path)}",
        timeout=timeout,
        show_progress=show_progress,
    )
    expected = [out_dir / f"comp4_det_test_{name}.txt" for name in names[: cfg.classes]]
    missing = [str(p) for p in expected if not p.is_file()]
    if run.crashed or missing or run.returncode != 0:
        raise NativeFrameworkError(
            f"darknet detector valid failed ({run.describe_returncode()}); missing outputs: {missing or 'none'}",
            run.log_tail(),
        )
    return out_dir


def darknet_map(
    data_path: Path,
    cfg_path: Path,
    weights: Path,
    out_dir: Path,
    *,
    install: DarknetInstall,
    points: int = 0,
    iou: float = 0.5,
    timeout: Optional[float] = None,
) -> dict:
    """AlexeyAB's own evaluator, ``detector map`` over the .data file's ``valid=`` list (its labels by
    its label-path rule): ``{"map", "iou", "classes": {name: ap}, "log"}``; output in ``out_dir/map.log``."""
    if not install.alexeyab:
        raise NativeFrameworkError(f"{install.binary}: `detector map` is AlexeyAB's; this is pjreddie's Darknet")
    data_path, cfg_path, weights = Path(data_path).resolve(), Path(cfg_path).resolve(), Path(weights).resolve()
    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    options = read_data_file(data_path)
    cfg = summarize_cfg(cfg_path)
    images, _ = _check_valid_inputs(options, data_path.parent, cfg, weights, data_path, out_dir, allow_short=True)
    missing = [i for i in images if not Path(darknet_label_path(i, data_path.parent, "alexeyab")).is_file()]
    if missing:
        raise DarknetInputError(
            f"{data_path}: {len(missing)} valid image(s) without a label file by AlexeyAB's "
            f"rule (detector map would count no objects there), e.g. {missing[:3]}"
        )
    argv = [
        str(install.binary),
        "detector",
        "map",
        str(data_path),
        str(cfg_path),
        str(weights),
        "-dont_show",
        "-points",
        str(points),
        "-iou_thresh",
        str(iou),
        *device_args(Device("cpu"), alexeyab=True),
    ]
    log_path = out_dir / "map.log"
    run = run_native(
        argv,
        log_path,
        lambda line: None,
        None,
        cwd=data_path.parent,
        label="darknet map",
        timeout=timeout,
        show_progress=False,
    )
    try:
        result = parse_darknet_map(log_path.read_text(errors="replace"))
    except ValueError as exc:
        raise NativeFrameworkError(
            f"darknet detector map failed ({run.describe_returncode()}): {exc}", run.log_tail()
        ) from None
    return {**result, "log": log_path}


def valid_argv(
    install: DarknetInstall, data_path: Path, cfg_path: Path, weights: Path, device: Device = Device("cpu")
) -> list[str]:
    """``darknet detector valid <data> <cfg> <weights> (-i N | -nogpu)``."""
    return [
        str(install.binary),
        "detector",
        "valid",
        str(data_path),
        str(cfg_path),
        str(weights),
        *device_args(device, install.alexeyab),
    ]


def _valid_list_length(options: dict[str, str], cwd: Path) -> int:
    path = resolve(options.get("valid", "data/train.list"), cwd)
    return len(read_image_list(path)) if path.is_file() else 0


def _can_run_in_process(install: DarknetInstall) -> bool:
    """pjreddie's libdarknet gives byte-identical files to ``valid`` (tested); AlexeyAB's valid copes."""
    return install.library is not None and not install.alexeyab


def _valid_in_process(
    install: DarknetInstall,
    cfg_path: Path,
    weights: Path,
    images: list[Path],
    names: list[str],
    cfg: CfgSummary,
    out_dir: Path,
    device: Device,
) -> Path:
    """Fewer than 4 images (pjreddie's valid segfaults): same steps through libdarknet instead."""
    from harness.frameworks.darknet.libdarknet import detect_darknet_ctypes as _detect

    note = (
        f"{len(images)} image(s) < {VALID_MIN_IMAGES}: pjreddie's `detector valid` would segfault, so the "
        f"same letterbox/threshold {0.005}/NMS {0.45} steps ran in-process via {install.library}\n"
    )
    (out_dir / "valid.log").write_text(note)
    _detect(cfg_path, weights, images, names[: cfg.classes], out_dir, install=install, device=device)
    return out_dir


def valid_progress(line: str, total: int) -> Optional[Progress]:
    """valid prints the running image count on its own line, in steps of 4 (its loader threads), so
    it reads 12 for a list of 11: capped at ``total``."""
    return Progress(min(int(line), total), math.nan) if line.isdigit() else None


def _check_valid_inputs(
    options, cwd: Path, cfg: CfgSummary, weights: Path, data_path: Path, out_dir: Path, allow_short: bool = False
) -> tuple[list[str], list[str]]:
    problems = list(cfg.problems)
    if not weights.is_file():
        problems.append(f"weights {weights} not found")
    if " " in str(out_dir):
        problems.append(f"output directory {out_dir} contains a space")
    images = read_image_list(resolve(options.get("valid", "data/train.list"), cwd))
    if not images:
        problems.append(f"{options.get('valid')}: no images listed")
    elif len(images) < VALID_MIN_IMAGES and not allow_short:
        problems.append(
            f"{options.get('valid')}: {len(images)} images; pjreddie's `detector valid` needs at "
            f"least {VALID_MIN_IMAGES} (it segfaults otherwise) and no libdarknet.so is available "
            "for the in-process fallback"
        )
    missing = [image for image in images if not resolve(image, cwd).is_file()]
    if missing:
        problems.append(f"{len(missing)} listed images missing, e.g. {missing[:3]}")
    problems += _duplicate_id_problems(images)
    names_path = resolve(options.get("names", "data/names.list"), cwd)
    names = [n.strip() for n in names_path.read_text().splitlines() if n.strip()] if names_path.is_file() else []
    if len(names) < cfg.classes:
        problems.append(f"names file {names_path}: {len(names)} names, cfg has classes={cfg.classes}")
    if problems:
        raise DarknetInputError(f"{data_path}: cannot run detector valid:\n  - " + "\n  - ".join(problems))
    return images, names


def image_id(path: str) -> str:
    """The id valid writes: file name up to its first '.' (Darknet's basecfg)."""
    return path.rsplit("/", 1)[-1].split(".", 1)[0]


def _duplicate_id_problems(images: list[str]) -> list[str]:
    seen: dict[str, str] = {}
    clashes = []
    for image in images:
        key = image_id(image)
        if key in seen and seen[key] != image:
            clashes.append(f"{seen[key]} and {image} both become id {key!r}")
        seen.setdefault(key, image)
    return (
        [f"{len(clashes)} image id collisions (ids are file names up to the first '.'): " + "; ".join(clashes[:3])]
        if clashes
        else []
    )


def _write_valid_data(options: dict[str, str], cwd: Path, out_dir: Path) -> Path:
    """A .data copy whose ``results=`` is out_dir, with every path made absolute."""
    lines = []
    for key, value in options.items():
        if key in ("train", "valid", "names", "backup", "map"):
            value = str(resolve(value, cwd))
        if key not in ("results", "eval"):
            lines.append(f"{key}={value}")
    lines += [f"results={out_dir}", "eval=voc"]  # per-class VOC files are the harness contract
    path = out_dir / "valid.data"
    path.write_text("\n".join(lines) + "\n")
    return path

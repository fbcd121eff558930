"""``--device cpu|gpu|gpu:N|auto``: decided once per experiment, then carried by its config.

This module knows no framework: each backend turns a :class:`Device` into its own arguments
(Caffe's ``solver_mode`` and ``caffe train --gpu N``, Darknet's ``-i N`` / ``-nogpu``, the pycaffe /
libdarknet processes that detect and time) and says whether its build has CUDA
(``FrameworkBackend.has_gpu_build``, reached through
:func:`harness.frameworks.resolve_framework_device`). ``auto`` picks the GPU only when one is
visible *and* the build can use it, and says why either way.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable

CHOICES = "cpu, gpu, gpu:N or auto"


@dataclass(frozen=True)
class Device:
    kind: str  # "cpu" | "gpu"
    index: int = 0
    reason: str = field(default="", compare=False)  # why auto chose it; not part of its identity

    def __post_init__(self) -> None:
        if self.kind not in ("cpu", "gpu") or self.index < 0:
            raise ValueError(f"device must be {CHOICES}, got {self}")

    def __str__(self) -> str:
        return "cpu" if self.kind == "cpu" else f"gpu:{self.index}"

    @property
    def gpu(self) -> bool:
        return self.kind == "gpu"

    @classmethod
    def parse(cls, text: str) -> Device:
        """``cpu``, ``gpu`` (= gpu:0) or ``gpu:N``; ``auto`` is resolved by :func:`resolve_device`."""
        value = str(text).strip().lower()
        if value == "cpu":
            return cls("cpu")
        if value == "gpu":
            return cls("gpu", 0)
        if value.startswith("gpu:") and value[4:].isdigit():
            return cls("gpu", int(value[4:]))
        raise ValueError(f"device must be {CHOICES}, got {text!r}")


@lru_cache(maxsize=1)
def visible_gpus() -> tuple[str, ...]:
    """``nvidia-smi -L`` lines; empty where there is no driver or no GPU."""
    if shutil.which("nvidia-smi") is None:
        return ()
    try:
        done = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return ()
    return tuple(line for line in done.stdout.splitlines() if line.startswith("GPU ")) if done.returncode == 0 else ()


def resolve_device(choice: str, has_gpu_build: Callable[[], bool], what: str = "framework") -> Device:
    """The device for one build; ``auto`` = GPU when visible and ``has_gpu_build()`` (asked only
    then; an exception counts as no). ``what`` names the build in the reason."""
    if str(choice).strip().lower() != "auto":
        return Device.parse(choice)
    gpus = visible_gpus()
    if not gpus:
        return Device("cpu", reason="auto: no GPU visible (nvidia-smi)")
    try:
        gpu_build = bool(has_gpu_build())
    except Exception:
        gpu_build = False
    if not gpu_build:
        return Device("cpu", reason=f"auto: {len(gpus)} GPU(s) visible but the {what} build is CPU-only")
    return Device("gpu", 0, reason=f"auto: {gpus[0]}")


def describe_device(device: Device = Device("cpu")) -> str:
    """The GPU's name (nvidia-smi) or the CPU model and core count: a timing means nothing without it."""
    import os
    import platform
    from pathlib import Path

    if device.gpu:
        gpus = visible_gpus()
        return gpus[device.index] if device.index < len(gpus) else str(device)
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} cores"

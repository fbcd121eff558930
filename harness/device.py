"""``--device cpu|gpu|gpu:N|auto``: decided once per experiment, then carried by its config.

The device reaches every native call from here alone: Caffe's ``solver_mode`` and ``caffe train
--gpu N``, Darknet's ``-i N`` / ``-nogpu``, and the pycaffe / libdarknet processes that detect
and time. ``auto`` picks the GPU only when one is visible *and* the framework's build can use it,
and says why either way.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field
from functools import lru_cache

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

    @property
    def caffe_solver_mode(self) -> str:
        return "GPU" if self.gpu else "CPU"

    def caffe_train_args(self) -> list[str]:
        """``caffe train`` reads solver_mode from the solver; ``--gpu`` picks the card."""
        return [f"--gpu={self.index}"] if self.gpu else []

    def darknet_args(self, alexeyab: bool = False) -> list[str]:
        """pjreddie and AlexeyAB both read ``-i N``; ``-nogpu`` keeps a pjreddie GPU build on the CPU.
        AlexeyAB has no ``-nogpu`` (it would read it as the weights path): its CPU runs get nothing."""
        if self.gpu:
            return ["-i", str(self.index)]
        return [] if alexeyab else ["-nogpu"]

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


def framework_has_gpu_build(framework: str) -> bool:
    """Whether the build the harness would run for ``framework`` was compiled with CUDA."""
    try:
        if framework == "caffe":
            from harness.frameworks.caffe.driver import find_caffe, is_gpu_build

            return is_gpu_build(find_caffe().root)
        from harness.frameworks.darknet.driver import find_darknet

        return find_darknet("gpu").gpu
    except Exception:
        return False


def resolve_device(choice: str, framework: str) -> Device:
    """The device for one framework; ``auto`` = GPU when visible and the build supports it."""
    if str(choice).strip().lower() != "auto":
        return Device.parse(choice)
    gpus = visible_gpus()
    if not gpus:
        return Device("cpu", reason="auto: no GPU visible (nvidia-smi)")
    if not framework_has_gpu_build(framework):
        return Device("cpu", reason=f"auto: {len(gpus)} GPU(s) visible but the {framework} build is CPU-only")
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

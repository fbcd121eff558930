#!/usr/bin/env python3
"""Audit throughput (``harness data check``): BCCD repeated to >= 2,000 images, every image decoded
and hashed (SHA-256 + pHash), all pairs compared, XML validated.

Prints images/s (wall clock) for the audit alone and for the audit plus the written report
(JSON, PNGs, HTML), with all cores and with one process; record the output in
docs/benchmarks.md together with the command line and the load average it prints.

    python bench/bench_audit.py --repeat 6
"""
from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

from _common import DEFAULT_BCCD, cpu_seconds  # noqa: E402  (first: puts the repository on sys.path)
from bench_convert import repeated_voc  # noqa: E402
from harness.data.audit import audit_dataset  # noqa: E402


def timed_audit(voc: Path, out: Path | None, workers: int | None) -> tuple[float, float, object]:
    wall, cpu = time.perf_counter(), cpu_seconds()
    audit = audit_dataset(voc, out, workers=workers)
    return time.perf_counter() - wall, cpu_seconds() - cpu, audit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bccd", type=Path, default=DEFAULT_BCCD)
    parser.add_argument("--repeat", type=int, default=6, help="BCCD copies (6 x 364 = 2,184 images)")
    parser.add_argument("--workdir", type=Path, default=None, help="scratch dir (default: a temp dir)")
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="bench_audit_", dir=args.workdir))
    try:
        n = repeated_voc(args.bccd, scratch / "voc", args.repeat)
        cores = os.cpu_count() or 1
        print(f"dataset: BCCD x{args.repeat} = {n} images; cores: {cores}; "
              f"load average before: {os.getloadavg()[0]:.1f}")
        for label, workers, out in ((f"all cores ({cores} processes), audit only", None, None),
                                    (f"all cores ({cores} processes), audit + report", None, scratch / "report"),
                                    ("1 process, audit only", 1, None)):
            wall, cpu, audit = timed_audit(scratch / "voc", out, workers)
            print(f"{label}: {wall:.1f} s wall, {n / wall:.0f} images/s, {1000 * cpu / n:.1f} ms CPU/image "
                  f"(decoded {len(audit.facts)}, {len(audit.twins)} duplicate pairs, {len(audit.leaks)} leaks)")
        print(f"load average after: {os.getloadavg()[0]:.1f}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()

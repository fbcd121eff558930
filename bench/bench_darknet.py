#!/usr/bin/env python3
"""Darknet speed on this machine: Debian's binary vs the harness's builds (OpenMP loop-nest gemm,
OpenBLAS cblas_sgemm), same source, interleaved rounds (A B C A B C ...) on this noisy machine.

1. Training iterations/s of each build on the same rendered cfg and the same converted BCCD data.
2. Batch-1 forward ms/image (ctypes, libdarknet of each build) for yolov3-320 and yolov3-tiny-416
   with random weights; every measurement runs in its own process so the libraries never mix.
3. ``--loss-run N``: a longer CPU training (OpenMP build) whose loss should go down; loss.csv kept.

Builds: ``debian`` (/usr/bin/darknet), ``omp`` (newest cached build with HARNESS_DARKNET_BLAS=none),
``openblas`` (newest cached build with the default HARNESS_DARKNET_BLAS=openblas); build the missing
one with ``HARNESS_DARKNET_BLAS=none bash scripts/install_darknet.sh --no-apt``.

    python bench/bench_darknet.py --rounds 2 --iters 6 --size 416 --batch 4 --n 5 --warmup 1
    python bench/bench_darknet.py --skip-speed --loss-run 300 --size 128 --batch 2 --loss-build debian
Record the printed figures and the command in docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import DEFAULT_BCCD  # noqa: E402  (first: puts the repository on sys.path)

from harness.data.convert import convert_dataset  # noqa: E402
from harness.frameworks.darknet.driver import darknet_at, find_darknet, train_darknet  # noqa: E402
from harness.render.yolo import render_yolo  # noqa: E402
from tests.support.darknet import write_random_weights  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bccd", type=Path, default=DEFAULT_BCCD)
    parser.add_argument("--out", type=Path, default=None, help="keep work files here (default: temp dir)")
    parser.add_argument("--model", default="yolov3-tiny", help="model trained for iterations/s")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds over the builds")
    parser.add_argument("--builds", default="debian,omp,openblas", help="comma-separated builds to compare")
    parser.add_argument("--n", type=int, default=10, help="timed forward passes per model")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--skip-forward", action="store_true", help="training speed only")
    parser.add_argument("--loss-run", type=int, default=0, help="iterations of the long loss-curve run")
    parser.add_argument("--loss-build", default="omp", choices=("omp", "debian"),
                        help="build for the loss run (debian copes better with a busy machine)")
    parser.add_argument("--one", nargs=3, metavar=("BINARY", "CFG", "WEIGHTS"), help=argparse.SUPPRESS)
    parser.add_argument("--image", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args()


def time_one(binary: str, cfg: Path, weights: Path, image: Path, n: int, warmup: int) -> None:
    """Child-process mode: time one build's libdarknet on one cfg, print JSON."""
    from harness.frameworks.darknet.libdarknet import time_darknet

    print(json.dumps(time_darknet(cfg, weights, [image], n=n, warmup=warmup, install=darknet_at(Path(binary)))))


def cached_build(blas: str):
    """Newest cached CPU build (OpenCV off or on) whose stamp names this BLAS choice."""
    from harness.paths import cache_dir

    stamps = []
    for stamp in cache_dir().glob("darknet-*-omp-*/.stamp"):
        record = json.loads(stamp.read_text())
        if record.get("blas", "none") == blas and not record.get("gpu"):
            stamps.append((stamp.stat().st_mtime, stamp.parent))
    if not stamps:
        sys.exit(f"no cached Darknet build with blas={blas}; build it with "
                 f"HARNESS_DARKNET_BLAS={blas} bash scripts/install_darknet.sh --no-apt")
    os.environ["HARNESS_DARKNET"] = str(max(stamps)[1] / "bin" / "darknet")
    try:
        return find_darknet()
    finally:
        del os.environ["HARNESS_DARKNET"]


def find_builds(names: list[str]) -> dict:
    finders = {"debian": lambda: find_darknet("debian"), "omp": lambda: cached_build("none"),
               "openblas": lambda: cached_build("openblas")}
    return {name: finders[name]() for name in names}


def converted_dataset(bccd: Path, work: Path) -> Path:
    out = work / "bccd-converted"
    convert_dataset(bccd, out, progress=False)
    return out


def render(work: Path, dataset: Path, name: str, model: str, size: int, darknet: str = "pjreddie",
           **overrides) -> dict:
    """``darknet="alexeyab"`` adds letter_box=1, so both forks letterbox (pjreddie ignores the key)."""
    out = (work / name).resolve()
    settings = {"subdivisions": 1, "random": 0}
    settings.update(overrides)
    return render_yolo(out, model=model, size=size, dataset=dataset, backup_dir=out / "backup",
                       results_dir=out / "results", overrides=settings, darknet=darknet)


def cfg_flavour(installs: dict) -> str:
    """Render for AlexeyAB whenever one of the compared builds is AlexeyAB's."""
    return "alexeyab" if any(install.alexeyab for install in installs.values()) else "pjreddie"


def training_speed(installs: dict, dataset: Path, work: Path, args) -> dict:
    """Same cfg/data/iterations for each build, builds interleaved per round; s/it from Darknet's own
    per-iteration timing (median of iterations 2..N of every round), and the losses of each build."""
    seconds: dict = {flavour: [] for flavour in installs}
    losses: dict = {}
    for round_ in range(args.rounds):
        for flavour, install in installs.items():
            files = render(work, dataset, f"train-{flavour}-{round_}", args.model, args.size, cfg_flavour(installs),
                           batch=args.batch, max_batches=args.iters, burn_in=0, learning_rate=0.0001)
            result = train_darknet(files["data"], files["cfg"], work / f"run-{flavour}-{round_}", install=install,
                                   show_progress=False)
            rows = [line.split(",") for line in result.loss_csv.read_text().splitlines()[1:]]
            its = [float(r[4]) for r in rows[1:]]                  # skip iteration 1 (warm-up)
            seconds[flavour] += its
            losses[flavour] = [round(float(r[1]), 3) for r in rows]
            print(f"round {round_ + 1} train {args.model}-{args.size} batch {args.batch} [{flavour}]: "
                  f"{statistics.median(its):.3f} s/it, losses {losses[flavour]}", flush=True)
    figures = {}
    for flavour, values in seconds.items():
        median = statistics.median(values)
        figures[flavour] = {"s_per_it": median, "it_per_s": 1 / median, "n": len(values),
                            "losses_last_round": losses[flavour]}
        print(f"train {args.model}-{args.size} batch {args.batch} [{flavour}]: {median:.3f} s/it "
              f"({1 / median:.3f} it/s, median of {len(values)} iterations over {args.rounds} rounds)")
    return figures


def forward_speed(installs: dict, dataset: Path, work: Path, args) -> dict:
    image = Path((dataset / "darknet" / "valid.txt").read_text().split()[0])
    figures: dict = {}
    for model, size in (("yolov3", 320), ("yolov3-tiny", 416)):
        files = render(work, dataset, f"fwd-{model}-{size}", model, size, cfg_flavour(installs), batch=1)
        weights = write_random_weights(files["cfg"], work / f"fwd-{model}-{size}.weights")
        for round_ in range(args.rounds):
            for flavour, install in installs.items():
                out = subprocess.run([sys.executable, __file__, "--one", str(install.binary), str(files["cfg"]),
                                      str(weights), "--image", str(image), "--n", str(args.n),
                                      "--warmup", str(args.warmup)], capture_output=True, text=True, check=True)
                timing = json.loads(out.stdout.strip().splitlines()[-1])
                figures.setdefault(f"{model}-{size}/{flavour}", []).append(timing["median_ms"])
                print(f"round {round_ + 1} forward {model}-{size} [{flavour}, {timing['threads']} thread(s)]: "
                      f"median {timing['median_ms']:.1f} ms, median CPU {timing['median_cpu_ms']:.1f} ms", flush=True)
    return {key: statistics.median(values) for key, values in figures.items()}


def loss_run(dataset: Path, work: Path, args) -> dict:
    files = render(work, dataset, "loss-run", "yolov3-tiny", args.size, batch=args.batch,
                   max_batches=args.loss_run, burn_in=min(100, args.loss_run // 4), learning_rate=0.001,
                   steps=f"{int(args.loss_run * 0.8)},{int(args.loss_run * 0.9)}")
    result = train_darknet(files["data"], files["cfg"], work / "loss-run-run", show_progress=True,
                           install=find_darknet(args.loss_build))
    rows = [line.split(",") for line in result.loss_csv.read_text().splitlines()[1:]]
    avg = [float(r[2]) for r in rows]
    tenth = max(1, len(avg) // 10)
    summary = {"iterations": result.iterations, "wall_s": result.seconds, "loss_csv": str(result.loss_csv),
               "avg_loss_first": avg[0], "avg_loss_at_10pct": avg[tenth - 1], "avg_loss_last": avg[-1],
               "mean_loss_first_10pct": statistics.mean(float(r[1]) for r in rows[:tenth]),
               "mean_loss_last_10pct": statistics.mean(float(r[1]) for r in rows[-tenth:])}
    print(f"loss run [{args.loss_build}] yolov3-tiny-{args.size} batch {args.batch}, {result.iterations} its in {result.seconds:.0f} s: "
          f"mean loss first 10% {summary['mean_loss_first_10pct']:.2f} -> last 10% {summary['mean_loss_last_10pct']:.2f}"
          f" (avg_loss {avg[0]:.2f} -> {avg[-1]:.2f}); {result.loss_csv}")
    return summary


def print_ratios(what: str, medians: dict) -> None:
    """Each build's median and its speed-up over every slower build."""
    ordered = sorted(medians.items(), key=lambda item: item[1])
    text = ", ".join(f"{name} {value:.3f}" for name, value in ordered)
    ratios = ", ".join(f"{fast}/{slow} {medians[slow] / medians[fast]:.2f}x"
                       for i, (fast, _) in enumerate(ordered) for slow, _ in ordered[i + 1:])
    print(f"{what}: {text}; speed-ups {ratios}")


def main() -> None:
    args = parse_args()
    if args.one:
        time_one(args.one[0], Path(args.one[1]), Path(args.one[2]), args.image, args.n, args.warmup)
        return
    work = args.out.resolve() if args.out else Path(tempfile.mkdtemp(prefix="bench-darknet-"))
    work.mkdir(parents=True, exist_ok=True)
    omp_env = {k: v for k, v in os.environ.items() if k.startswith("OMP_")}
    print(f"work dir {work}; cores {os.cpu_count()}; load average {os.getloadavg()}; {omp_env or 'no OMP_* settings'}")
    dataset = converted_dataset(args.bccd, work)
    installs = find_builds(args.builds.split(","))
    for flavour, install in installs.items():
        print(f"{flavour}: {install.binary} ({install.backend}) {install.stamp.get('make_args', '')}")
    report: dict = {"cores": os.cpu_count(), "rounds": args.rounds}
    if not args.skip_speed:
        report["train"] = training_speed(installs, dataset, work, args)
        print_ratios("training s/it", {k: v["s_per_it"] for k, v in report["train"].items()})
    if not args.skip_speed and not args.skip_forward:
        report["forward"] = forward_speed(installs, dataset, work, args)
        for model in ("yolov3-320", "yolov3-tiny-416"):
            print_ratios(f"forward {model} ms", {k.split("/")[1]: v for k, v in report["forward"].items()
                                                 if k.startswith(model + "/")})
    if args.loss_run:
        report["loss_run"] = loss_run(dataset, work, args)
    report["load_average_end"] = os.getloadavg()
    (work / "bench_darknet.json").write_text(json.dumps(report, indent=1))
    print(f"load average at end {os.getloadavg()}; figures in {work / 'bench_darknet.json'}")


if __name__ == "__main__":
    main()

"""A third framework that is not one: it "trains" by writing a loss log and a weights file, and
"detects" by returning fixed detections (the annotated boxes of an annotated image, one
centred box of the first class for a plain image). It implements the whole
:class:`harness.frameworks.FrameworkBackend` protocol and nothing else, so
tests/test_fake_backend.py can take it through render → train → evaluate → report → count with no
edit outside this module: registered with ``HARNESS_FRAMEWORKS=fake=tests.support.fake_backend:FakeBackend``.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Optional

from harness.core.types import FrameworkStatus, Progress, TrainResult

NAME = "fake"
REGISTRATION = f"{NAME}=tests.support.fake_backend:FakeBackend"
SCORE = 0.9
LOG_LINE = re.compile(r"^fake iteration (\d+): loss ([0-9.]+)$")


def _fixed_detections(images, names: Sequence[str]) -> dict[str, list[tuple[str, float, tuple]]]:
    """{image id: [(class, score, (xmin, ymin, xmax, ymax))]}: what this "network" sees."""
    from harness.data.annotations import ImageAnnotation
    from harness.data.imageinfo import image_size

    found: dict[str, list[tuple[str, float, tuple]]] = {}
    for image in images:
        if isinstance(image, ImageAnnotation):
            found[image.image_id] = [
                (box.name, SCORE, (box.xmin, box.ymin, box.xmax, box.ymax)) for box in image.objects if box.name in names
            ]
        else:
            path = Path(image[1] if isinstance(image, tuple) else image)
            width, height = image_size(path)
            image_id = image[0] if isinstance(image, tuple) else path.name.split(".", 1)[0]
            found[image_id] = [(names[0], SCORE, (width / 4, height / 4, 3 * width / 4, 3 * height / 4))]
    return found


def _write_voc_files(found: Mapping[str, list], names: Sequence[str], out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in names:
        lines = [
            f"{image_id} {score:.6f} {box[0]:.1f} {box[1]:.1f} {box[2]:.1f} {box[3]:.1f}\n"
            for image_id, dets in found.items()
            for cls, score, box in dets
            if cls == name
        ]
        (out_dir / f"comp4_det_test_{name}.txt").write_text("".join(lines))
    return out_dir


class FakeDetector:
    description = "fixed detections (tests/support/fake_backend.py)"

    def __init__(self, names: Sequence[str]) -> None:
        self.names = list(names)

    def detect_batches(self, batches, work: Path):
        from harness.frameworks import detect_each

        return detect_each(lambda batch, _work: _fixed_detections(batch, self.names), batches, work)

    def close(self) -> None:
        pass


class FakeBackend:
    name = NAME
    engines = ("native",)
    docker_image = "leukonet-harness-fake:latest"
    dataset_formats = ("darknet",)  # reads no LMDB: a conversion for it writes none

    def __init__(self, config, labelmap, dataset_dir: Optional[Path] = None) -> None:
        self.config, self.labelmap, self.dataset_dir = config, labelmap, dataset_dir
        self.dir = config.model_dir
        self.options = config.framework_options

    # ---------------------------------------------------------------- the framework

    @staticmethod
    def inspect() -> FrameworkStatus:
        return FrameworkStatus(
            NAME, True, version="1.0", location=__file__, details={"kind": "fixed detections", "commit": "f00d"}
        )

    @staticmethod
    def has_gpu_build(options: Mapping[str, Any]) -> bool:
        return False

    @staticmethod
    def resolve_options(spec, profile, device, *, iterations=None, batch_size=None, overrides=None, choices=None):
        return {"iterations": iterations or (overrides or {}).get("iterations") or 4, "score": SCORE}

    @staticmethod
    def upgrade_options(legacy: Mapping[str, Any]) -> dict[str, Any]:
        return {"iterations": 4, "score": SCORE}

    @staticmethod
    def with_choices(options: Mapping[str, Any], device, choices: Mapping[str, Any]) -> dict[str, Any]:
        return dict(options)

    @staticmethod
    def build_name(options: Mapping[str, Any]) -> str:
        return NAME

    @staticmethod
    def display_name(options: Mapping[str, Any]) -> str:
        return f"{NAME} (fixed detections)"

    @staticmethod
    def describe_build(details: Mapping[str, Any]) -> list[str]:
        return [str(details.get("kind")), f"commit {details.get('commit')}"]

    @staticmethod
    def init_weights_kind(model: str) -> Optional[str]:
        return None

    @staticmethod
    def read_progress(log: Path) -> list[Progress]:
        rows = []
        for line in Path(log).read_text().splitlines():
            match = LOG_LINE.match(line)
            if match:
                rows.append(Progress(int(match.group(1)), float(match.group(2))))
        return rows

    @staticmethod
    def render_model(spec, out_dir: Path, **kwargs: Any) -> dict[str, Path]:
        out_dir.mkdir(parents=True, exist_ok=True)
        model = out_dir / "fake.json"
        model.write_text(json.dumps({"model": spec.model, "size": spec.size}))
        return {"model": model}

    @staticmethod
    def paper_deviations(model_dir: Path, rendered: Mapping[str, Path]) -> list[str]:
        return []

    # ---------------------------------------------------------------- one experiment

    def render(self, test_ids: Sequence[str]) -> dict[str, Path]:
        out = self.dir / "rendered"
        files = self.render_model(self.config.spec, out)
        model = json.loads(files["model"].read_text())
        files["model"].write_text(json.dumps({**model, "max_iter": self.options["iterations"], "tests": len(test_ids)}))
        names = out / "obj.names"
        names.write_text("".join(f"{name}\n" for name in self.labelmap.names))
        return {**files, "names": names}

    def schedule_length(self, files: dict[str, Path]) -> int:
        return int(json.loads(files["model"].read_text())["max_iter"])

    def train(self, files: dict[str, Path], until: Optional[int] = None, **display: Any) -> TrainResult:
        started = time.monotonic()
        end = until or self.schedule_length(files)
        weights_dir = self.dir / "weights"
        weights_dir.mkdir(parents=True, exist_ok=True)
        earlier = sorted(weights_dir.glob("fake_iter_*.weights"), key=lambda p: int(p.stem.rsplit("_", 1)[1]))
        start = int(earlier[-1].stem.rsplit("_", 1)[1]) if earlier else 0
        log = self.dir / "train.log"
        rows = [(i, 1.0 / i) for i in range(start + 1, end + 1)]
        with log.open("a") as handle:
            handle.writelines(f"fake iteration {i}: loss {loss:.4f}\n" for i, loss in rows)
        loss_csv = self.dir / "loss.csv"
        all_rows = self.read_progress(log)
        loss_csv.write_text(
            "iteration,loss,avg_loss,lr,seconds\n" + "".join(f"{r.iteration},{r.loss},,," + "\n" for r in all_rows)
        )
        weights = weights_dir / f"fake_iter_{end}.weights"
        weights.write_text(json.dumps({"iteration": end, "score": self.options["score"]}))
        return TrainResult(
            log, loss_csv, weights, end, time.monotonic() - started, resumed_from=earlier[-1] if earlier else None
        )

    def native_score(self, result: TrainResult) -> dict[str, Any]:
        return {"fake_native": {"iteration": result.iterations, "score": self.options["score"]}}

    def summary_fields(self) -> dict[str, Any]:
        return {"framework_build": self.display_name(self.options)}

    def detect(self, files: dict[str, Path], weights: Path, images, out_dir: Path, native: bool = False) -> Path:
        return _write_voc_files(_fixed_detections(images, self.labelmap.names), self.labelmap.names, out_dir)

    def time(self, files: dict[str, Path], weights: Path, images, n: int, warmup: int) -> dict[str, Any]:
        from harness.frameworks import TIMED_SPAN, TIMED_SPAN_DESCRIPTION

        return {
            "device": "cpu",
            "backend": f"{NAME}-cpu",
            "n_images": n,
            "warmup": warmup,
            "batch": 1,
            "span": TIMED_SPAN,
            "span_description": TIMED_SPAN_DESCRIPTION,
            "median_ms": 1.0,
            "p90_ms": 1.5,
            "forward_median_ms": 0.5,
            "forward_p90_ms": 0.75,
        }

    def open_detector(self, files: dict[str, Path], weights: Path, engine: str, work: Path) -> FakeDetector:
        from harness.frameworks import check_engine

        check_engine(self, engine)
        return FakeDetector(self.labelmap.names)

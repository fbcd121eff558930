"""In-process Darknet inference through libdarknet.so (ctypes), for timing and small image sets.

Both forks are bound from their own ``include/darknet.h``: pjreddie 2018-09 (``load_network``,
``network_predict_image``, ``detection{bbox, classes, prob, mask, objectness, sort_class}``) and
AlexeyAB 59596d78 (``load_network_custom``, ``network_predict_ptr``, ``get_network_boxes(…, letter)``,
``detection`` with ``best_class_idx`` after ``classes`` and ``uc, points, embeddings,
embedding_size, sim, track_id`` at the end). :class:`DetectionRules` are each tool's hard-coded
steps (threshold, NMS, letterbox, box units), so the same network reproduces ``detector valid``
(either fork) or AlexeyAB's ``detector map``. libdarknet has two traps that would take the Python
process down or silently give wrong answers, so they are guarded here: a missing cfg/weights file
calls ``exit(0)``, and a missing/undecodable image becomes a blank 10×10 image.
"""

from __future__ import annotations

import ctypes
import statistics
import time
from collections.abc import Sequence
from ctypes import POINTER, Structure, c_char_p, c_float, c_int, c_void_p
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Optional

from harness.core.atomic import write_text
from harness.core.process import native_output_to, read_log_tail
from harness.core.types import NativeFrameworkError
from harness.device import Device, describe_device
from harness.frameworks import TIMED_SPAN, TIMED_SPAN_DESCRIPTION
from harness.frameworks.darknet.cfg import DarknetInputError, summarize_cfg
from harness.frameworks.darknet.driver import DarknetInstall, find_darknet, image_id

# pjreddie's `detector valid` hard-codes these; using them keeps ctypes and valid comparable.
VALID_THRESH = 0.005
VALID_HIER_THRESH = 0.5
VALID_NMS = 0.45


@dataclass(frozen=True)
class DetectionRules:
    """One Darknet tool's hard-coded detection steps (src/detector.c of its fork)."""

    tool: str
    thresh: float
    hier_thresh: float
    nms: float
    letterbox: Optional[bool]  # None: the cfg's [net] letter_box decides (AlexeyAB); True: always
    normalized: bool = False  # boxes as get_network_boxes(relative) gives them to `detector map`: unclipped


PJREDDIE_VALID = DetectionRules("pjreddie detector valid", VALID_THRESH, VALID_HIER_THRESH, VALID_NMS, True)
ALEXEYAB_VALID = DetectionRules("alexeyab detector valid", 0.001, 0.5, 0.6, None)
ALEXEYAB_MAP = DetectionRules("alexeyab detector map", 0.005, 0.0, 0.45, None, normalized=True)


class BOX(Structure):
    _fields_ = [("x", c_float), ("y", c_float), ("w", c_float), ("h", c_float)]


class DETECTION(Structure):
    _fields_ = [
        ("bbox", BOX),
        ("classes", c_int),
        ("prob", POINTER(c_float)),
        ("mask", POINTER(c_float)),
        ("objectness", c_float),
        ("sort_class", c_int),
    ]


class DETECTION_ALEXEYAB(Structure):
    """AlexeyAB 59596d78 include/darknet.h ``struct detection``."""

    _fields_ = [
        ("bbox", BOX),
        ("classes", c_int),
        ("best_class_idx", c_int),
        ("prob", POINTER(c_float)),
        ("mask", POINTER(c_float)),
        ("objectness", c_float),
        ("sort_class", c_int),
        ("uc", POINTER(c_float)),
        ("points", c_int),
        ("embeddings", POINTER(c_float)),
        ("embedding_size", c_int),
        ("sim", c_float),
        ("track_id", c_int),
    ]


class IMAGE(Structure):
    _fields_ = [("w", c_int), ("h", c_int), ("c", c_int), ("data", POINTER(c_float))]


class METADATA(Structure):
    _fields_ = [("classes", c_int), ("names", POINTER(c_char_p))]


@dataclass(frozen=True)
class RawDetection:
    """One (box, class) pair as ``detector valid`` prints it: VOC pixels, 1-based, clamped."""

    image_id: str
    class_index: int
    score: float
    xmin: float
    ymin: float
    xmax: float
    ymax: float
    objectness: float


_LIBRARIES: dict[str, ctypes.CDLL] = {}


def load_library(path: Path, alexeyab: bool = False) -> ctypes.CDLL:
    """Load libdarknet once per path and declare the prototypes of its fork's darknet.h."""
    key = str(path)
    if key in _LIBRARIES:
        return _LIBRARIES[key]
    if not Path(path).is_file():
        raise NativeFrameworkError(f"libdarknet not found at {path}; install with: bash scripts/install_darknet.sh")
    lib = ctypes.CDLL(key, mode=ctypes.RTLD_LOCAL)  # two builds may be loaded side by side
    if hasattr(lib, "load_network_custom") != alexeyab:
        actual = "AlexeyAB's" if hasattr(lib, "load_network_custom") else "pjreddie's"
        raise NativeFrameworkError(
            f"{path} is {actual} libdarknet, but it was found as the "
            f"{'alexeyab' if alexeyab else 'pjreddie'} Darknet: their structs and API differ"
        )
    _declare_alexeyab(lib) if alexeyab else _declare(lib)
    _LIBRARIES[key] = lib
    return lib


def _set_signatures(lib: ctypes.CDLL, signatures: dict) -> None:
    for name, (argtypes, restype) in signatures.items():
        function = getattr(lib, name)
        function.argtypes = argtypes
        function.restype = restype


def _declare_alexeyab(lib: ctypes.CDLL) -> None:
    """AlexeyAB 59596d78 include/darknet.h (LIB_API functions; network passed by pointer)."""
    _set_signatures(
        lib,
        {
            "load_network_custom": ([c_char_p, c_char_p, c_int, c_int], c_void_p),
            "free_network_ptr": ([c_void_p], None),
            "network_width": ([c_void_p], c_int),
            "network_height": ([c_void_p], c_int),
            "load_image_color": ([c_char_p, c_int, c_int], IMAGE),
            "free_image": ([IMAGE], None),
            "letterbox_image": ([IMAGE, c_int, c_int], IMAGE),
            "resize_image": ([IMAGE, c_int, c_int], IMAGE),
            "network_predict_ptr": ([c_void_p, POINTER(c_float)], POINTER(c_float)),
            "get_network_boxes": (
                [c_void_p, c_int, c_int, c_float, c_float, POINTER(c_int), c_int, POINTER(c_int), c_int],
                POINTER(DETECTION_ALEXEYAB),
            ),
            "do_nms_sort": ([POINTER(DETECTION_ALEXEYAB), c_int, c_int, c_float], None),
            "free_detections": ([POINTER(DETECTION_ALEXEYAB), c_int], None),
        },
    )


def _declare(lib: ctypes.CDLL) -> None:
    """pjreddie 2018-09 include/darknet.h."""
    signatures = {
        "load_network": ([c_char_p, c_char_p, c_int], c_void_p),
        "free_network": ([c_void_p], None),
        "set_batch_network": ([c_void_p, c_int], None),
        "network_width": ([c_void_p], c_int),
        "network_height": ([c_void_p], c_int),
        "load_image_color": ([c_char_p, c_int, c_int], IMAGE),
        "free_image": ([IMAGE], None),
        "letterbox_image": ([IMAGE, c_int, c_int], IMAGE),
        "network_predict": ([c_void_p, POINTER(c_float)], POINTER(c_float)),
        "network_predict_image": ([c_void_p, IMAGE], POINTER(c_float)),
        "get_network_boxes": (
            [c_void_p, c_int, c_int, c_float, c_float, POINTER(c_int), c_int, POINTER(c_int)],
            POINTER(DETECTION),
        ),
        "do_nms_sort": ([POINTER(DETECTION), c_int, c_int, c_float], None),
        "free_detections": ([POINTER(DETECTION), c_int], None),
    }
    _set_signatures(lib, signatures)


class DarknetNetwork:
    """A loaded network (batch 1). Use as a context manager so the C memory is freed."""

    def __init__(
        self,
        cfg_path: Path,
        weights: Optional[Path] = None,
        install: Optional[DarknetInstall] = None,
        device: Device = Device("cpu"),
        log_path: Optional[Path] = None,
    ):
        """``log_path``: where libdarknet's own output goes (default: beside the cfg; detect and count
        pass their --out, so a model folder stays a read-only input)."""
        install = install or find_darknet()
        if install.library is None:
            raise NativeFrameworkError(f"{install.binary}: no libdarknet.so beside it (set HARNESS_DARKNET_LIB)")
        cfg_path = Path(cfg_path).resolve()
        self._check_files(cfg_path, weights)
        cfg = summarize_cfg(cfg_path)
        self.classes, self.letter_box = cfg.classes, cfg.letter_box
        self.alexeyab = install.alexeyab
        if self.alexeyab and cfg.nms_kinds - {"greedynms"}:
            raise DarknetInputError(
                f"{cfg_path}: nms_kind {sorted(cfg.nms_kinds)}: only greedynms (do_nms_sort) is bound here"
            )
        self.lib = load_library(install.library, self.alexeyab)
        self.install = install
        _select_device(self.lib, install, device)
        weights_arg = str(Path(weights).resolve()).encode() if weights else None
        log_path = Path(log_path) if log_path else cfg_path.parent / "libdarknet.log"
        with native_output_to(log_path):
            if self.alexeyab:  # = validate_detector's parse_network_cfg_custom(cfg, 1, 1) + load_weights + fuse
                self.net = self.lib.load_network_custom(str(cfg_path).encode(), weights_arg, 0, 1)
            else:
                self.net = self.lib.load_network(str(cfg_path).encode(), weights_arg, 0)
        if not self.net:
            raise NativeFrameworkError(
                f"libdarknet could not load {cfg_path} (its output: {log_path})", read_log_tail(log_path)
            )
        if not self.alexeyab:
            self.lib.set_batch_network(self.net, 1)
        self.width = self.lib.network_width(self.net)
        self.height = self.lib.network_height(self.net)

    @staticmethod
    def _check_files(cfg_path: Path, weights: Optional[Path]) -> None:
        """libdarknet calls exit(0) on a missing cfg or weights file: check in Python first."""
        if not cfg_path.is_file():
            raise DarknetInputError(f"{cfg_path}: cfg file not found")
        if weights is not None and not Path(weights).is_file():
            raise DarknetInputError(f"{weights}: weights file not found")

    def __enter__(self) -> DarknetNetwork:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if getattr(self, "net", None):
            (self.lib.free_network_ptr if self.alexeyab else self.lib.free_network)(self.net)
            self.net = None

    @property
    def valid_rules(self) -> DetectionRules:
        """The steps of this fork's ``detector valid``."""
        return ALEXEYAB_VALID if self.alexeyab else PJREDDIE_VALID

    def load_image(self, image_path: Path) -> IMAGE:
        """load_image_color with both failure traps turned into errors: an OPENCV=1 build returns a
        blank 10×10 image, an OPENCV=0 build (stb_image) calls exit(0) and ends the Python process."""
        image_path = Path(image_path)
        if not image_path.is_file():
            raise DarknetInputError(f"{image_path}: image not found")
        if not self.install.stamp.get("opencv", True):
            _check_stb_readable(image_path)
        image = self.lib.load_image_color(str(image_path).encode(), 0, 0)
        if image.w == 10 and image.h == 10 and not _really_10x10(image_path):
            self.lib.free_image(image)
            raise DarknetInputError(f"{image_path}: Darknet could not decode this image")
        return image

    def detect(
        self, image_path: Path, rules: Optional[DetectionRules] = None, thresh: Optional[float] = None
    ) -> list[RawDetection]:
        """Forward pass + boxes + NMS, exactly the steps of ``rules`` (default: this fork's
        ``detector valid``); ``thresh`` replaces the rules' threshold."""
        rules = rules or self.valid_rules
        if thresh is not None:
            rules = replace(rules, thresh=thresh)
        if rules.normalized and not self.alexeyab:
            raise ValueError(f"{rules.tool}: AlexeyAB's rules need AlexeyAB's libdarknet, not {self.install.library}")
        image = self.load_image(image_path)
        try:
            self._predict(image, rules)
            return self._detections(image_id(str(image_path)), image.w, image.h, rules)
        finally:
            self.lib.free_image(image)

    def _letterbox(self, rules: DetectionRules) -> bool:
        return self.letter_box if rules.letterbox is None else rules.letterbox

    def _predict(self, image: IMAGE, rules: DetectionRules) -> None:
        """pjreddie: network_predict_image (letterboxes). AlexeyAB: letterbox_image or resize_image
        (its valid/map load LETTERBOX_DATA or IMAGE_DATA), then network_predict_ptr."""
        if not self.alexeyab:
            self.lib.network_predict_image(self.net, image)
            return
        prepare = self.lib.letterbox_image if self._letterbox(rules) else self.lib.resize_image
        sized = prepare(image, self.width, self.height)
        try:
            self.lib.network_predict_ptr(self.net, sized.data)
        finally:
            self.lib.free_image(sized)

    def _get_boxes(self, width: int, height: int, rules: DetectionRules, count: c_int):
        """get_network_boxes as the rules' tool calls it (AlexeyAB's map: normalised boxes)."""
        if not self.alexeyab:
            return self.lib.get_network_boxes(
                self.net, width, height, rules.thresh, rules.hier_thresh, None, 0, ctypes.byref(count)
            )
        letter = int(self._letterbox(rules))
        if rules.normalized:
            w, h, relative = (width, height, 1) if letter else (1, 1, 0)
        else:
            w, h, relative = width, height, 0
        return self.lib.get_network_boxes(
            self.net, w, h, rules.thresh, rules.hier_thresh, None, relative, ctypes.byref(count), letter
        )

    def _detections(self, name: str, width: int, height: int, rules: DetectionRules) -> list[RawDetection]:
        count = c_int(0)
        dets = self._get_boxes(width, height, rules, count)
        try:
            if rules.nms:
                self.lib.do_nms_sort(dets, count.value, self.classes, rules.nms)
            rows = _map_rows if rules.normalized else _voc_rows
            return [d for i in range(count.value) for d in rows(name, dets[i], width, height)]
        finally:
            self.lib.free_detections(dets, count.value)

    def time_span(self, image_path: Path, n: int, warmup: int) -> list[tuple[float, float, float]]:
        """(span wall ms, span process-CPU ms, forward-only wall ms) per run of
        :data:`harness.frameworks.TIMED_SPAN`; the image is decoded once, outside the clock.

        The span is what ``detect`` does after decoding: letterbox, ``network_predict``,
        ``get_network_boxes`` and ``do_nms_sort`` at valid's thresholds (freeing the boxes and the
        letterboxed copy is left outside). CPU time is reported too: on a shared machine it is the
        steadier figure.
        """
        image = self.load_image(image_path)
        try:
            for _ in range(warmup):
                self._timed_once(image)
            return [self._timed_once(image) for _ in range(n)]
        finally:
            self.lib.free_image(image)

    def _timed_once(self, image: IMAGE) -> tuple[float, float, float]:
        count, rules = c_int(0), self.valid_rules
        predict = self.lib.network_predict_ptr if self.alexeyab else self.lib.network_predict
        prepare = self.lib.letterbox_image if self._letterbox(rules) else self.lib.resize_image
        wall, cpu = time.perf_counter(), time.process_time()
        boxed = prepare(image, self.width, self.height)
        before_forward = time.perf_counter()
        predict(self.net, boxed.data)
        after_forward = time.perf_counter()
        dets = self._get_boxes(image.w, image.h, rules, count)
        self.lib.do_nms_sort(dets, count.value, self.classes, rules.nms)
        ended, cpu_ended = time.perf_counter(), time.process_time()
        self.lib.free_detections(dets, count.value)
        self.lib.free_image(boxed)
        return (ended - wall) * 1000.0, (cpu_ended - cpu) * 1000.0, (after_forward - before_forward) * 1000.0


def _select_device(lib: ctypes.CDLL, install: DarknetInstall, device: Device) -> None:
    """The library's global ``gpu_index`` decides where a loaded network runs (-1: the CPU)."""
    if device.gpu and not install.gpu:
        raise NativeFrameworkError(f"{install.library}: a CPU-only Darknet build cannot run on {device}")
    try:
        c_int.in_dll(lib, "gpu_index").value = device.index if device.gpu else -1
    except ValueError:  # a build without the symbol is CPU-only: nothing to select
        return
    if device.gpu and hasattr(lib, "cuda_set_device"):
        lib.cuda_set_device(device.index)


# Leading bytes of the formats stb_image decodes (JPEG, PNG, BMP, GIF, PNM, PSD); TGA has no magic.
_STB_MAGIC = (b"\xff\xd8\xff", b"\x89PNG", b"BM", b"GIF8", b"P5", b"P6", b"8BPS")


def _check_stb_readable(image_path: Path) -> None:
    """Refuse what would make stb_image fail (and Darknet exit(0)): undecodable or unsupported files."""
    import cv2

    with open(image_path, "rb") as handle:
        head = handle.read(8)
    if not head.startswith(_STB_MAGIC) and image_path.suffix.lower() != ".tga":
        raise DarknetInputError(
            f"{image_path}: Darknet could not decode this image (not a JPEG/PNG/BMP/GIF/PNM "
            "file, the formats this Darknet build reads without OpenCV)"
        )
    if cv2.imread(str(image_path), cv2.IMREAD_UNCHANGED) is None:
        raise DarknetInputError(f"{image_path}: Darknet could not decode this image (corrupt or truncated)")


def _really_10x10(image_path: Path) -> bool:
    import cv2

    image = cv2.imread(str(image_path))
    return image is not None and image.shape[:2] == (10, 10)


def _voc_rows(name: str, det: DETECTION, width: int, height: int) -> list[RawDetection]:
    """print_detector_detections: centre box → 1-based corners, clamped; NMS zeroes probs."""
    box = det.bbox
    xmin = max(1.0, _as_c_float(box.x - box.w / 2.0 + 1))  # C stores these in float
    xmax = min(float(width), _as_c_float(box.x + box.w / 2.0 + 1))
    ymin = max(1.0, _as_c_float(box.y - box.h / 2.0 + 1))
    ymax = min(float(height), _as_c_float(box.y + box.h / 2.0 + 1))
    return [
        RawDetection(name, k, det.prob[k], xmin, ymin, xmax, ymax, det.objectness)
        for k in range(det.classes)
        if det.prob[k] != 0.0
    ]


def _map_rows(name: str, det, width: int, height: int) -> list[RawDetection]:
    """A normalised box as AlexeyAB's ``detector map`` scores it, in 1-based pixels and *unclipped*
    (x·W − w·W/2 + 1, the VOC → YOLO convention inverted), so the ``alexeyab`` protocol gets it back."""
    box = det.bbox
    x, y, w, h = box.x * width, box.y * height, box.w * width, box.h * height
    return [
        RawDetection(name, k, det.prob[k], x - w / 2 + 1, y - h / 2 + 1, x + w / 2 + 1, y + h / 2 + 1, det.objectness)
        for k in range(det.classes)
        if det.prob[k] > 0.0
    ]


def _as_c_float(value: float) -> float:
    return c_float(value).value


def detect_darknet_ctypes(
    cfg_path: Path,
    weights: Path,
    images: Sequence[Path],
    class_names: Sequence[str],
    out_dir: Optional[Path] = None,
    *,
    install: Optional[DarknetInstall] = None,
    thresh: Optional[float] = None,
    device: Device = Device("cpu"),
    rules: Optional[DetectionRules] = None,
) -> list[RawDetection]:
    """Detect on ``images`` by ``rules`` (default: the fork's ``detector valid``) with libdarknet in a
    child process (:func:`guarded_network`); with ``out_dir`` also write ``comp4_det_test_<class>.txt``
    (and libdarknet's output to ``out_dir/libdarknet.log``)."""
    _check_unique_ids(images)
    log_path = Path(out_dir) / "libdarknet.log" if out_dir is not None else None
    with guarded_network(cfg_path, weights, install, device, log_path) as net:
        classes = net.call("classes")
        if len(class_names) < classes:
            raise DarknetInputError(f"{len(class_names)} class names for a network with {classes} classes")
        detections = [
            d
            for image in images
            for d in net.call("detect", image, rules=rules, thresh=thresh, doing=f"detecting {image}")
        ]
    if out_dir is not None:
        write_detection_files(detections, class_names[:classes], out_dir, exact=bool(rules and rules.normalized))
    return detections


def guarded_network(
    cfg_path: Path,
    weights: Optional[Path],
    install: Optional[DarknetInstall] = None,
    device: Device = Device("cpu"),
    log_path: Optional[Path] = None,
):
    """A :class:`DarknetNetwork` in a child process (:class:`harness.core.child.InChild`): libdarknet's
    ``exit()`` on an input it cannot read fails the call instead of ending this process with status 0."""
    from harness.core.child import InChild

    return InChild(f"libdarknet ({Path(cfg_path).name})", DarknetNetwork, cfg_path, weights, install, device, log_path)


def _check_unique_ids(images: Sequence[Path]) -> None:
    seen: dict[str, Path] = {}
    for image in images:
        key = image_id(str(image))
        if key in seen and Path(seen[key]) != Path(image):
            raise DarknetInputError(f"{seen[key]} and {image} both become image id {key!r}")
        seen[key] = image


def write_detection_files(
    detections: Sequence[RawDetection], class_names: Sequence[str], out_dir: Path, exact: bool = False
) -> list[Path]:
    """Per-class ``comp4_det_test_<class>.txt`` with valid's own ``printf`` format.

    Written here rather than through the evaluation writer because Darknet emits boxes that
    clamping inverts (a centre beyond the image edge gives xmin > xmax): the files must hold
    exactly what ``detector valid`` would write, and the evaluation reader decides what to skip.
    ``exact``: 9 significant digits instead of ``%f`` (``detector map`` ranks unrounded float scores).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    lines: dict[int, list[str]] = {k: [] for k in range(len(class_names))}
    for d in detections:
        values = (d.score, d.xmin, d.ymin, d.xmax, d.ymax)
        text = " ".join(f"{v:.9g}" if exact else f"{v:f}" for v in values)
        lines[d.class_index].append(f"{d.image_id} {text}\n")
    paths = []
    for k, name in enumerate(class_names):
        path = out_dir / f"comp4_det_test_{name}.txt"
        write_text(path, "".join(lines[k]))
        paths.append(path)
    return paths


def time_darknet(
    cfg_path: Path,
    weights: Optional[Path],
    images: Sequence[Path],
    n: int = 50,
    warmup: int = 5,
    *,
    install: Optional[DarknetInstall] = None,
    device: Device = Device("cpu"),
) -> dict:
    """Batch-1 latency in ms over :data:`harness.frameworks.TIMED_SPAN` (timing.json fields),
    cycling through ``images``; ``forward_*`` is ``network_predict`` alone."""
    if not images:
        raise DarknetInputError("time_darknet needs at least one image")
    install = install or find_darknet()
    with DarknetNetwork(cfg_path, weights, install, device) as net:
        per_image = max(1, n // len(images))
        runs: list[tuple[float, float, float]] = []
        for index, image in enumerate(images):
            if len(runs) >= n:
                break
            runs += net.time_span(image, min(per_image, n - len(runs)), warmup if index == 0 else 0)
        size = f"{net.width}x{net.height}"
    times = sorted(wall for wall, _, _ in runs)
    forward = sorted(f for _, _, f in runs)
    return {
        "device": describe_device(device),
        "backend": install.backend if device.gpu or not install.gpu else install.backend + " (run on cpu)",
        "n_images": len(times),
        "warmup": warmup,
        "batch": 1,
        "span": TIMED_SPAN,
        "span_description": TIMED_SPAN_DESCRIPTION,
        "median_ms": statistics.median(times),
        "p90_ms": _p90(times),
        "forward_median_ms": statistics.median(forward),
        "forward_p90_ms": _p90(forward),
        "median_cpu_ms": statistics.median(cpu for _, cpu, _ in runs),
        "threads": _threads(install),
        "input_size": size,
        "darknet": str(install.binary),
    }


def _p90(ordered: list[float]) -> float:
    return ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]


def _threads(install: DarknetInstall) -> int:
    import os

    if not install.openmp:
        return 1
    value = os.environ.get("OMP_NUM_THREADS", "")
    return int(value) if value.isdigit() else (os.cpu_count() or 1)

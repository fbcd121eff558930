"""``harness data synth``: the embedded default dataset — synthetic Wright-Giemsa-like smears.

The paper's images (732×574, 15 labels) are not public, so the pipeline needs a stand-in that
exercises every label and is *learnable*: each class has its own size range, nucleus shape
(round, kidney, band, 2–5 lobes), cytoplasm colour and granules, so a detector trained briefly
reaches clearly non-trivial mAP.  Every image is drawn from its own seeded generator
(``default_rng([seed, set, index])``), so output is identical for a seed and independent of
how many images are asked for.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import cv2
import numpy as np

from harness.core.atomic import write_bytes, write_text
from harness.data.annotations import Box, ImageAnnotation
from harness.data.splits import paper_split
from harness.labels import LabelMap
from harness.progress import track

WIDTH, HEIGHT = 732, 574
GENERATOR_VERSION = 1  # bump when the drawing changes: old sets are then rebuilt
MARKER = "synth.json"
JPEG_QUALITY = 90
DETECTION_SET, CLASSIFICATION_SET = 1, 2


@dataclass(frozen=True)
class CellStyle:
    """How one label looks: sizes in pixels (cell diameter), colours in BGR."""

    diameter: tuple[int, int]
    cytoplasm: tuple[int, int, int]
    nucleus: tuple[int, int, int]
    nucleus_shape: str  # round | eccentric | kidney | band | lobes | bilobed | folded | none
    nucleus_fraction: float  # nucleus size relative to the cell
    chromatin: float  # texture strength inside the nucleus
    granule_color: Optional[tuple[int, int, int]] = None
    granules: tuple[int, int] = (0, 0)
    granule_radius: tuple[int, int] = (1, 1)
    irregular: float = 0.04  # outline wobble
    nucleoli: int = 0
    vacuoles: int = 0
    granules_over_nucleus: bool = False


STYLES: dict[str, CellStyle] = {
    "Blast": CellStyle((88, 112), (190, 118, 104), (172, 104, 150), "round", 0.80, 6, nucleoli=3),
    "PRO": CellStyle(
        (96, 122), (205, 150, 146), (150, 70, 122), "eccentric", 0.58, 10, (105, 35, 150), (45, 80), (1, 2)
    ),
    "MYE": CellStyle(
        (80, 100), (168, 176, 216), (150, 62, 112), "eccentric", 0.55, 12, (140, 105, 195), (60, 100), (1, 1)
    ),
    "MET": CellStyle((72, 90), (200, 186, 222), (148, 60, 110), "kidney", 0.62, 14, (160, 130, 205), (30, 60), (1, 1)),
    "bNEU": CellStyle((68, 84), (214, 194, 222), (140, 48, 100), "band", 0.70, 14, (175, 150, 215), (20, 40), (1, 1)),
    "sNEU": CellStyle((68, 84), (216, 196, 224), (138, 46, 98), "lobes", 0.70, 14, (175, 150, 215), (20, 40), (1, 1)),
    "LYM": CellStyle((46, 60), (218, 178, 148), (132, 40, 84), "round", 0.84, 18),
    "MO": CellStyle((94, 120), (198, 178, 176), (166, 96, 142), "folded", 0.62, 9, vacuoles=6),
    "EO": CellStyle((72, 88), (150, 172, 226), (150, 60, 112), "bilobed", 0.62, 12, (50, 105, 232), (160, 240), (2, 2)),
    "BA": CellStyle(
        (62, 78),
        (196, 164, 204),
        (160, 88, 136),
        "round",
        0.55,
        8,
        (92, 22, 62),
        (45, 80),
        (2, 3),
        granules_over_nucleus=True,
    ),
    "rLYM": CellStyle((74, 96), (196, 122, 92), (146, 56, 102), "eccentric", 0.50, 14, irregular=0.10),
    "NRBC": CellStyle((58, 70), (176, 160, 204), (88, 24, 52), "round", 0.55, 4),
    "gPLT": CellStyle(
        (32, 52), (212, 172, 196), (140, 60, 130), "none", 0.0, 0, (130, 52, 128), (15, 35), (1, 2), irregular=0.18
    ),
    "SM": CellStyle((74, 120), (186, 128, 170), (170, 110, 160), "smudge", 0.0, 0, irregular=0.25),
    "Artefact": CellStyle((34, 70), (120, 70, 60), (70, 40, 40), "crystal", 0.0, 0, irregular=0.35),
}

_BACKGROUND = np.array([226, 218, 236], np.float32)
_RBC_RIM = (176, 164, 224)
_RBC_CENTER = (200, 192, 234)


def synthesize(
    out_dir: str | Path, n_images: int, seed: int = 0, classification_images: int = 0, progress: bool = True
) -> Path:
    """Write ``n_images`` smears (VOC layout, 7/100 test split) and an optional classification set.

    ``OUT/synth.json`` records the parameters once everything is written; calling again with the
    same parameters returns at once without touching the files (so a conversion of OUT stays
    valid), and a directory made with other parameters is cleared and rebuilt.
    """
    out_dir = Path(out_dir)
    if n_images < 1 or classification_images < 0:
        raise ValueError(f"need n_images >= 1 and classification_images >= 0 (got {n_images}, {classification_images})")
    params = {
        "generator_version": GENERATOR_VERSION,
        "images": n_images,
        "seed": seed,
        "classification_images": classification_images,
        "width": WIDTH,
        "height": HEIGHT,
    }
    if _finished(out_dir, params):
        return out_dir
    _clear_previous(out_dir)
    labelmap = LabelMap.paper()
    _write_set(out_dir, "smear", n_images, seed, DETECTION_SET, labelmap, progress)
    if classification_images:
        _write_set(
            out_dir / "classification", "cell", classification_images, seed, CLASSIFICATION_SET, labelmap, progress
        )
    write_text(out_dir / MARKER, json.dumps(params, indent=1) + "\n")
    return out_dir


def _finished(out_dir: Path, params: dict) -> bool:
    marker = out_dir / MARKER
    if not marker.is_file():
        return False
    try:
        return json.loads(marker.read_text()) == params
    except ValueError:
        return False


def _clear_previous(out_dir: Path) -> None:
    """Remove an earlier synthetic set (ours: it has the marker or only our folders); refuse others."""
    if not out_dir.is_dir() or not any(out_dir.iterdir()):
        return
    ours = {MARKER, "Annotations", "JPEGImages", "ImageSets", "classification"}
    foreign = sorted(p.name for p in out_dir.iterdir() if p.name not in ours)
    if foreign:
        raise ValueError(f"{out_dir} holds other files ({foreign[:5]}); synthesise into an empty or new directory")
    (out_dir / MARKER).unlink(missing_ok=True)
    for name in ours - {MARKER}:
        shutil.rmtree(out_dir / name, ignore_errors=True)


def _write_set(root: Path, prefix: str, count: int, seed: int, set_id: int, labelmap: LabelMap, progress: bool) -> None:
    ids = [f"{prefix}_{i:06d}" for i in range(count)]
    for index in track(range(count), f"synth {prefix}", "img", progress):
        rng = np.random.default_rng([seed, set_id, index])
        if set_id == CLASSIFICATION_SET:
            label = labelmap.names[(index + seed) % len(labelmap)]
            image, boxes = render_smear(rng, [label], centered=True)
        else:
            image, boxes = render_smear(rng, _scene_labels(rng, labelmap))
        ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        if not ok:
            raise RuntimeError(f"OpenCV could not encode synthetic image {ids[index]}")
        image_path = root / "JPEGImages" / f"{ids[index]}.jpg"
        write_bytes(image_path, jpeg.tobytes())
        write_text(
            root / "Annotations" / f"{ids[index]}.xml",
            voc_xml(ImageAnnotation(ids[index], image_path, WIDTH, HEIGHT, boxes)),
        )
    split = paper_split(ids, seed)
    write_text(root / "ImageSets" / "Main" / "train.txt", "".join(f"{i}\n" for i in split.train))
    write_text(root / "ImageSets" / "Main" / "test.txt", "".join(f"{i}\n" for i in split.test))


def _scene_labels(rng: np.random.Generator, labelmap: LabelMap) -> list[str]:
    """Usually 1–4 cells; about one scene in eight is dense (6–10 cells)."""
    count = int(rng.integers(6, 11)) if rng.random() < 0.125 else int(rng.integers(1, 5))
    return [labelmap.names[i] for i in rng.integers(0, len(labelmap), count)]


# ----------------------------------------------------------------------------- scene


def render_smear(rng: np.random.Generator, labels: list[str], centered: bool = False) -> tuple[np.ndarray, list[Box]]:
    """One BGR image with the given cells placed on an RBC background, and their VOC boxes."""
    canvas = _background(rng)
    boxes: list[Box] = []
    placed: list[tuple[float, float, float]] = []
    for label in labels:
        style = STYLES[label]
        radius = rng.uniform(*style.diameter) / 2
        center = (WIDTH / 2, HEIGHT / 2) if centered else _place(rng, radius, placed)
        if center is None:
            continue  # no free spot: the cell is not drawn, so not annotated
        placed.append((center[0], center[1], radius))
        box = _draw_cell(canvas, rng, style, center, radius)
        if box is not None:
            boxes.append(Box(label, *box, truncated=_touches_border(box)))
    return _finish(canvas, rng), boxes


def _place(rng: np.random.Generator, radius: float, placed: list) -> Optional[tuple[float, float]]:
    """A centre that keeps cells apart; centres may sit on the border (cells cut by the edge)."""
    for _ in range(40):
        x, y = rng.uniform(0, WIDTH), rng.uniform(0, HEIGHT)
        if all((x - px) ** 2 + (y - py) ** 2 > (0.95 * (radius + pr)) ** 2 for px, py, pr in placed):
            return x, y
    return None


def _touches_border(box: tuple[float, float, float, float]) -> bool:
    return box[0] <= 1 or box[1] <= 1 or box[2] >= WIDTH or box[3] >= HEIGHT


def _background(rng: np.random.Generator) -> np.ndarray:
    """Pale smear with many overlapping pale RBC discs (central pallor) and small platelets."""
    tint = rng.uniform(-8, 8, 3)
    canvas = np.empty((HEIGHT, WIDTH, 3), np.uint8)
    canvas[:] = np.clip(_BACKGROUND + tint, 0, 255).astype(np.uint8)
    n_rbc = int(rng.uniform(0.5, 1.0) * 150)
    radii = rng.integers(19, 27, n_rbc)
    xs = rng.integers(-26, WIDTH + 26, n_rbc)
    ys = rng.integers(-26, HEIGHT + 26, n_rbc)
    shades = rng.uniform(-10, 10, n_rbc)[:, None] + tint[None, :]
    rims = np.clip(np.array(_RBC_RIM) + shades, 0, 255)
    centres = np.clip(np.array(_RBC_CENTER) + shades, 0, 255)
    mids = ((rims + centres) / 2).tolist()
    for x, y, r, rim, mid, centre in zip(
        xs.tolist(), ys.tolist(), radii.tolist(), rims.tolist(), mids, centres.tolist()
    ):
        cv2.circle(canvas, (x, y), r, rim, -1, cv2.LINE_AA)  # disc, darker rim
        cv2.circle(canvas, (x, y), int(r * 0.72), mid, -1, cv2.LINE_AA)
        cv2.circle(canvas, (x, y), int(r * 0.45), centre, -1, cv2.LINE_AA)  # central pallor
    n_plt = int(rng.integers(3, 12))  # normal platelets: distractors, not labelled
    for x, y, r in zip(
        rng.integers(0, WIDTH, n_plt).tolist(),
        rng.integers(0, HEIGHT, n_plt).tolist(),
        rng.integers(3, 6, n_plt).tolist(),
    ):
        cv2.circle(canvas, (x, y), r, (150, 90, 150), -1, cv2.LINE_AA)
    return canvas.astype(np.float32)


# Sensor noise: one fixed field, cut at a random offset per image (cheaper than drawing new noise).
_NOISE = np.random.default_rng(12345).normal(0, 3.0, (HEIGHT + 128, WIDTH + 128, 3)).astype(np.float32)


def _finish(canvas: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Optical blur, uneven illumination and sensor noise; returns the uint8 image."""
    cv2.GaussianBlur(canvas, (3, 3), 0.8, dst=canvas)
    gx = 1.0 + np.linspace(-1, 1, WIDTH, dtype=np.float32) * np.float32(rng.uniform(-0.05, 0.05))
    gy = 1.0 + np.linspace(-1, 1, HEIGHT, dtype=np.float32) * np.float32(rng.uniform(-0.05, 0.05))
    oy, ox = int(rng.integers(0, 128)), int(rng.integers(0, 128))
    canvas *= gy[:, None, None]
    canvas *= gx[None, :, None]
    canvas += _NOISE[oy : oy + HEIGHT, ox : ox + WIDTH]
    return cv2.convertScaleAbs(canvas)  # saturating cast to uint8


# ----------------------------------------------------------------------------- one cell


def _blob(
    rng: np.random.Generator,
    size: int,
    center: tuple[float, float],
    radius: float,
    irregular: float,
    aspect: float = 1.0,
    angle: float = 0.0,
) -> np.ndarray:
    """Filled, slightly irregular ellipse as a 0/1 mask of shape (size, size)."""
    mask = np.zeros((size, size), np.uint8)
    t = np.linspace(0, 2 * np.pi, 48, endpoint=False)
    wobble = 1 + sum(irregular * rng.uniform(-1, 1) * np.cos(k * t + rng.uniform(0, 2 * np.pi)) for k in (2, 3, 5))
    rx, ry = radius * wobble, radius * wobble * aspect
    xs = center[0] + rx * np.cos(t) * np.cos(angle) - ry * np.sin(t) * np.sin(angle)
    ys = center[1] + rx * np.cos(t) * np.sin(angle) + ry * np.sin(t) * np.cos(angle)
    cv2.fillPoly(mask, [np.round(np.stack([xs, ys], 1) * 4).astype(np.int32)], 1, cv2.LINE_8, shift=2)
    return mask


def _nucleus_mask(rng: np.random.Generator, style: CellStyle, size: int, c: float, radius: float) -> np.ndarray:
    r = radius * style.nucleus_fraction
    angle = rng.uniform(0, 2 * np.pi)
    shape = style.nucleus_shape
    if shape == "round":
        return _blob(rng, size, (c, c), r, 0.03, rng.uniform(0.88, 1.0), angle)
    if shape == "eccentric":
        off = radius - r * 0.95
        centre = (c + off * np.cos(angle), c + off * np.sin(angle))
        return _blob(rng, size, centre, r, 0.04, rng.uniform(0.8, 0.95), angle)
    if shape in ("kidney", "folded"):
        mask = _blob(rng, size, (c, c), r, 0.05 if shape == "kidney" else 0.09, 0.8, angle)
        bite = (int(c + r * 1.05 * np.cos(angle)), int(c + r * 1.05 * np.sin(angle)))
        cv2.circle(mask, bite, int(r * (0.55 if shape == "kidney" else 0.45)), 0, -1)
        return mask
    if shape == "band":
        mask = np.zeros((size, size), np.uint8)
        start = np.degrees(angle)
        cv2.ellipse(
            mask,
            (int(c), int(c)),
            (int(r * 0.75), int(r * 0.6)),
            start,
            0,
            rng.uniform(200, 260),
            1,
            max(3, int(r * 0.32)),
        )
        return mask
    if shape in ("lobes", "bilobed"):
        n = 2 if shape == "bilobed" else int(rng.integers(3, 6))
        mask = np.zeros((size, size), np.uint8)
        arc = np.linspace(-0.9, 0.9, n) * (np.pi * 0.45 if n > 2 else np.pi * 0.35) + angle
        lobe_r = r * (0.42 if n == 2 else 0.36)
        points = [(int(c + r * 0.6 * np.cos(a)), int(c + r * 0.6 * np.sin(a))) for a in arc]
        for p, q in zip(points, points[1:]):
            cv2.line(mask, p, q, 1, 2)  # thin chromatin strands
        for p in points:
            cv2.circle(mask, p, max(3, int(lobe_r * rng.uniform(0.85, 1.1))), 1, -1, cv2.LINE_AA)
        return mask
    return np.zeros((size, size), np.uint8)


def _draw_cell(
    canvas: np.ndarray, rng: np.random.Generator, style: CellStyle, center: tuple[float, float], radius: float
) -> Optional[tuple[float, float, float, float]]:
    """Draw one cell into ``canvas``; return its VOC box (1-based, inclusive) clipped to the image."""
    size = int(2 * radius * 1.35) + 4
    c = size / 2
    patch, mask = _colour_patch(rng, style, size, c, radius)
    x0, y0 = round(center[0] - c), round(center[1] - c)
    return _paste(canvas, patch, mask, x0, y0)


def _colour_patch(rng: np.random.Generator, style: CellStyle, size: int, c: float, radius: float):
    """(BGR float patch, alpha mask) of one cell in local coordinates."""
    if style.nucleus_shape == "smudge":
        return _smudge(rng, style, size, c, radius)
    if style.nucleus_shape == "crystal":
        return _crystals(rng, style, size, c, radius)
    jitter = rng.uniform(-10, 10, 3)
    patch = np.empty((size, size, 3), np.float32)
    cell = _blob(rng, size, (c, c), radius, style.irregular, rng.uniform(0.88, 1.0), rng.uniform(0, np.pi))
    patch[:] = np.array(style.cytoplasm, np.float32) + jitter
    if style.irregular >= 0.1 and style.nucleus_shape != "none":  # reactive lymphocyte: darker skirt
        edge = cell - cv2.erode(cell, np.ones((7, 7), np.uint8))
        patch[edge > 0] *= 0.85
    nucleus = _nucleus_mask(rng, style, size, c, radius) * cell
    if nucleus.any():
        texture = cv2.GaussianBlur(rng.normal(0, 1, (size, size)).astype(np.float32), (0, 0), 1.0)
        nuc = np.array(style.nucleus, np.float32) + jitter * 0.5 + texture[..., None] * style.chromatin
        patch[nucleus > 0] = nuc[nucleus > 0]
        _nucleoli(rng, style, patch, nucleus)
    _vacuoles(rng, style, patch, cell, nucleus)
    _granules(rng, style, patch, cell if style.granules_over_nucleus else cell * (1 - nucleus))
    return patch, cell


def _nucleoli(rng, style: CellStyle, patch: np.ndarray, nucleus: np.ndarray) -> None:
    ys, xs = np.nonzero(cv2.erode(nucleus, np.ones((9, 9), np.uint8)))
    if not len(xs) or not style.nucleoli:
        return
    for k in rng.integers(0, len(xs), int(rng.integers(1, style.nucleoli + 1))):
        cv2.circle(patch, (int(xs[k]), int(ys[k])), int(rng.integers(3, 6)), (196, 150, 176), -1, cv2.LINE_AA)


def _vacuoles(rng, style: CellStyle, patch: np.ndarray, cell: np.ndarray, nucleus: np.ndarray) -> None:
    ys, xs = np.nonzero(cv2.erode(cell * (1 - nucleus), np.ones((7, 7), np.uint8)))
    if not len(xs) or not style.vacuoles:
        return
    for k in rng.integers(0, len(xs), int(rng.integers(2, style.vacuoles + 1))):
        cv2.circle(patch, (int(xs[k]), int(ys[k])), int(rng.integers(2, 5)), (228, 220, 232), -1, cv2.LINE_AA)


def _granules(rng, style: CellStyle, patch: np.ndarray, region: np.ndarray) -> None:
    if style.granule_color is None:
        return
    ys, xs = np.nonzero(region)
    if not len(xs):
        return
    count = int(rng.integers(*style.granules))
    picks = rng.integers(0, len(xs), count)
    radii = rng.integers(style.granule_radius[0], style.granule_radius[1] + 1, count)
    shades = rng.uniform(-15, 15, count)
    for k, r, s in zip(picks, radii, shades):
        colour = tuple(float(v + s) for v in style.granule_color)
        cv2.circle(patch, (int(xs[k]), int(ys[k])), int(r), colour, -1, cv2.LINE_AA)


def _smudge(rng, style: CellStyle, size: int, c: float, radius: float):
    """Smudge cell: a ruptured nucleus — pale purple smear with streaks, no cytoplasm."""
    mask = _blob(rng, size, (c, c), radius * 0.8, style.irregular, rng.uniform(0.6, 0.9), rng.uniform(0, np.pi))
    streaks = cv2.GaussianBlur(rng.normal(0, 1, (size, size)).astype(np.float32), (0, 0), 2.0)
    k = max(3, int(radius * 0.5)) | 1
    kernel = np.zeros((k, k), np.float32)
    kernel[k // 2, :] = 1.0 / k
    streaks = cv2.filter2D(streaks, -1, kernel)
    patch = np.array(style.cytoplasm, np.float32) + streaks[..., None] * 40 * np.array([0.8, 1.0, 0.9], np.float32)
    return patch.astype(np.float32), mask


def _crystals(rng, style: CellStyle, size: int, c: float, radius: float):
    """Artefact: dark angular stain-precipitate fragments (or a debris ring)."""
    mask = np.zeros((size, size), np.uint8)
    if rng.random() < 0.3:
        cv2.circle(mask, (int(c), int(c)), int(radius * 0.8), 1, max(2, int(radius * 0.15)))
    for _ in range(int(rng.integers(3, 9))):
        r = radius * rng.uniform(0.2, 0.5)
        off = rng.uniform(0, radius - r, 2) * rng.choice([-1, 1], 2)
        n = int(rng.integers(3, 6))
        angles = np.sort(rng.uniform(0, 2 * np.pi, n))
        pts = np.stack([c + off[0] + r * np.cos(angles), c + off[1] + r * np.sin(angles)], 1)
        cv2.fillPoly(mask, [pts.astype(np.int32)], 1)
    patch = np.empty((size, size, 3), np.float32)
    patch[:] = np.array(style.cytoplasm, np.float32) + rng.uniform(-20, 20, 3)
    return patch, mask


def _paste(canvas: np.ndarray, patch: np.ndarray, mask: np.ndarray, x0: int, y0: int):
    """Alpha-paste with a soft edge; return the box of the visible part (None if nothing shows)."""
    h, w = mask.shape
    cx0, cy0 = max(x0, 0), max(y0, 0)
    cx1, cy1 = min(x0 + w, WIDTH), min(y0 + h, HEIGHT)
    if cx1 <= cx0 or cy1 <= cy0:
        return None
    local = mask[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0]
    ys, xs = np.nonzero(local)
    if len(xs) < 20:
        return None
    alpha = cv2.GaussianBlur(mask.astype(np.float32), (3, 3), 0)[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0, None]
    region = canvas[cy0:cy1, cx0:cx1]
    region += alpha * (patch[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0] - region)
    # VOC boxes are 1-based and inclusive.
    return (float(cx0 + xs.min() + 1), float(cy0 + ys.min() + 1), float(cx0 + xs.max() + 1), float(cy0 + ys.max() + 1))


# ----------------------------------------------------------------------------- VOC XML


def voc_xml(image: ImageAnnotation) -> str:
    """A Pascal VOC annotation file for one image."""
    objects = "".join(
        "\t<object>\n"
        f"\t\t<name>{b.name}</name>\n\t\t<pose>Unspecified</pose>\n"
        f"\t\t<truncated>{int(b.truncated)}</truncated>\n\t\t<difficult>{int(b.difficult)}</difficult>\n"
        f"\t\t<bndbox>\n\t\t\t<xmin>{int(b.xmin)}</xmin>\n\t\t\t<ymin>{int(b.ymin)}</ymin>\n"
        f"\t\t\t<xmax>{int(b.xmax)}</xmax>\n\t\t\t<ymax>{int(b.ymax)}</ymax>\n\t\t</bndbox>\n"
        "\t</object>\n"
        for b in image.objects
    )
    return (
        "<annotation>\n\t<folder>JPEGImages</folder>\n"
        f"\t<filename>{image.image_path.name}</filename>\n"
        "\t<source>\n\t\t<database>leukonet-harness synthetic smears</database>\n\t</source>\n"
        f"\t<size>\n\t\t<width>{image.width}</width>\n\t\t<height>{image.height}</height>\n"
        "\t\t<depth>3</depth>\n\t</size>\n\t<segmented>0</segmented>\n"
        f"{objects}</annotation>\n"
    )


# ----------------------------------------------------------------------------- slides

# Per-scenario leukocyte differential (percent of the 11 WBC classes) and non-differential
# findings per 100 WBC. Rough textbook pictures, chosen so the count's flags differ per scenario.
SCENARIOS: dict[str, dict[str, dict[str, float]]] = {
    "normal": {
        "wbc": {"sNEU": 56, "bNEU": 3, "LYM": 30, "MO": 6, "EO": 3, "BA": 1, "rLYM": 1},
        "per_100_wbc": {"NRBC": 0, "gPLT": 2, "SM": 1, "Artefact": 2},
    },
    "aml": {
        "wbc": {
            "Blast": 40,
            "PRO": 4,
            "MYE": 3,
            "MET": 2,
            "bNEU": 3,
            "sNEU": 25,
            "LYM": 18,
            "MO": 4,
            "EO": 0.5,
            "BA": 0.5,
        },
        "per_100_wbc": {"NRBC": 6, "gPLT": 3, "SM": 2, "Artefact": 2},
    },
    "infection": {
        "wbc": {"MYE": 2, "MET": 3, "bNEU": 14, "sNEU": 62, "LYM": 12, "MO": 5, "EO": 1, "BA": 0.5, "rLYM": 0.5},
        "per_100_wbc": {"NRBC": 1, "gPLT": 2, "SM": 1, "Artefact": 2},
    },
    "lymphocytosis": {
        "wbc": {"LYM": 58, "rLYM": 12, "sNEU": 22, "bNEU": 2, "MO": 4, "EO": 1.5, "BA": 0.5},
        "per_100_wbc": {"NRBC": 0, "gPLT": 2, "SM": 10, "Artefact": 2},
    },
}
SLIDES_MARKER = "slides.json"
SLIDE_SET = 3


def synthesize_slides(
    out_dir: str | Path,
    n_slides: int,
    cells_per_slide: int = 200,
    scenario: str = "normal",
    seed: int = 0,
    progress: bool = True,
) -> Path:
    """Write ``OUT/slide_NNN/`` VOC roots (fields of 732×574) whose cells follow ``scenario``.

    Each slide draws its leukocytes (``cells_per_slide`` of them) from the scenario's differential
    (multinomial), plus NRBC/gPLT/SM/Artefact per 100 WBC (Poisson), then spreads them over fields
    of 1–5 cells. The VOC annotations are the ground truth (a cell with no free spot is not drawn);
    ``OUT/slides.json`` records the parameters and each slide's drawn counts.
    """
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}; known: {', '.join(SCENARIOS)}")
    if n_slides < 1 or cells_per_slide < 1:
        raise ValueError(f"need --slides >= 1 and --cells-per-slide >= 1 (got {n_slides}, {cells_per_slide})")
    out_dir = Path(out_dir)
    params = {
        "generator_version": GENERATOR_VERSION,
        "slides": n_slides,
        "cells_per_slide": cells_per_slide,
        "scenario": scenario,
        "seed": seed,
        "width": WIDTH,
        "height": HEIGHT,
    }
    marker = out_dir / SLIDES_MARKER
    if marker.is_file() and json.loads(marker.read_text()).get("params") == params:
        return out_dir
    if out_dir.is_dir() and any(p.name != SLIDES_MARKER and not p.name.startswith("slide_") for p in out_dir.iterdir()):
        raise ValueError(f"{out_dir} holds other files; synthesise slides into an empty or new directory")
    for old in out_dir.glob("slide_*"):  # ours (checked above): rebuilt from scratch
        shutil.rmtree(old)
    marker.unlink(missing_ok=True)
    drawn = {}
    for slide in range(n_slides):
        rng = np.random.default_rng([seed, SLIDE_SET, slide])
        labels = slide_cells(rng, SCENARIOS[scenario], cells_per_slide)
        drawn[f"slide_{slide:03d}"] = {name: labels.count(name) for name in sorted(set(labels))}
        _write_slide(out_dir / f"slide_{slide:03d}", rng, labels, progress)
    write_text(marker, json.dumps({"params": params, "drawn": drawn}, indent=1) + "\n")
    return out_dir


def slide_cells(rng: np.random.Generator, scenario: dict, n_wbc: int) -> list[str]:
    """Shuffled labels of one slide: the multinomial WBC draw plus Poisson extras per 100 WBC."""
    names = list(scenario["wbc"])
    p = np.array([scenario["wbc"][n] for n in names], float)
    counts = rng.multinomial(n_wbc, p / p.sum())
    labels = [name for name, k in zip(names, counts) for _ in range(int(k))]
    for name, rate in scenario["per_100_wbc"].items():
        labels += [name] * int(rng.poisson(rate * n_wbc / 100)) if rate else []
    rng.shuffle(labels)
    return labels


def _write_slide(root: Path, rng: np.random.Generator, labels: list[str], progress: bool) -> None:
    fields, start = [], 0
    while start < len(labels):
        take = int(rng.integers(1, 6))
        fields.append(labels[start : start + take])
        start += take
    for index, field_labels in enumerate(track(fields, f"synth {root.name}", "field", progress)):
        image, boxes = render_smear(rng, field_labels)
        ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        if not ok:
            raise RuntimeError(f"OpenCV could not encode field {index} of {root.name}")
        field_id = f"field_{index:04d}"
        image_path = root / "JPEGImages" / f"{field_id}.jpg"
        write_bytes(image_path, jpeg.tobytes())
        write_text(
            root / "Annotations" / f"{field_id}.xml",
            voc_xml(ImageAnnotation(field_id, image_path, WIDTH, HEIGHT, boxes)),
        )

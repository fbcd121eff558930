"""slide_<id>.html (differential beside reference ranges, flags, cell gallery) and index.html."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Optional

from harness.class_roles import ClassRoles
from harness.core.atomic import write_text
from harness.count.differential import SlideResult
from harness.paths import safe_file_name

TEMPLATES = Path(__file__).with_name("templates")
CROP_PAD = 8


def _environment():
    from harness.html import environment

    return environment(TEMPLATES)


def write_pages(
    results: list[SlideResult],
    roles: ClassRoles,
    out: Path,
    model: str,
    stats: Optional[dict],
    figures: dict[str, Path],
) -> dict[str, Path]:
    """slide_<name>.html per slide and index.html; slide names (user data) become safe file names
    (:func:`harness.paths.safe_file_name`), and pages or crops of an earlier count in ``out`` are removed
    first so the folder shows this count only."""
    env = _environment()
    shared = {
        "roles": roles,
        "wbc": roles.differential,
        "nrbc": bool(roles.classes_with("nrbc")),
        "ratios": roles.ratios(),
        "model": model,
    }
    outside = [c for c, role in roles.roles.items() if role not in ("leukocyte", "not_counted")]
    per_field = [role for role in ("leukocyte", "red_cell", "platelet") if roles.classes_with(role)]
    files = page_names([r.slide for r in results])
    _remove_earlier_pages(out)
    pages = {}
    for result in results:
        gallery = write_crops(result, out / "crops" / files[result.slide], f"crops/{files[result.slide]}")
        page = out / f"slide_{files[result.slide]}.html"
        write_text(
            page,
            env.get_template("slide.html.j2").render(
                r=result,
                d=result.differential,
                truth=result.truth,
                outside=outside,
                gallery=gallery,
                per_field=per_field,
                ranges=roles.reference_ranges,
                ratio_ranges=roles.reference_ratios,
                flag_texts={k: v["text"] for k, v in roles.flags.items()},
                **shared,
            ),
        )
        pages[result.slide] = page
    index = out / "index.html"
    write_text(
        index,
        env.get_template("index.html.j2").render(
            results=results,
            stats=stats,
            **shared,
            pages={slide: page.name for slide, page in pages.items()},
            figures={k: p.relative_to(out).as_posix() for k, p in figures.items()},
        ),
    )
    pages["index"] = index
    return pages


def page_names(slides: list[str]) -> dict[str, str]:
    """Slide name → the safe, unique name of its page and crop folder."""
    names: dict[str, str] = {}
    for slide in slides:
        names[slide] = safe_file_name(slide, set(names.values()))
    return names


def _remove_earlier_pages(out: Path) -> None:
    for page in out.glob("slide_*.html"):
        page.unlink()
    shutil.rmtree(out / "crops", ignore_errors=True)


def write_crops(result: SlideResult, crop_dir: Path, href: str) -> dict[str, list[dict]]:
    """One JPEG per cell, grouped by class (border cells last under their own heading); ``href``:
    the folder as the page links it."""
    import cv2

    crop_dir.mkdir(parents=True, exist_ok=True)
    gallery: dict[str, list[dict]] = {}
    by_image: dict[str, list] = {}
    for index, cell in enumerate(result.cells):
        by_image.setdefault(cell.image_id, []).append((index, cell))
    for image_id, cells in by_image.items():
        pixels = cv2.imread(str(result.paths[image_id]), cv2.IMREAD_COLOR)
        if pixels is None:
            continue
        for index, cell in cells:
            name = f"cell_{index:05d}.jpg"
            if not cv2.imwrite(str(crop_dir / name), _crop(pixels, cell.box)):
                raise OSError(f"{crop_dir / name}: cannot write the cell crop (disk full or read-only?)")
            group = (
                "cut by the border (not counted)"
                if cell.border
                else cell.label
                if result.is_counted(cell)
                else f"{cell.label} (class not counted)"
            )
            gallery.setdefault(group, []).append(
                {"src": f"{href}/{name}", "cell": cell, "file": result.files.get(image_id, image_id)}
            )
    order = list(result.roles.roles)
    return dict(sorted(gallery.items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else len(order)))


def _crop(pixels, box):
    """The box plus a margin, at least 1×1 px even for a degenerate or inverted box."""
    h, w = pixels.shape[:2]
    left, right = sorted((int(box[0]) - 1, int(box[2])))
    top, bottom = sorted((int(box[1]) - 1, int(box[3])))
    x0, y0 = min(max(left - CROP_PAD, 0), w - 1), min(max(top - CROP_PAD, 0), h - 1)
    x1, y1 = min(max(right + CROP_PAD, x0 + 1), w), min(max(bottom + CROP_PAD, y0 + 1), h)
    return pixels[y0:y1, x0:x1]

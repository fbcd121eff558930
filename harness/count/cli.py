"""``harness count MODEL_DIR --slides DIR --out DIR``: the per-slide leukocyte differential."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import click

from harness.core.atomic import write_json
from harness.count.backends import BACKENDS
from harness.options import DARKNET_RUN


@click.command()
@click.argument("model_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--slides",
    "slides_root",
    required=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="One sub-folder per slide (its field images, or a VOC root: then agreement is computed), "
    "or one VOC root with a slides.csv (image_id,slide) grouping its images into slides.",
)
@click.option(
    "--slides-csv",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="The image_id,slide table when --slides is a VOC root [default: VOC_ROOT/slides.csv].",
)
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--thresholds",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Thresholds file [default: harness/count/thresholds.json, see docs/count.md].",
)
@click.option(
    "--classes",
    "classes_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Class-roles table (JSON): what each class of the model counts as. Default: MODEL_DIR/"
    "class_roles.json (written by `harness train --classes`), else the built-in table that knows the model's classes (the paper's 15 "
    "labels, RBC/WBC/Platelets, the 5-part differential; docs/count.md).",
)
@click.option(
    "--backend",
    type=click.Choice(BACKENDS),
    default="auto",
    show_default=True,
    help="opencv: OpenCV DNN (CPU only; fastest on CPUs); native: pycaffe (Caffe) / libdarknet "
    "(Darknet), the only GPU path; auto: opencv on the CPU, native on a GPU. The network is "
    "loaded once for all slides.",
)
@click.option("--device", default="auto", show_default=True, help="cpu, gpu, gpu:N or auto.")
@DARKNET_RUN
@click.option("--quiet", is_flag=True, help="No progress bar.")
def count(
    model_dir: Path,
    slides_root: Path,
    slides_csv: Optional[Path],
    out: Path,
    thresholds: Optional[Path],
    classes_file: Optional[Path],
    backend: str,
    device: str,
    darknet: Optional[str],
    quiet: bool,
) -> None:
    """Differential count per slide: differential.csv, cells.csv, skipped.csv, count.json, slide_<id>.html, index.html.

    Exit status: 0 when every image of every slide was counted, 1 when an image or a slide
    could not be (all others are still written), 2 for usage errors.
    """
    from harness.class_roles import roles_for_model
    from harness.count.agreement import agreement, plot_agreement
    from harness.count.backends import choose_backend
    from harness.count.pages import write_pages
    from harness.count.rules import load_thresholds
    from harness.count.run import count_slides
    from harness.count.slides import plan_slides
    from harness.engine.experiment import load_trained_model

    try:
        rules = load_thresholds(thresholds)
        model = load_trained_model(model_dir, "cpu" if backend == "opencv" and device == "auto" else device, darknet)
        backend = choose_backend(backend, model.device)
        roles = roles_for_model(model.labelmap.names, classes_file, model_dir)
    except (OSError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    out.mkdir(parents=True, exist_ok=True)
    try:
        slides, unassigned = plan_slides(slides_root, model.labelmap, out / "work", slides_csv)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    click.echo(f"class roles: {roles.name} ({roles.source})")
    results, speed = count_slides(
        model, backend, slides, out / "work", rules, roles, progress=not quiet, echo=click.echo
    )
    stats = agreement(results)
    figures = plot_agreement(stats, out) if stats else {}
    _write_outputs(results, roles, out, stats, unassigned)
    _write_record(out / "count.json", model_dir, model, speed, thresholds, slides_root, slides_csv, roles)
    pages = write_pages(results, roles, out, f"{model.config.name} ({model.framework}, {model_dir})", stats, figures)
    click.secho(
        f"{speed.fields} field(s) in {speed.seconds:.1f} s: {speed.fields_per_s:.1f} fields/s ({backend})\n"
        f"differential: {out / 'differential.csv'}\ncells: {out / 'cells.csv'}\n"
        f"slide pages: {pages['index']}",
        fg="green",
    )
    _exit_status(results, unassigned, out)


def _write_record(
    path: Path,
    model_dir: Path,
    model,
    speed,
    thresholds: Optional[Path],
    slides_root: Path,
    slides_csv: Optional[Path],
    roles,
) -> None:
    """count.json: what produced these counts (model, backend, device, rules) and how fast."""
    from harness.count.rules import DEFAULT_THRESHOLDS
    from harness.count.slides_csv import SLIDES_CSV, is_voc_root

    if slides_csv is None and is_voc_root(slides_root):
        slides_csv = slides_root / SLIDES_CSV
    record = {
        "model_dir": str(model_dir.resolve()),
        "model": model.config.name,
        "framework": model.framework,
        "weights": str(model.weights),
        "backend": speed.backend,
        "backend_detail": speed.detail,
        "device": "cpu" if speed.backend == "opencv" else str(model.device),
        "network_loads": 1,
        "thresholds": str(Path(thresholds or DEFAULT_THRESHOLDS).resolve()),
        "class_roles": roles.record(),
        "slides": str(slides_root.resolve()),
        "slides_csv": str(slides_csv.resolve()) if slides_csv else None,
        "fields": speed.fields,
        "detection_seconds": round(speed.seconds, 3),
        "fields_per_s": round(speed.fields_per_s, 3),
        "wall_seconds": round(speed.wall_seconds, 3),
    }
    write_json(path, record, indent=1)


def _write_outputs(results, roles, out: Path, stats: Optional[dict], unassigned: dict[str, str]) -> None:
    from harness.count.tables import write_cells_csv, write_differential_csv, write_skipped_csv

    write_differential_csv(results, roles, out / "differential.csv")
    write_cells_csv(results, out / "cells.csv")
    write_skipped_csv(results, out / "skipped.csv", unassigned)
    if stats:
        write_json(out / "agreement.json", stats, indent=1)


def _exit_status(results, unassigned: dict[str, str], out: Path) -> None:
    failed = [r.slide for r in results if r.error]
    skipped = sum(len(r.skipped) for r in results)
    if unassigned:
        click.echo(
            f"{len(unassigned)} image(s) of the VOC root are on no slide of slides.csv: skipped, "
            f"listed as (unassigned) in {out / 'skipped.csv'}",
            err=True,
        )
    if failed or skipped or unassigned:
        raise click.ClickException(
            f"{len(failed)} slide(s) not counted ({', '.join(failed[:5])}) and "
            f"{skipped + len(unassigned)} image(s) skipped "
            f"({len(unassigned)} unassigned); listed in {out / 'skipped.csv'}"
        )

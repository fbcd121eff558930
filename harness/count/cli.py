"""``harness count MODEL_DIR --slides DIR --out DIR``: the per-slide leukocyte differential."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import click


@click.command()
@click.argument("model_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--slides", "slides_root", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="One sub-folder per slide: its field images, or a VOC root (then agreement is computed).")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--thresholds", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Thresholds file [default: harness/count/thresholds.json, see docs/count.md].")
@click.option("--device", default="auto", show_default=True, help="cpu, gpu, gpu:N or auto.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def count(model_dir: Path, slides_root: Path, out: Path, thresholds: Optional[Path], device: str, quiet: bool) -> None:
    """Differential count per slide: differential.csv, cells.csv, slide_<id>.html, index.html.

    Exit status: 0 when every image of every slide was counted, 1 when an image or a slide
    could not be (all others are still written), 2 for usage errors.
    """
    from harness.config import with_device
    from harness.count.agreement import agreement, plot_agreement
    from harness.count.pages import write_pages
    from harness.count.rules import load_thresholds
    from harness.count.run import count_slides
    from harness.device import resolve_device
    from harness.engine.experiment import trained_model
    from harness.frameworks import backend_for
    from harness.labels import LabelMap

    try:
        rules = load_thresholds(thresholds)
        config, files, weights = trained_model(model_dir)
        labelmap = LabelMap.from_file(files.get("names") or files["labelmap"])
    except (OSError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    config = with_device(config, resolve_device(device, config.framework))
    out.mkdir(parents=True, exist_ok=True)
    try:
        results = count_slides(backend_for(config, labelmap), files, weights, labelmap, slides_root, out, rules,
                               progress=not quiet, echo=click.echo)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    stats = agreement(results, rules)
    figures = plot_agreement(stats, out) if stats else {}
    _write_outputs(results, rules, out, stats)
    pages = write_pages(results, rules, out, f"{config.name} ({config.framework}, {model_dir})", stats, figures)
    click.secho(f"differential: {out / 'differential.csv'}\ncells: {out / 'cells.csv'}\n"
                f"slide pages: {pages['index']}", fg="green")
    _exit_status(results, out)


def _write_outputs(results, rules: dict, out: Path, stats: Optional[dict]) -> None:
    from harness.count.tables import write_cells_csv, write_differential_csv, write_skipped_csv

    write_differential_csv(results, rules, out / "differential.csv")
    write_cells_csv(results, out / "cells.csv")
    write_skipped_csv(results, out / "skipped.csv")
    if stats:
        (out / "agreement.json").write_text(json.dumps(stats, indent=1) + "\n")


def _exit_status(results, out: Path) -> None:
    failed = [r.slide for r in results if r.error]
    skipped = sum(len(r.skipped) for r in results)
    if failed or skipped:
        raise click.ClickException(f"{len(failed)} slide(s) not counted ({', '.join(failed[:5])}) and "
                                   f"{skipped} image(s) skipped; listed in {out / 'skipped.csv'}")

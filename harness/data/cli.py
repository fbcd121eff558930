"""``harness data convert|synth|check`` — the data stage's verbs."""

from __future__ import annotations

from pathlib import Path

import click

from harness.data.options import DataOptions
from harness.options import CLASS_MAP, LABELMAP, data_options, parse_class_map, parse_labelmap


@click.group()
def data() -> None:
    """Convert, synthesise and check Pascal VOC datasets."""


@data.command()
@click.option(
    "--voc",
    "voc_root",
    required=True,
    type=click.Path(exists=True, file_okay=False),
    help="Pascal VOC directory (Annotations/, JPEGImages/, optional ImageSets/Main/).",
)
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False),
    help="Output directory for the Darknet and Caffe layouts (resumes if interrupted).",
)
@click.option(
    "--seed",
    type=int,
    default=0,
    show_default=True,
    help="Seed for the 7/100 test draw (datasets without ImageSets) and train order.",
)
@click.option(
    "--workers",
    type=int,
    default=None,
    help="Image-decoding processes [default: all cores but one; inline on 2 cores].",
)
@click.option("--overwrite", is_flag=True, help="Replace an earlier conversion of different inputs in --out.")
@data_options
@click.option("--quiet", is_flag=True, help="No progress bar.")
def convert(
    voc_root: str, out_dir: str, seed: int, workers: int | None, overwrite: bool, data_options: DataOptions, quiet: bool
) -> None:
    """Audit, then write Darknet (YOLO txt, lists) and Caffe-SSD (AnnotatedDatum LMDB) layouts from VOC."""
    from harness.data.convert import AUDIT_DIR, convert_dataset

    try:
        result = convert_dataset(
            voc_root,
            out_dir,
            seed=seed,
            workers=workers,
            progress=not quiet,
            overwrite=overwrite,
            **data_options.convert_kwargs(),
        )
    except (ValueError, FileNotFoundError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(result.summary())
    click.echo(
        f"summary written to {Path(result.out_dir) / 'conversion.json'}; "
        f"dataset report: {Path(result.out_dir) / AUDIT_DIR / 'dataset_report.html'}"
    )


@data.command()
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Output VOC directory.")
@click.option("--images", "n_images", type=int, default=200, show_default=True, help="Detection images.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--classification-images",
    type=int,
    default=0,
    show_default=True,
    help="Single-object images written under OUT/classification/.",
)
@click.option(
    "--slides",
    "n_slides",
    type=int,
    default=None,
    help="Write N slides instead (OUT/slide_NNN/, each a VOC root of fields) for `harness count`.",
)
@click.option("--cells-per-slide", type=int, default=200, show_default=True, help="Leukocytes per slide.")
@click.option(
    "--scenario",
    type=click.Choice(["normal", "aml", "infection", "lymphocytosis"]),
    default="normal",
    show_default=True,
    help="The slides' known differential (harness/data/synth.py SCENARIOS).",
)
@click.option("--quiet", is_flag=True, help="No progress bar.")
def synth(
    out_dir: str,
    n_images: int,
    seed: int,
    classification_images: int,
    n_slides: int | None,
    cells_per_slide: int,
    scenario: str,
    quiet: bool,
) -> None:
    """Synthesise Wright-Giemsa-like smears with the paper's 15 labels (VOC layout)."""
    from harness.data.synth import synthesize, synthesize_slides

    if n_slides is not None:
        try:
            out = synthesize_slides(out_dir, n_slides, cells_per_slide, scenario, seed=seed, progress=not quiet)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from exc
        click.echo(f"wrote {n_slides} {scenario} slide(s) of {cells_per_slide} leukocytes to {out}")
        return
    try:
        out = synthesize(out_dir, n_images, seed=seed, classification_images=classification_images, progress=not quiet)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(
        f"wrote {n_images} images to {out}"
        + (f" and {classification_images} to {out / 'classification'}" if classification_images else "")
    )


@data.command()
@click.option("--voc", "voc_root", required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--image-set", default=None, help="Split name (e.g. test) or ids file; default: all annotations.")
@LABELMAP
@CLASS_MAP
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False),
    default="dataset_audit",
    show_default=True,
    help="Where dataset_report.html, dataset.json and the figures are written.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the 7/100 draw (sets without ImageSets).")
@click.option(
    "--workers", type=int, default=None, help="Decoding processes [default: all cores but one; inline on 2 cores]."
)
@click.option("--max-messages", type=int, default=200, show_default=True)
@click.option(
    "--strict",
    is_flag=True,
    help="Exit with status 1 if any image or object would be skipped, or test images leak into train.",
)
def check(
    voc_root: str,
    image_set: str | None,
    labelmap: Path | None,
    class_map: Path | None,
    out_dir: str,
    seed: int,
    workers: int | None,
    max_messages: int,
    strict: bool,
) -> None:
    """Audit a VOC dataset: decode every image, find duplicates, leakage, orphans and typo classes.

    Prints the findings and writes the dataset report; exits 1 when no image is usable or a split
    has no object.
    """
    from harness.data.audit import audit_dataset

    try:
        audit = audit_dataset(
            voc_root,
            out_dir,
            labelmap=parse_labelmap(labelmap),
            class_map=parse_class_map(class_map),
            image_set=image_set,
            seed=seed,
            workers=workers,
        )
    except (ValueError, FileNotFoundError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(audit.summary(max_messages=max_messages))
    click.echo(f"dataset report: {Path(out_dir) / 'dataset_report.html'}")
    if strict and (audit.report.images_skipped or audit.report.objects_skipped or audit.leaks):
        raise SystemExit(1)

"""One data vocabulary on every verb that reads a VOC root (issue 23): --class-map, --labelmap,
--dedupe, --allow-leakage, --allow-suspect-classes, with the same meaning as `data convert`,
recorded in run.json. CLI verbs run as subprocesses from their own working directory."""
from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
VERBS = (("data", "convert"), ("train", "yolov3-tiny"), ("reproduce", "table1"), ("render", "table1"))


def harness(args: list[str], cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "HARNESS_PROGRESS_SECONDS": "3600"}
    return subprocess.run([sys.executable, "-m", "harness", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


def messy_bccd(bccd: Path, root: Path, train: int = 12, test: int = 5) -> Path:
    """A small BCCD copy made messy as real sets are: a typo class ('Platelet' beside 'Platelets'),
    a test image that is a byte copy of a train image (leakage), and an XML without its image."""
    voc = root / "messy"
    for sub in ("Annotations", "JPEGImages", "ImageSets/Main"):
        (voc / sub).mkdir(parents=True)
    split = {name: (bccd / f"ImageSets/Main/{name}.txt").read_text().split() for name in ("trainval", "test")}
    ids = {"trainval": split["trainval"][:train], "test": split["test"][:test]}
    for image_id in ids["trainval"] + ids["test"]:
        shutil.copy(bccd / "Annotations" / f"{image_id}.xml", voc / "Annotations")
        shutil.copy(bccd / "JPEGImages" / f"{image_id}.jpg", voc / "JPEGImages")
    typo = voc / "Annotations" / f"{ids['trainval'][0]}.xml"
    typo.write_text(typo.read_text().replace("<name>Platelets</name>", "<name>Platelet</name>", 1)
                    if "<name>Platelets</name>" in typo.read_text()
                    else typo.read_text().replace("<name>RBC</name>", "<name>Platelet</name>", 1))
    twin = "leaked_twin"                                  # a test image identical to a train image
    shutil.copy(voc / "Annotations" / f"{ids['trainval'][1]}.xml", voc / "Annotations" / f"{twin}.xml")
    shutil.copy(voc / "JPEGImages" / f"{ids['trainval'][1]}.jpg", voc / "JPEGImages" / f"{twin}.jpg")
    shutil.copy(voc / "Annotations" / f"{ids['test'][0]}.xml", voc / "Annotations" / "orphan.xml")  # no image
    (voc / "ImageSets/Main/trainval.txt").write_text("\n".join(ids["trainval"]) + "\n")
    (voc / "ImageSets/Main/test.txt").write_text("\n".join(ids["test"] + [twin]) + "\n")
    (root / "fixes.txt").write_text("Platelet: Platelets\n")
    return voc


def options_named(message: str) -> set[str]:
    return set(re.findall(r"(--[a-z][a-z-]+)", message))


@pytest.mark.parametrize("verb", VERBS, ids=" ".join)
def test_every_verb_has_the_options_its_refusals_name(bccd_root: Path, tmp_path: Path, verb: tuple[str, str]):
    """The leakage and typo refusals suggest options; every verb that can print them has them."""
    voc = messy_bccd(bccd_root, tmp_path)
    work = tmp_path / "elsewhere"
    work.mkdir()
    out = ["--out", "conv"] if verb[0] == "data" else ["--project", "runs"]
    help_text = harness([*verb, "--help"], work).stdout
    typo = harness([*verb, "--voc" if verb[0] == "data" else "--data", str(voc), *out, "--dedupe",
                    "--profile", "smoke"][: None if verb[0] != "data" else -2], work)
    assert typo.returncode == 1, typo.stdout + typo.stderr
    assert "look like typos" in typo.stderr and "'Platelet'" in typo.stderr
    leak = harness([*verb, "--voc" if verb[0] == "data" else "--data", str(voc), *out, "--class-map",
                    str(tmp_path / "fixes.txt"), "--profile", "smoke"][: None if verb[0] != "data" else -2], work)
    assert leak.returncode == 1, leak.stdout + leak.stderr
    assert "have a twin in train" in leak.stderr and "leaked_twin" in leak.stderr
    named = options_named(typo.stderr) | options_named(leak.stderr)
    assert {"--dedupe", "--allow-leakage", "--class-map", "--labelmap", "--allow-suspect-classes"} <= named
    missing = [option for option in named if option not in help_text]
    assert not missing, f"`harness {' '.join(verb)}` names options it does not have: {missing}"
    assert not (work / "runs").exists() or not list((work / "runs").glob("*/models/*/weights/*"))


def test_dedupe_and_allow_leakage_together_is_a_usage_error(tmp_path: Path):
    done = harness(["train", "yolov3-tiny", "--dedupe", "--allow-leakage"], tmp_path)
    assert done.returncode == 2 and "exclude each other" in done.stderr


def test_unreadable_class_map_is_a_usage_error_naming_the_file(tmp_path: Path):
    bad = tmp_path / "bad_map.txt"
    bad.write_text("no colon on this line\n")
    done = harness(["render", "table1", "--class-map", str(bad), "--profile", "smoke"], tmp_path)
    assert done.returncode == 2 and "bad_map.txt" in done.stderr and "--class-map" in done.stderr


def test_train_goes_through_a_messy_set_and_records_its_data_options(bccd_root: Path, tmp_path: Path,
                                                                     darknet_install):
    """Mapped typo, dropped test twin, skipped orphan: trained with the cpu profile (its schedule scaled to
    a CI-sized --iterations), detected, evaluated, counted — no hand edits (issue 23's done-when)."""
    voc = messy_bccd(bccd_root, tmp_path)
    work = tmp_path / "elsewhere"
    work.mkdir()
    args = ["train", "yolov3-tiny", "--data", str(voc), "--class-map", str(tmp_path / "fixes.txt"), "--dedupe",
            "--profile", "cpu", "--iterations", "20", "--size", "128", "--name", "messy"]
    done = harness(args, work)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    run = work / "runs/messy"
    identity = json.loads((run / "run.json").read_text())["identity"]
    assert identity["data_options"] == {"class_map": str(tmp_path / "fixes.txt"), "labelmap": None,
                                        "dedupe": True, "allow_leakage": False, "allow_suspect_classes": False}
    validation = json.loads((run / "dataset/conversion.json").read_text())["counts"]["validation"]
    names = (run / "dataset/darknet/obj.names").read_text().split()
    assert "Platelet" not in names and "Platelets" in names
    assert "leaked_twin" not in (run / "dataset/darknet/valid.txt").read_text()
    assert validation["skipped_by_reason"] == {"missing image": 1, "test twin dropped": 1}   # counted, not lost
    assert validation["fixed_by_reason"] == {"class mapped": 1}
    # The audit's input-size advice reaches `train`: at 128 px BCCD's platelets are under 16 px.
    advice = json.loads((run / "dataset/conversion.json").read_text())["input_size"]
    assert advice["smallest_class"] == "Platelets" and advice["suggested_size"] > 128
    assert re.search(rf"at --size 128 the smallest objects \(Platelets\) measure \d+ px \(median\).*"
                     rf"suggests --size {advice['suggested_size']}", done.stdout + done.stderr)
    summary = json.loads((run / "models/yolov3-tiny_128/summary.json").read_text())
    assert summary["status"] == "ok" and summary["profile"] == "cpu" and summary["train"]["iterations"] == 20
    # The same run name with other data options is refused, naming the difference.
    again = harness([a for a in args if a != "--dedupe"] + ["--allow-leakage"], work)
    assert again.returncode == 2 and "data_options" in again.stderr
    count_bccd_test_images(run / "models/yolov3-tiny_128", voc, work)


def count_bccd_test_images(model_dir: Path, voc: Path, work: Path) -> None:
    """`harness count` with the RBC/WBC/Platelets model on the set's test images, grouped into two
    slides by slides.csv: counts per field and ratios, not "no leukocytes detected". The 20-iteration
    weights are replaced by seeded random ones (as in test_count_cli.py) so that cells exist
    (tests/test_bccd_learning.py counts with models that learned BCCD)."""
    from harness.engine.experiment import trained_model
    from tests.support.darknet import write_random_weights

    _, files, weights = trained_model(model_dir)
    write_random_weights(files["cfg"], weights)
    slides = work / "bccd_slides"
    for sub in ("Annotations", "JPEGImages"):
        (slides / sub).mkdir(parents=True)
    ids = (voc / "ImageSets/Main/test.txt").read_text().split()[:4]
    for image_id in ids:
        shutil.copy(voc / "Annotations" / f"{image_id}.xml", slides / "Annotations")
        shutil.copy(voc / "JPEGImages" / f"{image_id}.jpg", slides / "JPEGImages")
    (slides / "slides.csv").write_text("image_id,slide\n" + "".join(
        f"{image_id},{'A' if i < 2 else 'B'}\n" for i, image_id in enumerate(ids)))
    done = harness(["count", str(model_dir), "--slides", "bccd_slides", "--out", "counted", "--quiet",
                    "--device", "cpu"], work)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "class roles: rbc-wbc-platelets" in done.stdout
    with (work / "counted/differential.csv").open() as handle:
        rows = {row["slide"]: row for row in csv.DictReader(handle)}
    assert set(rows) == {"A", "B"}
    for row in rows.values():
        assert int(row["RBC_n"]) + int(row["Platelets_n"]) + int(row["wbc"]) > 0
        assert row["rbc_per_field"] and "platelets_per_1000_rbc" in row and "sNEU_pct" not in row
    page = (work / "counted/slide_A.html").read_text()
    assert "Per field and ratios" in page and "platelets per 1000 rbc" in page
    record = json.loads((work / "counted/count.json").read_text())
    assert record["class_roles"]["name"] == "rbc-wbc-platelets"
    stats = json.loads((work / "counted/agreement.json").read_text()) if (work / "counted/agreement.json").is_file() else None
    assert stats is None or set(stats["per_class"]) == {"WBC"}

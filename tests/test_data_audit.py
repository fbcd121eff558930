"""Dataset audit: each defect of real-world VOC sets on a small crafted set, reported by file name,
counted and handled as docs/data.md says; BCCD audits clean except its known findings; the CLI."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

from harness.data import audit as audit_module
from harness.data import voc
from harness.data.audit import EmptyDatasetError, audit_dataset
from harness.data.classnames import read_class_map, suspect_class_names
from harness.data.convert import LeakageError, convert_dataset
from harness.data.report import FIXED, SKIP_IMAGE, SKIP_OBJECT, WARNING
from harness.data.splits import paper_split
from harness.labels import LabelMap

from test_data_voc import distinct_picture, make_sample, write_image, write_xml

REPO = Path(__file__).resolve().parents[1]


def _voc(root: Path, n: int, image_sets: bool = False) -> Path:
    for i in range(n):
        make_sample(root, f"im{i:02d}", [("cat", 2, 2, 30, 30), ("dog", 20, 10, 50, 40)])
    if image_sets:
        main = root / "ImageSets" / "Main"
        main.mkdir(parents=True, exist_ok=True)
        (main / "trainval.txt").write_text("".join(f"im{i:02d}\n" for i in range(n - 3)))
        (main / "test.txt").write_text("".join(f"im{i:02d}\n" for i in range(n - 3, n)))
    return root


def _names(problems) -> list[str]:
    return sorted(Path(p.file).name for p in problems)


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "harness", "data", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


# ----------------------------------------------------------------------------- duplicates and leakage

def test_byte_identical_copy_across_the_split_is_a_leak_and_dedupe_drops_the_test_twin(tmp_path):
    root = _voc(tmp_path / "voc", 10, image_sets=True)
    (root / "JPEGImages" / "im08.jpg").write_bytes((root / "JPEGImages" / "im01.jpg").read_bytes())
    audit = audit_dataset(root, workers=2)
    (leak,) = audit.leaks
    assert (leak.test_id, leak.train_id, leak.kind, leak.distance) == ("im08", "im01", "exact", 0)
    (problem,) = audit.report.of_kind(audit_module.LEAKAGE)
    assert problem.file.endswith("im08.jpg") and "im01.jpg" in problem.message and problem.action == WARNING
    with pytest.raises(LeakageError, match="test im08 = train im01"):
        convert_dataset(root, tmp_path / "refused", progress=False)
    assert not (tmp_path / "refused").exists()
    deduped = convert_dataset(root, tmp_path / "deduped", dedupe=True, progress=False)
    assert deduped.test_ids == ["im07", "im09"] and "im01" in deduped.train_ids
    (dropped,) = deduped.report.of_kind(audit_module.LEAKAGE_DROPPED)
    assert dropped.file.endswith("im08.jpg") and dropped.action == SKIP_IMAGE
    kept = convert_dataset(root, tmp_path / "kept", allow_leakage=True, progress=False)
    assert kept.test_ids == ["im07", "im08", "im09"]


def test_near_duplicate_reencode_is_found_and_distinct_images_are_not(tmp_path):
    root = _voc(tmp_path / "voc", 10, image_sets=True)
    big = distinct_picture("smear", 320, 240)
    big = cv2.GaussianBlur(big, (0, 0), 6)                 # smooth, like a smear
    smaller = cv2.resize(big, (200, 150), interpolation=cv2.INTER_AREA)
    for image_id, picture, quality in (("im02", big, 95), ("im09", smaller, 40)):   # re-saved smaller, lower quality
        cv2.imwrite(str(root / "JPEGImages" / f"{image_id}.jpg"), picture, [cv2.IMWRITE_JPEG_QUALITY, quality])
        write_xml(root, image_id, [("cat", 2, 2, 30, 30)], width=picture.shape[1], height=picture.shape[0])
    audit = audit_dataset(root, workers=1)
    assert [(t.first, t.second, t.kind) for t in audit.twins] == [("im02", "im09", "near")]
    assert audit.twins[0].distance <= audit_module.NEAR_DUPLICATE_BITS
    (leak,) = audit.leaks
    assert (leak.test_id, leak.train_id, leak.kind) == ("im09", "im02", "near")


def test_duplicates_within_one_split_are_warnings_not_leaks(tmp_path):
    root = _voc(tmp_path / "voc", 10, image_sets=True)
    (root / "JPEGImages" / "im03.jpg").write_bytes((root / "JPEGImages" / "im00.jpg").read_bytes())
    audit = audit_dataset(root)
    assert audit.leaks == [] and len(audit.twins) == 1
    assert _names(audit.report.of_kind(audit_module.DUPLICATE_IMAGE)) == ["im03.jpg"]


def test_paper_split_keeps_twins_on_one_side_and_puts_rare_classes_in_test(tmp_path):
    root = tmp_path / "voc"
    for i in range(60):
        make_sample(root, f"im{i:02d}", [("cell", 2, 2, 30, 30)] + ([("rare", 30, 20, 50, 40)] if i in (5, 40) else []))
    for copy in range(1, 20):       # im00 saved under 19 more names
        (root / "JPEGImages" / f"im{copy:02d}.jpg").write_bytes((root / "JPEGImages" / "im00.jpg").read_bytes())
    audit = audit_dataset(root, seed=3)
    twins = {f"im{i:02d}" for i in range(20)}
    assert twins <= set(audit.split.train) or twins <= set(audit.split.test)
    assert audit.leaks == [] and "duplicate images kept on one side" in audit.split.source
    test_classes = {b.name for im in audit.dataset.images if im.image_id in audit.split.test for b in im.objects}
    assert "rare" in test_classes and len(audit.split.test) == round(60 * 7 / 100)


def test_paper_split_without_groups_or_classes_is_the_plain_draw():
    ids = [f"img{i:04d}" for i in range(200)]
    plain = paper_split(ids, seed=2)
    assert paper_split(ids, seed=2, groups=[], classes={}) == plain
    assert len(plain.test) == 14 and plain.source == "paper rule 7/100, seed 2"


# ----------------------------------------------------------------------------- pairing

def test_orphan_xml_is_never_paired_with_another_image_by_its_filename(tmp_path):
    root = _voc(tmp_path / "voc", 6)
    (root / "Annotations" / "ghost.xml").write_text(
        "<annotation><filename>im01.jpg</filename><object><name>cat</name>"
        "<bndbox><xmin>2</xmin><ymin>2</ymin><xmax>9</xmax><ymax>9</ymax></bndbox></object></annotation>")
    audit = audit_dataset(root)
    assert "ghost" not in audit.dataset.ids
    (orphan,) = audit.report.of_kind(voc.MISSING_IMAGE)
    assert orphan.file.endswith("ghost.xml") and orphan.action == SKIP_IMAGE
    assert "'im01.jpg'" in orphan.message and "not paired by guess" in orphan.message


def test_filename_pointing_elsewhere_is_reported_and_the_own_image_used(tmp_path):
    root = _voc(tmp_path / "voc", 6)
    xml = root / "Annotations" / "im02.xml"
    xml.write_text(xml.read_text().replace("<filename>im02.jpg", "<filename>im05.jpg"))
    audit = audit_dataset(root)
    (mismatch,) = audit.report.of_kind(voc.FILENAME_MISMATCH)
    assert mismatch.file.endswith("im02.xml") and "'im05.jpg'" in mismatch.message
    image = next(im for im in audit.dataset.images if im.image_id == "im02")
    assert image.image_path.name == "im02.jpg"


def test_image_without_xml_is_named_and_counted(tmp_path):
    root = _voc(tmp_path / "voc", 6)
    write_image(root, "lonely")
    write_image(root, "lonely2", suffix=".png")
    audit = audit_dataset(root)
    orphans = audit.report.of_kind(voc.IMAGE_WITHOUT_XML)
    assert _names(orphans) == ["lonely.jpg", "lonely2.png"] and {p.action for p in orphans} == {SKIP_IMAGE}
    report = audit.report
    assert (report.images_total, report.images_kept, report.images_skipped) == (8, 6, 2)


def test_relative_and_absolute_symlinks_are_followed_and_convert_links_the_real_file(tmp_path):
    store = tmp_path / "store"
    root = tmp_path / "voc"
    for i in range(8):
        write_image(store, f"im{i}")
        link = root / "JPEGImages" / f"im{i}.jpg"
        link.parent.mkdir(parents=True, exist_ok=True)
        target = store / "JPEGImages" / f"im{i}.jpg"
        link.symlink_to(os.path.relpath(target, link.parent) if i % 2 else target)
        write_xml(root, f"im{i}", [("cat", 2, 2, 30, 30)])
    (root / "JPEGImages" / "dangling.jpg").symlink_to("../../nowhere/dangling.jpg")
    write_xml(root, "dangling", [("cat", 2, 2, 30, 30)])
    result = convert_dataset(root, tmp_path / "out", progress=False)
    assert len(result.train_ids) + len(result.test_ids) == 8
    for image_id in result.train_ids + result.test_ids:
        copied = tmp_path / "out" / "darknet" / "JPEGImages" / f"{image_id}.jpg"
        assert not copied.is_symlink() and copied.read_bytes() == (store / "JPEGImages" / f"{image_id}.jpg").read_bytes()
    (broken,) = result.report.of_kind(voc.MISSING_IMAGE)
    assert broken.file.endswith("dangling.xml") and "broken symlink dangling.jpg -> ../../nowhere" in broken.message


# ----------------------------------------------------------------------------- decoding

def test_truncated_jpeg_is_found_at_check_time(tmp_path):
    root = _voc(tmp_path / "voc", 6)
    big = root / "JPEGImages" / "cut.jpg"
    cv2.imwrite(str(big), distinct_picture("cut", 320, 240))
    big.write_bytes(big.read_bytes()[: big.stat().st_size // 2])          # header intact, data cut
    write_xml(root, "cut", [("cat", 2, 2, 30, 30)], width=320, height=240)
    assert voc.load_voc(root).report.of_kind(voc.UNREADABLE_IMAGE) == []   # the header alone passes
    audit = audit_dataset(root, workers=2)
    (bad,) = audit.report.of_kind(voc.UNREADABLE_IMAGE)
    assert bad.file.endswith("cut.jpg") and bad.action == SKIP_IMAGE and "truncated" in bad.message
    assert "cut" not in audit.dataset.ids and "cut" not in audit.split.train + audit.split.test
    assert audit.report.images_kept == 6 and set(audit.facts) == set(audit.dataset.ids)


def test_difficult_flags_in_words_and_bad_flags(tmp_path):
    root = _voc(tmp_path / "voc", 4)
    write_xml(root, "im00", [("cat", 2, 2, 30, 30, "true"), ("dog", 3, 3, 20, 20, "False"), ("cat", 4, 4, 9, 9, "maybe")])
    dataset = voc.load_voc(root)
    image = next(im for im in dataset.images if im.image_id == "im00")
    assert [b.difficult for b in image.objects] == [True, False, False]
    (bad,) = dataset.report.of_kind(voc.BAD_FLAG)
    assert bad.object_index == 2 and "<difficult>maybe</difficult>" in bad.message and bad.action == WARNING


# ----------------------------------------------------------------------------- class names

def _typo_voc(root: Path) -> Path:
    for i in range(12):
        make_sample(root, f"im{i:02d}", [("Platelets", 2, 2, 30, 30), ("RBC", 20, 10, 50, 40), ("WBC", 3, 3, 40, 40)])
    make_sample(root, "t1", [("Platlets", 2, 2, 30, 30), ("RBC", 20, 10, 50, 40)])
    make_sample(root, "t2", [("platelets", 2, 2, 30, 30)])
    make_sample(root, "t3", [("R", 2, 2, 30, 30), ("dog", 5, 5, 20, 20)])
    return root


def test_typo_classes_are_flagged_by_name_and_file(tmp_path):
    root = _typo_voc(tmp_path / "voc")
    audit = audit_dataset(root)
    flagged = {s.name: s for s in audit.suspects}
    assert set(flagged) == {"Platlets", "platelets", "R", "dog"}
    assert flagged["Platlets"].similar_to == "Platelets" and flagged["platelets"].similar_to == "Platelets"
    assert "one-letter" in flagged["R"].reason and "rare" in flagged["dog"].reason
    problems = {p.class_name: p for p in audit.report.of_kind(audit_module.SUSPECT_CLASS)}
    assert problems["Platlets"].file.endswith("t1.xml") and "'Platlets: Platelets'" in problems["Platlets"].message
    assert "RBC" not in flagged and "WBC" not in flagged            # 3 letters, one apart: two real classes
    with pytest.raises(ValueError, match="look like typos.*Platlets"):
        convert_dataset(root, tmp_path / "out", progress=False)


def test_class_map_fixes_typos_reproducibly_and_says_what_it_mapped(tmp_path):
    root = _typo_voc(tmp_path / "voc")
    mapping = tmp_path / "classes.txt"
    mapping.write_text("# BCCD-style fixes\nPlatlets: Platelets\nplatelets: Platelets\nR: RBC\ndog: <drop>\nEO: Eos\n")
    class_map = read_class_map(mapping)
    result = convert_dataset(root, tmp_path / "out", class_map=class_map, progress=False)
    assert result.labelmap.names == ("Platelets", "RBC", "WBC")
    report = result.report
    mapped = {p.message.split(" on ")[0]: p for p in report.of_kind(voc.CLASS_MAPPED)}
    assert set(mapped) == {"'Platlets' -> 'Platelets'", "'platelets' -> 'Platelets'", "'R' -> 'RBC'"}
    assert all(p.action == FIXED and p.file == str(mapping) for p in mapped.values())
    (dropped,) = report.of_kind(voc.CLASS_DROPPED)
    assert dropped.file.endswith("t3.xml") and dropped.action == SKIP_OBJECT and dropped.class_name == "dog"
    (unused,) = report.of_kind(voc.UNUSED_MAPPING)
    assert "'EO'" in unused.message
    assert sum(result.counts[s]["objects_per_class"]["Platelets"] for s in ("train", "test")) == 14
    assert report.of_kind(audit_module.SUSPECT_CLASS) == []


def test_bad_class_map_names_the_line(tmp_path):
    bad = tmp_path / "map.txt"
    bad.write_text("Platlets: Platelets\njust a name\n")
    with pytest.raises(ValueError, match=r"map.txt:2"):
        read_class_map(bad)


def test_suspect_rules_on_counts():
    from collections import Counter

    counts = Counter({"sNEU": 500, "bNEU": 200, "LYM": 300, "lym": 2, "Lymph": 40, "BA": 30, "MYE": 90})
    paper = ("sNEU", "bNEU", "LYM", "BA", "MYE")
    assert {s.name: s.similar_to for s in suspect_class_names(counts, known=paper)} == {"lym": "LYM"}
    counts.update({"Myelo": 3, "Basophil": 80, "Basophils": 5})
    flagged = {s.name: (s.similar_to, s.reason) for s in suspect_class_names(counts, known=paper)}
    assert flagged["Basophils"][0] == "Basophil"           # plural, one letter away
    assert flagged["Myelo"] == (None, "is rare (3 objects, the largest class has 500)")
    assert "sNEU" not in flagged and "bNEU" not in flagged


# ----------------------------------------------------------------------------- empty sets

def test_empty_annotations_folder_is_an_error(tmp_path):
    (tmp_path / "voc" / "Annotations").mkdir(parents=True)
    with pytest.raises(EmptyDatasetError, match="no XML files"):
        audit_dataset(tmp_path / "voc", labelmap=LabelMap.from_names(["cat"]))


def test_no_usable_image_is_an_error_that_says_why(tmp_path):
    write_xml(tmp_path / "voc", "a", [("cat", 2, 2, 30, 30)])
    write_xml(tmp_path / "voc", "b", [("cat", 2, 2, 30, 30)])
    with pytest.raises(EmptyDatasetError, match=r"no usable image \(2 read; skipped: missing image x2\)"):
        audit_dataset(tmp_path / "voc")


def test_a_split_without_objects_is_an_error(tmp_path):
    root = _voc(tmp_path / "voc", 8, image_sets=True)
    for i in range(5, 8):
        write_xml(root, f"im{i:02d}", [])
    with pytest.raises(EmptyDatasetError, match="test split .* no object"):
        audit_dataset(root)


# ----------------------------------------------------------------------------- CLI (subprocess, relative paths)

def test_cli_check_exit_status_and_report_files(tmp_path):
    root = _typo_voc(tmp_path / "data" / "voc")
    (root / "JPEGImages" / "im11.jpg").write_bytes((root / "JPEGImages" / "im00.jpg").read_bytes())
    work = tmp_path / "work"
    work.mkdir()
    done = _cli("check", "--voc", "../data/voc", "--out", "audit", cwd=work)
    assert done.returncode == 0, done.stderr
    assert "suspect class: 'Platlets' (1 objects) is 1 letter away from 'Platelets'" in done.stdout
    assert "im11.jpg: duplicate image: byte-identical with im00.jpg" in done.stdout
    record = json.loads((work / "audit" / "dataset.json").read_text())
    assert record["twins"] == [{"first": "im00", "second": "im11", "kind": "exact", "distance": 0}]
    assert {s["name"] for s in record["suspect_classes"]} == {"Platlets", "platelets", "R", "dog"}
    assert record["statistics"]["objects_per_class"]["train"]["Platelets"] >= 1
    pngs = sorted(p.name for p in (work / "audit").glob("*.png"))
    assert pngs == ["dataset_aspect_ratio.png", "dataset_box_sizes.png", "dataset_boxes_per_image.png",
                    "dataset_image_sizes.png", "dataset_objects_per_class.png"]
    strict = _cli("check", "--voc", "../data/voc", "--out", "audit2", "--strict", cwd=work)
    assert strict.returncode == 0, strict.stdout           # nothing skipped, no leak: warnings only

    (tmp_path / "empty" / "Annotations").mkdir(parents=True)
    empty = _cli("check", "--voc", "../empty", "--out", "audit3", cwd=work)
    assert empty.returncode == 1 and "no XML files: the dataset is empty" in empty.stderr
    usage = _cli("check", "--voc", "../data/voc", "--class-map", "nothere.txt", cwd=work)
    assert usage.returncode == 2 and "nothere.txt" in usage.stderr


def test_cli_convert_refuses_leakage_then_dedupes(tmp_path):
    root = _voc(tmp_path / "data" / "voc", 10, image_sets=True)
    (root / "JPEGImages" / "im09.jpg").write_bytes((root / "JPEGImages" / "im04.jpg").read_bytes())
    work = tmp_path / "work"
    work.mkdir()
    refused = _cli("convert", "--voc", "../data/voc", "--out", "out", "--quiet", cwd=work)
    assert refused.returncode == 1 and "test im09 = train im04 (exact)" in refused.stderr
    assert "--dedupe" in refused.stderr and not (work / "out").exists()
    done = _cli("convert", "--voc", "../data/voc", "--out", "out", "--quiet", "--dedupe", cwd=work)
    assert done.returncode == 0, done.stderr
    assert "test twin dropped x1" in done.stdout
    assert (work / "out" / "splits" / "test.txt").read_text().split() == ["im07", "im08"]
    audit_record = json.loads((work / "out" / "audit" / "dataset.json").read_text())
    assert audit_record["dropped_test_twins"] == ["im09"] and audit_record["leaks"] == []


# ----------------------------------------------------------------------------- BCCD

def test_bccd_audits_clean_except_its_known_findings(bccd_root, tmp_path):
    audit = audit_dataset(bccd_root, tmp_path / "report", workers=2)
    report = audit.report
    assert report.images_kept == 364 and len(audit.facts) == 364
    assert report.by_kind() == {"zero-area box": 2, "duplicate image": 1}
    assert [(t.first, t.second, t.kind) for t in audit.twins] == [("BloodImage_00037", "BloodImage_00038", "near")]
    assert audit.leaks == [] and audit.suspects == []              # both twins are in trainval
    assert (len(audit.split.train), len(audit.split.test)) == (292, 72) and audit.own_split
    stats = json.loads((tmp_path / "report" / "dataset.json").read_text())["statistics"]
    assert stats["objects_per_class"]["test"] == {"Platelets": 69, "RBC": 805, "WBC": 71}
    assert stats["image_sizes"] == {"640x480": 364}


# ----------------------------------------------------------------------------- input size advice

def test_check_suggests_the_smallest_input_size_that_keeps_the_smallest_class_at_16_px(tmp_path):
    """64x48 fields with a 32x24 'cell' and a 4x3 'dot': the dot's side is 1/16 of the image, 16 px at 256."""
    root = tmp_path / "voc"
    for i in range(10):
        make_sample(root, f"im{i:02d}", [("cell", 1, 1, 32, 24), ("dot", 40, 30, 43, 32)])
    main = root / "ImageSets" / "Main"
    main.mkdir(parents=True)
    (main / "trainval.txt").write_text("".join(f"im{i:02d}\n" for i in range(7)))
    (main / "test.txt").write_text("".join(f"im{i:02d}\n" for i in range(7, 10)))
    work = tmp_path / "elsewhere"
    work.mkdir()
    done = _cli("check", "--voc", "../voc", "--out", "audit", cwd=work)
    assert done.returncode == 0, done.stderr
    assert ("input size: smallest objects dot (median side 0.062 of the image: 10 px at 160, 20 px at 320, "
            "26 px at 416, 38 px at 608); --size 256 keeps them at >= 16 px") in done.stdout
    record = json.loads((work / "audit" / "dataset.json").read_text())["input_size"]
    assert record["suggested_size"] == 256 and record["smallest_class"] == "dot" and record["reached_min_object_px"]
    assert record["median_side_fraction"] == {"cell": 0.5, "dot": 0.0625}
    assert 'id="input-size"' in (work / "audit" / "dataset_report.html").read_text()


def test_input_size_advice_says_when_no_size_is_enough():
    from harness.data.annotations import Box, ImageAnnotation
    from harness.data.input_size import suggest_input_size

    field = ImageAnnotation("big", Path("big.jpg"), 6400, 4800, [Box("speck", 0, 0, 19, 19)])
    advice = suggest_input_size([field])
    assert (advice.size, advice.reached) == (608, False)
    assert "even --size 608 leaves them under 16 px" in advice.line()
    assert suggest_input_size([ImageAnnotation("empty", Path("e.jpg"), 64, 48, [])]) is None

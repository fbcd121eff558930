"""VOC reading and validation: real BCCD counts and each defect kind on small crafted datasets."""
from __future__ import annotations

import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from harness.data import voc
from harness.data.report import FIXED, SKIP_IMAGE, SKIP_OBJECT, WARNING
from harness.data.splits import dataset_split, paper_split
from harness.data.voc import load_voc
from harness.labels import LabelMap


# ----------------------------------------------------------------------------- helpers

def distinct_picture(key: str, width: int = 64, height: int = 48) -> np.ndarray:
    """A smear-coloured picture of coarse random blocks seeded by ``key``: every id gets its own image,
    far apart in perceptual hash, so small test sets hold no accidental duplicates."""
    rng = np.random.default_rng(zlib.crc32(key.encode()))
    blocks = rng.integers(60, 230, size=(6, 8, 3), dtype=np.uint8)
    image = cv2.resize(blocks, (width, height), interpolation=cv2.INTER_NEAREST)
    cv2.rectangle(image, (5, 5), (20, 20), (30, 30, 160), -1)
    return image


def write_image(root: Path, image_id: str, width: int = 64, height: int = 48, suffix: str = ".jpg") -> Path:
    path = root / "JPEGImages" / f"{image_id}{suffix}"
    path.parent.mkdir(parents=True, exist_ok=True)
    image = distinct_picture(image_id, width, height)
    assert cv2.imwrite(str(path), image)
    return path


def write_xml(root: Path, image_id: str, objects: list[tuple], width: int | None = 64,
              height: int | None = 48) -> Path:
    """objects: (name, xmin, ymin, xmax, ymax[, difficult])."""
    size = "" if width is None else f"<size><width>{width}</width><height>{height}</height><depth>3</depth></size>"
    objs = "".join(
        f"<object><name>{o[0]}</name><difficult>{o[5] if len(o) > 5 else 0}</difficult>"
        f"<bndbox><xmin>{o[1]}</xmin><ymin>{o[2]}</ymin><xmax>{o[3]}</xmax><ymax>{o[4]}</ymax></bndbox></object>"
        for o in objects)
    path = root / "Annotations" / f"{image_id}.xml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"<annotation><filename>{image_id}.jpg</filename>{size}{objs}</annotation>")
    return path


def make_sample(root: Path, image_id: str, objects: list[tuple], **size) -> None:
    write_image(root, image_id)
    write_xml(root, image_id, objects, **size)


LABELS = LabelMap.from_names(["cat", "dog"])


# ----------------------------------------------------------------------------- real BCCD

def test_bccd_counts_and_the_two_zero_area_boxes(bccd_root):
    dataset = load_voc(bccd_root)
    report = dataset.report
    assert len(dataset.images) == 364 and report.images_kept == 364 and report.images_skipped == 0
    assert dataset.labelmap.names == ("Platelets", "RBC", "WBC")
    assert report.objects_total == 4888
    assert report.objects_kept == 4886 and report.objects_skipped == 2
    assert dict(report.objects_per_class) == {"RBC": 4153, "WBC": 372, "Platelets": 361}
    zero = report.of_kind(voc.ZERO_AREA)
    assert sorted((Path(p.file).name, p.object_index) for p in zero) == [
        ("BloodImage_00338.xml", 12), ("BloodImage_00343.xml", 3)]
    assert all(p.action == SKIP_OBJECT and p.class_name == "RBC" for p in zero)
    summary = report.summary()
    assert "BloodImage_00338.xml object #12 (RBC): zero-area box" in summary
    assert "BloodImage_00343.xml" in summary and "2 skipped" in summary


def test_bccd_image_set_by_name_and_path(bccd_root):
    test = load_voc(bccd_root, "test")
    assert len(test.images) == 72 and test.images[0].image_id == "BloodImage_00007"
    by_path = load_voc(bccd_root, bccd_root / "ImageSets" / "Main" / "trainval.txt")
    assert len(by_path.images) == 292
    assert not set(test.ids) & set(by_path.ids)
    assert load_voc(bccd_root, "val.txt").ids == load_voc(bccd_root, "val").ids


def test_bccd_boxes_are_vocs_one_based_inclusive(bccd_root):
    first = load_voc(bccd_root, labelmap=LabelMap.from_names(["RBC", "WBC", "Platelets"])).images[0]
    assert (first.width, first.height) == (640, 480)
    wbc = [b for b in first.objects if b.name == "WBC"][0]
    assert (wbc.xmin, wbc.ymin, wbc.xmax, wbc.ymax) == (260, 177, 491, 376)
    assert min(b.xmin for b in first.objects) >= 1 and max(b.xmax for b in first.objects) <= 640


def test_bccd_split_is_its_own_trainval_and_test(bccd_root):
    split = dataset_split(bccd_root)
    assert split is not None and len(split.train) == 292 and len(split.test) == 72
    assert "trainval" in split.source


# ----------------------------------------------------------------------------- crafted defects

def test_malformed_xml_skips_the_image_and_names_the_file(tmp_path):
    make_sample(tmp_path, "good", [("cat", 2, 2, 30, 30)])
    write_image(tmp_path, "broken")
    (tmp_path / "Annotations" / "broken.xml").write_text("<annotation><object><name>cat</name></annotation")
    dataset = load_voc(tmp_path, labelmap=LABELS)
    assert dataset.ids == ["good"]
    (problem,) = dataset.report.of_kind(voc.MALFORMED_XML)
    assert problem.file.endswith("broken.xml") and problem.action == SKIP_IMAGE
    assert dataset.report.images_skipped == 1


def test_missing_image_is_reported(tmp_path):
    write_xml(tmp_path, "ghost", [("cat", 2, 2, 30, 30)])
    make_sample(tmp_path, "good", [("cat", 2, 2, 30, 30)])
    dataset = load_voc(tmp_path, labelmap=LABELS)
    assert dataset.ids == ["good"]
    (problem,) = dataset.report.of_kind(voc.MISSING_IMAGE)
    assert "ghost.xml" in problem.file and "ghost.jpg" in problem.message


def test_corrupt_image_header_is_reported(tmp_path):
    write_xml(tmp_path, "bad", [("cat", 2, 2, 30, 30)])
    (tmp_path / "JPEGImages").mkdir(parents=True, exist_ok=True)
    (tmp_path / "JPEGImages" / "bad.jpg").write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF")   # truncated
    dataset = load_voc(tmp_path, labelmap=LABELS)
    assert dataset.images == []
    assert dataset.report.of_kind(voc.UNREADABLE_IMAGE)[0].action == SKIP_IMAGE


def test_size_mismatch_uses_the_real_image_size_and_clips_against_it(tmp_path):
    write_image(tmp_path, "a", width=64, height=48)
    write_xml(tmp_path, "a", [("cat", 10, 10, 100, 40)], width=128, height=96)
    dataset = load_voc(tmp_path, labelmap=LABELS)
    (image,) = dataset.images
    assert (image.width, image.height) == (64, 48)
    (mismatch,) = dataset.report.of_kind(voc.SIZE_MISMATCH)
    assert mismatch.action == FIXED and "128x96" in mismatch.message and "64x48" in mismatch.message
    assert image.objects[0].xmax == 64
    assert dataset.report.of_kind(voc.CLIPPED)[0].object_index == 0


def test_missing_size_is_fixed_from_the_image(tmp_path):
    make_sample(tmp_path, "a", [("cat", 2, 2, 30, 30)], width=None)
    dataset = load_voc(tmp_path, labelmap=LABELS)
    assert dataset.images[0].width == 64
    assert dataset.report.of_kind(voc.MISSING_SIZE)[0].action == FIXED


@pytest.mark.parametrize("coords,kind", [
    ((10, 10, 10, 30), voc.ZERO_AREA),
    ((10, 10, 30, 10), voc.ZERO_AREA),
    ((30, 10, 10, 30), voc.INVERTED),
    ((70, 10, 90, 30), voc.OUTSIDE),
    ((-20, -20, 0, 0), voc.OUTSIDE),
])
def test_bad_boxes_are_skipped_with_file_and_object(tmp_path, coords, kind):
    make_sample(tmp_path, "a", [("cat", 2, 2, 30, 30), ("dog", *coords)])
    dataset = load_voc(tmp_path, labelmap=LABELS)
    assert [b.name for b in dataset.images[0].objects] == ["cat"]
    (problem,) = dataset.report.of_kind(kind)
    assert problem.object_index == 1 and problem.class_name == "dog" and problem.file.endswith("a.xml")
    assert dataset.report.objects_skipped == 1 and dataset.report.objects_kept == 1


def test_partly_outside_box_is_clipped_and_counted_as_fixed(tmp_path):
    make_sample(tmp_path, "a", [("cat", 0, -3, 70, 30)])
    dataset = load_voc(tmp_path, labelmap=LABELS)
    box = dataset.images[0].objects[0]
    assert (box.xmin, box.ymin, box.xmax, box.ymax) == (1, 1, 64, 30)
    assert dataset.report.objects_fixed == 1
    assert "clipped to (1,1,64,30)" in dataset.report.of_kind(voc.CLIPPED)[0].message


def test_unknown_class_and_missing_coordinates(tmp_path):
    make_sample(tmp_path, "a", [("cat", 2, 2, 30, 30), ("horse", 2, 2, 30, 30), ("dog", "x", 2, 30, 30)])
    dataset = load_voc(tmp_path, labelmap=LABELS)
    (unknown,) = dataset.report.of_kind(voc.UNKNOWN_CLASS)
    assert unknown.class_name == "horse" and unknown.object_index == 1 and "'horse'" in unknown.message
    (bad,) = dataset.report.of_kind(voc.BAD_BNDBOX)
    assert bad.object_index == 2
    assert len(dataset.images[0].objects) == 1


def test_empty_annotation_is_kept_with_a_warning(tmp_path):
    make_sample(tmp_path, "empty", [])
    make_sample(tmp_path, "all_bad", [("cat", 5, 5, 5, 5)])
    make_sample(tmp_path, "good", [("cat", 2, 2, 30, 30)])
    dataset = load_voc(tmp_path, labelmap=LABELS)
    assert dataset.ids == ["all_bad", "empty", "good"]
    assert dataset.report.of_kind(voc.EMPTY_ANNOTATION)[0].action == WARNING
    assert dataset.report.of_kind(voc.NO_VALID_OBJECTS)[0].file.endswith("all_bad.xml")


def test_split_file_with_missing_and_duplicate_ids(tmp_path):
    make_sample(tmp_path, "a", [("cat", 2, 2, 30, 30)])
    ids = tmp_path / "ImageSets" / "Main" / "test.txt"
    ids.parent.mkdir(parents=True)
    ids.write_text("a\na\nnothere\n")
    dataset = load_voc(tmp_path, "test", labelmap=LABELS)
    assert dataset.ids == ["a"]
    assert dataset.report.of_kind(voc.DUPLICATE_ID)[0].action == WARNING
    assert dataset.report.of_kind(voc.MISSING_ANNOTATION)[0].file.endswith("nothere.xml")
    with pytest.raises(FileNotFoundError, match="train"):
        load_voc(tmp_path, "train")


def test_not_a_voc_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="Annotations"):
        load_voc(tmp_path)


def test_label_map_inference(tmp_path):
    make_sample(tmp_path, "a", [("dog", 2, 2, 30, 30), ("cat", 3, 3, 20, 20)])
    assert load_voc(tmp_path).labelmap.names == ("cat", "dog")
    make_sample(tmp_path, "b", [("EO", 2, 2, 30, 30)])
    (tmp_path / "Annotations" / "a.xml").unlink()
    assert load_voc(tmp_path).labelmap == LabelMap.paper()


def test_png_images_are_found(tmp_path):
    write_image(tmp_path, "p", suffix=".png")
    write_xml(tmp_path, "p", [("cat", 2, 2, 30, 30)])
    dataset = load_voc(tmp_path, labelmap=LABELS)
    assert dataset.images[0].image_path.suffix == ".png" and dataset.images[0].width == 64


# ----------------------------------------------------------------------------- paper split rule

def test_paper_split_is_seeded_reproducible_and_seven_percent():
    ids = [f"img{i:04d}" for i in range(1000)]
    a, b = paper_split(ids, seed=3), paper_split(list(reversed(ids)), seed=3)
    assert a == b and len(a.test) == 70 and len(a.train) == 930
    assert not set(a.test) & set(a.train)
    assert paper_split(ids, seed=4).test != a.test
    # adding images does not move the old ones between train and test much
    grown = paper_split(ids + [f"new{i}" for i in range(10)], seed=3)
    assert len(set(grown.test) & set(a.test)) >= 60


def test_paper_split_small_sets_keep_both_sides():
    assert len(paper_split(["a", "b"], 0).test) == 1
    assert paper_split(["a"], 0).test == []

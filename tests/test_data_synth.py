"""Synthetic smears: determinism, VOC validity, every label present, and classes that differ visibly."""
from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from harness.cli import main as harness_main
from harness.data.convert import convert_dataset
from harness.data.synth import HEIGHT, WIDTH, synthesize
from harness.data.voc import load_voc
from harness.labels import LabelMap


def _digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def synth_set(tmp_path_factory) -> Path:
    return synthesize(tmp_path_factory.mktemp("synth") / "smears", 60, seed=7, classification_images=45,
                      progress=False)


def test_same_seed_same_bytes_other_seed_other_images(tmp_path):
    a = _digest(synthesize(tmp_path / "a", 5, seed=1, classification_images=3, progress=False))
    b = _digest(synthesize(tmp_path / "b", 5, seed=1, classification_images=3, progress=False))
    c = _digest(synthesize(tmp_path / "c", 5, seed=2, classification_images=3, progress=False))
    assert a == b
    images = [k for k in a if k.endswith(".jpg")]
    assert len(images) == 8 and all(a[k] != c[k] for k in images)


def test_an_image_does_not_depend_on_how_many_are_made(tmp_path):
    small = _digest(synthesize(tmp_path / "s", 2, seed=3, progress=False))
    large = _digest(synthesize(tmp_path / "l", 4, seed=3, progress=False))
    for name in ("JPEGImages/smear_000000.jpg", "Annotations/smear_000001.xml"):
        assert small[name] == large[name]


def test_output_is_a_clean_voc_dataset_with_every_label(synth_set):
    dataset = load_voc(synth_set)
    assert dataset.labelmap == LabelMap.paper()
    assert dataset.report.problems == [] and len(dataset.images) == 60
    assert all((im.width, im.height) == (WIDTH, HEIGHT) for im in dataset.images)
    assert set(dataset.report.objects_per_class) == set(LabelMap.paper().names)
    per_image = [len(im.objects) for im in dataset.images]
    assert min(per_image) >= 1 and max(per_image) >= 6          # some dense scenes
    truncated = [b for im in dataset.images for b in im.objects if b.truncated]
    assert truncated and all(b.xmin == 1 or b.ymin == 1 or b.xmax == WIDTH or b.ymax == HEIGHT
                             for b in truncated)               # cells cut by the border
    image = cv2.imread(str(dataset.images[0].image_path))
    assert image.shape == (HEIGHT, WIDTH, 3)


def test_split_follows_the_paper_rule(synth_set):
    train = (synth_set / "ImageSets" / "Main" / "train.txt").read_text().split()
    test = (synth_set / "ImageSets" / "Main" / "test.txt").read_text().split()
    assert len(test) == 4 and len(train) == 56 and not set(train) & set(test)


def test_classification_set_has_one_object_per_image_and_all_labels(synth_set):
    dataset = load_voc(synth_set / "classification")
    assert len(dataset.images) == 45 and dataset.report.problems == []
    assert all(len(im.objects) == 1 for im in dataset.images)
    assert Counter(im.objects[0].name for im in dataset.images) == Counter({n: 3 for n in LabelMap.paper().names})


def _crop_features(image: np.ndarray, box) -> np.ndarray:
    """Size plus mean and dark-quantile colour of the box: crude, but enough if classes differ."""
    crop = image[int(box.ymin) - 1:int(box.ymax), int(box.xmin) - 1:int(box.xmax)].reshape(-1, 3).astype(float)
    dark = crop[crop.sum(1) <= np.quantile(crop.sum(1), 0.2)]
    size = np.sqrt((box.xmax - box.xmin) * (box.ymax - box.ymin))
    return np.concatenate([[size], crop.mean(0), dark.mean(0), crop.std(0)])


def test_classes_are_visibly_different(tmp_path):
    """A nearest-centroid classifier on size/colour features separates most classes: learnable."""
    root = synthesize(tmp_path / "c", 1, seed=11, classification_images=15 * 9, progress=False)
    dataset = load_voc(root / "classification")
    feats, names = [], []
    for im in dataset.images:
        box = im.objects[0]
        feats.append(_crop_features(cv2.imread(str(im.image_path)), box))
        names.append(box.name)
    feats = np.array(feats)
    feats = (feats - feats.mean(0)) / (feats.std(0) + 1e-9)
    names = np.array(names)
    rep = np.arange(len(names)) // 15          # each class once per block of 15 images
    train, test = rep % 3 != 0, rep % 3 == 0
    classes = sorted(set(names))
    centroids = np.array([feats[train & (names == c)].mean(0) for c in classes])
    predicted = np.array(classes)[np.argmin(((feats[test, None] - centroids[None]) ** 2).sum(-1), 1)]
    accuracy = (predicted == names[test]).mean()
    assert accuracy > 0.6, f"nearest-centroid accuracy only {accuracy:.2f}"
    print(f"nearest-centroid accuracy {accuracy:.2f}")


def test_synthetic_set_converts(tmp_path):
    root = synthesize(tmp_path / "s", 15, seed=0, progress=False)
    result = convert_dataset(root, tmp_path / "out", workers=1, progress=False)
    assert len(result.train_ids) + len(result.test_ids) == 15
    assert result.labelmap == LabelMap.paper()
    assert [p.kind for p in result.report.problems] == ["small test set"]     # 1 test image < Darknet's 4


def test_same_parameters_are_not_regenerated_other_parameters_rebuild(tmp_path):
    root = synthesize(tmp_path / "s", 4, seed=0, progress=False)
    first = root / "JPEGImages" / "smear_000000.jpg"
    stamp = first.stat().st_mtime_ns
    synthesize(tmp_path / "s", 4, seed=0, progress=False)
    assert first.stat().st_mtime_ns == stamp                    # untouched: conversions stay valid
    synthesize(tmp_path / "s", 2, seed=0, progress=False)
    assert sorted(p.name for p in (root / "JPEGImages").iterdir()) == ["smear_000000.jpg", "smear_000001.jpg"]
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="notes.txt"):
        synthesize(tmp_path / "other", 2, progress=False)


def test_cli_synth(tmp_path):
    result = CliRunner().invoke(harness_main, ["data", "synth", "--out", str(tmp_path / "s"), "--images", "3",
                                               "--seed", "4", "--classification-images", "2", "--quiet"])
    assert result.exit_code == 0, result.output
    assert len(list((tmp_path / "s" / "JPEGImages").glob("*.jpg"))) == 3
    assert len(list((tmp_path / "s" / "classification" / "Annotations").glob("*.xml"))) == 2

"""Caffe-SSD's side of the converted dataset: AnnotatedDatum records, labelmap, name/size list.

Records match what SSD's ``convert_annoset --anno_type=detection --encoded --encode_type=jpg``
writes: ``Datum`` holds the original JPEG bytes (``encoded=true``, label -1, channels/height/
width of the decoded image), ``type=BBOX``, one ``AnnotationGroup`` per class in order of first
appearance with ``group_label`` = class index + 1 (0 is background), ``instance_id`` counting
0, 1, … inside each group, and each box divided by the image width/height exactly as
``convert_annoset`` does (VOC's 1-based pixel values, no -1 shift).  SSD's DetectionOutput
multiplies by width/height again, so its VOC-format output is back in the same 1-based
coordinates the ground truth uses.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lmdb

from harness.data import caffe_proto
from harness.data.annotations import Box, ImageAnnotation
from harness.labels import LabelMap

BACKGROUND_NAME = "none_of_the_above"


def record_key(index: int, image_path: str) -> bytes:
    """``%08d_<image path>`` as convert_annoset forms its keys (index = line in the list)."""
    return f"{index:08d}_{image_path}".encode()


def annotated_datum(image: ImageAnnotation, jpeg: bytes, channels: int, labelmap: LabelMap):
    record = caffe_proto.AnnotatedDatum()
    datum = record.datum
    datum.channels, datum.height, datum.width = channels, image.height, image.width
    datum.data = jpeg
    datum.label = -1
    datum.encoded = True
    record.type = caffe_proto.BBOX
    groups: dict[int, Any] = {}
    for box in image.objects:
        label = labelmap.index(box.name) + 1
        if label not in groups:
            groups[label] = record.annotation_group.add(group_label=label)
        group = groups[label]
        annotation = group.annotation.add(instance_id=len(group.annotation))
        bbox = annotation.bbox
        bbox.xmin, bbox.ymin = box.xmin / image.width, box.ymin / image.height
        bbox.xmax, bbox.ymax = box.xmax / image.width, box.ymax / image.height
        bbox.difficult = box.difficult
    return record


def datum_boxes(record, labelmap: LabelMap) -> list[Box]:
    """VOC 1-based boxes back from a record (inverse of ``annotated_datum``), in record order."""
    width, height = record.datum.width, record.datum.height
    boxes = []
    for group in record.annotation_group:
        name = labelmap.names[group.group_label - 1]
        for annotation in group.annotation:
            b = annotation.bbox
            boxes.append(
                Box(name, b.xmin * width, b.ymin * height, b.xmax * width, b.ymax * height, difficult=b.difficult)
            )
    return boxes


def labelmap_prototxt(labelmap: LabelMap) -> str:
    """SSD ``labelmap.prototxt``: background as label 0, then the classes as 1..C."""
    items = [(BACKGROUND_NAME, 0, "background")] + [(n, i + 1, n) for i, n in enumerate(labelmap.names)]
    return "".join(f'item {{\n  name: "{n}"\n  label: {lbl}\n  display_name: "{d}"\n}}\n' for n, lbl, d in items)


def read_records(lmdb_dir: str | Path) -> Iterator[tuple[str, object]]:
    """(key, AnnotatedDatum) in key order — the order Caffe's data layer reads them."""
    env = lmdb.open(str(lmdb_dir), readonly=True, lock=False, subdir=True)
    try:
        with env.begin() as txn:
            for key, value in txn.cursor():
                yield key.decode(), caffe_proto.AnnotatedDatum.FromString(value)  # type: ignore[attr-defined]
    finally:
        env.close()


def key_image_id(key: str) -> str:
    """The image id inside a record key ``%08d_<path>/<id>.jpg``."""
    return Path(key.split("_", 1)[1]).stem

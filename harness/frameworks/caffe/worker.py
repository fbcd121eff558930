"""The child side of pycaffe detection and timing: ``python -m harness.frameworks.caffe.worker
worker JOB.json`` (started by :mod:`harness.frameworks.caffe.detect`) and ``… inspect``."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from harness.frameworks.caffe.detect import detection_rows, read_image, ssd_blob
from harness.frameworks.caffe.install import inspect_caffe


def _worker_main(job_path: str) -> int:
    job = json.loads(Path(job_path).read_text())
    import caffe

    if job.get("gpu") is None:
        caffe.set_mode_cpu()
    else:
        caffe.set_device(int(job["gpu"]))
        caffe.set_mode_gpu()
    net = caffe.Net(job["deploy"], job["weights"], caffe.TEST)
    result = _worker_detect(net, job) if job["op"] == "detect" else _worker_time(net, job)
    Path(job["result"]).write_text(json.dumps(result))
    return 0


def _net_input(net) -> tuple[str, tuple[int, int]]:
    name = net.inputs[0]
    shape = net.blobs[name].data.shape
    return name, (int(shape[2]), int(shape[3]))


def _worker_detect(net, job: dict) -> dict:
    name, size = _net_input(net)
    batch = max(1, int(job.get("batch", 1)))
    records = {}
    images = job["images"]
    for start in range(0, len(images), batch):
        chunk = images[start : start + batch]
        decoded = [read_image(Path(path)) for _, path in chunk]
        blob = ssd_blob(decoded, size)
        if net.blobs[name].data.shape != blob.shape:
            net.blobs[name].reshape(*blob.shape)
            net.reshape()
        net.blobs[name].data[...] = blob
        rows = detection_rows(net.forward()[net.outputs[0]])
        for item, ((image_id, _), image) in enumerate(zip(chunk, decoded)):
            records[image_id] = {
                "width": image.shape[1],
                "height": image.shape[0],
                "rows": [r for r in rows if int(r[0]) == item],
            }
    return {"detections": records}


def _worker_time(net, job: dict) -> dict:
    name, size = _net_input(net)
    decoded = [read_image(Path(path)) for _, path in job["images"]]
    net.blobs[name].reshape(1, 3, *size)
    net.reshape()
    total, forward = [], []
    for index in range(job["warmup"] + job["n"]):
        image = decoded[index % len(decoded)]
        started = time.perf_counter()
        net.blobs[name].data[...] = ssd_blob(image, size)
        before_forward = time.perf_counter()
        net.forward()
        ended = time.perf_counter()
        if index >= job["warmup"]:
            total.append((ended - started) * 1000.0)
            forward.append((ended - before_forward) * 1000.0)
    return {"milliseconds": total, "forward_milliseconds": forward}


def _main(argv: list[str]) -> int:
    """``python -m harness.frameworks.caffe.worker inspect`` | ``worker JOB.json`` (internal)."""
    if len(argv) == 2 and argv[0] == "worker":
        return _worker_main(argv[1])
    if argv == ["inspect"]:
        status = inspect_caffe()
        print(json.dumps(status.__dict__, indent=2, default=str))
        return 0 if status.usable else 1
    print("usage: python -m harness.frameworks.caffe.worker inspect", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))

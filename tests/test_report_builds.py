"""The report names the Caffe and Darknet builds behind the numbers and marks SSD runs without augmentation."""
from __future__ import annotations

from pathlib import Path

from harness.frameworks.caffe.install import build_identity
from harness.render.ssd import render_ssd
from harness.report import build_report, collect_provenance, write_provenance
from harness.report.builder import framework_identity
from test_report_factory import make_run

SSD = "ssd300_smin0.2"
BROCOLLI = {"name": "caffe", "usable": True, "version": "1.0.0", "location": "/cache/caffe-brocolli-9.0.2",
            "device": "CPU", "details": {"dialect": "brocolli", **{
                "fork": "brocolli-caffe 9.0.2 (PyPI sdist)", "commit": None, "build": "CPU (open BLAS)",
                "ssd_augmentation": False}}}
WEILIU89 = {"name": "caffe", "usable": True, "version": "1.0.0-rc3", "location": "/opt/leukonet-harness/caffe-gpu",
            "device": "GPU", "details": {"dialect": "weiliu89", "fork": "weiliu89/caffe, ssd branch",
                                         "commit": "4817bf8b4200b35ada8ed0dc378dceaf38c539e4",
                                         "source_sha256": "069adc248bf5a678c935be12a13b43a30a1ebe7906654079c2a6aef363ad1cbc",
                                         "build": "GPU (CUDA, no cuDNN)", "ssd_augmentation": True}}
DARKNET = {"name": "darknet", "usable": True, "version": "0.0.0+git20180914.61c9d02e-2", "location": "/usr/bin/darknet",
           "device": "CPU", "details": {"upstream": "pjreddie/darknet", "commit": "61c9d02e",
                                        "backend": "darknet-cpu-openmp"}}


def _report(run_dir: Path, caffe: dict) -> str:
    write_provenance(run_dir, collect_provenance(run_dir, frameworks=[caffe, DARKNET]))
    return build_report(run_dir)["md"].read_text()


def test_run_trained_without_augmentation_is_marked(tmp_path):
    run_dir = make_run(tmp_path)["run_dir"]
    render_ssd(tmp_path / "b", dialect="brocolli")["train"].replace(run_dir / "models" / SSD / "rendered" / "train.prototxt")
    md = _report(run_dir, BROCOLLI)
    assert "TRAINED WITHOUT THE PAPER'S SSD AUGMENTATION" in md
    assert f"{SSD} (no distort_param, no expand_param)" in md
    assert f"| {SSD} † |" in md
    assert ("caffe: 1.0.0 at /cache/caffe-brocolli-9.0.2 on CPU; brocolli-caffe 9.0.2 (PyPI sdist), dialect brocolli, "
            "CPU (open BLAS), SSD augmentation OFF (no distort_param / expand_param)") in md
    assert "darknet: 0.0.0+git20180914.61c9d02e-2 at /usr/bin/darknet on CPU; pjreddie/darknet, commit 61c9d02e, " \
           "darknet-cpu-openmp" in md


def test_relative_rendered_path_in_summary_is_read_from_the_experiment_folder(tmp_path):
    """summary.json records paths relative to its folder: the † check must not read them from the cwd."""
    import json

    run_dir = make_run(tmp_path)["run_dir"]
    model = run_dir / "models" / SSD
    render_ssd(tmp_path / "b", dialect="brocolli")["train"].replace(model / "rendered" / "train.prototxt")
    summary = json.loads((model / "summary.json").read_text())
    summary["rendered"] = {"train": "rendered/train.prototxt"}
    (model / "summary.json").write_text(json.dumps(summary))
    assert f"| {SSD} † |" in _report(run_dir, BROCOLLI)


def test_run_with_the_papers_augmentation_is_not_marked(tmp_path):
    run_dir = make_run(tmp_path)["run_dir"]
    render_ssd(tmp_path / "w", dialect="weiliu89")["train"].replace(run_dir / "models" / SSD / "rendered" / "train.prototxt")
    md = _report(run_dir, WEILIU89)
    html = (run_dir / "report.html").read_text()
    assert "WITHOUT THE PAPER'S SSD AUGMENTATION" not in md and "augmentation-banner" not in html
    assert f"| {SSD} |" in md
    assert "weiliu89/caffe, ssd branch, commit 4817bf8b4200b35ada8ed0dc378dceaf38c539e4, source sha256 " \
           "069adc248bf5a678c935be12a13b43a30a1ebe7906654079c2a6aef363ad1cbc, dialect weiliu89, " \
           "GPU (CUDA, no cuDNN), SSD augmentation on (distort_param, expand_param)" in md


def test_html_marks_the_row_and_names_the_build(tmp_path):
    run_dir = make_run(tmp_path)["run_dir"]
    render_ssd(tmp_path / "b", dialect="brocolli")["train"].replace(run_dir / "models" / SSD / "rendered" / "train.prototxt")
    _report(run_dir, BROCOLLI)
    html = (run_dir / "report.html").read_text()
    assert 'id="augmentation-banner"' in html and 'data-mark="no-ssd-augmentation"' in html
    assert framework_identity(BROCOLLI) in html


def test_build_identity_reads_the_stamp_and_makefile_config(tmp_path):
    (tmp_path / "Makefile.config").write_text("USE_CUDNN := 0\nCUDA_DIR := /usr/local/cuda\nBLAS := open\n")
    (tmp_path / ".harness-build-complete").write_text(
        "fork=weiliu89\nversion=ssd\ncommit=4817bf8b4200b35ada8ed0dc378dceaf38c539e4\nsource_sha256=ab12\ngpu=1\n")
    identity = build_identity(tmp_path, "weiliu89")
    assert identity == {"fork": "weiliu89/caffe, ssd branch", "commit": "4817bf8b4200b35ada8ed0dc378dceaf38c539e4",
                        "source_sha256": "ab12", "build": "GPU (CUDA, no cuDNN)", "ssd_augmentation": True}
    (tmp_path / "Makefile.config").write_text("CPU_ONLY := 1\nBLAS := open\n")
    (tmp_path / ".harness-build-complete").unlink()
    assert build_identity(tmp_path, "brocolli") == {
        "fork": "brocolli-caffe (an SSD fork without distort/expand)", "commit": None, "source_sha256": None,
        "build": "CPU (open BLAS)", "ssd_augmentation": False}

"""Every registered framework backend (the real Caffe and Darknet ones, and the fake plug-in of
tests/support/fake_backend.py) against the :class:`harness.frameworks.FrameworkBackend` protocol:
the same members with the same signatures, and what each hook answers for a real experiment
config — inspect, options, device, identity strings, render, schedule_length, engines, logs,
native score. Training and detection themselves are run by test_engine_pipeline.py (real
frameworks) and test_fake_backend.py."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import pytest

from harness import paper
from harness.config import ExperimentConfig, ModelSpec
from harness.frameworks.configs import resolve_experiment
from harness.core.profiles import SMOKE
from harness.core.types import FrameworkStatus, Progress, TrainResult
from harness.data.convert import DATASET_FORMATS
from harness.device import Device
from harness.frameworks import (
    FRAMEWORKS,
    PLUGIN_VARIABLE,
    FrameworkBackend,
    backend_class,
    backend_for,
    backend_of_build,
    display_name,
    registered_frameworks,
)
from harness.labels import LabelMap
from tests.support.fake_backend import NAME as FAKE
from tests.support.fake_backend import REGISTRATION

NAMES = (*FRAMEWORKS, FAKE)
PROTOCOL_MEMBERS = sorted(
    name
    for name, value in vars(FrameworkBackend).items()
    if callable(value) or isinstance(value, staticmethod)
    if not name.startswith("_")
)
ATTRIBUTES = ("name", "engines", "docker_image", "dataset_formats")


@pytest.fixture(autouse=True)
def _fake_registered(monkeypatch) -> None:
    monkeypatch.setenv(PLUGIN_VARIABLE, REGISTRATION)


def _spec(framework: str) -> ModelSpec:
    """A paper row of ``framework``, or (a plug-in) a model of its own."""
    row = next((exp for exp in paper.EXPERIMENTS if exp.framework == framework), None)
    return ModelSpec.of(row) if row else ModelSpec(f"{framework}_64", framework, framework, 64)


def _config(framework: str, tmp_path: Path) -> ExperimentConfig:
    return resolve_experiment(_spec(framework), SMOKE, device=Device("cpu"), run_dir=tmp_path / "run", iterations=3)


def test_every_framework_of_the_registry_is_checked_here() -> None:
    assert set(registered_frameworks()) == set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_members_and_signatures_follow_the_protocol(name: str) -> None:
    cls = backend_class(name)
    for member in PROTOCOL_MEMBERS:
        assert hasattr(cls, member), f"{name}: no {member}"
        expected = inspect.signature(getattr(FrameworkBackend, member))
        found = inspect.signature(getattr(cls, member))
        assert list(found.parameters) == list(expected.parameters), f"{name}.{member}{found} is not {expected}"
        static = isinstance(inspect.getattr_static(FrameworkBackend, member), staticmethod)
        assert isinstance(inspect.getattr_static(cls, member), staticmethod) == static, f"{name}.{member}"
    assert cls.name == name
    assert isinstance(cls.engines, tuple) and cls.engines[0] == "native"
    assert isinstance(cls.docker_image, str) and cls.docker_image
    assert cls.dataset_formats and set(cls.dataset_formats) <= set(DATASET_FORMATS)


@pytest.mark.parametrize("name", NAMES)
def test_inspect_names_builds_the_backend_owns(name: str) -> None:
    cls = backend_class(name)
    found = cls.inspect()
    statuses = list(found) if isinstance(found, (list, tuple)) else [found]
    assert statuses and all(isinstance(s, FrameworkStatus) for s in statuses)
    for status in statuses:
        assert backend_of_build(status.name) is cls
        assert all(isinstance(part, str) for part in cls.describe_build(status.details))
    assert isinstance(cls.has_gpu_build({}), bool)


@pytest.mark.parametrize("name", NAMES)
def test_options_round_trip_and_name_the_build(name: str, tmp_path: Path) -> None:
    cls = backend_class(name)
    config = _config(name, tmp_path)
    options = config.framework_options
    assert json.loads(json.dumps(options)) == options
    assert ExperimentConfig.from_json(json.loads(json.dumps(config.to_json()))) == config
    assert isinstance(cls.upgrade_options({}), dict)
    on_gpu = cls.with_choices(options, Device("gpu", 0), {})
    assert isinstance(on_gpu, dict) and set(on_gpu) == set(options)
    statuses = cls.inspect()
    names = [s.name for s in (statuses if isinstance(statuses, (list, tuple)) else [statuses])]
    assert cls.build_name(options) in names
    assert cls.display_name(options).startswith(name)
    assert cls.init_weights_kind(config.spec.model) in (None, "ssd", "yolo")


@pytest.mark.parametrize("name", NAMES)
def test_render_schedule_engines_and_records(name: str, tmp_path: Path) -> None:
    config = _config(name, tmp_path)
    labelmap = LabelMap.from_names(["a", "b"])
    dataset = tmp_path / "dataset"
    backend = backend_for(config, labelmap, dataset)
    files = backend.render(["x1", "x2"])
    assert files and all(Path(path).is_file() for path in files.values())
    assert backend.schedule_length(files) == 3  # the resolved --iterations reached the native files
    with pytest.raises(ValueError, match="no 'bogus' detector"):
        backend.open_detector(files, tmp_path / "none.weights", "bogus", tmp_path / "work")
    summary = backend.summary_fields()
    assert json.loads(json.dumps(summary)) == summary
    assert display_name(name, summary) == backend.display_name(config.framework_options)
    assert isinstance(backend.paper_deviations(config.model_dir, files), list)
    log = tmp_path / "train.log"
    log.write_text("")
    assert backend.read_progress(log) == []
    result = TrainResult(log, tmp_path / "loss.csv", None, 0, 0.0)
    assert isinstance(backend.native_score(result), dict)
    rendered = backend_class(name).render_model(config.spec, tmp_path / "paper", labelmap=labelmap)
    assert rendered and all(Path(path).is_file() for path in rendered.values())


def test_progress_rows_are_progress_records(tmp_path: Path) -> None:
    from tests.support.fake_backend import FakeBackend

    log = tmp_path / "train.log"
    log.write_text("fake iteration 1: loss 1.0\nfake iteration 2: loss 0.5\n")
    rows = FakeBackend.read_progress(log)
    assert [r.iteration for r in rows] == [1, 2] and all(isinstance(r, Progress) for r in rows)

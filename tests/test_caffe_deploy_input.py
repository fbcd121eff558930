"""``deploy_input_size``: every way a Caffe deploy net declares its data blob, including the
``Input`` layer of the harness's own rendered SSD deploy nets (no Caffe needed)."""
from pathlib import Path

import pytest

from harness.frameworks.caffe.detect import deploy_input_size
from harness.render.ssd import render_ssd


@pytest.mark.parametrize("size", [300, 512])
def test_rendered_ssd_deploy_net_with_an_input_layer(tmp_path, size):
    deploy = render_ssd(tmp_path, size=size)["deploy"]
    assert 'type: "Input"' in deploy.read_text() and "input_param" in deploy.read_text()
    assert deploy_input_size(deploy) == (size, size)


@pytest.mark.parametrize("header", [
    'input: "data"\ninput_shape {\n  dim: 1\n  dim: 3\n  dim: 240\n  dim: 320\n}\n',
    'input: "data"\ninput_dim: 1\ninput_dim: 3\ninput_dim: 240\ninput_dim: 320\n',
    'layer {\n  name: "data"  type: "Input"  top: "data"\n'
    '  input_param {\n    shape { dim: 1 dim: 3 dim: 240 dim: 320 }\n  }\n}\n',
], ids=["input_shape", "input_dim", "input_layer"])
def test_each_declaration_gives_height_then_width(tmp_path, header):
    deploy = tmp_path / "deploy.prototxt"
    deploy.write_text('name: "net"\n# input_dim: 9 in a comment is not an input\n' + header
                      + 'layer { name: "conv" type: "Convolution" bottom: "data" top: "conv" }\n')
    assert deploy_input_size(deploy) == (240, 320)


def test_a_net_without_a_4d_input_is_refused(tmp_path):
    deploy = tmp_path / "deploy.prototxt"
    deploy.write_text('name: "net"\ninput: "data"\ninput_dim: 1\ninput_dim: 3\n')
    with pytest.raises(ValueError, match="4-d input"):
        deploy_input_size(Path(deploy))

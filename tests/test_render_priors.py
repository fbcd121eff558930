"""Golden default-box sizes and counts for the SSD renderer (docs/rendering.md states the rule)."""
import pytest

from harness.render.priors import ssd_num_priors, ssd_prior_sizes


def test_ssd300_smin02_matches_ssd_pascal():
    min_sizes, max_sizes = ssd_prior_sizes(300, 0.2, 0.9)
    assert min_sizes == pytest.approx([30, 60, 111, 162, 213, 264])
    assert max_sizes == pytest.approx([60, 111, 162, 213, 264, 315])


def test_ssd300_smin01_first_layer_gets_half_smin():
    min_sizes, max_sizes = ssd_prior_sizes(300, 0.1, 0.9)
    # step floor((90 - 10) / 4) = 20: ratios 10, 30, 50, 70, 90; conv4_3 gets 5 % and 10 %
    assert min_sizes == pytest.approx([15, 30, 90, 150, 210, 270])
    assert max_sizes == pytest.approx([30, 90, 150, 210, 270, 330])


def test_ssd512_smin02_seven_layers():
    min_sizes, max_sizes = ssd_prior_sizes(512, 0.2, 0.9)
    # step floor(70 / 5) = 14: ratios 20, 34, 48, 62, 76, 90
    assert min_sizes == pytest.approx([51.2, 102.4, 174.08, 245.76, 317.44, 389.12, 460.8])
    assert max_sizes == pytest.approx([102.4, 174.08, 245.76, 317.44, 389.12, 460.8, 532.48])


def test_float_noise_does_not_shift_the_step():
    # (0.3 - 0.1) * 100 is 19.999999999999996 in floating point; the step must still be 5
    min_sizes, _ = ssd_prior_sizes(300, 0.1, 0.3)
    assert min_sizes == pytest.approx([15, 30, 45, 60, 75, 90])


@pytest.mark.parametrize("size, expected", [(300, 8732), (512, 24564)])
def test_default_box_counts(size, expected):
    assert ssd_num_priors(size) == expected
    assert ssd_num_priors(size, 0.1, 0.9) == expected  # scales change sizes, not the count


@pytest.mark.parametrize("kwargs, message", [
    ({"size": 400}, "300, 512"),
    ({"size": 300, "smin": 0.9, "smax": 0.2}, "smin < smax"),
    ({"size": 300, "smin": 0.125}, "whole percentage"),
    ({"size": 300, "smin": 0.2, "smax": 0.22}, "too small"),
])
def test_bad_scales_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ssd_prior_sizes(**kwargs)

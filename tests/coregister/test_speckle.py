import numpy as np
import pytest

from metaflood.coregister.speckle import FILTERS, estimate_looks, speckle_filter


def speckled(truth: np.ndarray, looks: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (truth * rng.standard_gamma(looks, truth.shape) / looks).astype(np.float32)


def step_edge() -> np.ndarray:
    """Bright land (0.1) west of a dark water body (0.01): an edge down the middle."""
    truth = np.full((128, 128), 0.1)
    truth[:, 64:] = 0.01
    return truth


@pytest.mark.parametrize("looks", [1.0, 4.5, 16.0])
def test_number_of_looks_is_estimated_from_the_data(looks):
    assert estimate_looks(speckled(step_edge(), looks)) == pytest.approx(looks, rel=0.15)


def test_number_of_looks_comes_from_the_homogeneous_part_of_a_textured_scene():
    rng = np.random.default_rng(3)
    truth = np.full((256, 256), 0.05)
    truth[:, 96:] = 0.05 * np.exp(rng.normal(0, 1.0, (256, 160)))  # town: strong texture
    assert estimate_looks(speckled(truth, 8.0)) == pytest.approx(8.0, rel=0.2)


@pytest.mark.parametrize("method", [m for m in FILTERS if m != "none"])
def test_filters_reduce_speckle_and_keep_the_mean(method):
    image = speckled(step_edge(), 4.5)
    out = speckle_filter(image, method, 7, looks=4.5)
    flat = out[8:-8, 8:48]
    enl = flat.mean() ** 2 / flat.var()
    assert enl > 4 * 4.5  # at least four times fewer fluctuations than the input
    assert flat.mean() == pytest.approx(0.1, rel=0.05)  # linear power: no dB bias


def test_refined_lee_keeps_edges_that_lee_blurs():
    image = speckled(step_edge(), 4.5, seed=1)
    contrast = {}
    for method in ("lee", "refined_lee"):
        out = speckle_filter(image, method, 7, looks=4.5)
        # Mean of the last bright and the first dark column, against the truth.
        contrast[method] = out[:, 63].mean() / 0.1, out[:, 64].mean() / 0.01
    assert contrast["refined_lee"][1] == pytest.approx(1.0, abs=0.15)
    assert contrast["lee"][1] > 1.3  # Lee smears land into the water's first column


def test_gamma_map_keeps_a_strong_point_scatterer():
    image = speckled(np.full((64, 64), 0.05), 4.5, seed=2)
    image[32, 32] = 5.0  # a corner reflector, 20 dB above its surroundings
    out = speckle_filter(image, "gamma_map", 5, looks=4.5)
    assert out[32, 32] == pytest.approx(5.0, rel=0.01)


def test_nodata_stays_nodata_and_does_not_leak():
    image = speckled(np.full((64, 64), 0.05), 4.5)
    image[20:30, 20:30] = np.nan
    image[0, 0] = 1e6  # would dominate its neighbours if NaN were treated as a value
    for method in FILTERS:
        out = speckle_filter(image, method, 5, looks=4.5)
        assert np.isnan(out[20:30, 20:30]).all()
        assert np.isfinite(out[35:, 35:]).all()


def test_bands_are_filtered_separately_and_none_is_the_identity():
    image = np.stack([speckled(np.full((48, 48), v), 4.5, s) for s, v in ((0, 0.1), (1, 0.01))])
    assert np.array_equal(speckle_filter(image, "none"), image)
    out = speckle_filter(image, "lee", 5, looks=4.5)
    assert out.shape == image.shape
    assert out[1].mean() == pytest.approx(0.01, rel=0.1)


def test_bad_arguments_are_named():
    image = np.ones((16, 16), np.float32)
    with pytest.raises(ValueError, match="unknown speckle filter 'median'"):
        speckle_filter(image, "median")
    with pytest.raises(ValueError, match="odd number"):
        speckle_filter(image, "lee", 4)

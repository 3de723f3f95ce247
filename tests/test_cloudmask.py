"""Cloud detectors against the demo generator's clouds (its SCL is the truth)."""

import numpy as np
import pytest

from metaflood import cloudmask
from metaflood.optical import CLEAR, CLOUD, MASK_NODATA, SHADOW, mask_from_scl
from metaflood.simulate import SceneSpec, simulate_event


@pytest.fixture(scope="module")
def cloudy_scene():
    event = simulate_event(SceneSpec(seed=21, height=400, width=400, cloud_fraction=0.4))
    return event.optical["post"], mask_from_scl(event.scl["post"]), event.optical["pre"]


def sentinel2_bands(reflectance: np.ndarray) -> dict[str, np.ndarray]:
    """The ten bands s2cloudless reads, from the demo's four by a fixed linear spectral
    model (no truth used): coastal and blue raised by path radiance, red edge between red
    and nir, water vapour absorbing, SWIR bright for soil and cloud, cirrus near zero. It
    exercises the real detector; it does not tell how s2cloudless does on real scenes."""
    blue, green, red, nir = reflectance
    return {
        "B01": 1.1 * blue + 0.03,
        "B02": blue + 0.01,
        "B04": red,
        "B05": 0.6 * red + 0.4 * nir,
        "B08": nir,
        "B8A": nir,
        "B09": 0.35 * nir,
        "B10": np.full_like(blue, 0.002),
        "B11": 0.5 * red + 0.45 * nir,
        "B12": 0.45 * red + 0.25 * nir,
    }


def test_spectral_test_finds_the_demo_clouds(cloudy_scene):
    optical, truth, clear_scene = cloudy_scene
    mask = cloudmask.spectral_mask(optical)
    precision, recall = cloudmask.precision_recall(mask == CLOUD, truth == CLOUD)
    assert precision >= 0.95 and recall >= 0.65
    precision, recall = cloudmask.precision_recall(mask != CLEAR, truth != CLEAR)
    assert precision >= 0.85 and recall >= 0.55  # cloud and shadow together
    # On the cloud-free pre-event scene, almost nothing is flagged as cloud.
    assert (cloudmask.spectral_mask(clear_scene) == CLOUD).mean() < 0.02


def test_s2cloudless_runs_its_shipped_model_on_ten_bands(cloudy_scene):
    optical, truth, clear_scene = cloudy_scene
    mask = cloudmask.s2cloudless_mask(sentinel2_bands(optical))
    precision, recall = cloudmask.precision_recall(mask == CLOUD, truth == CLOUD)
    assert precision >= 0.8 and recall >= 0.9
    assert (cloudmask.s2cloudless_mask(sentinel2_bands(clear_scene)) == CLOUD).mean() < 0.1


def test_s2cloudless_names_missing_bands():
    with pytest.raises(ValueError, match="missing B01, B05, B8A, B09, B10, B11, B12"):
        cloudmask.s2cloudless_mask({b: np.zeros((4, 4)) for b in ("B02", "B04", "B08")})


def test_nodata_and_shadow_codes():
    reflectance = np.array(
        [
            [0.46, 0.03, np.nan, 0.12],  # blue: cloud, shadowed soil, nodata, clear soil
            [0.45, 0.03, 0.1, 0.14],
            [0.46, 0.04, 0.1, 0.18],
            [0.48, 0.05, 0.1, 0.23],
        ]
    )[:, None, :]
    assert cloudmask.spectral_mask(reflectance)[0].tolist() == [CLOUD, SHADOW, MASK_NODATA, CLEAR]


def test_modes_combine_the_acquired_mask_and_the_detector():
    reflectance = np.array([[0.46, 0.12], [0.45, 0.14], [0.46, 0.18], [0.48, 0.23]])[:, None, :]
    acquired = np.array([[CLEAR, CLOUD]], np.uint8)  # the SCL says the second is cloud
    assert cloudmask.unusable(acquired, reflectance, "provided").tolist() == [[False, True]]
    assert cloudmask.unusable(acquired, reflectance, "spectral").tolist() == [[True, False]]
    assert cloudmask.unusable(acquired, reflectance, "both").tolist() == [[True, True]]
    with pytest.raises(ValueError, match="unknown cloud mask mode"):
        cloudmask.unusable(acquired, reflectance, "fmask")

"""Cloud detectors against the demo generator's clouds (its SCL is the truth)."""

import numpy as np
import pytest

from metaflood.core.optical import CLEAR, CLOUD, MASK_NODATA, SHADOW, mask_from_scl
from metaflood.coregister import cloudmask
from metaflood.demo.simulate import simulate_event
from metaflood.demo.spec import SceneSpec

FOUR = ("blue", "green", "red", "nir")
FIVE = (*FOUR, "swir16")


@pytest.fixture(scope="module")
def cloudy_scene():
    event = simulate_event(SceneSpec(seed=21, height=400, width=400, cloud_fraction=0.4))
    return event.optical["post"], mask_from_scl(event.scl["post"]), event.optical["pre"]


def sentinel2_bands(reflectance: np.ndarray) -> dict[str, np.ndarray]:
    """The ten bands s2cloudless reads, from the demo's four visible and NIR bands by a
    fixed linear spectral model (no truth used): coastal and blue raised by path radiance,
    red edge between red and nir, water vapour absorbing, SWIR bright for soil and cloud,
    cirrus near zero. It exercises the real detector; it does not tell how s2cloudless
    does on real scenes."""
    blue, green, red, nir = reflectance[:4]
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
    mask = cloudmask.spectral_mask(optical[:4], FOUR)
    precision, recall = precision_recall(mask == CLOUD, truth == CLOUD)
    assert precision >= 0.95 and recall >= 0.65
    precision, recall = precision_recall(mask != CLEAR, truth != CLEAR)
    assert precision >= 0.85 and recall >= 0.55  # cloud and shadow together
    # On the cloud-free pre-event scene, almost nothing is flagged as cloud.
    assert (cloudmask.spectral_mask(clear_scene[:4], FOUR) == CLOUD).mean() < 0.02


@pytest.mark.parametrize(
    ("bands", "cloud_recall"),
    [(FIVE, 0.65), (("green", "nir", "swir16"), 0.55)],
)
def test_the_test_with_swir16_finds_the_demo_clouds(cloudy_scene, bands, cloud_recall):
    """With swir16 the visible test keeps its clouds (they are bright at 1.6 um, not
    snow); without blue and red the SWIR form finds most of them, as precisely."""
    optical, truth, clear_scene = cloudy_scene
    picked = [FIVE.index(b) for b in bands]
    mask = cloudmask.spectral_mask(optical[picked], bands)
    precision, recall = precision_recall(mask == CLOUD, truth == CLOUD)
    assert precision >= 0.95 and recall >= cloud_recall, (precision, recall)
    precision, recall = precision_recall(mask != CLEAR, truth != CLEAR)
    assert precision >= 0.85 and recall >= 0.5, (precision, recall)
    assert (cloudmask.spectral_mask(clear_scene[picked], bands) == CLOUD).mean() < 0.02


def test_s2cloudless_runs_its_shipped_model_on_ten_bands(cloudy_scene):
    optical, truth, clear_scene = cloudy_scene
    mask = cloudmask.s2cloudless_mask(sentinel2_bands(optical))
    precision, recall = precision_recall(mask == CLOUD, truth == CLOUD)
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
    assert cloudmask.spectral_mask(reflectance, FOUR)[0].tolist() == [
        CLOUD,
        SHADOW,
        MASK_NODATA,
        CLEAR,
    ]


# Pixel spectra (blue, green, red, nir, swir16) the tests below are run on.
PIXELS = {
    "cloud": (0.46, 0.45, 0.46, 0.48, 0.40),
    "snow": (0.80, 0.80, 0.78, 0.70, 0.08),  # white, but dark at 1.6 um
    "sand": (0.24, 0.32, 0.40, 0.45, 0.50),  # bright, brighter still at 1.6 um
    "shadow": (0.04, 0.04, 0.03, 0.06, 0.05),  # shadowed vegetation or soil
    "weedy_water": (0.05, 0.06, 0.05, 0.07, 0.02),  # NIR as high as green: NDWI < 0
    "water": (0.06, 0.05, 0.03, 0.02, 0.01),
}


def _classify(bands: tuple[str, ...]) -> dict[str, int]:
    names = list(PIXELS)
    columns = np.array([PIXELS[n] for n in names], np.float32).T  # (5 bands, pixels)
    picked = columns[[FIVE.index(b) for b in bands]][:, None, :]
    codes = cloudmask.spectral_mask(picked, bands)[0]
    return dict(zip(names, codes.tolist(), strict=True))


def test_swir_tells_snow_from_cloud_and_water_from_shadow():
    """Four bands call snow cloud and weedy water shadow; swir16 (MNDWI) tells them apart."""
    four = _classify(FOUR)
    assert (four["cloud"], four["snow"], four["weedy_water"]) == (CLOUD, CLOUD, SHADOW)
    five = _classify(FIVE)
    assert five == {
        "cloud": CLOUD,
        "snow": CLEAR,
        "sand": CLEAR,
        "shadow": SHADOW,
        "weedy_water": CLEAR,
        "water": CLEAR,
    }


def test_without_blue_and_red_the_swir_form_runs():
    """OMBRIA's bands (green, nir, swir16): cloud by brightness in all three and MNDWI
    between bright soil's and snow's; green and NIR alone flag no cloud at all."""
    assert _classify(("green", "nir", "swir16")) == {
        "cloud": CLOUD,
        "snow": CLEAR,
        "sand": CLEAR,
        "shadow": SHADOW,
        "weedy_water": CLEAR,
        "water": CLEAR,
    }
    two = _classify(("green", "nir"))
    assert two["cloud"] == CLEAR and two["shadow"] == SHADOW
    tests = cloudmask.spectral_tests(("green", "nir"))
    assert tests["cloud"].startswith("not run: needs blue, green and red, or green, nir and")
    assert "MNDWI" in cloudmask.spectral_tests(FIVE)["cloud"]
    assert "no blue or red" in cloudmask.spectral_tests(("green", "nir", "swir16"))["cloud"]


def test_band_names_must_match_the_bands():
    with pytest.raises(ValueError, match="4 reflectance bands named"):
        cloudmask.spectral_mask(np.zeros((4, 2, 2)), ("green", "nir"))


def test_modes_combine_the_acquired_mask_and_the_detector():
    reflectance = np.array([[0.46, 0.12], [0.45, 0.14], [0.46, 0.18], [0.48, 0.23]])[:, None, :]
    acquired = np.array([[CLEAR, CLOUD]], np.uint8)  # the SCL says the second is cloud
    unusable = cloudmask.unusable
    assert unusable(acquired, reflectance, FOUR, "provided").tolist() == [[False, True]]
    assert unusable(acquired, reflectance, FOUR, "spectral").tolist() == [[True, False]]
    assert unusable(acquired, reflectance, FOUR, "both").tolist() == [[True, True]]
    with pytest.raises(ValueError, match="unknown cloud mask mode"):
        unusable(acquired, reflectance, FOUR, "fmask")


# --- test helpers ------------------------------------------------------------


def precision_recall(predicted: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """Of the pixels flagged, the share truly flagged; of the true ones, the share found."""
    predicted, truth = np.asarray(predicted, bool), np.asarray(truth, bool)
    hits = float((predicted & truth).sum())
    precision = hits / max(float(predicted.sum()), 1.0)
    recall = hits / max(float(truth.sum()), 1.0)
    return precision, recall

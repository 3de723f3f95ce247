import json
from dataclasses import replace

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from metaflood.core.errors import InputError
from metaflood.core.sar import to_db, to_linear
from metaflood.core.settings import ChangeSettings, section_defaults
from metaflood.flood.sar_change import (
    DARK_BEFORE,
    EVIDENCE_NODATA,
    FLOOD_SIGNAL,
    NO_SIGNAL,
    RatioLevels,
    SarChangeSettings,
    map_sar_change,
    sar_evidence,
    speckle_filtered_db,
    tiled_threshold,
)

TRANSFORM = from_origin(600000, 3630000, 2.0, 2.0)

# The change.sar_* settings as the schema fills them.
CHANGE = section_defaults("change")
SETTINGS = {
    "window_px": CHANGE["sar_window_px"],
    "tile_px": CHANGE["sar_tile_px"],
    "min_ashman_d": CHANGE["sar_min_ashman_d"],
}


def speckled(mean_db: np.ndarray, rng: np.random.Generator, looks: float = 4.5) -> np.ndarray:
    power = to_linear(mean_db) * rng.standard_gamma(looks, mean_db.shape) / looks
    return to_db(power)


def scene(seed: int = 0) -> tuple[np.ndarray, np.ndarray, dict[str, tuple[slice, slice]]]:
    """A 128 px scene: fields at -10 dB, sand dark before and after, a flooded block, a
    field wet (dark) before and flooded after, a destroyed building block (bright to
    rubble) and the sea."""
    rng = np.random.default_rng(seed)
    regions = {
        "flood": (slice(20, 60), slice(20, 70)),
        "wet_then_flooded": (slice(64, 76), slice(20, 60)),
        "sand": (slice(80, 110), slice(10, 50)),
        "rubble": (slice(80, 100), slice(70, 90)),
        "sea": (slice(0, 128), slice(110, 128)),
    }
    vv_pre = np.full((128, 128), -10.0, np.float32)
    vv_pre[regions["sand"]] = -19.0
    vv_pre[regions["rubble"]] = 2.5
    vv_pre[regions["sea"]] = -21.0
    vv_pre[regions["wet_then_flooded"]] = -17.5
    vv_post = vv_pre.copy()
    vv_post[regions["flood"]] = -22.0
    vv_post[regions["wet_then_flooded"]] = -26.0
    vv_post[regions["rubble"]] = -9.0
    pre = np.stack([speckled(vv_pre, rng), speckled(vv_pre - 7, rng)])
    post = np.stack([speckled(vv_post, rng), speckled(vv_post - 7, rng)])
    return pre, post, regions


def test_speckle_filter_averages_power_not_decibels():
    db = np.array([[0.0, 10.0, 0.0]], np.float32)
    filtered = speckle_filtered_db(db, 3)
    # The middle pixel: mean of 1, 10 and 1 in power (4.0), i.e. 6.02 dB; dB mean would be 3.33.
    assert filtered[0, 1] == pytest.approx(10 * np.log10(4.0), abs=1e-3)
    nan = np.array([[np.nan, 0.0, 0.0]], np.float32)
    out = speckle_filtered_db(nan, 3)
    assert np.isnan(out[0, 0]) and out[0, 1] == pytest.approx(0.0, abs=1e-4)


def test_tiled_threshold_finds_the_valley_of_bimodal_tiles():
    rng = np.random.default_rng(1)
    values = rng.normal(0, 1, (128, 128))
    values[:, :20] = rng.normal(-12, 1, (128, 20))  # a change in every tile of the first column
    usable = np.ones(values.shape, bool)
    result = tiled_threshold(
        values, usable, SarChangeSettings(**SETTINGS), fallback=-3.0, what="test"
    )
    assert not result.fallback
    assert result.tiles_selected == 2 and result.tiles_total == 4
    assert -9 < result.value < -3


def test_tiled_threshold_falls_back_when_no_tile_is_bimodal():
    values = np.random.default_rng(2).normal(0, 1, (128, 128))
    result = tiled_threshold(
        values,
        np.ones(values.shape, bool),
        SarChangeSettings(**SETTINGS),
        fallback=-3.0,
        what="test",
    )
    assert result.fallback and result.value == -3.0 and result.tiles_selected == 0
    assert "no tile with a bimodal test histogram" in result.reason


def test_evidence_flags_new_water_and_excludes_what_was_already_dark():
    pre, post, regions = scene()
    usable = np.ones(pre.shape[1:], bool)
    usable[:, :4] = False  # no SAR in one period there
    result = sar_evidence(
        pre, post, usable, SarChangeSettings(**{**SETTINGS, "tile_px": 32}, min_pixels=10)
    )
    evidence = result.evidence
    inner = (slice(24, 56), slice(24, 66))
    assert (evidence[inner] == FLOOD_SIGNAL).mean() > 0.97
    sand = evidence[regions["sand"]][2:-2, 6:-2]
    assert (sand == DARK_BEFORE).mean() > 0.9  # dark before: excluded, not flood
    assert (evidence[regions["sea"]][:, 2:] == DARK_BEFORE).mean() > 0.9
    # Water-dark before, but it fell by 8.5 dB: it was not open water, and now it is.
    water_db = result.summary["water_threshold_db"]["value"]
    wet = (slice(66, 74), slice(22, 58))
    assert (speckle_filtered_db(pre[0], 3)[wet] < water_db).mean() > 0.95
    assert (evidence[wet] == FLOOD_SIGNAL).mean() > 0.95
    # A destroyed building falls by 11 dB but stays brighter than water: not flood.
    assert (evidence[regions["rubble"]] == FLOOD_SIGNAL).mean() < 0.05
    assert (evidence[40:70, 75:100] == NO_SIGNAL).mean() > 0.95
    assert (evidence[:, :4] == EVIDENCE_NODATA).all()
    summary = result.summary
    assert not summary["ratio_threshold_db"]["fallback"]
    assert -20 < summary["water_threshold_db"]["value"] < -12


def test_a_pre_event_scene_on_another_scale_is_matched_to_the_post_event_level(caplog):
    """Two scenes on different radiometric scales (here the pre-event one 13 dB darker, as
    an image stretched on its own, or gamma0 against sigma0): matched by the median
    log-ratio, the evidence is that of scenes calibrated alike; compared as they are, the
    whole pre-event scene reads as water-dark and the flood is lost."""
    pre, post, _ = scene()
    usable = np.ones(pre.shape[1:], bool)
    settings = SarChangeSettings(**{**SETTINGS, "tile_px": 32}, min_pixels=10)
    alike = sar_evidence(pre, post, usable, settings)
    darker = sar_evidence(pre - 13.0, post, usable, settings)
    offsets = darker.summary["level_offset_db"]["offsets"]
    assert offsets["VV"] == pytest.approx(
        alike.summary["level_offset_db"]["offsets"]["VV"] + 13, abs=0.02
    )
    assert abs(alike.summary["level_offset_db"]["offsets"]["VV"]) < 0.5  # calibrated alike: ~0
    assert "scenes on different radiometric scales?" in caplog.text
    assert darker.summary["level_offset_db"]["scales_differ"]
    assert not alike.summary["level_offset_db"]["scales_differ"]
    agree = (darker.evidence == alike.evidence).mean()
    assert agree > 0.995
    flood = darker.evidence[24:56, 24:66] == FLOOD_SIGNAL
    assert flood.mean() > 0.97
    assert darker.summary["ratio_threshold_db"]["value"] == pytest.approx(
        alike.summary["ratio_threshold_db"]["value"], abs=0.1
    )
    unmatched = sar_evidence(pre - 13.0, post, usable, replace(settings, match_levels=False))
    assert unmatched.summary["level_offset_db"]["offsets"]["VV"] == 0
    assert (unmatched.evidence[24:56, 24:66] == FLOOD_SIGNAL).mean() < 0.05
    assert (unmatched.evidence == DARK_BEFORE).mean() > 0.9


def test_the_level_is_the_median_log_ratio_whatever_the_blocks():
    rng = np.random.default_rng(4)
    ratio = np.stack([rng.normal(6.0, 2.0, (64, 64)), rng.normal(-1.5, 1.0, (64, 64))])
    ratio[0, :10] = -15  # a flood: under half the grid, it does not move the median much
    usable = np.ones((64, 64), bool)
    usable[:, -4:] = False
    whole = RatioLevels(2)
    whole.add(ratio, usable)
    blocks = RatioLevels(2)
    for rows in (slice(0, 20), slice(20, 64)):
        blocks.add(ratio[:, rows], usable[rows])
    assert np.array_equal(whole.offsets(), blocks.offsets())
    for band in range(2):
        assert whole.offsets()[band] == pytest.approx(np.median(ratio[band][usable]), abs=0.02)
    assert np.array_equal(RatioLevels(2).offsets(), [0.0, 0.0])  # nothing added: no offset


@pytest.mark.parametrize("polarisations", [("VV", "VH"), ("VV",)])
def test_map_sar_change_writes_products(tmp_path, write_raster, polarisations):
    """With VV and VH, or VV alone (OMBRIA, a VV-only source): the same flood found, the
    log-ratio's VH band all NaN where there is no VH."""
    pre, post, _ = scene(3)
    optical = np.full((4, 128, 128), 0.1, np.float32)
    stacks = []
    for name, sar in (("pre", pre), ("post", post)):
        stack = np.concatenate([sar[: len(polarisations)], optical])
        path = write_raster(
            f"{name}.tif",
            stack,
            transform=TRANSFORM,
            descriptions=(*polarisations, "blue", "green", "red", "nir"),
        )
        stacks.append(path)
    valid = write_raster(
        "valid.tif", np.full((128, 128), 3, np.uint8), transform=TRANSFORM, nodata=255
    )
    out = {n: tmp_path / n for n in ("ev.tif", "ratio.tif", "sar.json")}
    summary = map_sar_change(
        stacks,
        [valid, valid],
        change=ChangeSettings.from_section(
            section_defaults("change", {"min_area_m2": 40, "sar_tile_px": 32})
        ),
        out_evidence=out["ev.tif"],
        out_ratio=out["ratio.tif"],
        out_summary=out["sar.json"],
    )
    assert summary["settings"]["min_pixels"] == 10
    with rasterio.open(out["ev.tif"]) as src:
        assert src.nodata == EVIDENCE_NODATA and src.colormap(1)[FLOOD_SIGNAL][:3] == (0, 112, 255)
        assert (src.read(1)[30:50, 30:60] == FLOOD_SIGNAL).all()
    with rasterio.open(out["ratio.tif"]) as src:
        assert src.descriptions == ("VV_log_ratio", "VH_log_ratio", "VV_post_filtered")
        assert src.read(1)[30:50, 30:60].mean() == pytest.approx(-12, abs=1)
        assert np.isnan(src.read(2)).all() == (polarisations == ("VV",))
    assert json.loads(out["sar.json"].read_text())["share_flood_signal"] > 0.1


def test_stacks_without_sar_bands_or_on_other_grids_are_refused(tmp_path, write_raster):
    data = np.zeros((2, 32, 32), np.float32)
    bad = write_raster("bad.tif", data, transform=TRANSFORM, descriptions=("red", "nir"))
    good = write_raster("good.tif", data, transform=TRANSFORM, descriptions=("VV", "VH"))
    shifted = write_raster(
        "shifted.tif",
        data,
        transform=from_origin(600002, 3630000, 2.0, 2.0),
        descriptions=("VV", "VH"),
    )
    valid = write_raster("v.tif", np.full((32, 32), 3, np.uint8), transform=TRANSFORM, nodata=255)
    kwargs = {
        "change": ChangeSettings.from_section(section_defaults("change")),
        "out_evidence": tmp_path / "e.tif",
        "out_ratio": tmp_path / "r.tif",
        "out_summary": tmp_path / "s.json",
    }
    with pytest.raises(InputError, match=r"bad.tif: no band named VV \(bands: \[.red., .nir.\]\)"):
        map_sar_change([bad, good], [valid, valid], **kwargs)
    with pytest.raises(InputError, match="not on the same grid"):
        map_sar_change([good, shifted], [valid, valid], **kwargs)
    assert not (tmp_path / "e.tif").exists()

"""Acquired values in another unit than the configuration says are refused, by name."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from rasterio.transform import from_origin

from metaflood.acquire.plausibility import check_reflectance, check_sar
from metaflood.acquire.stage import acquire_period, search_scenes
from metaflood.core.config import event_grid
from metaflood.core.errors import InputError
from metaflood.core.sar import to_linear
from tests.helpers.events import demo_event_config

RNG = np.random.default_rng(0)
DB = -12 + 4 * RNG.standard_normal((2, 60, 60))  # VV, VH-like backscatter in dB
REFLECTANCE = 0.1 + 0.03 * RNG.standard_normal((4, 60, 60))


def test_real_values_pass_the_checks():
    linear = to_linear(DB)
    linear[0, :5] = 0.0  # calm water after thermal-noise removal: a few zeros are real
    linear[0, 5, :3] = -1e-4
    check_sar(list(linear), ["VV", "VH"], "e.sar", "linear")
    check_sar(list(DB), ["VV", "VH"], "e.sar", "db")
    check_reflectance(list(REFLECTANCE), ["blue", "green", "red", "nir"], "e.optical")
    clouds = np.full((60, 60), 1.1)  # a scene all under cloud is still reflectance
    check_reflectance([clouds], ["red"], "e.optical")


def test_values_in_another_unit_name_the_setting():
    with pytest.raises(InputError, match="e.sar VV: 100% of the values .* set sar_scale: db"):
        check_sar(list(DB), ["VV", "VH"], "e.sar", "linear")
    with pytest.raises(InputError, match="e.sar VV: no value over the AOI is above 0"):
        check_sar([np.zeros((60, 60))], ["VV"], "e.sar", "linear")
    digital_numbers = np.full((60, 60), 350.0)  # uncalibrated amplitude
    with pytest.raises(
        InputError, match=r"e.sar VV: the median .*\(\+25 dB\), which is not calibrated"
    ):
        check_sar([digital_numbers], ["VV"], "e.sar", "linear")
    with pytest.raises(InputError, match=r"\(\+25 dB\)"):
        check_sar([np.full((60, 60), 25.4)], ["VV"], "e.sar", "db")
    linear = to_linear(DB[0])
    linear[0, :30] = 0.0  # 30 of 3600 values at or below 0 dB: not enough to be dB
    with pytest.raises(InputError, match=r"e.sar VV: 99% of the values .* sar_scale: linear"):
        check_sar([linear], ["VV"], "e.sar", "db")
    with pytest.raises(InputError, match=r"is 4000 \(\+4000 dB\)"):  # DNs declared as dB
        check_sar([np.full((60, 60), 4000.0)], ["VV"], "e.sar", "db")
    with pytest.raises(InputError, match="e.optical red: the median .* scale: 0.0001"):
        check_reflectance([REFLECTANCE[2] * 10000 + 1000], ["red"], "e.optical")


def test_acquisition_refuses_a_wrong_sar_scale_and_writes_nothing(tmp_path, write_raster):
    grid = event_grid(demo_event_config(), "events.tiny")
    left, bottom, right, top = grid.bounds
    transform = from_origin(left - 20, top + 20, 1.0, 1.0)
    shape = (int(top - bottom + 40), int(right - left + 40))
    rng = np.random.default_rng(1)
    db = (-12 + 4 * rng.standard_normal((2, *shape))).astype(np.float32)
    sar = write_raster("s1_db.tif", db, transform=transform, crs=grid.crs)
    reflectance = (0.1 + 0.03 * rng.standard_normal((4, *shape))).astype(np.float32)
    optical = write_raster("s2.tif", reflectance, transform=transform, crs=grid.crs)
    bands = {"blue": 1, "green": 2, "red": 3, "nir": 4}
    event = demo_event_config(
        sar={"source": "local", "pre": str(sar), "post": str(sar), "bands": {"VV": 1, "VH": 2}},
        optical={"source": "local", "pre": str(optical), "bands": bands},
    )
    del event["demo"]
    out = tmp_path / "out"
    products = {
        "out_sar": out / "pre/sar.tif",
        "out_optical": out / "pre/optical.tif",
        "out_optical_mask": out / "pre/optical_mask.tif",
        "out_scenes": out / "pre/scenes.json",
    }

    def acquire_pre() -> None:
        selection, cache = out / "selection.json", tmp_path / "cache"
        search_scenes(event, "tiny", demo_catalog=None, cache_dir=cache, out=selection)
        acquire_period(event, "tiny", "pre", selection=selection, cache_dir=cache, **products)

    with pytest.raises(
        InputError, match=r"events.tiny.sar local-pre-sar \(.*s1_db.tif\) VV: 100% .* sar_scale: db"
    ):
        acquire_pre()
    assert not (out / "pre").exists() or not list((out / "pre").iterdir())
    # Declared as dB, the same file is acquired as linear power.
    event["sar"]["sar_scale"] = "db"
    acquire_pre()
    assert products["out_sar"].exists()
    # The mirror (issue 21): linear power declared as dB read as a scene "above 0 dB"
    # everywhere, both SAR thresholds fell back and the run reported nothing flooded.
    shutil.rmtree(out)
    linear = write_raster("s1_linear.tif", to_linear(db), transform=transform, crs=grid.crs)
    event["sar"].update(pre=str(linear), post=str(linear))
    with pytest.raises(
        InputError,
        match=r"events.tiny.sar local-pre-sar \(.*s1_linear.tif\) VV: 100% of the values "
        r"over the AOI are above 0 dB.* set sar_scale: linear",
    ):
        acquire_pre()
    assert not (out / "pre").exists() or not list((out / "pre").iterdir())

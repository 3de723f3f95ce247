"""The multi-date pre-event reference (pre.max_scenes): the SAR median in linear power
and its spread in dB, the optical least-cloud composite, on scenes made by hand; then
end to end through a static catalog served on 127.0.0.1, with several pre-event SAR
scenes of one orbit and one of another."""

from __future__ import annotations

import copy
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import rasterio

from metaflood.acquire import baseline as bl
from metaflood.acquire.download import first_valid
from metaflood.acquire.stage import Retry, acquire_period, search_scenes
from metaflood.core import optical as opt
from tests.helpers.acquire_provider import (
    BOA_OFFSET_DN,
    OPTICAL,
    SAR,
    Provider,
    build_provider,
    write_static_catalog,
)
from tests.helpers.acquire_servers import RangeFileServer
from tests.helpers.events import demo_event_config

NAN = np.nan
CLEAR, CLOUD, NODATA = opt.CLEAR, opt.CLOUD, opt.MASK_NODATA


# ---------------------------------------------------------------------------------------
# On scenes made by hand


def test_the_median_is_taken_in_linear_power():
    scenes = [np.full((1, 2), v, np.float32) for v in (1.0, 2.0, 10.0)]
    np.testing.assert_array_equal(bl.median_linear(scenes), [[2.0, 2.0]])
    # Two valid scenes: the middle of their linear powers (5.5), not of their dB
    # (0 and 10 dB -> 5 dB, 3.16 in linear power).
    two = [np.array([[1.0]]), np.array([[10.0]]), np.array([[NAN]])]
    np.testing.assert_allclose(bl.median_linear(two), [[5.5]])
    assert bl.median_linear(two).dtype == np.float32


def test_nan_scenes_are_left_out_and_no_valid_scene_is_nan():
    a = np.array([[1.0, NAN, NAN]], np.float32)
    b = np.array([[3.0, 4.0, NAN]], np.float32)
    c = np.array([[2.0, NAN, NAN]], np.float32)
    median = bl.median_linear([a, b, c])
    np.testing.assert_array_equal(median, [[2.0, 4.0, NAN]])


def test_the_spread_is_the_standard_deviation_in_db():
    scenes = [np.array([[v, v, NAN]], np.float32) for v in (1.0, 10.0, 100.0)]
    scenes[2][0, 1] = NAN  # two valid scenes: 0 and 10 dB
    spread = bl.spread_db(scenes)
    # 0, 10, 20 dB: sample standard deviation 10 dB; 0 and 10 dB: 7.07 dB; none: NaN.
    np.testing.assert_allclose(spread, [[10.0, np.sqrt(50.0), NAN]], rtol=1e-5)
    one = [np.array([[1.0]]), np.array([[NAN]])]
    assert np.isnan(bl.spread_db(one)).all()  # a single valid scene has no spread


def test_the_optical_composite_takes_each_pixel_from_the_first_clear_scene():
    # Ranked least cloudy first.
    masks = [
        np.array([[CLEAR, CLOUD, CLOUD, NODATA, NODATA]], np.uint8),
        np.array([[CLEAR, CLEAR, CLOUD, CLOUD, NODATA]], np.uint8),
        np.array([[CLEAR, CLEAR, CLEAR, NODATA, NODATA]], np.uint8),
    ]
    order = bl.least_cloud_order(masks)
    # Clear somewhere: the first clear; cloud everywhere it was seen: the first that
    # saw it; seen by none: the first.
    np.testing.assert_array_equal(order, [[0, 1, 2, 1, 0]])
    values = [np.full((1, 5), v, np.float32) for v in (0.1, 0.2, 0.3)]
    np.testing.assert_allclose(bl.pick(values, order), [[0.1, 0.2, 0.3, 0.2, 0.1]])
    np.testing.assert_array_equal(bl.pick(masks, order), [[CLEAR, CLEAR, CLEAR, CLOUD, NODATA]])
    gaps = [np.array([[NAN, 1.0]], np.float32), np.array([[2.0, 3.0]], np.float32)]
    np.testing.assert_array_equal(first_valid(gaps), [[2.0, 1.0]])


def test_a_median_of_three_speckled_scenes_spreads_less_against_the_post_scene():
    """Gamma speckle (4 looks) over one unchanged landscape: the log-ratio of the post
    scene against the median of three pre scenes spreads less than against one (about
    2.8 dB against 3.3 dB), and fewer pixels darken past 3 dB (what a change detection
    would call flood: about 14% against 17%; the post scene's own speckle remains)."""
    rng = np.random.default_rng(7)
    looks = 4
    truth = 10 ** (rng.uniform(-18, -6, (200, 200)) / 10).astype(np.float32)

    def speckled():
        return (truth * rng.gamma(looks, 1 / looks, truth.shape)).astype(np.float32)

    pre = [speckled() for _ in range(3)]
    post = speckled()
    single = bl.log_ratio_spread(pre[0], post)
    multi = bl.log_ratio_spread(bl.median_linear(pre), post)
    assert multi < 0.85 * single, (single, multi)
    false_single = bl.false_change_share(pre[0], post, 3.0)
    false_multi = bl.false_change_share(bl.median_linear(pre), post, 3.0)
    assert false_multi < 0.9 * false_single, (false_single, false_multi)


def test_max_scenes_comes_from_the_event_or_the_schema():
    assert bl.max_scenes({"pre": {"start": "a", "end": "b"}}) == 1
    assert bl.max_scenes({"pre": {"start": "a", "end": "b", "max_scenes": 3}}) == 3


# ---------------------------------------------------------------------------------------
# End to end through a static catalog on loopback

PRE_SAR = "demo-s1-20230905"
PRE_OPTICAL = "demo-s2-20230906"
SAR_FACTORS = {"demo-s1-20230903": 2.0, "demo-s1-20230901": 4.0}  # copies of PRE_SAR, x k
OTHER_ORBIT = "other-orbit-20230908"
OPTICAL_COPY = "demo-s2-20230904"  # PRE_OPTICAL at half the reflectance
CLOUD_SCL = 9  # Sentinel-2 SCL: cloud, high probability
FAST = Retry(retries=2, backoff_s=0.05)


def _rewrite(path: Path, change: Callable[[np.ndarray], np.ndarray]) -> None:
    with rasterio.open(path) as src:
        profile, data = src.profile, src.read(1)
    profile.update(driver="COG", compress="DEFLATE", blocksize=256)
    for key in ("blockxsize", "blockysize", "tiled", "interleave"):
        profile.pop(key, None)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(change(data).astype(data.dtype), 1)


def _cloud_half(west: bool) -> Callable[[np.ndarray], np.ndarray]:
    def change(scl: np.ndarray) -> np.ndarray:
        half = np.zeros(scl.shape, bool)
        cols = slice(None, scl.shape[1] // 2) if west else slice(scl.shape[1] // 2, None)
        half[:, cols] = True
        return np.where(half & (scl > 0), CLOUD_SCL, scl)

    return change


def _half_reflectance(dn: np.ndarray) -> np.ndarray:
    valid = dn > 0
    halved = np.rint((dn.astype(np.float64) - BOA_OFFSET_DN) * 0.5) + BOA_OFFSET_DN
    return np.where(valid, halved, 0)


def _copy_item(
    provider: Provider, source: str, new_id: str, when: str, base_url: str, change: dict
) -> dict:
    """A copy of item `source` as `new_id` on `when`, its asset files copied and
    rewritten by `change` (asset key -> function of the values)."""
    item = copy.deepcopy(provider.item(source))
    collection = item["collection"]
    folder = provider.served / collection / new_id
    folder.mkdir(parents=True)
    item["id"] = new_id
    item["properties"]["datetime"] = when
    for key, asset in item["assets"].items():
        name = asset["href"].rsplit("/", 1)[-1]
        target = folder / name
        shutil.copy(provider.served / collection / source / name, target)
        if key in change:
            _rewrite(target, change[key])
        asset["href"] = f"{base_url}/{collection}/{new_id}/{name}"
        asset["file:size"] = target.stat().st_size
    return item


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    """The demo event as a static catalog with three pre-event SAR scenes of relative
    orbit 102 (the demo's, and copies at 2 and 4 times its power), one of orbit 29
    nearer the event, and two pre-event optical scenes clouded over opposite halves."""
    root = tmp_path_factory.mktemp("baseline-provider")
    (root / "served").mkdir()
    with RangeFileServer(root / "served") as files:
        provider = build_provider(demo_event_config(), "tiny", root, files.url)
        for new_id, factor in SAR_FACTORS.items():
            day = new_id.rsplit("-", 1)[1]
            when = f"{day[:4]}-{day[4:6]}-{day[6:]}T04:30:00Z"
            scale = {band: (lambda v, k=factor: v * k) for band in ("vv", "vh")}
            provider.items.append(_copy_item(provider, PRE_SAR, new_id, when, files.url, scale))
        other = copy.deepcopy(provider.item(PRE_SAR))
        other["id"] = OTHER_ORBIT
        other["properties"].update(
            {
                "datetime": "2023-09-08T16:40:00Z",
                "sat:relative_orbit": 29,
                "sat:orbit_state": "descending",
            }
        )
        provider.items.append(other)
        halves = {band: _half_reflectance for band in ("B02", "B03", "B04", "B08", "B11")}
        optical = _copy_item(
            provider,
            PRE_OPTICAL,
            OPTICAL_COPY,
            "2023-09-04T09:20:00Z",
            files.url,
            {**halves, "SCL": _cloud_half(west=False)},
        )
        provider.items.append(optical)
        scl = provider.served / OPTICAL / PRE_OPTICAL / "SCL.tif"  # after it was copied
        _rewrite(scl, _cloud_half(west=True))
        provider.item(PRE_OPTICAL)["assets"]["SCL"]["file:size"] = scl.stat().st_size
        for item in provider.items:
            if item["id"] in (PRE_OPTICAL, OPTICAL_COPY):
                item["properties"]["eo:cloud_cover"] = 50.0
        write_static_catalog(provider, provider.served, files.url)
        yield f"{files.url}/catalog.json"


def static_event(catalog_url: str, max_scenes: int) -> dict:
    event = demo_event_config()
    del event["demo"]
    event["pre"] = {**event["pre"], "max_scenes": max_scenes}
    event["sar"] = {
        "source": "static",
        "catalog": catalog_url,
        "collection": SAR,
        "assets": {"VV": "vv", "VH": "vh"},
    }
    event["optical"] = {
        "source": "static",
        "catalog": catalog_url,
        "collection": OPTICAL,
        "assets": {"blue": "B02", "green": "B03", "red": "B04", "nir": "B08", "swir16": "B11"},
        "mask_asset": "SCL",
        "scale": 0.0001,
    }
    return event


def acquire(event: dict, out: Path, cache: Path) -> dict:
    search_scenes(
        event, "tiny", demo_catalog=None, cache_dir=cache, out=out / "selection.json", retry=FAST
    )
    return {
        period: acquire_period(
            event,
            "tiny",
            period,
            selection=out / "selection.json",
            cache_dir=cache,
            out_sar=out / period / "sar.tif",
            out_sar_spread=out / period / "sar_spread.tif",
            out_optical=out / period / "optical.tif",
            out_optical_mask=out / period / "optical_mask.tif",
            out_scenes=out / period / "scenes.json",
            retry=FAST,
        )
        for period in ("pre", "post")
    }


def read(path: Path) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read()


@pytest.fixture(scope="module")
def runs(catalog, tmp_path_factory):
    out = tmp_path_factory.mktemp("baseline-runs")
    one = acquire(static_event(catalog, 1), out / "one", out / "cache")
    three = acquire(static_event(catalog, 3), out / "three", out / "cache")
    return out, one, three


def test_the_selection_records_the_same_orbit_scenes_nearest_first(runs):
    out, _, _ = runs
    selection = json.loads((out / "three/selection.json").read_text())
    pre = selection["periods"]["pre"]["sar"]
    assert pre["items"][0]["id"] == PRE_SAR  # the orbit shared with the post scene
    assert pre["max_scenes"] == 3 and pre["scenes_used"] == 3
    assert [b["items"][0]["id"] for b in pre["baseline"]] == list(SAR_FACTORS)
    assert [b["datetime"] for b in pre["baseline"]] == [
        "2023-09-03T04:30:00+00:00",
        "2023-09-01T04:30:00+00:00",
    ]
    assert all(b["coverage"] == 1.0 for b in pre["baseline"])
    assert "baseline_note" not in pre
    assert "max_scenes" not in selection["periods"]["post"]["sar"]
    single = json.loads((out / "one/selection.json").read_text())["periods"]["pre"]["sar"]
    assert single["max_scenes"] == 1 and single["scenes_used"] == 1 and single["baseline"] == []


def test_sar_tif_is_the_median_in_linear_power_and_its_spread_is_written(runs):
    out, one, three = runs
    single, median = read(out / "one/pre/sar.tif"), read(out / "three/pre/sar.tif")
    # The scenes are x, 2x and 4x: the median is 2x, the spread log10(2) * 10 dB.
    np.testing.assert_allclose(median, 2 * single, rtol=1e-6, equal_nan=True)
    spread = read(out / "three/pre/sar_spread.tif")
    valid = np.isfinite(single)
    np.testing.assert_allclose(spread[valid], 10 * np.log10(2.0), rtol=1e-4)
    with rasterio.open(out / "three/pre/sar_spread.tif") as src:
        assert src.tags()["scenes"] == "3" and src.descriptions == ("VV", "VH")
        assert src.units == ("dB", "dB")
    for run, period in (("one", "pre"), ("three", "post"), ("one", "post")):
        with rasterio.open(out / run / period / "sar_spread.tif") as src:
            assert src.tags()["scenes"] == "1" and np.isnan(src.read()).all()
    baseline = three["pre"]["sar"]["baseline"]
    assert baseline["scenes_used"] == 3
    assert [s["id"] for s in baseline["scenes"]] == [PRE_SAR, *SAR_FACTORS]
    assert baseline["median_spread_db"] == {"VV": 3.0103, "VH": 3.0103}
    assert one["pre"]["sar"]["baseline"]["median_spread_db"] is None
    # The post scene is read as before.
    np.testing.assert_array_equal(read(out / "one/post/sar.tif"), read(out / "three/post/sar.tif"))


def test_the_optical_pre_scene_is_the_least_cloud_composite(runs):
    out, _, three = runs
    single = read(out / "one/pre/optical.tif")
    single_mask = read(out / "one/pre/optical_mask.tif")[0]
    composite = read(out / "three/pre/optical.tif")
    mask = read(out / "three/pre/optical_mask.tif")[0]
    cloud = single_mask == CLOUD  # the west half of the nearer scene
    assert 0.2 < cloud.mean() < 0.8
    # Under its cloud the copy (half the reflectance, clear there) fills in; elsewhere
    # the nearer scene stays.
    np.testing.assert_allclose(composite[:, ~cloud], single[:, ~cloud], atol=1e-6)
    np.testing.assert_allclose(composite[:, cloud], 0.5 * single[:, cloud], atol=2e-4)
    assert (mask[single_mask != NODATA] == CLEAR).mean() > 0.99
    baseline = three["pre"]["optical"]["baseline"]
    assert [s["id"] for s in baseline["scenes"]] == [PRE_OPTICAL, OPTICAL_COPY]
    assert "least cloud" in baseline["order"] and baseline["scenes_used"] == 2
    assert "found 2" in baseline["note"]


def test_fewer_scenes_than_asked_is_recorded_not_an_error(catalog, runs, tmp_path):
    out, _, _ = runs
    scenes = acquire(static_event(catalog, 5), tmp_path / "five", out / "cache")
    pre = json.loads((tmp_path / "five/selection.json").read_text())["periods"]["pre"]["sar"]
    assert pre["scenes_used"] == 3
    assert pre["baseline_note"] == (
        "asked 5 pre-event SAR scenes of relative orbit 102 (ascending), found 3 in the "
        "window 2023-09-01..2023-09-09; the reference is their median"
    )
    assert scenes["pre"]["sar"]["baseline"]["note"] == pre["baseline_note"]
    np.testing.assert_array_equal(
        read(tmp_path / "five/pre/sar.tif"), read(out / "three/pre/sar.tif")
    )

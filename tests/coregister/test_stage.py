import json

import numpy as np
import pytest
import rasterio
from rasterio.enums import Resampling
from rasterio.transform import from_origin
from rasterio.warp import reproject
from rio_cogeo.cogeo import cog_validate
from scipy import ndimage

from metaflood.acquire.canonical import grid_args, write_absent
from metaflood.core.config import event_grid
from metaflood.core.errors import ConfigError, InputError
from metaflood.core.sar import to_linear
from metaflood.coregister.products import reproject_to_grid
from metaflood.coregister.scenes import OPTICAL_VALID, SAR_VALID, VALID_NODATA, shifted_transform
from metaflood.coregister.stage import coregister_period
from tests.helpers.coregister_scenes import (
    coregister_settings,
    event_config,
    expected_shifts,
    run_period,
    sweep_case,
    write_scenes,
)
from tests.helpers.events import demo_event_config

EVENT = demo_event_config()
FOUR = ("blue", "green", "red", "nir")


def native_frame(margin=20.0):
    """A 1 m scene grid covering the event grid plus a margin."""
    grid = event_grid(EVENT, "events.t")
    left, bottom, right, top = grid.bounds
    width = int(right - left + 2 * margin)
    height = int(top - bottom + 2 * margin)
    return from_origin(left - margin, top + margin, 1.0, 1.0), height, width


def texture(shape, seed, shift=(0.0, 0.0)):
    rng = np.random.default_rng(seed)
    field = ndimage.gaussian_filter(rng.normal(size=shape), 3.0)
    field = (field - field.mean()) / field.std()
    return ndimage.shift(field, shift, order=3, mode="nearest")


def scene_files(
    write_raster,
    tag,
    *,
    shift=(0.0, 0.0),
    cloud=None,
    sar_bands=("VV", "VH"),
    optical_bands=FOUR,
):
    """SAR, optical (band i of `optical_bands` is 0.1 + 0.01 i plus texture) and mask."""
    transform, h, w = native_frame()
    base = texture((h, w), 1, shift)
    sar_db = np.stack([-12 + 4 * base, -18 + 4 * base])[: len(sar_bands)]
    optical = np.stack([0.1 + 0.03 * base + 0.01 * i for i in range(len(optical_bands))])
    mask = np.zeros((h, w), np.uint8) if cloud is None else cloud
    sar = write_raster(
        f"{tag}_sar.tif", to_linear(sar_db), transform=transform, descriptions=sar_bands
    )
    opt = write_raster(
        f"{tag}_optical.tif",
        optical.astype(np.float32),
        transform=transform,
        descriptions=optical_bands,
    )
    msk = write_raster(f"{tag}_mask.tif", mask, transform=transform, nodata=255)
    return sar, opt, msk


def run(tmp_path, period, sar, optical, mask, reference, **settings):
    out = {k: tmp_path / f"{period}_{k}" for k in ("stack.tif", "valid.tif", "report.json")}
    report = coregister_period(
        EVENT,
        "t",
        period,
        sar=sar,
        optical=optical,
        optical_mask=mask,
        reference=reference,
        out_stack=out["stack.tif"],
        out_valid=out["valid.tif"],
        out_report=out["report.json"],
        settings=coregister_settings(**settings),
    )
    return report, out


def test_products_are_on_the_event_grid(tmp_path, write_raster):
    sar, opt, msk = scene_files(write_raster, "pre")
    report, out = run(tmp_path, "pre", sar, opt, msk, sar)
    grid = event_grid(EVENT, "events.t")
    with rasterio.open(out["stack.tif"]) as src:
        assert src.crs.to_string() == grid.crs and src.transform == grid.transform
        assert src.descriptions == ("VV", "VH", "blue", "green", "red", "nir")
        assert src.units[:2] == ("dB", "dB")
        stack = src.read()
    with rasterio.open(out["valid.tif"]) as src:
        assert src.nodata == VALID_NODATA
        valid = src.read(1)
    inside = valid != VALID_NODATA
    assert inside.mean() > 0.9
    assert (valid[inside] == SAR_VALID | OPTICAL_VALID).all()
    assert np.isnan(stack[:, ~inside]).all()
    assert json.loads(out["report.json"].read_text())["coverage"]["sar_valid"] == 1.0


def test_sar_is_averaged_in_linear_power(tmp_path, write_raster):
    transform, h, w = native_frame()
    checker = np.where((np.add.outer(np.arange(h), np.arange(w)) % 2) == 0, -10.0, -20.0)
    sar = write_raster(
        "sar.tif",
        to_linear(np.stack([checker, checker])),
        transform=transform,
        descriptions=("VV", "VH"),
    )
    _, opt, msk = scene_files(write_raster, "x")
    _, out = run(tmp_path, "pre", sar, opt, msk, sar)
    with rasterio.open(out["stack.tif"]) as src:
        vv = src.read(1)
    expected = 10 * np.log10((0.1 + 0.01) / 2)  # -12.6 dB, not the -15 dB of a dB average
    assert np.nanmedian(vv) == pytest.approx(expected, abs=0.05)


def test_a_cloudy_scene_pixel_makes_the_grid_pixel_unusable(tmp_path, write_raster):
    transform, h, w = native_frame()
    cloud = np.zeros((h, w), np.uint8)
    cloud[::2, ::2] = 1  # one cloudy 1 m pixel in every 2 m grid pixel
    sar, opt, msk = scene_files(write_raster, "c", cloud=cloud)
    _, out = run(tmp_path, "pre", sar, opt, msk, sar)
    with rasterio.open(out["valid.tif"]) as src:
        valid = src.read(1)
    inside = valid != VALID_NODATA
    assert (valid[inside] == SAR_VALID).all()


def test_post_sar_shift_is_estimated_and_applied(tmp_path, write_raster):
    pre = scene_files(write_raster, "pre")
    post = scene_files(write_raster, "post", shift=(1.6, -1.2))  # native 1 m pixels
    report, out = run(tmp_path, "post", *post, pre[0])
    estimate = report["shifts"]["sar_to_reference"]
    assert estimate["applied"]
    # 1.6 / -1.2 native pixels are 0.8 / -0.6 grid pixels; the correction is the opposite.
    assert estimate["shift"] == pytest.approx([-0.8, 0.6], abs=0.1)
    _, pre_out = run(tmp_path, "pre", *pre, pre[0])
    with rasterio.open(out["stack.tif"]) as a, rasterio.open(pre_out["stack.tif"]) as b:
        corrected, reference = a.read(1), b.read(1)
    ok = np.isfinite(corrected) & np.isfinite(reference)
    assert np.corrcoef(corrected[ok], reference[ok])[0, 1] > 0.99


def test_errors_name_the_problem_before_any_product_is_written(tmp_path, write_raster):
    sar, opt, msk = scene_files(write_raster, "e")
    vh_only = scene_files(write_raster, "b", sar_bands=("VH",))[0]
    with pytest.raises(InputError, match=r"b_sar.tif: no band given for VV \(the sar modality"):
        run(tmp_path, "pre", vh_only, opt, msk, sar)
    with pytest.raises(InputError, match="e_sar.tif: unknown optical band 'VV'"):
        run(tmp_path, "pre", sar, sar, msk, sar)
    transform, h, w = native_frame()
    named = {"descriptions": ("VV", "VH")}
    empty = write_raster(
        "empty.tif", np.full((2, h, w), np.nan, np.float32), transform=transform, **named
    )
    with pytest.raises(InputError, match="empty.tif: every pixel over the AOI is nodata"):
        run(tmp_path, "pre", empty, opt, msk, sar)
    far = write_raster(
        "far.tif",
        to_linear(np.full((2, 50, 50), -10.0, np.float32)),
        transform=from_origin(100000, 1000000, 1, 1),
        **named,
    )
    with pytest.raises(InputError, match="far.tif: the scene does not overlap the AOI"):
        run(tmp_path, "pre", far, opt, msk, sar)
    no_crs = tmp_path / "no_crs.tif"
    with rasterio.open(
        no_crs,
        "w",
        driver="GTiff",
        width=w,
        height=h,
        count=2,
        dtype="float32",
        transform=transform,
    ) as dst:
        dst.write(np.ones((2, h, w), np.float32))
        dst.descriptions = named["descriptions"]
    with pytest.raises(InputError, match="no_crs.tif: has no coordinate reference system"):
        run(tmp_path, "pre", no_crs, opt, msk, sar)
    corrupt = tmp_path / "corrupt.tif"
    corrupt.write_bytes(sar.read_bytes()[:2000])
    with pytest.raises(InputError, match="corrupt.tif"):
        run(tmp_path, "pre", corrupt, opt, msk, sar)
    # The post period checks its reference too, before estimating anything.
    with pytest.raises(InputError, match="empty.tif: every pixel over the AOI is nodata"):
        run(tmp_path, "post", sar, opt, msk, empty)
    assert not list(tmp_path.glob("pre_*")) and not list(tmp_path.glob("post_*"))
    assert not list(tmp_path.glob(".*")), "no temporary file is left behind"


def test_a_period_with_nothing_usable_is_refused_before_any_product(tmp_path, write_raster):
    """No SAR scene and an optical image all under cloud: a map of nothing would read as
    "no flood", so the stage stops and says why."""
    transform, h, w = native_frame()
    _, opt, msk = scene_files(write_raster, "o", cloud=np.ones((h, w), np.uint8))
    grid = event_grid(EVENT, "events.t")
    no_sar = tmp_path / "absent_sar.tif"
    write_absent("sar", ("VV", "VH"), grid_args(grid), [no_sar])
    reference = scene_files(write_raster, "r")[0]
    with pytest.raises(
        InputError,
        match=r"events.t.post: no pixel of the AOI has a valid SAR or optical value "
        r"\(SAR: no scene; optical: every pixel cloud, shadow or nodata\)",
    ):
        run(tmp_path, "post", no_sar, opt, msk, reference)
    assert not list(tmp_path.glob("post_*")) and not list(tmp_path.glob(".*"))


def test_products_are_the_same_whatever_the_block_size(tmp_path, write_raster):
    transform, h, w = native_frame()
    cloud = np.zeros((h, w), np.uint8)
    cloud[40:90, 30:200] = 1
    sar, opt, msk = scene_files(write_raster, "k", cloud=cloud)
    products = {}
    for block in (64, 1024):
        out = tmp_path / str(block)
        out.mkdir()
        _, files = run(
            out,
            "pre",
            sar,
            opt,
            msk,
            sar,
            block_size=block,
            speckle_filter="refined_lee",
            speckle_window=5,
        )
        with rasterio.open(files["stack.tif"]) as a, rasterio.open(files["valid.tif"]) as b:
            products[block] = a.read(), b.read()
        valid, errors, _ = cog_validate(str(files["stack.tif"]))
        assert valid, errors
    assert np.array_equal(products[64][1], products[1024][1])
    np.testing.assert_allclose(products[64][0], products[1024][0], rtol=1e-6, equal_nan=True)


def test_speckle_filter_from_the_settings_is_applied_and_recorded(tmp_path, write_raster):
    transform, h, w = native_frame()
    rng = np.random.default_rng(0)
    speckle = rng.standard_gamma(1.0, (2, h, w)).astype(np.float32)  # single-look
    sar = write_raster(
        "s.tif",
        to_linear(np.full((2, h, w), -12.0)) * speckle,
        transform=transform,
        descriptions=("VV", "VH"),
    )
    _, opt, msk = scene_files(write_raster, "s")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    plain, out_plain = run(tmp_path / "a", "pre", sar, opt, msk, sar)
    filtered, out_filtered = run(
        tmp_path / "b", "pre", sar, opt, msk, sar, speckle_filter="gamma_map"
    )
    assert plain["speckle"] == {"filter": "none", "window": 5}
    assert filtered["speckle"]["filter"] == "gamma_map"
    # Averaging four 1 m single-look pixels gives about four looks on the 2 m grid.
    assert filtered["speckle"]["looks"][0] == pytest.approx(4.0, rel=0.3)
    with rasterio.open(out_plain["stack.tif"]) as a, rasterio.open(out_filtered["stack.tif"]) as b:
        vv_plain, vv_filtered = a.read(1), b.read(1)
    assert np.nanstd(vv_filtered) < 0.5 * np.nanstd(vv_plain)
    assert np.nanmedian(to_linear(vv_filtered)) == pytest.approx(
        np.nanmedian(to_linear(vv_plain)), rel=0.15
    )


def test_unknown_settings_are_named(tmp_path, write_raster):
    sar, opt, msk = scene_files(write_raster, "u")
    with pytest.raises(ConfigError, match="coregister.speckle_filter: unknown filter 'frost'"):
        run(tmp_path, "pre", sar, opt, msk, sar, speckle_filter="frost")
    with pytest.raises(ConfigError, match="coregister.speckle_window: must be odd"):
        run(tmp_path, "pre", sar, opt, msk, sar, speckle_window=4)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_injected_offsets_are_recovered_or_flagged(tmp_path, seed):
    """Demo scenes with random offsets up to 5 native pixels (the full sweep over 20 seeds
    is benchmarks/coregister_sweep.py): every reliable estimate within the bounds."""
    cases = sweep_case(tmp_path, seed, size_m=300.0, max_offset=5.0, cloud_fraction=0.3)
    assert {c.pair for c in cases} == {"sar_to_reference", "optical_to_sar"}
    for case in cases:
        bound = 0.2 if case.pair == "sar_to_reference" else 0.5
        if case.reliable:
            assert case.residual <= bound, (case, case.residual)
    sar = [c for c in cases if c.pair == "sar_to_reference"]
    assert sar[0].reliable, "SAR to SAR on a 300 m scene is always measurable"


def test_blockwise_reprojection_matches_gdal_in_one_piece(tmp_path, write_raster):
    sar, _, _ = scene_files(write_raster, "w")
    grid = event_grid(EVENT, "events.t")
    out = reproject_to_grid(
        sar, ("VV", "VH"), grid, tmp_path / "w.tif", resampling=Resampling.average, block_size=64
    )
    with rasterio.open(sar) as src:
        expected = np.full((2, grid.height, grid.width), np.nan, np.float32)
        reproject(
            src.read(),
            expected,
            src_transform=src.transform,
            src_crs=src.crs,
            src_nodata=np.nan,
            dst_transform=grid.transform,
            dst_crs=grid.crs,
            dst_nodata=np.nan,
            resampling=Resampling.average,
        )
    with rasterio.open(out) as result:
        np.testing.assert_allclose(result.read(), expected, rtol=1e-6, equal_nan=True)


def test_a_shift_moves_the_content_the_estimated_way():
    # Content moved by (+2, -3) grid pixels: what was at pixel (10, 20) is at (12, 17).
    grid = event_grid(EVENT, "events.t")
    moved = shifted_transform(grid.transform, (2.0, -3.0))
    assert moved * (17, 12) == pytest.approx(grid.transform * (20, 10))


def test_cloud_mask_modes_and_a_mask_without_information(tmp_path, write_raster):
    transform, h, w = native_frame()
    sar, _, _ = scene_files(write_raster, "m")
    desert = np.array([0.15, 0.19, 0.25, 0.29])[:, None, None]  # gravel desert, textured
    reflectance = (desert * (1 + 0.1 * texture((h, w), 1))).astype(np.float32)
    reflectance[:, 30:80, 30:120] = np.array([0.46, 0.45, 0.46, 0.48])[:, None, None]  # a cloud
    cloudy = write_raster("cloudy.tif", reflectance, transform=transform, descriptions=FOUR)
    clear = np.zeros((h, w), np.uint8)
    said_clear = write_raster("clear.tif", clear, transform=transform, nodata=255)
    no_scl = write_raster(
        "no_scl.tif", clear, transform=transform, nodata=255, tags={"mask_source": "none"}
    )
    results = {}
    for name, mask, mode in (
        ("provided", said_clear, "provided"),
        ("spectral", said_clear, "spectral"),
        ("untagged", no_scl, "provided"),
    ):
        (tmp_path / name).mkdir()
        report, out = run(tmp_path / name, "pre", sar, cloudy, mask, sar, cloud_mask=mode)
        with rasterio.open(out["valid.tif"]) as src:
            results[name] = (report["cloud_mask"], src.read(1), report.get("cloud_mask_tests"))
    assert results["provided"][0] == "provided" and results["provided"][2] is None
    assert results["spectral"][2]["cloud"].startswith("bright, white and hazy in the visible")
    # Scene rows 30..80, cols 30..120 are grid rows 5..30, cols 5..50 (20 m margin, 2 m).
    assert (results["provided"][1][8:27, 8:47] == SAR_VALID | OPTICAL_VALID).all()
    for name in ("spectral", "untagged"):
        mode, valid = results[name][:2]
        assert mode == "spectral"
        assert (valid[8:27, 8:47] == SAR_VALID).all()
        inside = valid != VALID_NODATA
        assert (valid[45:][inside[45:]] == SAR_VALID | OPTICAL_VALID).all()


@pytest.mark.parametrize(
    "bands", [("green", "nir", "swir16"), ("blue", "green", "red", "nir", "swir16")]
)
def test_the_stack_holds_the_optical_bands_the_scene_has(tmp_path, write_raster, bands):
    """OMBRIA's green, NIR and SWIR (no blue, no red) or all five: each band warped into
    the stack under its name, after VV and VH; the spectral cloud test says which form ran."""
    sar, opt, msk = scene_files(write_raster, "g", optical_bands=bands)
    report, out = run(tmp_path, "pre", sar, opt, msk, sar, cloud_mask="spectral")
    with rasterio.open(out["stack.tif"]) as src:
        assert src.descriptions == ("VV", "VH", *bands)
        assert src.units == ("dB", "dB") + ("reflectance",) * len(bands)
        stack = src.read()
    inside = np.isfinite(stack[0])
    for i in range(len(bands)):  # band i was 0.1 + 0.01 i, plus zero-mean texture
        assert np.median(stack[2 + i][inside]) == pytest.approx(0.1 + 0.01 * i, abs=0.005)
    assert report["optical_bands"] == list(bands)
    swir_form = "no blue or red" in report["cloud_mask_tests"]["cloud"]
    assert swir_form == ("blue" not in bands)
    assert "MNDWI" in report["cloud_mask_tests"]["shadow"]


def test_green_and_nir_alone_run_no_cloud_test_and_the_report_says_so(tmp_path, write_raster):
    sar, opt, msk = scene_files(write_raster, "n", optical_bands=("green", "nir"))
    report, _ = run(tmp_path, "pre", sar, opt, msk, sar, cloud_mask="both")
    assert report["cloud_mask_tests"]["cloud"].startswith("not run: needs blue, green and red")


@pytest.mark.parametrize(
    ("bands", "message"),
    [
        (("nir", "green"), r"bands \['nir', 'green'\] are not in canonical order \(green, nir\)"),
        (("green", "nir", "B11"), "unknown optical band 'B11'"),
        (("blue", "red", "nir"), "no band given for green"),
    ],
)
def test_an_optical_scene_with_wrong_band_names_is_refused(tmp_path, write_raster, bands, message):
    sar, opt, msk = scene_files(write_raster, "w", optical_bands=bands)
    with pytest.raises(InputError, match=f"w_optical.tif: {message}"):
        run(tmp_path, "pre", sar, opt, msk, sar)


def test_a_green_nir_swir_scene_is_registered_to_its_sar(tmp_path):
    """A simulated scene with OMBRIA's bands only (green, NIR, SWIR 1.6 um): the optical
    shift is estimated from their brightness and applied, within the stage's bound."""
    event = event_config(300.0, seed=4)
    paths, truth = write_scenes(
        tmp_path,
        event,
        seed=4,
        post_offset_px=(0.8, -1.1),
        optical_offset_px=(1.3, 0.9),
        optical_bands=("green", "nir", "swir16"),
    )
    for period in ("pre", "post"):
        report = run_period(paths, period, event, tmp_path)
        assert report["optical_bands"] == ["green", "nir", "swir16"]
        record = report["shifts"]["optical_to_sar"]
        expected = expected_shifts(report, truth, 2.0)["optical_to_sar"]
        assert record["reliable"], record["reason"]
        assert np.hypot(*(np.array(record["shift"]) - expected)) <= 0.5
        with rasterio.open(tmp_path / f"{period}.tif") as src:
            assert src.descriptions == ("VV", "VH", "green", "nir", "swir16")


def test_the_optical_shift_is_measured_on_the_bands_at_full_resolution():
    """SWIR (20 m on Sentinel-2) is left out of the brightness matched to the SAR, so a
    scene registers the same whether its B11 came resampled or at full resolution."""
    from metaflood.coregister.shifts import registration_bands

    assert registration_bands(("blue", "green", "red", "nir", "swir16")) == [1, 2, 3, 4]
    assert registration_bands(("green", "nir", "swir16")) == [1, 2]

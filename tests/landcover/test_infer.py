"""Routed, tiled inference: routing, blending, products, and the heads that run."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pytest
import rasterio
import torch
from rasterio.transform import from_origin
from rasterio.windows import Window

from metaflood.core.classes import CLASS_NAMES, WATER, colormap
from metaflood.core.errors import InputError, ModelError
from metaflood.core.raster import write_cog
from metaflood.landcover.blending import Predictor, Rows, WindowStats, pad_rows, stream_blend
from metaflood.landcover.infer import predict_scene, predict_tile
from metaflood.landcover.routing import (
    ROUTE_JOINT,
    ROUTE_NONE,
    ROUTE_OPTICAL,
    ROUTE_OUTSIDE,
    ROUTE_SAR,
    head_weights,
)
from metaflood.landcover.windows import window_starts, window_weight
from metaflood.landcover.writers import encode_products
from metaflood.model import MetaRS, MetaRSConfig, metars_losses
from metaflood.model.checkpoint import save_checkpoint
from metaflood.model.normalization import Normalization
from metaflood.training.data import SyntheticCrops

UTM = "EPSG:32634"
TRANSFORM = from_origin(600000, 3630000, 2.0, 2.0)
BANDS = ["VV", "VH", "blue", "green", "red", "nir"]
H, W = 96, 150  # neither a multiple of the window nor of 32


def _scene(rng, h=H, w=W):
    """Water (dark SAR, dark NIR) on the left half, bright dry land on the right."""
    water = np.zeros((h, w), bool)
    water[:, : w // 2] = True
    vv = np.where(water, -22.0, -8.0) + rng.normal(0, 1.0, (h, w))
    vh = vv - 7.0
    refl = np.where(water[None], 0.04, 0.25) + rng.normal(0, 0.01, (4, h, w))
    stack = np.concatenate([np.stack([vv, vh]), refl]).astype(np.float32)
    label = np.where(water, WATER, 4).astype(np.uint8)  # 4 = barren
    return stack, label


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A tiny MetaRS overfitted on the two-class scene, saved as a real checkpoint."""
    torch.set_num_threads(2)
    rng = np.random.default_rng(0)
    stack, label = _scene(rng, 64, 128)
    pool = [{"sar": stack[:2], "optical": stack[2:], "label": label}]
    norm = Normalization.from_pool(pool)
    torch.manual_seed(0)
    model = MetaRS(MetaRSConfig(width=8, fpn_channels=16, decoder_channels=16))
    crops = SyntheticCrops(pool, 64, norm, length=4 * 25, seed=0)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for it in range(25):
        b = crops.batch(4 * it, 4)
        loss = metars_losses(model(b["sar"], b["optical"]), b["label"])["total"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    path = tmp_path_factory.mktemp("model") / "tiny.pt"
    save_checkpoint(path, model, norm)
    return path


def _valid_pattern():
    valid = np.full((H, W), 3, dtype=np.uint8)  # both
    valid[40:70] = 1  # SAR only (e.g. under cloud)
    valid[70:] = 2  # optical only (e.g. outside the SAR swath)
    valid[80:, 100:120] = 0  # neither
    valid[:, :3] = 255  # outside the AOI
    return valid


def _write_inputs(tmp_path, stack, valid):
    aligned = write_cog(
        tmp_path / "aligned.tif",
        stack,
        crs=UTM,
        transform=TRANSFORM,
        nodata=np.nan,
        descriptions=BANDS,
    )
    valid_path = write_cog(
        tmp_path / "valid.tif",
        valid,
        crs=UTM,
        transform=TRANSFORM,
        nodata=None,
        categorical=True,
    )
    return aligned, valid_path


def _outputs(tmp_path, tag=""):
    return [tmp_path / f"{name}{tag}.tif" for name in ("class", "proba", "route")]


def test_products_routing_and_accuracy(tmp_path, checkpoint):
    stack, label = _scene(np.random.default_rng(1))
    valid = _valid_pattern()
    stack[:2, 10, 50] = np.nan  # a SAR hole the availability mask does not know about
    aligned, valid_path = _write_inputs(tmp_path, stack, valid)
    out_class, out_proba, out_route = _outputs(tmp_path)
    summary = predict_scene(
        aligned,
        valid_path,
        checkpoint,
        out_class,
        out_proba,
        out_route,
        window_px=64,
        overlap=16,
        batch_size=3,
        device="cpu",
        threads=2,
    )

    expected_route = np.select(
        [valid == 255, valid == 3, valid == 1, valid == 2],
        [ROUTE_OUTSIDE, ROUTE_JOINT, ROUTE_SAR, ROUTE_OPTICAL],
        ROUTE_NONE,
    )
    expected_route[10, 50] = ROUTE_OPTICAL
    with rasterio.open(out_route) as src:
        route = src.read(1)
        assert src.nodata == 255 and src.descriptions == ("route",)
        assert src.crs.to_string() == UTM and src.transform == TRANSFORM
    np.testing.assert_array_equal(route, expected_route)
    assert summary["pixels"]["joint"] == int((expected_route == ROUTE_JOINT).sum())
    assert summary["pixels"]["none"] == 20 * 16

    with rasterio.open(out_class) as src:
        classes = src.read(1)
        assert src.nodata == 255 and src.descriptions == ("class",)
        assert src.crs.to_string() == UTM and src.transform == TRANSFORM
        assert src.colormap(1)[WATER] == colormap()[WATER]
    unmapped = (expected_route == ROUTE_NONE) | (expected_route == ROUTE_OUTSIDE)
    assert (classes[unmapped] == 255).all()
    for code in (ROUTE_JOINT, ROUTE_SAR, ROUTE_OPTICAL):
        region = expected_route == code
        is_water = classes[region] == WATER
        assert (is_water == (label[region] == WATER)).mean() > 0.9, code

    with rasterio.open(out_proba) as src:
        proba = src.read()
        assert src.count == 8 and src.descriptions == CLASS_NAMES and src.nodata == 255
        assert src.transform == TRANSFORM
    assert (proba[:, unmapped] == 255).all()
    total = proba[:, ~unmapped].astype(int).sum(axis=0)
    assert np.abs(total - 254).max() <= 8  # rounding of 8 bands
    mapped_proba = proba[:, ~unmapped]
    chosen = np.take_along_axis(mapped_proba, classes[~unmapped][None].astype(int), axis=0)[0]
    np.testing.assert_array_equal(chosen, mapped_proba.max(axis=0))  # up to rounding ties


def test_products_are_valid_cogs_written_strip_by_strip(tmp_path, checkpoint):
    from rio_cogeo.cogeo import cog_validate

    stack, _ = _scene(np.random.default_rng(5), 200, 90)  # several rows of windows
    aligned, valid_path = _write_inputs(tmp_path, stack, np.full((200, 90), 3, np.uint8))
    outs = _outputs(tmp_path)
    summary = predict_scene(
        aligned, valid_path, checkpoint, *outs, batch_size=4, window_px=64, overlap=16, device="cpu"
    )
    assert summary["tiles"]["tiles"] == 4 * 2  # rows start at 0, 48, 96, 136; columns 0, 26
    for path in outs:
        valid, errors, _ = cog_validate(str(path))
        assert valid, errors
    # Scaled probabilities vary smoothly: stored as differences (PREDICTOR=2); codes not.
    predictors = []
    for path in outs:
        with rasterio.open(path) as src:
            predictors.append(src.tags(ns="IMAGE_STRUCTURE").get("PREDICTOR"))
    assert predictors == [None, "2", None]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["aligned.tif", "valid.tif", "class.tif", "proba.tif", "route.tif"]
    )  # no strip files left behind


def test_probability_overviews_are_the_mean_of_the_mapped_pixels_under_them(tmp_path, checkpoint):
    from rio_cogeo.cogeo import cog_validate

    h, w = 531, 301  # odd sizes, over one 256 px block: overviews at factors 2 and 4
    stack, _ = _scene(np.random.default_rng(6), h, w)
    valid = np.full((h, w), 3, np.uint8)
    valid[200:300] = 1  # SAR only
    valid[400:, 100:180] = 0  # neither: nodata in every level
    valid[:, :5] = 255  # outside the AOI
    aligned, valid_path = _write_inputs(tmp_path, stack, valid)
    outs = _outputs(tmp_path)
    predict_scene(
        aligned,
        valid_path,
        checkpoint,
        *outs,
        batch_size=4,
        window_px=128,
        overlap=16,
        device="cpu",
    )
    path = outs[1]
    ok, errors, _ = cog_validate(str(path))
    assert ok, errors
    with rasterio.open(path) as src:
        assert src.overviews(1) == [2, 4]
        base = src.read()
    mapped = base[0] != 255
    for level, factor in enumerate([2, 4]):
        with rasterio.open(path, OVERVIEW_LEVEL=level) as src:
            overview = src.read()
        assert overview.shape == (8, -(-h // factor), -(-w // factor))
        rows, cols = overview.shape[1:]
        padded = np.zeros((8, rows * factor, cols * factor))
        padded[:, :h, :w] = np.where(mapped, base, 0)
        counts = np.zeros((rows * factor, cols * factor))
        counts[:h, :w] = mapped
        sums = padded.reshape(8, rows, factor, cols, factor).sum(axis=(2, 4))
        n = counts.reshape(rows, factor, cols, factor).sum(axis=(1, 3))
        covered = n > 0
        assert covered.any() and not covered.all()
        assert (overview[:, ~covered] == 255).all()
        # The mean of the float probabilities, so within one 8-bit level of the mean of
        # the rounded ones.
        mean = sums[:, covered] / n[covered]
        assert np.abs(overview[:, covered] - mean).max() <= 1.0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["aligned.tif", "valid.tif", "class.tif", "proba.tif", "route.tif"]
    )  # no overview files left behind


def test_strip_halo_makes_seam_weights_those_of_the_whole_scene(tmp_path):
    from metaflood.landcover.reading import SceneReader, seam_halo

    rng = np.random.default_rng(6)
    valid = np.where(rng.random((150, 60)) > 0.5, 3, 1).astype(np.uint8)
    valid[:, :20] = 3
    stack = rng.normal(size=(6, 150, 60)).astype(np.float32)
    aligned, valid_path = _write_inputs(tmp_path, stack, valid)

    class Identity:
        sar_bands, optical_bands, optical_usable = BANDS[:2], BANDS[2:], True

        def prepare(self, x, modality):
            return x

    whole = head_weights(valid & 1 > 0, valid & 2 > 0, 4)
    with rasterio.open(aligned) as src, rasterio.open(valid_path) as vsrc:
        reader = SceneReader(src, vsrc, Identity(), 4, 64)
        for y in (0, 48, 96, 120):
            weights = reader(y, 64).weights
            rows = min(64, 150 - y)
            for head in weights:
                np.testing.assert_allclose(weights[head][:rows, :60], whole[head][y : y + rows])
    assert seam_halo(4) == 12


def test_a_strip_under_cloud_reads_and_prepares_no_optical_band(tmp_path):
    from metaflood.landcover.reading import SceneReader

    rng = np.random.default_rng(7)
    valid = np.full((150, 60), 1, dtype=np.uint8)  # SAR only: under cloud
    valid[100:] = 3  # clear at the bottom
    stack = rng.normal(size=(6, 150, 60)).astype(np.float32)
    aligned, valid_path = _write_inputs(tmp_path, stack, valid)

    class Prepared:
        sar_bands, optical_bands, optical_usable = BANDS[:2], BANDS[2:], True
        modalities: list[str] = []

        def prepare(self, x, modality):
            self.modalities.append(modality)
            return x.copy()

    class RecordingReads:
        def __init__(self, dataset):
            self.dataset, self.bands = dataset, []

        def __getattr__(self, name):
            return getattr(self.dataset, name)

        def read(self, indexes, **kwargs):
            self.bands.append(list(indexes))
            return self.dataset.read(indexes, **kwargs)

    whole = head_weights(valid & 1 > 0, valid & 2 > 0, 4)
    loaded = Prepared()
    with rasterio.open(aligned) as src, rasterio.open(valid_path) as vsrc:
        recorded = RecordingReads(src)
        reader = SceneReader(recorded, vsrc, loaded, 4, 64)
        top = reader(0, 64)  # its halo ends 24 rows above the clear part
        assert top.optical is None and top.sar is not None
        assert recorded.bands == [[1, 2]] and loaded.modalities == ["sar"]
        np.testing.assert_array_equal(top.masks[2], False)
        edge = reader(48, 64)  # the cloud's edge: blended
        assert edge.optical is not None
        assert ((edge.weights["joint"] > 0) & (edge.weights["joint"] < 1)).any()
        np.testing.assert_array_equal(edge.optical[:, 52:64, :60], stack[2:, 100:112])
        assert recorded.bands[-1] == [1, 2, 3, 4, 5, 6]
        clear = reader(120, 64)  # clear, halo included: each pixel takes the joint head
        np.testing.assert_array_equal(clear.weights["joint"][:30, :60], 1.0)
        for y, rows in ((0, top), (48, edge), (120, clear)):
            n = min(64, 150 - y)
            for head in whole:
                np.testing.assert_allclose(rows.weights[head][:n, :60], whole[head][y : y + n])


def test_sar_only_scene_never_runs_optical_heads(tmp_path, checkpoint):
    stack, _ = _scene(np.random.default_rng(2), 64, 100)
    stack[2:] = np.nan  # no optical scene at all
    valid = np.ones((64, 100), dtype=np.uint8)
    aligned, valid_path = _write_inputs(tmp_path, stack, valid)
    summary = predict_scene(
        aligned,
        valid_path,
        checkpoint,
        *_outputs(tmp_path),
        batch_size=4,
        window_px=64,
        overlap=16,
        device="cpu",
    )
    tiles = summary["tiles"]
    assert tiles["tiles_run"] == tiles["tiles"] == tiles["tiles_sar"] > 1
    assert not any("optical" in k or "joint" in k for k in tiles)


def test_result_barely_depends_on_the_windows(tmp_path, checkpoint):
    stack, _ = _scene(np.random.default_rng(3))
    aligned, valid_path = _write_inputs(tmp_path, stack, _valid_pattern())
    maps = []
    for window_px, overlap, tag in ((64, 16, "a"), (128, 32, "b"), (160, 0, "c")):
        predict_scene(
            aligned,
            valid_path,
            checkpoint,
            *_outputs(tmp_path, tag),
            batch_size=4,
            window_px=window_px,
            overlap=overlap,
            device="cpu",
        )
        with rasterio.open(tmp_path / f"class{tag}.tif") as src:
            maps.append(src.read(1))
    assert (maps[0] == maps[1]).mean() > 0.97
    # Without overlap, window edges show: the authors' align_corners=True upsampling places
    # a window's border pixels up to 1.5 px off, which moves class boundaries there.
    assert (maps[0] == maps[2]).mean() > 0.95


def test_wrong_grid_and_missing_sar_band_are_refused(tmp_path, checkpoint):
    stack, _ = _scene(np.random.default_rng(4), 32, 32)
    aligned, _ = _write_inputs(tmp_path, stack, np.full((32, 32), 3, np.uint8))
    shifted = write_cog(
        tmp_path / "v2.tif",
        np.full((32, 32), 3, np.uint8),
        crs=UTM,
        transform=from_origin(600002, 3630000, 2.0, 2.0),
        nodata=None,
    )
    with pytest.raises(InputError, match="does not match"):
        predict_scene(
            aligned,
            shifted,
            checkpoint,
            *_outputs(tmp_path),
            batch_size=4,
            window_px=64,
            overlap=0,
            device="cpu",
        )
    no_vh = write_cog(
        tmp_path / "novh.tif",
        stack[[0, 2, 3, 4, 5]],
        crs=UTM,
        transform=TRANSFORM,
        nodata=np.nan,
        descriptions=[BANDS[i] for i in (0, 2, 3, 4, 5)],
    )
    with pytest.raises(
        ModelError, match=r"needs SAR bands \['VV', 'VH'\]; the data lacks \['VH'\]"
    ):
        predict_scene(
            no_vh,
            tmp_path / "valid.tif",
            checkpoint,
            *_outputs(tmp_path),
            batch_size=4,
            window_px=64,
            overlap=0,
            device="cpu",
        )


def test_a_stack_without_the_models_optical_bands_is_mapped_by_the_sar_head(
    tmp_path, checkpoint, caplog
):
    """The checkpoint's optical head takes blue, green, red and NIR; a stack from a source
    with green, NIR and SWIR only (no blue, no red) cannot feed it: every pixel is routed
    as if optical were absent, exactly as a scene whose availability says SAR only, with
    a log line and the summary saying why. Not an error: SAR is there."""
    stack, label = _scene(np.random.default_rng(6), 64, 96)
    swir = np.where(label == WATER, 0.01, 0.3)[None].astype(np.float32)
    ombria = np.concatenate([stack[[0, 1, 3, 5]], swir])  # VV, VH, green, nir, swir16
    bands = ["VV", "VH", "green", "nir", "swir16"]
    aligned = write_cog(
        tmp_path / "ombria.tif",
        ombria,
        crs=UTM,
        transform=TRANSFORM,
        nodata=np.nan,
        descriptions=bands,
    )
    _, both = _write_inputs(tmp_path, stack, np.full((64, 96), 3, np.uint8))
    with caplog.at_level("WARNING", logger="metaflood.landcover.infer"):
        summary = predict_scene(
            aligned,
            both,
            checkpoint,
            *_outputs(tmp_path, "_o"),
            batch_size=4,
            window_px=64,
            overlap=16,
            device="cpu",
        )
    assert "the stack lacks blue, red" in caplog.text and "(SAR head)" in caplog.text
    assert summary["optical"] == {
        "usable": False,
        "model_bands": ["blue", "green", "red", "nir"],
        "missing_bands": ["blue", "red"],
        "routed_as": "optical absent: SAR head",
    }
    assert summary["pixels"]["sar_only"] == 64 * 96 and summary["pixels"]["joint"] == 0
    aligned_full, sar_only = _write_inputs(tmp_path, stack, np.full((64, 96), 1, np.uint8))
    reference = predict_scene(
        aligned_full,
        sar_only,
        checkpoint,
        *_outputs(tmp_path, "_s"),
        batch_size=4,
        window_px=64,
        overlap=16,
        device="cpu",
    )
    assert reference["optical"] == {"usable": True, "model_bands": ["blue", "green", "red", "nir"]}
    for name in ("class", "proba", "route"):
        with (
            rasterio.open(tmp_path / f"{name}_o.tif") as a,
            rasterio.open(tmp_path / f"{name}_s.tif") as b,
        ):
            np.testing.assert_array_equal(a.read(), b.read())
    tile = predict_tile(
        aligned,
        both,
        checkpoint,
        Window(0, 0, 96, 64),
        tmp_path / "tp.tif",
        tmp_path / "tr.tif",
        batch_size=4,
        window_px=64,
        overlap=16,
        device="cpu",
    )
    assert tile["optical"]["usable"] is False
    with rasterio.open(tmp_path / "tr.tif") as src:
        assert (src.read(1) == ROUTE_SAR).all()


def test_a_scene_job_and_a_tile_job_refuse_a_mask_in_another_crs(tmp_path, checkpoint):
    stack, _ = _scene(np.random.default_rng(5), 32, 32)
    aligned, _ = _write_inputs(tmp_path, stack, np.full((32, 32), 3, np.uint8))
    other_crs = write_cog(  # same numbers, another UTM zone: a different place
        tmp_path / "v35.tif",
        np.full((32, 32), 3, np.uint8),
        crs="EPSG:32635",
        transform=TRANSFORM,
        nodata=None,
    )
    with pytest.raises(InputError, match="EPSG:32635.* does not match"):
        predict_scene(
            aligned,
            other_crs,
            checkpoint,
            *_outputs(tmp_path),
            batch_size=4,
            window_px=64,
            overlap=0,
            device="cpu",
        )
    out_proba, out_route = tmp_path / "tile_proba.tif", tmp_path / "tile_route.tif"
    with pytest.raises(InputError, match="EPSG:32635.* does not match"):
        predict_tile(
            aligned,
            other_crs,
            checkpoint,
            Window(0, 0, 32, 32),
            out_proba,
            out_route,
            batch_size=4,
            window_px=64,
            overlap=0,
            device="cpu",
        )
    assert not out_proba.exists() and not out_route.exists()


# --- tiling and blending, with a pointwise stand-in for the network ----------------------


def _pointwise(rng):
    """A per-pixel 'network': tiling cannot change its output, so blending must not.

    Like MetaRS, each head reads only its own modalities, and a modality no requested
    head reads is not passed (None)."""
    reads = {"sar": ("sar",), "optical": ("optical",), "joint": ("sar", "optical")}
    bands = {"sar": 2, "optical": 4}
    mats = {h: rng.normal(size=(8, sum(bands[m] for m in ms))) for h, ms in reads.items()}

    def predict(sar, optical, heads):
        given = {"sar": sar, "optical": optical}
        for m, x in given.items():
            assert (x is None) == (not any(m in reads[h] for h in heads)), (m, heads)
        out = {}
        for h in heads:
            x = np.concatenate([given[m] for m in reads[h]], axis=1)  # (B, bands, t, t)
            z = np.einsum("kc,bcyx->bkyx", mats[h], x)
            e = np.exp(z - z.max(axis=1, keepdims=True))
            out[h] = e / e.sum(axis=1, keepdims=True)
        return out

    return predict


def test_window_batches_are_in_the_network_s_memory_order():
    from metaflood.landcover.blending import _channels_last, window_batch

    strip = np.random.default_rng(2).normal(size=(4, 32, 90)).astype(np.float32)
    batch = window_batch(strip, [0, 29, 58], 32)
    np.testing.assert_array_equal(batch, np.stack([strip[:, :, x : x + 32] for x in (0, 29, 58)]))
    on_device = _channels_last(batch, torch.device("cpu"))
    assert on_device.is_contiguous(memory_format=torch.channels_last)
    assert on_device.data_ptr() == batch.ctypes.data  # no second copy


@pytest.mark.parametrize(("window_px", "overlap"), [(32, 0), (32, 8), (64, 16), (128, 0), (96, 40)])
def test_blending_is_exact_for_any_windows(window_px, overlap):
    rng = np.random.default_rng(5)
    h, w = 70, 101
    sar, opt = rng.normal(size=(2, h, w)), rng.normal(size=(4, h, w))
    sar_ok = rng.random((h, w)) > 0.2
    opt_ok = np.zeros((h, w), bool)
    opt_ok[:, 40:] = True
    weights = head_weights(sar_ok, opt_ok, radius=3)
    predict = _pointwise(rng)
    direct = predict(sar[None], opt[None], ("sar", "optical", "joint"))
    expected = sum(weights[k] * direct[k][0] for k in direct)
    proba, stats = blend_windows(
        predict,
        sar,
        opt,
        weights,
        window_px=window_px,
        overlap=overlap,
        batch_size=2,
        num_classes=8,
    )
    np.testing.assert_allclose(proba, expected, atol=1e-5)
    assert stats["tiles_run"] <= stats["tiles"]


def test_head_weights_partition_and_blend_only_inside_both():
    sar_ok = np.ones((40, 60), bool)
    opt_ok = np.zeros((40, 60), bool)
    opt_ok[:, :30] = True  # cloud over the right half
    sar_ok[:5] = False
    w = head_weights(sar_ok, opt_ok, radius=4)
    total = w["joint"] + w["sar"] + w["optical"]
    valid = sar_ok | opt_ok
    np.testing.assert_allclose(total[valid], 1.0, atol=1e-6)
    assert (total[~valid] == 0).all()
    assert (w["sar"][10:, 30:] == 1).all()  # SAR-only pixels: SAR head alone
    assert (w["optical"][:5, :30] == 1).all()  # optical-only pixels: optical head alone
    assert w["joint"][20, 0] == 1  # deep inside the clear area: joint head alone
    row = w["joint"][20, :30]
    assert 0 < row[-1] < 0.6 and (np.diff(row) <= 1e-6).all()  # fades out towards the cloud
    assert np.abs(np.diff(row)).max() < 0.25


def test_encoding_takes_the_first_of_equal_maxima_and_marks_unmapped_pixels():
    rng = np.random.default_rng(3)
    proba = rng.dirichlet(np.ones(8), size=(6, 9)).transpose(2, 0, 1).astype(np.float32)
    proba[:, 0, :3] = 0.125  # ties everywhere: class 0
    proba[:, 1, 0] = [0, 0.4, 0, 0.4, 0.2, 0, 0, 0]  # a tie between 1 and 3: class 1
    proba[:, 2, 0] = [0, 0, 0, 0, 0, 0, 0, 1.0000001]  # a hair over 1 rounds to 254
    route = np.full((6, 9), ROUTE_JOINT, np.uint8)
    route[5] = [ROUTE_SAR, ROUTE_OPTICAL, ROUTE_NONE, ROUTE_OUTSIDE, *[ROUTE_SAR] * 5]
    for given in (proba, torch.from_numpy(proba)):
        classes, proba_u8 = encode_products(given, route)
        mapped = np.isin(route, [ROUTE_JOINT, ROUTE_SAR, ROUTE_OPTICAL])
        assert classes.dtype == np.uint8 and proba_u8.dtype == np.uint8
        np.testing.assert_array_equal(classes[mapped], proba.argmax(axis=0)[mapped])
        assert classes[1, 0] == 1 and (classes[0, :3] == 0).all()
        assert proba_u8[7, 2, 0] == 254 and classes[2, 0] == 7
        assert (classes[~mapped] == 255).all() and (proba_u8[:, ~mapped] == 255).all()
        np.testing.assert_array_equal(
            proba_u8[:, mapped], np.rint(np.clip(proba, 0, 1) * 254)[:, mapped]
        )


def test_the_argmax_over_float_bits_is_numpy_s_argmax():
    from metaflood.landcover.writers import first_argmax

    rng = np.random.default_rng(4)
    # Coarse values: many exact ties, zeros, a row of all-zero (unmapped) pixels and ones.
    proba = (rng.integers(0, 5, size=(8, 40, 30)) / 4).astype(np.float32)
    proba[:, 0] = 0.0
    proba[:, 1, :8] = np.eye(8, dtype=np.float32)
    channels_last = torch.from_numpy(np.ascontiguousarray(proba.transpose(1, 2, 0)))
    for given in (torch.from_numpy(proba), channels_last.permute(2, 0, 1)):
        np.testing.assert_array_equal(first_argmax(given).numpy(), proba.argmax(axis=0))
    as_double = torch.from_numpy(proba.astype(np.float64))
    np.testing.assert_array_equal(first_argmax(as_double).numpy(), proba.argmax(axis=0))


def test_windows_cover_the_image():
    assert window_starts(50, 64, 16) == [0]
    starts = window_starts(150, 64, 16)
    assert starts[0] == 0 and starts[-1] == 150 - 64
    assert all(b - a <= 48 for a, b in zip(starts, starts[1:], strict=False))
    wgt = window_weight(64, 16)
    assert wgt.min() > 0 and wgt[32, 32] == 1 and wgt[0, 0] < wgt[8, 8] < 1


def test_a_derived_route_blur_equals_filtering_it():
    from metaflood.landcover.routing import seam_blur, smoothed_routes

    rng = np.random.default_rng(8)
    opt_ok = rng.random((80, 90)) > 0.4  # SAR everywhere, cloud in speckles
    masks = {"joint": opt_ok, "sar": ~opt_ok, "optical": np.zeros_like(opt_ok)}
    smooth = smoothed_routes(masks, np.zeros_like(opt_ok), 5)
    for head, mask in masks.items():
        np.testing.assert_allclose(smooth[head], seam_blur(mask, 5), atol=1e-6)
    unmapped = np.zeros_like(opt_ok)
    unmapped[:10] = True  # with gaps nothing is derived, and the gaps need no filter
    masks = {k: m & ~unmapped for k, m in masks.items()}
    smooth = smoothed_routes(masks, unmapped, 5)
    np.testing.assert_allclose(smooth["sar"], seam_blur(masks["sar"], 5), atol=1e-6)


def test_seam_blur_is_three_box_passes_along_each_axis_with_edges_extended():
    from scipy.ndimage import uniform_filter1d

    from metaflood.landcover.routing import seam_blur

    mask = np.random.default_rng(11).random((40, 57)) > 0.6
    expected = mask.astype(np.float64)
    for axis in (0, 1):
        for _ in range(3):
            expected = uniform_filter1d(expected, 2 * 3 + 1, axis=axis, mode="nearest")
    np.testing.assert_allclose(seam_blur(mask, 3), expected, atol=1e-6)


def test_seam_blur_is_a_bell_of_finite_reach_cut_to_the_part_kept():
    from scipy.ndimage import gaussian_filter

    from metaflood.landcover.reading import seam_halo
    from metaflood.landcover.routing import seam_blur

    point = np.zeros((61, 61), bool)
    point[30, 30] = True
    bell = seam_blur(point, 4)
    reach = seam_halo(4)
    assert bell.sum() == pytest.approx(1.0, abs=1e-5)  # a blur: constants stay constant
    assert (bell[30, 30 - reach : 30 + reach + 1] > 0).all()
    assert (bell[:, : 30 - reach] == 0).all() and (bell[: 30 - reach] == 0).all()
    np.testing.assert_allclose(bell, bell.T, atol=1e-9)  # the same along both axes
    # Close to the Gaussian of the same variance (sigma^2 = r (r + 1) = 20).
    gauss = gaussian_filter(point.astype(float), np.sqrt(20.0))
    assert np.abs(bell - gauss).max() < 0.15 * gauss.max()  # 12%: a flatter top
    rng = np.random.default_rng(3)
    mask = rng.random((70, 50)) > 0.5
    keep = (slice(12, 58), slice(5, 40))
    np.testing.assert_allclose(seam_blur(mask, 4, keep), seam_blur(mask, 4)[keep], atol=1e-6)


def test_reading_ahead_in_a_thread_makes_the_same_products(tmp_path, checkpoint):
    stack, _ = _scene(np.random.default_rng(9), 150, 130)
    valid = np.where(stack[0] > -15, 3, 1).astype(np.uint8)  # SAR only over the water
    aligned, valid_path = _write_inputs(tmp_path, stack, valid)
    products = {}
    for ahead in (False, True):
        tag = "ahead" if ahead else "inline"
        summary = predict_scene(
            aligned,
            valid_path,
            checkpoint,
            *_outputs(tmp_path, tag),
            batch_size=4,
            window_px=64,
            overlap=16,
            device="cpu",
            read_ahead=ahead,
        )
        products[ahead] = (summary, [_read_all(p) for p in _outputs(tmp_path, tag)])
    assert products[True][0] == products[False][0]
    for a, b in zip(products[True][1], products[False][1], strict=True):
        assert np.array_equal(a, b)


def test_a_read_failing_ahead_surfaces_in_the_caller():
    from metaflood.landcover.blending import rows_in_order

    def read_rows(y, rows):
        if y == 2:
            raise InputError("block at row 2 is corrupt")
        return y

    assert list(rows_in_order(read_rows, [], 1, ahead=True)) == []
    strips = rows_in_order(read_rows, [0, 1, 2, 3], 1, ahead=True)
    assert [next(strips), next(strips)] == [0, 1]
    with pytest.raises(InputError, match="row 2"):
        next(strips)


def _read_all(path):
    with rasterio.open(path) as src:
        return src.read()


def test_reading_ahead_only_beside_a_gpu_or_with_spare_cores():
    import os

    from metaflood.landcover.reading import reads_ahead, usable_cores

    cpu = torch.device("cpu")
    assert usable_cores() == len(os.sched_getaffinity(0))
    assert reads_ahead(None, torch.device("cuda"), 64)
    assert reads_ahead(None, cpu, usable_cores() - 1) == (usable_cores() > 1)
    assert not reads_ahead(None, cpu, usable_cores())  # the network takes every core
    assert reads_ahead(True, cpu, usable_cores()) and not reads_ahead(False, cpu, 1)


def test_closing_the_rows_early_waits_for_the_read_in_flight():
    import time

    from metaflood.landcover.blending import rows_in_order

    running: list[int] = []

    def read_rows(y, rows):
        running.append(y)
        time.sleep(0.05)
        running.remove(y)
        return y

    strips = rows_in_order(read_rows, [0, 1, 2], 1, ahead=True)
    assert next(strips) == 0  # row 1 is being read in the thread now
    strips.close()  # as when the consumer fails half-way, before it closes the datasets
    assert running == []


# --- test helpers ------------------------------------------------------------


def blend_windows(
    predict: Predictor,
    sar: np.ndarray,
    optical: np.ndarray,
    weights: Mapping[str, np.ndarray],
    *,
    window_px: int,
    overlap: int,
    batch_size: int,
    num_classes: int,
) -> tuple[np.ndarray, dict[str, int]]:
    """In-memory form of `stream_blend`: the whole (classes, H, W) probability array."""
    h, w = sar.shape[-2:]
    W = max(w, window_px)

    def read_rows(y: int, rows: int) -> Rows:
        return Rows(
            pad_rows(sar[:, y : y + rows], rows, W),
            pad_rows(optical[:, y : y + rows], rows, W),
            {k: pad_rows(v[y : y + rows], rows, W) for k, v in weights.items()},
        )

    stats = WindowStats()
    strips = stream_blend(
        predict,
        read_rows,
        (h, w),
        window_px=window_px,
        overlap=overlap,
        batch_size=batch_size,
        num_classes=num_classes,
        stats=stats,
    )
    proba = torch.cat([p for _, p, _ in strips], dim=1).numpy()
    return proba, stats.to_dict()

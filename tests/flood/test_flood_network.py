"""The flood network's line of evidence on the event grid (flood/network.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
import torch
from rasterio.transform import from_origin

from metaflood.core.errors import InputError
from metaflood.core.raster import write_cog
from metaflood.flood.change import NETWORK_NODATA
from metaflood.flood.network import map_flood_network
from metaflood.model.flood_network import (
    FloodNetworkInputs,
    apply_statistics,
    build_flood_network,
    flood_probability,
    load_flood_network,
    save_flood_network,
    standardised,
)

SIZE = 96
TRANSFORM = from_origin(600000, 3630000, 10.0, 10.0)
OPTICAL = ("swir16", "nir", "green")
SAR_BIT, OPTICAL_BIT = 1, 2


def _scene(rng: np.random.Generator, flooded: bool) -> dict[str, np.ndarray]:
    water = np.zeros((SIZE, SIZE), bool)
    water[:, 40:50] = True  # a river
    if flooded:
        water[30:70, 20:80] = True
    vv = np.where(water, -21.0, -9.0) + rng.normal(0, 1.5, water.shape)
    return {
        "VV": vv.astype(np.float32),
        "green": np.where(water, 0.06, 0.08).astype(np.float32),
        "nir": np.where(water, 0.02, 0.25).astype(np.float32),
        "swir16": np.where(water, 0.01, 0.2).astype(np.float32),
    }


@pytest.fixture
def event(tmp_path):
    """Aligned pre- and post-event stacks (VV and three optical bands) and their
    availability: the post-event optical image clouded over its left half, SAR missing in
    one corner of the pre-event stack."""
    rng = np.random.default_rng(0)
    paths = {}
    for period, flooded in (("pre", False), ("post", True)):
        bands = _scene(rng, flooded)
        paths[period] = write_cog(
            tmp_path / f"{period}.tif",
            np.stack([bands[b] for b in ("VV", "green", "nir", "swir16")]),
            crs="EPSG:32634",
            transform=TRANSFORM,
            nodata=None,
            descriptions=("VV", "green", "nir", "swir16"),
        )
        valid = np.full((SIZE, SIZE), SAR_BIT | OPTICAL_BIT, np.uint8)
        if period == "post":
            valid[:, : SIZE // 2] = SAR_BIT
        else:
            valid[:8, :8] = OPTICAL_BIT
        paths[f"{period}_valid"] = write_cog(
            tmp_path / f"{period}_valid.tif",
            valid,
            crs="EPSG:32634",
            transform=TRANSFORM,
            nodata=255,
            descriptions=("availability",),
            categorical=True,
        )
    return paths


def _checkpoint(path, presence_band=False, seed=0):
    torch.manual_seed(seed)
    inputs = FloodNetworkInputs("unet", OPTICAL, presence_band=presence_band)
    save_flood_network(path, build_flood_network(inputs), inputs)
    return path


def _run(event, checkpoint, out_dir, **kwargs):
    summary = map_flood_network(
        [event["pre"], event["post"]],
        [event["pre_valid"], event["post_valid"]],
        checkpoint,
        out=out_dir / "network.tif",
        out_summary=out_dir / "network.json",
        **kwargs,
    )
    with rasterio.open(out_dir / "network.tif") as src:
        return src.read(1), src.profile | {"descriptions": src.descriptions}, summary


def _expected(event, checkpoint):
    """The network on each whole image, standardised as in training: the joint head's
    probability and the SAR head's."""
    net, inputs = load_flood_network(checkpoint)
    sar, optical = [], []
    for period in ("pre", "post"):
        with rasterio.open(event[period]) as src, rasterio.open(event[f"{period}_valid"]) as v:
            stack, valid = src.read().astype(np.float32), v.read(1)
        vv = stack[:1].copy()
        vv[:, valid & SAR_BIT == 0] = np.nan
        opt = stack[[3, 2, 1]].copy()  # swir16, nir, green
        opt[:, valid & OPTICAL_BIT == 0] = np.nan
        sar.append(standardised(vv, inputs.statistics))
        optical.append(standardised(opt, inputs.statistics))
    as_tensor = lambda arrays: torch.from_numpy(np.concatenate(arrays)[None])  # noqa: E731
    return flood_probability([net], as_tensor(sar), as_tensor(optical), ("joint", "sar"))


def test_the_joint_head_maps_where_both_optical_images_are_clear_the_sar_head_elsewhere(
    tmp_path, event
):
    checkpoint = _checkpoint(tmp_path / "flood.pt")
    percent, profile, summary = _run(event, checkpoint, tmp_path)
    assert profile["nodata"] == NETWORK_NODATA and profile["crs"].to_epsg() == 32634
    assert profile["transform"] == TRANSFORM
    assert profile["descriptions"] == ("flood_network_probability",)
    expected = _expected(event, checkpoint)
    clear = np.zeros((SIZE, SIZE), bool)
    clear[:, SIZE // 2 :] = True
    sar_missing = np.zeros((SIZE, SIZE), bool)
    sar_missing[:8, :8] = True
    assert (percent[sar_missing] == NETWORK_NODATA).all()
    mapped = ~sar_missing
    joint = np.rint(expected["joint"] * 100)
    sar_only = np.rint(expected["sar"] * 100)
    assert np.abs(percent[clear & mapped] - joint[clear & mapped]).max() <= 1
    assert np.abs(percent[~clear & mapped] - sar_only[~clear & mapped]).max() <= 1
    assert summary["pixels"]["mapped"] == mapped.sum()
    assert summary["pixels"]["joint"] == (clear & mapped).sum()
    assert summary["optical_read"] is True
    assert json.loads((tmp_path / "network.json").read_text())["inputs"]["network"] == "unet"


def test_blocks_with_their_halo_map_as_the_whole_grid(tmp_path, event):
    checkpoint = _checkpoint(tmp_path / "flood.pt", presence_band=True, seed=1)
    (tmp_path / "whole").mkdir()
    (tmp_path / "blocks").mkdir()
    whole, _, _ = _run(event, checkpoint, tmp_path / "whole")
    blocks, _, _ = _run(event, checkpoint, tmp_path / "blocks", block_px=32)
    assert np.abs(whole.astype(int) - blocks.astype(int)).max() <= 1


def _with_bands(stack, path, names):
    """A copy of `stack` with only the bands named."""
    with rasterio.open(stack) as src:
        bands = src.read([src.descriptions.index(n) + 1 for n in names])
    return write_cog(
        path, bands, crs="EPSG:32634", transform=TRANSFORM, nodata=None, descriptions=names
    )


def test_a_stack_without_the_optical_bands_is_mapped_from_sar_alone(tmp_path, event):
    """A post-event stack with VV only: no optical band is invented, the SAR head maps."""
    event["post"] = _with_bands(event["post"], tmp_path / "post_vv.tif", ("VV",))
    checkpoint = _checkpoint(tmp_path / "flood.pt")
    percent, _, summary = _run(event, checkpoint, tmp_path)
    assert summary["optical_read"] is False and summary["pixels"]["joint"] == 0
    assert (percent[8:, 8:] != NETWORK_NODATA).all()


def test_a_stack_without_vv_and_a_file_that_is_no_checkpoint_are_named(tmp_path, event):
    optical = ("green", "nir", "swir16")
    event["pre"] = _with_bands(event["pre"], tmp_path / "pre_optical.tif", optical)
    with pytest.raises(InputError, match="pre_optical.tif: no band named 'VV'"):
        _run(event, _checkpoint(tmp_path / "flood.pt"), tmp_path)
    not_a_checkpoint = tmp_path / "weights.pt"
    torch.save(
        build_flood_network(FloodNetworkInputs("unet", OPTICAL)).state_dict(), not_a_checkpoint
    )
    with pytest.raises(InputError, match="weights.pt: not a flood network checkpoint"):
        _run(event, not_a_checkpoint, tmp_path)
    assert not (tmp_path / "network.tif").exists()


def test_a_missing_or_infinite_value_reads_as_the_centre():
    """-inf dB (no backscatter at all) is standardised to 0, the centre, as a missing
    value is, not to a huge number."""
    bands = np.array([[[-np.inf, np.nan, 3.0, np.inf]]], np.float32)
    assert apply_statistics(bands, ([1.0], [2.0])).tolist() == [[[0.0, 0.0, 1.0, 0.0]]]


def test_a_stack_with_almost_no_sar_is_named(tmp_path, event):
    valid = np.full((SIZE, SIZE), OPTICAL_BIT, np.uint8)
    valid[:10, :10] |= SAR_BIT  # 100 pixels: too few to standardise the image by
    event["post_valid"] = write_cog(
        tmp_path / "post_valid_few.tif",
        valid,
        crs="EPSG:32634",
        transform=TRANSFORM,
        nodata=255,
        categorical=True,
    )
    with pytest.raises(InputError, match="post.tif: too few valid SAR pixels"):
        _run(event, _checkpoint(tmp_path / "flood.pt"), tmp_path)
    assert not (tmp_path / "network.tif").exists()

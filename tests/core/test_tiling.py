"""Tile layout, blending weights and gathers (tiling.py, gather.py)."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin
from rasterio.windows import Window
from rasterio.windows import transform as window_transform

from metaflood.core.errors import ConfigError
from metaflood.core.mosaic import copy_gather, tile_frame
from metaflood.core.raster import write_cog
from metaflood.core.tiling import (
    axis_bounds,
    blend_core,
    compute_in_order,
    dask_scheduler,
    tile_layout,
    tile_weight,
)


@pytest.mark.parametrize(("height", "width", "tile_px"), [(150, 151, 80), (1000, 333, 256)])
def test_tile_cores_partition_the_grid_and_padded_windows_stay_inside(height, width, tile_px):
    tiles = tile_layout(height, width, tile_px, 16)
    count = np.zeros((height, width), int)
    for tile in tiles:
        c, p = tile.core, tile.padded
        assert c.height <= tile_px and c.width <= tile_px
        count[c.row_off : c.row_off + c.height, c.col_off : c.col_off + c.width] += 1
        assert p.row_off >= 0 and p.col_off >= 0
        assert p.row_off + p.height <= height and p.col_off + p.width <= width
        assert p.row_off <= c.row_off and p.row_off + p.height >= c.row_off + c.height
    assert (count == 1).all()
    assert len({t.id for t in tiles}) == len(tiles)


def test_a_grid_that_fits_is_one_tile_and_cores_are_balanced():
    assert [t.id for t in tile_layout(500, 400, 512, 64)] == ["r0c0"]
    assert axis_bounds(1000, 400) == [0, 333, 667, 1000]  # no thin sliver at the far edge


@pytest.mark.parametrize("side", [16, 101, 127])
def test_a_small_grid_that_fits_one_tile_runs_untiled_whatever_the_overlap(side):
    """Issue 21: AOIs of 16 to 127 px were refused as tiles narrower than twice the
    default overlap (64 px), though they fit one tile and have no overlap to keep."""
    tiles = tile_layout(side, side + 3, 4096, 64)
    assert [t.id for t in tiles] == ["r0c0"]
    assert tiles[0].core == tiles[0].padded == Window(0, 0, side + 3, side)


def test_the_issues_small_aoi_passes_the_start_up_checks(tmp_path):
    import yaml

    from metaflood.core.config import event_grid, event_tiles
    from metaflood.workflow import check_config_file
    from tests.helpers.events import demo_event_config

    event = demo_event_config(aoi={"bbox": [22.630, 32.758, 22.6321, 32.7598]})
    grid = event_grid(event, "events.small")
    assert 16 <= min(grid.width, grid.height) < 128
    assert event_tiles(grid, {"tile_px": 4096, "overlap_px": 64}) == ["r0c0"]
    path = tmp_path / "small.yaml"
    path.write_text(yaml.safe_dump({"events": {"small": event}}))
    check_config_file(path)  # raised "tiles of 101 px are narrower than twice the overlap"


def test_an_overlap_wider_than_half_a_tile_is_refused():
    with pytest.raises(ConfigError, match="twice the overlap"):
        tile_layout(300, 300, 100, 60)


def test_blending_weights_sum_to_one_everywhere():
    height, width, overlap = 150, 151, 16
    tiles = tile_layout(height, width, 80, overlap)
    total = np.zeros((height, width))
    for tile in tiles:
        p = tile.padded
        total[p.row_off : p.row_off + p.height, p.col_off : p.col_off + p.width] += tile_weight(
            tile, height, width, overlap
        )
    assert np.allclose(total, 1.0)


def test_a_gathered_mosaic_of_a_smooth_field_equals_the_field():
    height, width, overlap = 150, 151, 16
    yy, xx = np.mgrid[0:height, 0:width]
    field = np.stack([np.sin(yy / 17.0) + np.cos(xx / 23.0), yy * 0.01 + xx * 0.02])
    tiles = tile_layout(height, width, 80, overlap)

    def read(tile, window):  # every tile sees the field (as a tile job would, up to noise)
        return field[:, window.row_off : window.row_off + window.height, window.col_off :][
            :, :, : window.width
        ]

    for target in tiles:
        c = target.core
        blended = blend_core(target, tiles, read, height=height, width=width, overlap=overlap)
        expected = field[:, c.row_off : c.row_off + c.height, c.col_off : c.col_off + c.width]
        assert np.allclose(blended, expected, atol=1e-5)


def test_blending_is_a_convex_mix_across_the_seam():
    """Two tiles that disagree (0 and 1) meet in a linear ramp, not a step."""
    height, width, overlap = 40, 160, 16
    tiles = tile_layout(height, width, 80, overlap)
    assert len(tiles) == 2

    def read(tile, window):
        return np.full((1, window.height, window.width), float(tile.id == "r0c1"))

    row = np.concatenate(
        [blend_core(t, tiles, read, height=height, width=width, overlap=overlap) for t in tiles],
        axis=2,
    )[0, 0]
    assert row[: 80 - overlap].max() == 0 and row[80 + overlap :].min() == 1
    assert np.all(np.diff(row) >= 0) and np.abs(np.diff(row)).max() <= 1 / (2 * overlap) + 1e-6


def test_copy_gather_rebuilds_the_raster_from_its_tiles(tmp_path):
    height, width = 150, 151
    transform = from_origin(500000, 3600000, 2.0, 2.0)
    data = np.arange(height * width, dtype=np.float32).reshape(1, height, width)
    paths = []
    for tile in tile_layout(height, width, 80, 16):
        c = tile.core
        path = tmp_path / f"{tile.id}.tif"
        write_cog(
            path,
            data[:, c.row_off : c.row_off + c.height, c.col_off : c.col_off + c.width],
            crs="EPSG:32634",
            transform=window_transform(c, transform),
            nodata=np.nan,
            descriptions=["value"],
        )
        paths.append(path)
    frame = tile_frame(paths)
    assert (frame.height, frame.width, frame.transform) == (height, width, transform)
    out = tmp_path / "mosaic.tif"
    copy_gather(paths, out)
    with rasterio.open(out) as src:
        assert src.transform == transform and src.descriptions == ("value",)
        assert np.isnan(src.nodata)
        assert np.array_equal(src.read(), data)


@pytest.mark.parametrize("scheduler", ["threads", "distributed"])
def test_dask_runs_the_tasks_in_order_on_the_given_threads(scheduler):
    tasks = [lambda i=i: np.full(3, i) for i in range(7)]
    with dask_scheduler(2, scheduler):
        results = list(compute_in_order(tasks, 2))
    assert [i for i, _ in results] == list(range(7))
    assert all((r == i).all() for i, r in results)


def test_an_unknown_scheduler_is_a_config_error():
    with pytest.raises(ConfigError), dask_scheduler(1, "mpi"):
        pass

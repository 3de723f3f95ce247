"""Bytes read from a remote COG for an AOI, against the AOI's own pixel bytes.

Serves simulated Sentinel-1 RTC (float32 linear power) and Sentinel-2 L2A (uint16 DN)
COGs from a range-request server on 127.0.0.1, reads an AOI window through metaflood's
acquisition code (GDAL /vsicurl/ range requests, the asset cache), and prints, per
AOI (the Derna case's, half and twice its size), asset and tile size:

- ratio: bytes the server sent / the AOI window's uncompressed pixel bytes (target <= 1.5);
- tiles: bytes of the compressed tiles the window touches, plus the 16 kB header read,
  over the same pixel bytes: the least any COG reader must fetch;
- packed: the whole file's bytes over its uncompressed bytes (how well it compresses);
- whole: the whole file's bytes over the AOI's pixel bytes (what a full download costs);
- second run: bytes and requests when the same read is done again (expected: 0 and 0).

Whole tiles are the unit a COG is read in, so `ratio` approaches `packed` as the AOI
grows and exceeds it by the share of the edge tiles outside the AOI when it is small.

Run from the repository root: `.venv/bin/python -m benchmarks.acquire_bytes`
(about a minute on two cores; it writes only to a temporary directory).
"""

from __future__ import annotations

import math
import tempfile
import time
from pathlib import Path

import numpy as np
import rasterio
from rasterio.enums import Resampling
from rasterio.transform import from_origin
from rasterio.warp import transform_bounds
from shapely.geometry import box

from metaflood.acquire.download import Access, AssetCache, Downloader, Job, grid_for_aoi
from metaflood.acquire.scene import BandRef
from metaflood.core.raster import write_cog
from metaflood.demo.simulate import simulate_event
from metaflood.demo.spec import SceneSpec
from tests.helpers.acquire_servers import RangeFileServer, cog_tile_bytes

ROOT = Path(__file__).resolve().parents[1]

DERNA_AOI = box(22.575, 32.715, 22.665, 32.782)  # cases/libya_derna_2023.yaml
AOI_SCALES = (0.5, 1.0, 2.0)  # the case's AOI, and half and twice its width and height
SIZE, RESOLUTION = 2048, 10.0  # a 20 km square scene at 10 m around the AOI
CRS = "EPSG:32634"
BLOCK_SIZES = (256, 512, 1024)


def scene_transform():
    left, bottom, right, top = transform_bounds("EPSG:4326", CRS, *DERNA_AOI.bounds)
    # The AOI sits off-centre and off the tile lattice, as it would in a real scene.
    x0 = math.floor((left + right) / 2 - 0.43 * SIZE * RESOLUTION)
    y0 = math.floor((bottom + top) / 2 + 0.57 * SIZE * RESOLUTION)
    return from_origin(x0 + 3.0, y0 - 7.0, RESOLUTION, RESOLUTION)


def write_assets(folder: Path) -> dict[str, Path]:
    started = time.monotonic()
    event = simulate_event(SceneSpec(seed=5, height=SIZE, width=SIZE, resolution=RESOLUTION))
    print(f"simulated a {SIZE} x {SIZE} px scene in {time.monotonic() - started:.0f} s")
    transform = scene_transform()
    sar = event.sar["pre"][0].astype(np.float32)
    red = np.rint(np.nan_to_num(event.optical["pre"][2]) * 10000 + 1000)
    red = np.clip(red, 1, 65535).astype(np.uint16)
    paths = {}
    for block in BLOCK_SIZES:
        for name, data, nodata in (("s1-vv", sar, np.nan), ("s2-B04", red, 0)):
            path = folder / f"{name}-{block}.tif"
            write_cog(path, data, crs=CRS, transform=transform, nodata=nodata, blocksize=block)
            paths[f"{name} ({block} px tiles)"] = path
    return paths


def tile_bytes(path: Path, grid) -> int:
    """Compressed bytes of the tiles under the grid's window, plus the 16 kB header read."""
    return cog_tile_bytes(path, grid.transform, grid.width, grid.height) + 16384


def scaled_aoi(scale: float):
    x, y = DERNA_AOI.centroid.x, DERNA_AOI.centroid.y
    left, bottom, right, top = DERNA_AOI.bounds
    half_w, half_h = (right - left) * scale / 2, (top - bottom) * scale / 2
    return box(x - half_w, y - half_h, x + half_w, y + half_h)


def measure(server: RangeFileServer, folder: Path, label: str, path: Path, aoi) -> tuple:
    href = f"{server.url}/{path.name}"
    cache = AssetCache(folder / "cache" / f"{path.stem}-{aoi.bounds[0]:.4f}")
    access = Access(retries=2, backoff_s=0.2)
    results = []
    for _ in range(2):
        server.state.clear()
        grid = grid_for_aoi(href, aoi, access, cache=cache)
        job = Job(label, BandRef(href), grid, Resampling.bilinear)
        Downloader(cache, access, workers=2, progress=lambda message: None).read([job])
        results.append((server.state.bytes_sent(), len(server.state.requests())))
    with rasterio.open(path) as src:
        itemsize = np.dtype(src.dtypes[0]).itemsize
        pixel_bytes = grid.width * grid.height * itemsize
        packed = path.stat().st_size / (src.width * src.height * itemsize)
    whole = path.stat().st_size / pixel_bytes
    return grid, pixel_bytes, results, tile_bytes(path, grid), packed, whole


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "served").mkdir()
        paths = write_assets(folder / "served")
        columns = ("AOI", "asset", "AOI px", "read", "ratio", "tiles", "packed", "whole", "2nd run")
        header = "{:9} {:24} {:>11} {:>8} {:>6} {:>6} {:>6} {:>6} {:>12}".format(*columns)
        print(header)
        print("-" * len(header))
        with RangeFileServer(folder / "served") as server:
            for scale in AOI_SCALES:
                aoi = scaled_aoi(scale)
                for label, path in paths.items():
                    grid, pixel_bytes, runs, tiles, packed, whole = measure(
                        server, folder, label, path, aoi
                    )
                    (sent, _), (sent2, requests2) = runs
                    print(
                        f"{f'x{scale:g} case':9} {label:24} {grid.width:>5} x {grid.height:<5}"
                        f"{sent / 1e6:>6.2f}MB {sent / pixel_bytes:>6.2f} "
                        f"{tiles / pixel_bytes:>6.2f} {packed:>6.2f} {whole:>6.2f} "
                        f"{sent2:>3d} B, {requests2} req"
                    )


if __name__ == "__main__":
    main()

"""Reprojection speed against `rio warp`, and peak memory of the whole coregister stage,
on a 10,000 x 10,000 two-band SAR scene.

1. Writes a synthetic two-band SAR scene (10 m, UTM 34N, gamma speckle, float32, tiled).
2. Times `rio warp` (rasterio's own command) and `metaflood.coregister.reproject_to_grid`
   (the stage's blockwise warped reads) on the same input and the same 20 m grid, average
   resampling, one thread each, and prints the ratio (issue 5: at most 1.25).
3. Runs the whole stage (`metaflood coregister`) on that scene in a child process (the
   optical scene absent), and prints its peak resident memory (at most 3 GB).

    .venv/bin/python benchmarks/coregister_warp.py [--size 10000] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import from_origin
from rasterio.warp import transform_bounds

from metaflood.core.bands import SAR_BANDS
from metaflood.core.blockwise import block_windows
from metaflood.core.config import event_grid
from metaflood.core.raster import write_cog

CRS = "EPSG:32634"
# Runs `metaflood <args>` and prints the process's peak resident memory (VmHWM). Linux
# counts the parent's memory at fork in a child's getrusage peak, and this script holds
# the scene it wrote, so the child reports its own high-water mark instead.
REPROJECT = (
    "import json, sys; from pathlib import Path; from rasterio.enums import Resampling; "
    "from metaflood.core.config import event_grid; "
    "from metaflood.core.bands import SAR_BANDS; "
    "from metaflood.coregister.products import reproject_to_grid; "
    "from metaflood.core.settings import section_defaults; "
    "grid = event_grid(json.loads(sys.argv[2]), 'events.bench'); "
    "reproject_to_grid(Path(sys.argv[1]), SAR_BANDS, grid, Path(sys.argv[3]) / 'ours.tif', "
    "resampling=Resampling.average, "
    "block_size=section_defaults('coregister')['block_size'])"
)
# The co-registration stage as rule coregister runs it (the schema's coregister settings).
COREGISTER = (
    "import json, sys; from pathlib import Path; "
    "from metaflood.coregister.scenes import Settings; "
    "from metaflood.coregister.stage import coregister_period; "
    "from metaflood.core.settings import CoregisterSettings, section_defaults; "
    "event, scene, optical, mask, work = sys.argv[1:]; work = Path(work); "
    "coregister_period(json.loads(event), 'bench', 'pre', sar=Path(scene), "
    "optical=Path(optical), optical_mask=Path(mask), reference=Path(scene), "
    "out_stack=work / 'aligned.tif', out_valid=work / 'valid.tif', "
    "out_report=work / 'coregistration.json', "
    "settings=Settings.of(CoregisterSettings.from_section(section_defaults('coregister')), "
    "threads=1)); "
    "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0]; "
    "print(json.dumps({'peak_kb': int(hwm.split()[1])}))"
)
ORIGIN = (600_000.0, 3_700_000.0)


def write_scene(path: Path, size: int, res: float) -> None:
    profile = {
        "driver": "GTiff",
        "count": 2,
        "dtype": "float32",
        "crs": CRS,
        "transform": from_origin(*ORIGIN, res, res),
        "width": size,
        "height": size,
        "nodata": float("nan"),
        "tiled": True,
        "blockxsize": 512,
        "blockysize": 512,
        "BIGTIFF": "YES",
    }
    rng = np.random.default_rng(0)
    with rasterio.open(path, "w", **profile) as dst:
        for window in block_windows(size, size, 2048):
            shape = (2, int(window.height), int(window.width))
            data = 0.05 * rng.standard_gamma(4.5, shape, dtype=np.float32) / 4.5
            dst.write(data, window=window)
        dst.descriptions = SAR_BANDS


def event_for(size: int, res: float, grid_res: float) -> dict:
    """An AOI a little inside the scene, so the grid is covered by data."""
    left, top = ORIGIN
    inset = 10 * grid_res
    bounds = (left + inset, top - size * res + inset, left + size * res - inset, top - inset)
    lon_min, lat_min, lon_max, lat_max = transform_bounds(CRS, "EPSG:4326", *bounds)
    return {
        "aoi": {"bbox": [lon_min + 0.002, lat_min + 0.002, lon_max - 0.002, lat_max - 0.002]},
        "grid": {"crs": CRS, "resolution": grid_res},
        "pre": {"start": "2023-09-01", "end": "2023-09-09"},
        "post": {"start": "2023-09-11", "end": "2023-09-20"},
        "sar": {"source": "demo"},
        "optical": {"source": "demo"},
    }


def write_absent_optical(folder: Path, grid) -> tuple[Path, Path]:
    """What acquisition writes when no optical scene exists: all-nodata, tagged absent."""
    common = {"crs": grid.crs, "transform": grid.transform, "tags": {"absent": "true"}}
    shape = (grid.height, grid.width)
    optical = write_cog(
        folder / "optical.tif",
        np.full((4, *shape), np.nan, np.float32),
        nodata=np.nan,
        descriptions=("blue", "green", "red", "nir"),
        **common,
    )
    mask = write_cog(
        folder / "optical_mask.tif", np.full(shape, 255, np.uint8), nodata=255, **common
    )
    return optical, mask


def timed(func) -> float:
    start = time.perf_counter()
    func()
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=10_000, help="scene side (pixels)")
    parser.add_argument("--res", type=float, default=10.0, help="scene pixel (m)")
    parser.add_argument("--grid-res", type=float, default=20.0, help="grid pixel (m)")
    parser.add_argument("--workdir", help="where to write (default: a temporary folder)")
    args = parser.parse_args()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="metaflood-warp-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        scene = work / "sar.tif"
        print(f"writing a {args.size} x {args.size} two-band SAR scene ...", flush=True)
        write_scene(scene, args.size, args.res)
        event = event_for(args.size, args.res, args.grid_res)
        grid = event_grid(event, "events.bench")
        template = write_cog(
            work / "grid.tif",
            np.zeros((grid.height, grid.width), np.uint8),
            crs=grid.crs,
            transform=grid.transform,
            nodata=None,
        )
        print(f"grid: {grid.width} x {grid.height} at {grid.resolution} m")

        pre = work / "pre"
        pre.mkdir(exist_ok=True)
        optical, mask = write_absent_optical(pre, grid)
        command = [sys.executable, "-c", COREGISTER, json.dumps(event), str(scene)]
        command += [str(optical), str(mask), str(work)]
        start = time.perf_counter()
        result = subprocess.run(command, check=True, capture_output=True, text=True)
        t_stage = time.perf_counter() - start
        peak_gb = json.loads(result.stdout.strip().splitlines()[-1])["peak_kb"] / 1024**2

        rio = [str(Path(sys.executable).parent / "rio"), "warp", str(scene), str(work / "rio.tif")]
        rio += ["--like", str(template), "--resampling", "average", "--threads", "1"]
        rio += ["--co", "TILED=YES", "--co", "BIGTIFF=IF_SAFER", "--overwrite"]
        t_rio = timed(lambda: subprocess.run(rio, check=True))
        # Both as commands, so each pays its own interpreter start-up.
        ours = [sys.executable, "-c", REPROJECT, str(scene), json.dumps(event), str(work)]
        t_ours = timed(lambda: subprocess.run(ours, check=True))
        with rasterio.open(work / "rio.tif") as a, rasterio.open(work / "ours.tif") as b:
            window = ((0, min(2048, grid.height)), (0, min(2048, grid.width)))
            diff = np.nanmax(np.abs(a.read(window=window) - b.read(window=window)))
        print(f"rio warp:                      {t_rio:7.1f} s")
        print(f"metaflood reproject_to_grid:   {t_ours:7.1f} s")
        print(f"ratio (ours / rio warp):       {t_ours / t_rio:7.2f}  (issue 5: <= 1.25)")
        print(f"largest difference in values:  {diff:.2e}")

        print(f"whole coregister stage:        {t_stage:7.1f} s (COG products, overviews)")
        print(f"stage peak memory (max RSS):   {peak_gb:7.2f} GB  (issue 5: <= 3 GB)")
        print(f"scene in memory would be:      {2 * 4 * args.size**2 / 1024**3:7.2f} GB")
        ok = t_ours / t_rio <= 1.25 and peak_gb <= 3.0
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""Peak memory of the flooded area by pre-event class computed through `open_event`.

    .venv/bin/python -m benchmarks.datacube_memory --size 8000 [--chunks 2048] \\
        [--workdir /tmp/datacube_memory]

Writes a large synthetic event's products (once; kept under --workdir) and then, each in
a child process whose peak resident memory (ru_maxrss, as the kernel counts it for
dask's threads and GDAL's cache alike) is read when it exits:

- `datacube`: `metaflood.open_event` and `flooded_area_by_pre_class` with dask chunks,
  checked against stats.json;
- `whole`: the same figure from the two rasters read whole with rasterio, for
  comparison;
- `stats`: the stats stage (`stats.write_stats`, as rule `stats` runs it) writing the
  event's stats.json again;
- `imports`: the interpreter with the same imports and nothing computed, the floor
  under both.

The event stands in for the scale benchmark's (benchmarks/tiled_scale.py) without its
27 minutes: land cover, routes and availability are drawn (blocky classes, a sea, a
cloud field, a flood along a meandering wadi) and written with the workflow's writers
(`landcover_writers`, `write_cog` with the SAR stage's tags); the flood extent,
confidence, polygons and transitions are then made by the real change stage
(`change.map_flood`) and stats.json by the real stats stage (`stats.write_stats`).
The co-registered image stacks are not written (1.5 GB each at 8,000 px, and not read
by this figure): `image` is absent from the Dataset, as a missing product is.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
STRIP = 512  # rows written at a time
CELL = 64  # px side of a drawn land-cover cell


def _grid(size: int) -> dict:
    from rasterio.transform import from_origin

    return {
        "crs": "EPSG:32634",
        "transform": from_origin(600000, 3640000, 10.0, 10.0),
        "width": size,
        "height": size,
    }


def draw_event(size: int, seed: int) -> dict[str, np.ndarray]:
    """Classes before and after, and the post-event route, as uint8 grids."""
    from metaflood.core.classes import CLASS_NODATA, NUM_CLASSES, WATER

    rng = np.random.default_rng(seed)
    cells = math.ceil(size / CELL)
    pre = rng.integers(0, NUM_CLASSES, (cells, cells), dtype=np.uint8)
    pre[pre == WATER] = 0  # water only where drawn: the sea and the flood
    pre = np.repeat(np.repeat(pre, CELL, 0), CELL, 1)[:size, :size]
    pre[:, : size // 10] = WATER  # the sea, in both periods
    lines = np.arange(size)
    outside = lines[None, :] > int(1.9 * size) - lines[:, None]
    pre[outside] = CLASS_NODATA  # a corner outside the AOI
    post = pre.copy()
    centre = size / 2 + size / 6 * np.sin(np.arange(size) * 2 * np.pi / (size / 1.5))
    half_width = max(size / 50, 3)
    cols = np.arange(size)
    for r0 in range(0, size, STRIP):
        rows = slice(r0, min(r0 + STRIP, size))
        wadi = np.abs(cols[None, :] - centre[rows, None]) < half_width
        post[rows][wadi & (post[rows] != CLASS_NODATA)] = WATER
    cloud = rng.random((cells, cells)) < 0.6
    cloud = np.repeat(np.repeat(cloud, CELL, 0), CELL, 1)[:size, :size]
    route = np.where(cloud, 2, 1).astype(np.uint8)  # SAR only under cloud, else joint
    route[outside] = 255
    return {"pre": pre, "post": post, "post_route": route}


def one_hot(classes: np.ndarray) -> np.ndarray:
    """Probabilities as the land-cover stage stores them: 254 for the class, 255 nodata."""
    from metaflood.core.classes import NUM_CLASSES

    proba = np.zeros((NUM_CLASSES, *classes.shape), np.uint8)
    for c in range(NUM_CLASSES):
        proba[c][classes == c] = 254
    proba[:, classes >= NUM_CLASSES] = 255
    return proba


def write_water(folder: Path, period: str, classes: np.ndarray, grid: dict) -> None:
    """The water stage's fused map and summary as it writes them: certain water where the
    drawn classes are water (percent 100, else 0; 255 outside)."""
    from metaflood.core.classes import CLASS_NODATA, WATER
    from metaflood.core.raster import write_cog
    from metaflood.core.water_map import NODATA as PERCENT_NODATA

    folder.mkdir(parents=True, exist_ok=True)
    percent = np.where(classes == WATER, 100, 0).astype(np.uint8)
    percent[classes == CLASS_NODATA] = PERCENT_NODATA
    write_cog(
        folder / f"{period}.tif",
        percent,
        nodata=PERCENT_NODATA,
        descriptions=("water_probability",),
        units=("percent",),
        crs=grid["crs"],
        transform=grid["transform"],
    )
    known = classes != CLASS_NODATA
    pixels = {"mapped": int(known.sum()), "water": int((classes == WATER).sum())}
    pixels |= {"sar_water": pixels["water"], "index_water": 0}
    summary = {"index": "no_water_index", "thresholds": {}, "fusion": "synthetic"}
    (folder / f"{period}.json").write_text(json.dumps(summary | {"pixels": pixels}))


def write_event(results: Path, event: str, size: int, seed: int = 0) -> Path:
    """The synthetic event's products under results/<event>/ (see the module's doc)."""
    from metaflood.core.classes import CLASS_NAMES, CLASS_NODATA, WATER
    from metaflood.core.raster import cog_writer, write_cog
    from metaflood.core.settings import section_defaults
    from metaflood.flood.change import map_flood
    from metaflood.flood.sar_change import EVIDENCE_COLORMAP, EVIDENCE_NODATA, EVIDENCE_VALUES
    from metaflood.flood.sar_tiled import RATIO_BANDS
    from metaflood.landcover.writers import landcover_writers

    out = results / event
    grid = _grid(size)
    drawn = draw_event(size, seed)
    pre, post, post_route = drawn["pre"], drawn["post"], drawn["post_route"]
    pre_route = np.where(pre == CLASS_NODATA, 255, 1).astype(np.uint8)
    lc = out / "landcover"
    for period, classes, route in (("pre", pre, pre_route), ("post", post, post_route)):
        with landcover_writers(
            lc / f"{period}.tif",
            lc / f"{period}_proba.tif",
            lc / f"{period}_route.tif",
            class_names=CLASS_NAMES,
            tags={"checkpoint": "synthetic"},
            **grid,
        ) as (w_class, w_proba, w_route):
            for r0 in range(0, size, STRIP):
                rows = slice(r0, min(r0 + STRIP, size))
                window = ((r0, rows.stop), (0, size))
                w_class.write(classes[rows], 1, window=window)
                w_proba.write(one_hot(classes[rows]), window=window)
                w_route.write(route[rows], 1, window=window)
        write_water(out / "water", period, classes, grid)
        bits = np.select([route == 1, route == 2], [3, 1], 255).astype(np.uint8)
        write_cog(
            out / "aligned" / f"{period}_valid.tif",
            bits,
            nodata=255,
            descriptions=("availability",),
            categorical=True,
            tags={"bits": "bit 0 SAR valid, bit 1 optical valid; 255 outside the AOI"},
            crs=grid["crs"],
            transform=grid["transform"],
        )
    new_water = (post == WATER) & (pre != WATER)
    evidence = np.where(new_water, 1, np.where(pre == WATER, 2, 0)).astype(np.uint8)
    evidence[pre == CLASS_NODATA] = EVIDENCE_NODATA
    flood = out / "flood"
    write_cog(
        flood / "sar_change.tif",
        evidence,
        nodata=EVIDENCE_NODATA,
        descriptions=("sar_flood_evidence",),
        colormap=EVIDENCE_COLORMAP,
        tags={"values": EVIDENCE_VALUES},
        crs=grid["crs"],
        transform=grid["transform"],
    )
    with cog_writer(
        flood / "sar_logratio.tif",
        count=3,
        dtype="float32",
        nodata=np.nan,
        descriptions=RATIO_BANDS,
        units=("dB", "dB", "dB"),
        **grid,
    ) as dst:
        for r0 in range(0, size, STRIP):
            rows = slice(r0, min(r0 + STRIP, size))
            wet, dark = new_water[rows], (post[rows] == WATER)
            bands = np.stack([np.where(wet, -9.0, 0.5), np.where(wet, -8.0, 0.4)])
            bands = np.concatenate([bands, np.where(dark, -20.0, -8.0)[None]])
            bands[:, pre[rows] == CLASS_NODATA] = np.nan
            dst.write(bands.astype(np.float32), window=((r0, rows.stop), (0, size)))
    summary = flood / "sar_change.json"
    summary.write_text(
        json.dumps({"ratio_threshold_db": {"value": -3.0}, "water_threshold_db": {"value": -15.0}})
    )
    del drawn, pre, post, post_route, pre_route, evidence, new_water
    landcover = [lc / "pre.tif", lc / "post.tif"]
    outputs = {
        "extent": flood / "extent.tif",
        "confidence": flood / "confidence.tif",
        "polygons": flood / "polygons.gpkg",
        "transitions": flood / "transitions.csv",
        "support": flood / "support.tif",
    }
    map_flood(
        landcover,
        [out / "water" / "pre.tif", out / "water" / "post.tif"],
        post_route=lc / "post_route.tif",
        sar_evidence=flood / "sar_change.tif",
        sar_ratio=flood / "sar_logratio.tif",
        sar_summary=summary,
        calibration=None,
        min_area_m2=200,
        flooded_min_confidence=section_defaults("change")["flooded_min_confidence"],
        **{f"out_{k}": v for k, v in outputs.items()},
    )
    side = out / "synthetic"
    side.mkdir(exist_ok=True)
    (side / "scenes.json").write_text(json.dumps({"note": "synthetic, no scene"}))
    (side / "coregistration.json").write_text(json.dumps({"shifts": {}}))
    (side / "checkpoint.pt").write_bytes(b"synthetic")
    stats_stage(out, flood / "stats.json")
    return out


def stats_stage(event_dir: Path, out: Path) -> dict:
    """The stats stage (`stats.write_stats`, as rule stats runs it) on the event."""
    from metaflood.flood.stats import write_stats

    lc, flood, side = (event_dir / f for f in ("landcover", "flood", "synthetic"))
    return write_stats(
        event_dir.name,
        {"events": {event_dir.name: {"note": "synthetic event"}}},
        extent=flood / "extent.tif",
        confidence=flood / "confidence.tif",
        polygons=flood / "polygons.gpkg",
        transitions=flood / "transitions.csv",
        landcover=[lc / "pre.tif", lc / "post.tif"],
        routes=[lc / "pre_route.tif", lc / "post_route.tif"],
        scenes=[side / "scenes.json"] * 2,
        coregistration=[side / "coregistration.json"] * 2,
        sar_summary=flood / "sar_change.json",
        water=[event_dir / "water" / "pre.json", event_dir / "water" / "post.json"],
        support=flood / "support.tif",
        checkpoint=side / "checkpoint.pt",
        calibration=None,
        validation=None,
        out=out,
        out_impact=out.with_name("impact.csv"),
    )


def child(mode: str, event_dir: Path, chunks: int) -> dict:
    """What one measured child process computes (it prints this as JSON)."""
    import rasterio

    import metaflood
    from metaflood.core.datacube import flooded_area_by_pre_class

    if mode == "imports":
        return {}
    stats = json.loads((event_dir / "flood/stats.json").read_text())
    expected = stats["flood"]["flooded_by_pre_class_km2"]
    if mode == "stats":  # written again beside the event's, and compared with it
        found = stats_stage(event_dir, event_dir / "synthetic" / "stats.json")
        found = found["flood"]["flooded_by_pre_class_km2"]
    elif mode == "datacube":
        ds = metaflood.open_event(event_dir, chunks=chunks)
        area = flooded_area_by_pre_class(ds).compute()
        found = dict(zip(ds["class_name"].values.tolist(), area.values.tolist(), strict=True))
    else:
        from metaflood.core.classes import CLASS_NAMES, NUM_CLASSES
        from metaflood.flood.change import FLOODED

        with rasterio.open(event_dir / "flood/extent.tif") as src:
            extent, pixel = src.read(1), abs(src.transform.a * src.transform.e)
        with rasterio.open(event_dir / "landcover/pre.tif") as src:
            pre = src.read(1)
        flooded = extent == FLOODED
        counts = np.bincount(pre[flooded & (pre < NUM_CLASSES)], minlength=NUM_CLASSES)
        found = {n: round(c * pixel / 1e6, 6) for n, c in zip(CLASS_NAMES, counts, strict=True)}
    equal = all(math.isclose(found[k], v, abs_tol=1e-6) for k, v in expected.items())
    return {"flooded_by_pre_class_km2": found, "equals_stats_json": equal}


def measure(mode: str, event_dir: Path, chunks: int) -> dict:
    """Run `child` in its own process; its result and its peak RSS in MB."""
    command = [sys.executable, __file__, "--child", mode, "--event-dir", str(event_dir)]
    process = subprocess.Popen([*command, "--chunks", str(chunks)], stdout=subprocess.PIPE)
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status):
        raise SystemExit(f"{mode}: the child failed")
    return {**json.loads(output), "peak_rss_mb": round(usage.ru_maxrss / 1024, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=8000, help="grid side in px")
    parser.add_argument("--chunks", type=int, default=2048, help="dask chunk side in px")
    parser.add_argument("--workdir", default="/tmp/datacube_memory")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--child", choices=["write", "imports", "datacube", "whole", "stats"])
    parser.add_argument("--event-dir")
    args = parser.parse_args()
    if args.child == "write":
        event_dir = Path(args.event_dir)
        write_event(event_dir.parent, event_dir.name, args.size, args.seed)
        return
    if args.child:
        print(json.dumps(child(args.child, Path(args.event_dir), args.chunks)))
        return
    event_dir = Path(args.workdir) / f"size_{args.size}" / "results" / "large"
    if not (event_dir / "flood/stats.json").is_file():
        # In a process of its own: a child forked from a large process starts with its
        # peak resident memory (Linux keeps the high-water mark across exec).
        print(f"writing the synthetic {args.size} px event under {event_dir} ...", flush=True)
        command = [sys.executable, __file__, "--child", "write", "--event-dir", str(event_dir)]
        subprocess.run([*command, "--size", str(args.size), "--seed", str(args.seed)], check=True)
    for mode in ("imports", "datacube", "whole", "stats"):
        result = measure(mode, event_dir, args.chunks)
        equal = result.get("equals_stats_json")
        print(
            f"{mode:9s} peak RSS {result['peak_rss_mb']:7.1f} MB"
            + (f"  equals stats.json: {equal}" if equal is not None else ""),
            flush=True,
        )
        if mode == "datacube":
            print(json.dumps(result["flooded_by_pre_class_km2"]))


if __name__ == "__main__":
    main()

"""Tiled runs at three area sizes: peak memory of the largest job, time per km².

Each size is a synthetic demo event generated at the grid's resolution (so the generator
does not make a finer scene than the grid) and published as a static STAC catalog of
COGs, the stand-in for a provider; the workflow then runs on it with the `static` source
and tiling, through Snakemake in its own folder, with an already trained checkpoint:

    .venv/bin/python -m benchmarks.tiled_scale --checkpoint results/models/metars.pt \\
        --sizes 2000 4000 8000 --cores 2 [--workdir /tmp/tiled_scale]

It prints, per size, the peak resident memory (max_rss of the rules' benchmark TSVs) of
the largest job and its rule (and, apart, that of generating the synthetic scenes, which
is not a stage of the workflow on real data), and the wall time of the tiled stages
(co-registration, land cover, SAR change and their gathers, change) per km² of the grid;
per-km² times that stay flat (within noise) as the area grows mean the time grows no
faster than linearly.
Issue 7 asks for at least 8,000 x 8,000 px and at most 4 GB for the largest job.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
# Stages that scale with the area (not scene generation or acquisition)
TILED_STAGES = ("coregister", "landcover", "sar_", "change")
CENTRE = (22.637, 32.764)  # lon, lat: the demo's coastal town


def event_config(size_px: int, resolution: float) -> dict:
    """An event whose grid is about `size_px` a side at `resolution` metres."""
    half_m = size_px * resolution / 2
    dlat = half_m / 111_320
    dlon = half_m / (111_320 * math.cos(math.radians(CENTRE[1])))
    return {
        "aoi": {"bbox": [CENTRE[0] - dlon, CENTRE[1] - dlat, CENTRE[0] + dlon, CENTRE[1] + dlat]},
        "grid": {"crs": "auto", "resolution": resolution},
        "event_date": "2023-09-10",
        "pre": {"start": "2023-09-01", "end": "2023-09-09"},
        "post": {"start": "2023-09-11", "end": "2023-09-20"},
    }


def static_sources(catalog: Path) -> dict:
    """The generated catalog read as any static STAC catalog of a provider would be."""
    from metaflood.demo.catalog import (
        OPTICAL_ASSETS,
        OPTICAL_COLLECTION,
        SAR_ASSETS,
        SAR_COLLECTION,
    )

    return {
        "sar": {
            "source": "static",
            "catalog": str(catalog),
            "collection": SAR_COLLECTION,
            "assets": {band: asset for asset, band in SAR_ASSETS},
        },
        "optical": {
            "source": "static",
            "catalog": str(catalog),
            "collection": OPTICAL_COLLECTION,
            "assets": {band.common_name: band.asset for band in OPTICAL_ASSETS},
            "mask_asset": "SCL",
            "mask_kind": "scl",
        },
    }


def generate_scenes(event: dict, out: Path, seed: int) -> float:
    """Write the synthetic event's catalog; returns the generator's peak memory (MB)."""
    if (out / "catalog.json").exists():
        return float("nan")
    demo = {"seed": seed, "resolution": event["grid"]["resolution"]}
    demo["margin_m"] = 4 * demo["resolution"]
    spec = json.dumps(
        {**event, "sar": {"source": "demo"}, "optical": {"source": "demo"}, "demo": demo}
    )
    # The demo stage as rule demo_event runs it.
    build = (
        "import json, sys; from pathlib import Path; "
        "from metaflood.demo.events import build_demo_event; "
        "build_demo_event(json.loads(sys.argv[1]), 'scale', Path(sys.argv[2]))"
    )
    child = subprocess.Popen([sys.executable, "-c", build, spec, str(out)])
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode:
        raise SystemExit(f"generating the synthetic event failed ({child.returncode})")
    return usage.ru_maxrss / 1024


def read_benchmarks(folder: Path) -> list[tuple[str, float, float]]:
    """(job, wall seconds, max_rss MB) from every benchmark TSV of a run."""
    rows = []
    for path in folder.glob("results/**/benchmarks/*.tsv"):
        with path.open() as f:
            for row in csv.DictReader(f, delimiter="\t"):
                rss = float(row["max_rss"]) if row["max_rss"] not in ("", "NA", "-") else 0.0
                rows.append((path.stem, float(row["s"]), rss))
    return rows


def run(size_px: int, args: argparse.Namespace) -> dict:
    workdir = Path(args.workdir) / f"size_{size_px}"
    workdir.mkdir(parents=True, exist_ok=True)
    event = event_config(size_px, args.resolution)
    scenes = workdir / "provider"
    generator_mb = generate_scenes(event, scenes, args.seed)
    config = {
        "events": {"scale": {**event, **static_sources(scenes / "catalog.json")}},
        "model": {"checkpoint": str(Path(args.checkpoint).resolve()), "device": args.device},
        "tiling": {"tile_px": args.tile_px, "overlap_px": args.overlap_px},
    }
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    command = [
        sys.executable,
        "-m",
        "snakemake",
        "--snakefile",
        str(ROOT / "Snakefile"),
        "--directory",
        str(workdir),
        "--cores",
        str(args.cores),
        # a benchmark interrupted and started again finishes the jobs it left half-done
        "--rerun-incomplete",
        # one argument: --configfile takes several values and would swallow the target
        f"--configfile={workdir / 'config.yaml'}",
        "results/scale/flood/stats.json",
    ]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(f"size {size_px}: snakemake failed\n{done.stderr[-3000:]}")
    jobs = read_benchmarks(workdir)
    job, _, rss = max(jobs, key=lambda j: j[2])
    staged = sum(s for name, s, _ in jobs if name.startswith(TILED_STAGES))
    with (workdir / "results/scale/aligned/pre_coregistration.json").open() as f:
        grid = yaml.safe_load(f)["grid"]
    area_km2 = grid["width"] * grid["height"] * args.resolution**2 / 1e6
    return {
        "size": f"{grid['height']} x {grid['width']}",
        "area_km2": area_km2,
        "jobs": len(jobs),
        "peak_rss_mb": rss,
        "peak_job": job,
        "generator_mb": generator_mb,
        "stage_s": staged,
        "s_per_km2": staged / area_km2,
        "run_s": wall,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default="results/models/metars.pt")
    parser.add_argument("--sizes", type=int, nargs=3, default=[2000, 4000, 8000])
    parser.add_argument("--resolution", type=float, default=10.0)
    parser.add_argument("--tile-px", type=int, default=2048)
    parser.add_argument("--overlap-px", type=int, default=64)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seed", type=int, default=7, help="seed of the synthetic event")
    parser.add_argument("--workdir", default="/tmp/tiled_scale")
    args = parser.parse_args()
    results = [run(size, args) for size in args.sizes]
    print("grid px        km²     jobs  peak RSS (MB)  largest job              s/km²")
    for r in results:
        print(
            f"{r['size']:<13} {r['area_km2']:7.1f} {r['jobs']:6d} {r['peak_rss_mb']:13.0f}  "
            f"{r['peak_job']:<24} {r['s_per_km2']:6.2f}"
        )
    peak = max(r["peak_rss_mb"] for r in results)
    growth = results[-1]["s_per_km2"] / results[0]["s_per_km2"]
    print(f"largest job peak memory: {peak:.0f} MB (limit 4096 MB)")
    generated = ", ".join(
        "reused" if math.isnan(r["generator_mb"]) else f"{r['generator_mb']:.0f}" for r in results
    )
    print(f"generating the synthetic scenes (outside the workflow), peak MB: {generated}")
    print(f"time per km², largest / smallest area: {growth:.2f} (1 = linear)")
    return 0 if peak <= 4096 else 1


if __name__ == "__main__":
    sys.exit(main())

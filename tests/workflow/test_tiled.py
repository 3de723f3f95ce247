"""A tiled run of the tiny demo against the untiled one, and a run killed and resumed."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from base64 import urlsafe_b64decode
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio

from tests.helpers.workflow_runs import snakemake_command, tiled_config, write_config

pytestmark = pytest.mark.integration

TILES = ["r0c0", "r0c1", "r1c0", "r1c1"]
# Pixelwise stages: the tiles are cut out of the same computation, so they are identical.
IDENTICAL = [
    "aligned/pre.tif",
    "aligned/post.tif",
    "aligned/pre_valid.tif",
    "aligned/post_valid.tif",
    "landcover/pre_route.tif",
    "landcover/post_route.tif",
    "flood/sar_change.tif",
]


def read(path: Path) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read()


def profile(path: Path) -> tuple:
    with rasterio.open(path) as src:
        try:
            colormap = src.colormap(1)
        except ValueError:
            colormap = None
        return (
            src.crs,
            src.transform,
            src.shape,
            src.count,
            src.dtypes,
            str(src.nodata),
            src.descriptions,
            src.overviews(1),
            colormap,
            src.profile.get("compress"),
            src.profile.get("blockxsize"),
        )


def test_a_tiled_run_makes_the_untiled_products(tiny_run, tiled_run):
    untiled, tiled = tiny_run / "results" / "tiny", tiled_run / "results" / "tiny"
    for stage in ("coregister_pre", "landcover_post", "sar_change"):
        assert sorted(p.stem for p in (tiled / "logs").glob(f"{stage}_r*c*.log")) == [
            f"{stage}_{t}" for t in TILES
        ], "each tile ran as its own job"
    assert not (tiled / "logs" / "landcover_post.log").exists(), "no untiled land-cover job"

    for product in [
        *IDENTICAL,
        "landcover/pre.tif",
        "landcover/post_proba.tif",
        "flood/sar_logratio.tif",
    ]:
        assert profile(untiled / product) == profile(tiled / product), product
    for product in IDENTICAL:
        assert np.array_equal(read(untiled / product), read(tiled / product), equal_nan=True), (
            product
        )
    # The box filter sums in blocks of other shapes: equal to float32 rounding.
    ratio_a, ratio_b = (
        read(untiled / "flood/sar_logratio.tif"),
        read(tiled / "flood/sar_logratio.tif"),
    )
    assert np.allclose(ratio_a, ratio_b, atol=1e-4, equal_nan=True)
    # Land cover: MetaRS normalises each model window as a whole (instance norm), so a
    # pixel's probabilities depend on the window it is seen in. Here tiles (about 77 px)
    # are smaller than one model window (128 px), so every pixel is near a tile edge; at
    # real scale (tile_px 4096) only the overlap bands are. Measured on this demo: 96 to
    # 97.5% of the pixels keep their class, flood extent agrees on 98.3% of the pixels.
    for period in ("pre", "post"):
        a, b = read(untiled / f"landcover/{period}.tif"), read(tiled / f"landcover/{period}.tif")
        assert (a == b).mean() >= 0.95, (period, (a == b).mean())
        pa = read(untiled / f"landcover/{period}_proba.tif").astype(float)
        pb = read(tiled / f"landcover/{period}_proba.tif").astype(float)
        assert np.abs(pa - pb).mean() <= 5.0, period  # of 254: under 2% probability
    a, b = read(untiled / "flood/extent.tif"), read(tiled / "flood/extent.tif")
    assert (a == b).mean() >= 0.97, (a == b).mean()
    assert len(gpd.read_file(tiled / "flood/polygons.gpkg")) > 0
    assert (tiled / "report.html").stat().st_size > 0
    assert not list(tiled.glob("**/tiles/**/*.tif")), "tile files are temporary"


def running_outputs(workdir: Path) -> set[Path]:
    """Outputs Snakemake has marked incomplete: those of jobs running (or killed) now.

    Snakemake records each as a file under .snakemake/incomplete named by the urlsafe
    base64 of the output path, split into '@'-prefixed folders when longer than a name.
    """
    root = workdir / ".snakemake" / "incomplete"
    outputs = set()
    for record in root.rglob("*") if root.exists() else []:
        if record.is_file() and record.name != "migration_underway":
            encoded = "".join(part.removeprefix("@") for part in record.relative_to(root).parts)
            try:
                outputs.add((workdir / urlsafe_b64decode(encoded).decode()).resolve())
            except ValueError:  # a record being written as we read
                continue
    return outputs


def test_a_run_killed_half_way_resumes_without_redoing_finished_jobs(tiny_run, tiled_run, tmp_path):
    write_config(tmp_path, tiled_config(tiny_run / "results" / "models" / "metars.pt"))
    results = tmp_path / "results" / "tiny"
    incomplete = tmp_path / ".snakemake" / "incomplete"
    log = (tmp_path / "first.log").open("w")
    first = subprocess.Popen(
        snakemake_command(tmp_path), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    # Kill once the pre-event period is co-registered and some other job is running.
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline and first.poll() is None:
        running = running_outputs(tmp_path)
        pre = results / "aligned/pre.tif"
        if pre.exists() and running and pre.resolve() not in running:
            break
        time.sleep(0.2)
    assert first.poll() is None, "the run ended before it could be interrupted"
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    assert any(incomplete.iterdir()), "a job was running when the run was killed"
    assert not (results / "report.html").exists()
    # Nothing half-written under a product's name: every raster there opens.
    for path in results.glob("**/*.tif"):
        with rasterio.open(path) as src:
            src.read(1, window=((0, 1), (0, 1)))
    # Outputs of jobs that had finished; those of the jobs killed are redone, rightly.
    running = running_outputs(tmp_path)
    finished = {
        p: p.stat().st_mtime_ns
        for p in [*results.glob("scenes/**/*.tif"), results / "aligned/pre.tif"]
        if p.resolve() not in running
    }
    assert results / "aligned/pre.tif" in finished

    unlock = subprocess.run(snakemake_command(tmp_path, "--unlock"), capture_output=True)
    assert unlock.returncode == 0, unlock.stderr[-2000:]
    second = subprocess.run(
        snakemake_command(tmp_path, "--rerun-incomplete"), capture_output=True, text=True
    )
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    if not any("scenes" in p.parts for p in running):
        assert "rule acquire:" not in second.stdout + second.stderr
    assert {p: p.stat().st_mtime_ns for p in finished} == finished, "finished jobs not redone"

    reference = tiled_run / "results" / "tiny"
    for product in [*IDENTICAL, "landcover/pre.tif", "landcover/post.tif", "flood/extent.tif"]:
        assert np.array_equal(read(reference / product), read(results / product), equal_nan=True)
    assert (results / "report.html").exists()

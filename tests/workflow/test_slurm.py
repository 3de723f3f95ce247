"""The SLURM profile against a real single-node SLURM cluster started by the test."""

from __future__ import annotations

import re
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio

from tests.helpers.slurm_cluster import ClusterUnavailableError, start_cluster, stop_cluster
from tests.helpers.workflow_runs import ROOT, run_tiny, snakemake, tiled_config

pytestmark = pytest.mark.integration

PRODUCTS = [
    "aligned/pre.tif",
    "aligned/post_valid.tif",
    "landcover/pre.tif",
    "landcover/post.tif",
    "landcover/post_proba.tif",
    "landcover/post_route.tif",
    "flood/sar_change.tif",
    "flood/extent.tif",
    "flood/confidence.tif",
]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    try:
        started = start_cluster(tmp_path_factory.mktemp("slurm"))
    except ClusterUnavailableError as reason:
        pytest.skip(str(reason))
    yield started
    stop_cluster()


def planned_rules(workdir: Path) -> set[str]:
    """The rules a full run of the workdir's configuration consists of (from a dry run)."""
    result = snakemake(workdir, "--forceall", "-n", "--configfile", str(workdir / "config.yaml"))
    assert result.returncode == 0, result.stderr[-2000:]
    table = result.stdout.split("Job stats:")[1].split("total")[0]
    return {line.split()[0] for line in table.splitlines()[3:] if line.strip()}


def local_rules() -> set[str]:
    """The rules the workflow runs where Snakemake runs, not as cluster jobs."""
    text = "\n".join(path.read_text() for path in (ROOT / "workflow" / "rules").glob("*.smk"))
    blocks = re.findall(r"^localrules:\n((?:    \w+,\n)+)", text, flags=re.MULTILINE)
    return {name.strip(" ,") for block in blocks for name in block.splitlines()}


def read(path: Path) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read()


def test_the_slurm_profile_runs_every_job_through_sbatch(cluster, tiny_run, tiled_run, tmp_path):
    """The tiny demo, tiled (4 tiles per stage), through the SLURM profile without GPU
    requests (the test cluster has none), against the same run made locally."""
    known = {job["id"] for job in cluster.jobs()}
    config = tiled_config(tiny_run / "results" / "models" / "metars.pt")
    workdir = run_tiny(
        tmp_path,
        "--profile",
        str(ROOT / "profiles" / "slurm-cpu"),
        "--max-threads",
        "2",
        config=config,
    )

    jobs = [job for job in cluster.jobs() if job["id"] not in known]
    # The executor puts the rule's name in each job's comment: read the controller's records.
    rules = {job["comment"].split("_wildcards_")[0].removeprefix("rule_") for job in jobs}
    assert local_rules() == {"qgis_style", "qgis_project"}
    local = local_rules() | {"all"}
    assert rules == planned_rules(workdir) - local, "each rule's jobs went through sbatch"
    assert (workdir / "results" / "tiny" / "tiny.qgs").is_file()  # made by the local rules
    # 4 tiles x 2 periods for co-registration and land cover, 4 tiles of SAR change
    assert sum(job["comment"].startswith("rule_landcover_tile") for job in jobs) == 8, jobs
    assert len(jobs) >= 30, jobs
    assert all(job["state"] == "COMPLETED" for job in jobs), jobs

    local = tiled_run / "results" / "tiny"
    cluster_run = workdir / "results" / "tiny"
    for product in PRODUCTS:
        assert np.array_equal(read(local / product), read(cluster_run / product), equal_nan=True), (
            product
        )
    local_polygons = gpd.read_file(local / "flood/polygons.gpkg")
    cluster_polygons = gpd.read_file(cluster_run / "flood/polygons.gpkg")
    assert local_polygons.geom_equals(cluster_polygons).all()

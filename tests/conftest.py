"""Shared fixtures: small georeferenced rasters built in the test, the tiny demo runs.

Helpers that tests and benchmarks import live in `tests.helpers`."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from rasterio.transform import from_origin

from metaflood.core.raster import write_cog
from tests.helpers.workflow_runs import run_tiny, tiled_config

UTM = "EPSG:32634"


@pytest.fixture(autouse=True)
def metaflood_log_level():
    """The package logger's level as each test found it: a benchmark's `main` quiets it
    for its own process, which must not silence the warnings later tests look for."""
    logger = logging.getLogger("metaflood")
    level = logger.level
    yield
    logger.setLevel(level)


@pytest.fixture
def write_raster(tmp_path):
    """Write an array as a COG under tmp_path and return its path."""

    def _write(name, data, *, transform=None, crs=UTM, nodata=np.nan, **kwargs):
        data = np.asarray(data)
        transform = transform or from_origin(600000, 3630000, 1.0, 1.0)
        return write_cog(
            tmp_path / name, data, crs=crs, transform=transform, nodata=nodata, **kwargs
        )

    return _write


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """The tiny demo event run locally once per session (`snakemake --cores 2`)."""
    return run_tiny(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="session")
def tiled_run(tmp_path_factory, tiny_run):
    """The tiny demo run locally with tiling on (4 tiles), with tiny_run's checkpoint."""
    config = tiled_config(tiny_run / "results" / "models" / "metars.pt")
    return run_tiny(tmp_path_factory.mktemp("tiled"), config=config)

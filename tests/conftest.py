"""Shared fixtures: small georeferenced rasters built in the test."""

from __future__ import annotations

import numpy as np
import pytest
from rasterio.transform import from_origin

from metaflood.core.raster import write_cog

UTM = "EPSG:32634"


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


def demo_event_config(**overrides) -> dict:
    """A small demo event (about 300 m square) in the shape of config.yaml."""
    event = {
        "aoi": {"bbox": [22.6300, 32.7600, 22.6332, 32.7627]},
        "grid": {"crs": "auto", "resolution": 2.0},
        "event_date": "2023-09-10",
        "pre": {"start": "2023-09-01", "end": "2023-09-09"},
        "post": {"start": "2023-09-11", "end": "2023-09-20"},
        "sar": {"source": "demo"},
        "optical": {"source": "demo"},
        "demo": {
            "seed": 3,
            "resolution": 1.0,
            "margin_m": 20,
            "cloud_fraction": 0.5,
            "post_optical": True,
            "post_offset_px": [0.4, -0.3],
            "optical_offset_px": [0.3, 0.25],
        },
    }
    event.update(overrides)
    return event


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """The tiny demo event run locally once per session (`snakemake --cores 2`)."""
    from tests.workflow_runs import run_tiny

    return run_tiny(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="session")
def tiled_run(tmp_path_factory, tiny_run):
    """The tiny demo run locally with tiling on (4 tiles), with tiny_run's checkpoint."""
    from tests.workflow_runs import run_tiny, tiled_config

    config = tiled_config(tiny_run / "results" / "models" / "metars.pt")
    return run_tiny(tmp_path_factory.mktemp("tiled"), config=config)

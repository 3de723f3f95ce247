"""metaflood.open_event: an event's products as one lazy xarray Dataset."""

from __future__ import annotations

import importlib.util
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import dask.array
import geopandas as gpd
import numpy as np
import pytest
import rasterio

import metaflood
from metaflood.core import exclusion_codes
from metaflood.core.classes import CLASS_NAMES, WATER
from metaflood.core.datacube import (
    PRODUCTS,
    bit_codes,
    code_of,
    flooded_area_by_pre_class,
    parse_bits,
    parse_codes,
)
from metaflood.core.errors import InputError, NotAnEventError, RunIncompleteError
from metaflood.core.raster import write_cog
from metaflood.flood import reference_water
from metaflood.flood.change import EXTENT_COLORMAP
from metaflood.flood.sar_change import EVIDENCE_VALUES
from metaflood.landcover.writers import ROUTE_CODES

ROOT = Path(__file__).resolve().parents[2]
AVAILABILITY_BITS = "bit 0 SAR valid, bit 1 optical valid; 255 outside the AOI"


def _benchmark():
    """benchmarks/datacube_memory.py, whose synthetic event these tests open."""
    path = ROOT / "benchmarks" / "datacube_memory.py"
    spec = importlib.util.spec_from_file_location("datacube_memory", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def synthetic_event(tmp_path_factory) -> Path:
    """A 300 px event written with the workflow's writers and its change and stats stages."""
    results = tmp_path_factory.mktemp("synthetic") / "results"
    return _benchmark().write_event(results, "synth", 300, seed=1)


def test_code_tags_as_the_workflow_writes_them():
    assert parse_codes(ROUTE_CODES) == {
        0: "none",
        1: "joint",
        2: "sar_only",
        3: "optical_only",
        255: "outside AOI",
    }
    # meanings with commas, colons and brackets stay whole
    evidence = parse_codes(EVIDENCE_VALUES)
    assert evidence[1] == "backscatter dropped to water level (flood signal)"
    assert evidence[2] == "excluded: already water-dark before the event and did not fall"
    assert evidence[255] == "no SAR in one period or outside the AOI"
    assert parse_codes(AVAILABILITY_BITS) == {255: "outside the AOI"}
    assert parse_bits(AVAILABILITY_BITS) == {0: "SAR valid", 1: "optical valid"}
    assert bit_codes({0: "SAR valid", 1: "optical valid"}) == {
        0: "none",
        1: "SAR valid",
        2: "optical valid",
        3: "SAR valid and optical valid",
    }


def test_an_event_opens_lazily_with_its_codes_and_legend(synthetic_event):
    ds = metaflood.open_event(synthetic_event.parent, "synth", chunks=128)
    for name in ds.data_vars:
        assert isinstance(ds[name].data, dask.array.Array), name
        assert ds[name].rio.crs == "EPSG:32634", name
    assert ds["landcover"].dims == ("period", "y", "x")
    assert list(ds["period"].values) == ["pre", "post"]
    assert ds["probability"].dims == ("period", "class", "y", "x")
    assert list(ds["class_name"].values) == list(CLASS_NAMES)
    assert ds["class_color"].values[WATER] == "#0000ff"
    assert ds["probability"].attrs["scale_factor"] == pytest.approx(1 / 254)
    assert ds["landcover"].attrs["codes"][WATER] == "water"
    assert ds["extent"].attrs["codes"] == {
        0: "dry",
        1: "flooded",
        2: "permanent water",
        255: "nodata",
    }
    assert ds["extent"].attrs["colors"][1] == "#{:02x}{:02x}{:02x}".format(*EXTENT_COLORMAP[1][:3])
    assert ds["availability"].attrs["codes"][3] == "SAR valid and optical valid"
    assert list(ds["ratio"].values) == ["VV_log_ratio", "VH_log_ratio", "VV_post_filtered"]
    assert ds.metaflood.code("route", "sar_only") == 2
    assert code_of(ds["sar_change"], "backscatter dropped") == 1
    # chunks of the size asked for
    assert ds["extent"].data.chunksize == (128, 128)


def test_missing_products_are_absent_and_say_why(synthetic_event):
    ds = metaflood.open_event(synthetic_event)
    # the synthetic event has no image stacks, no terrain or reference water layers and
    # only the water stage's fused maps; no flood network was configured: not missing
    assert set(ds.metaflood.missing) == {
        "image",
        "water_sar",
        "water_evidence",
        "exclusion",
        "reference_water",
    }
    assert "flood_network" not in ds
    with pytest.raises(KeyError, match="made only when the configuration sets change.flood_net"):
        ds.metaflood["flood_network"]
    assert "image" not in ds
    with pytest.raises(KeyError, match=r"aligned/pre\.tif.*snakemake --cores all"):
        ds.metaflood["image"]
    with pytest.raises(KeyError, match="made by the water stage"):
        ds.metaflood["water_sar"]
    with pytest.raises(KeyError, match="not a metaflood product"):
        ds.metaflood["nonsense"]
    assert ds.metaflood["extent"] is not None


def test_flooded_area_by_class_equals_stats_json(synthetic_event):
    ds = metaflood.open_event(synthetic_event)
    area = flooded_area_by_pre_class(ds).compute()
    expected = ds.metaflood.stats["flood"]["flooded_by_pre_class_km2"]
    assert sum(expected.values()) > 0
    for name, value in zip(ds["class_name"].values, area.values, strict=True):
        assert math.isclose(value, expected[name], abs_tol=1e-6), name


def test_the_water_and_flood_layers_are_read_when_they_exist(synthetic_event, tmp_path):
    event = tmp_path / "results" / "synth"
    shutil.copytree(synthetic_event, event)
    with rasterio.open(event / "flood" / "extent.tif") as src:
        grid = {"crs": src.crs, "transform": src.transform}
        shape = src.shape
    for period in ("pre", "post"):
        # as the water stage writes them (issue 22)
        write_cog(
            event / "water" / f"{period}.tif",
            np.full(shape, 40, np.uint8),
            nodata=255,
            descriptions=("water_probability",),
            units=("percent",),
            **grid,
        )
        write_cog(
            event / "water" / f"{period}_sar.tif",
            np.ones(shape, np.uint8),
            nodata=255,
            descriptions=("sar_water",),
            tags={"values": "0 dry, 1 water, 255 no SAR"},
            categorical=True,
            **grid,
        )
        write_cog(
            event / "water" / f"{period}_evidence.tif",
            np.zeros((3, *shape), np.float32),
            nodata=np.nan,
            descriptions=("sar_margin_db", "water_index", "index_margin"),
            **grid,
        )
    # as the terrain, reference water and flood network stages tag them
    for name, names in (
        ("exclusion", exclusion_codes.NAMES),
        ("reference_water", reference_water.NAMES),
        ("network", None),
    ):
        write_cog(
            event / "flood" / f"{name}.tif",
            np.full(shape, 1, np.uint8),
            nodata=255,
            descriptions=(name,),
            tags={"values": ", ".join(f"{c} {n}" for c, n in names.items())} if names else None,
            **grid,
        )
    record_flood_network(event)
    ds = metaflood.open_event(event)
    assert set(ds.metaflood.missing) == {"image"}
    assert ds["exclusion"].attrs["codes"] == exclusion_codes.NAMES
    assert ds["reference_water"].attrs["codes"] == reference_water.NAMES
    assert int(ds["flood_network"].max()) == 1 and ds["flood_network"].rio.nodata == 255
    assert ds["water"].dims == ("period", "y", "x")
    assert ds["water"].attrs["units"] == "percent"
    assert ds["water_sar"].attrs["codes"] == {0: "dry", 1: "water", 255: "no SAR"}
    assert list(ds["evidence"].values) == ["sar_margin_db", "water_index", "index_margin"]
    assert ds["water_evidence"].rio.nodata != ds["water_evidence"].rio.nodata  # NaN
    assert int(ds["water"].sel(period="post").max()) == 40


def record_flood_network(event: Path) -> None:
    """stats.json as a run with `change.flood_network` set writes it."""
    stats_path = event / "flood" / "stats.json"
    stats = json.loads(stats_path.read_text())
    stats_path.write_text(json.dumps(stats | {"flood_network": {"joined_by": "fitted join"}}))


def test_a_flood_network_left_by_an_earlier_run_is_not_this_runs(synthetic_event, tmp_path):
    """A run with `change.flood_network` off leaves an earlier run's network.tif where it
    was: it is not read, and asking for it says why; a run that made it and lost it
    names it missing."""
    event = tmp_path / "results" / "synth"
    shutil.copytree(synthetic_event, event)
    shutil.copy(event / "flood" / "confidence.tif", event / "flood" / "network.tif")
    ds = metaflood.open_event(event)
    assert "flood_network" not in ds and "flood_network" not in ds.metaflood.missing
    with pytest.raises(KeyError, match=r"this run did not \(.*network\.tif is left from an ear"):
        ds.metaflood["flood_network"]
    record_flood_network(event)
    assert "flood_network" in metaflood.open_event(event)
    (event / "flood" / "network.tif").unlink()
    ds = metaflood.open_event(event)
    with pytest.raises(KeyError, match=r"network\.tif not found \(removed since the run\?\)"):
        ds.metaflood["flood_network"]


def test_a_product_off_the_grid_is_named(synthetic_event, tmp_path):
    event = tmp_path / "results" / "synth"
    shutil.copytree(synthetic_event, event)
    with rasterio.open(event / "flood" / "confidence.tif") as src:
        data, crs, transform = src.read(1), src.crs, src.transform
    write_cog(
        event / "flood" / "confidence.tif",
        data[:-1],
        nodata=255,
        crs=crs,
        transform=transform,
    )
    with pytest.raises(InputError, match=r"confidence\.tif: not on the event's grid"):
        metaflood.open_event(event)


def test_folders_that_are_not_a_finished_event(tmp_path, synthetic_event):
    results = tmp_path / "results"
    with pytest.raises(NotAnEventError, match="no such folder.*metaflood.run"):
        metaflood.open_event(results, "demo")
    shutil.copytree(synthetic_event, results / "synth")
    (results / "models").mkdir()
    with pytest.raises(NotAnEventError, match=r"no such folder \(events there: synth\)"):
        metaflood.open_event(results, "demo")
    with pytest.raises(NotAnEventError, match="not an event's results"):
        metaflood.open_event(results, "models")
    with pytest.raises(NotAnEventError, match=r"name an event \(events there: synth\)"):
        metaflood.open_event(results)
    with pytest.raises(NotAnEventError, match=r"a folder inside event 'synth': open .*synth"):
        metaflood.open_event(results / "synth", "flood")
    (results / "synth" / "flood" / "stats.json").unlink()
    with pytest.raises(
        RunIncompleteError,
        match=r"did not finish.*snakemake --cores all results/synth/flood/stats\.json",
    ):
        metaflood.open_event(results, "synth")


def test_import_metaflood_stays_light():
    code = (
        "import sys, metaflood\n"
        "heavy = {'xarray', 'rioxarray', 'dask', 'snakemake', 'geopandas', 'torch'}\n"
        "print(sorted(heavy & set(sys.modules)))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.strip() == "[]", done.stderr
    assert callable(metaflood.open_event) and callable(metaflood.run)


def _read(path: Path) -> tuple[np.ndarray, dict]:
    with rasterio.open(path) as src:
        return src.read(), {"crs": src.crs, "transform": src.transform, "nodata": src.nodata}


@pytest.mark.integration
@pytest.mark.parametrize("run_name", ["tiny_run", "tiled_run"])
def test_open_event_equals_the_rasters_of_a_run(run_name, request):
    """Every product of the tiny demo (untiled and tiled): values, CRS, transform and
    nodata as the files have them; polygons and statistics as written."""
    workdir = request.getfixturevalue(run_name)
    event_dir = workdir / "results" / "tiny"
    ds = metaflood.open_event(workdir / "results", "tiny")
    assert not ds.metaflood.missing  # every product, the water stage's included
    assert "flood_network" not in ds  # not configured
    for product in (p for p in PRODUCTS if not p.option):
        da = ds[product.name]
        for period, path in zip(("pre", "post"), product.files(event_dir), strict=False):
            part = da.sel(period=period) if product.per_period else da
            data, meta = _read(path)
            values = part.values
            np.testing.assert_array_equal(values.reshape(data.shape), data, err_msg=str(path))
            assert part.dtype == data.dtype
            assert part.rio.crs == meta["crs"], path
            assert part.rio.transform() == meta["transform"], path
            nodata = part.rio.nodata
            assert nodata == meta["nodata"] or (np.isnan(nodata) and np.isnan(meta["nodata"]))
    polygons = gpd.read_file(event_dir / "flood" / "polygons.gpkg")
    assert ds.metaflood.polygons.equals(polygons)
    stats = json.loads((event_dir / "flood" / "stats.json").read_text())
    assert ds.metaflood.stats == stats
    area = flooded_area_by_pre_class(ds).compute()
    expected = stats["flood"]["flooded_by_pre_class_km2"]
    for name, value in zip(ds["class_name"].values, area.values, strict=True):
        assert math.isclose(value, expected[name], abs_tol=1e-6), name


def test_the_memory_benchmark_at_a_small_size(tmp_path):
    """benchmarks/datacube_memory.py end to end on a 1,024 px event: every way of
    counting gives stats.json's figures, and the datacube's peak is measured (the 1 GB
    bound of an 8,000 px event holds here with room; docs/performance.md has the large
    figures)."""
    script = ROOT / "benchmarks" / "datacube_memory.py"
    done = subprocess.run(
        [sys.executable, script, "--size", "1024", "--chunks", "256", "--workdir", tmp_path],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = {line.split()[0]: line for line in done.stdout.splitlines() if "peak RSS" in line}
    assert set(lines) == {"imports", "datacube", "whole", "stats"}
    for mode in ("datacube", "whole", "stats"):
        assert lines[mode].endswith("equals stats.json: True"), lines[mode]
    assert float(lines["datacube"].split()[3]) < 1000

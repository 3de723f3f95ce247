"""The workflow end to end with the stac, static and local sources: snakemake on three
tiny events in a temporary directory, the scenes served on 127.0.0.1 by `rustac serve`
and a range-request file server, and a fourth whose local optical files have OMBRIA's
bands only (green, NIR, SWIR). One small checkpoint, trained once, serves them all (the
model's quality is not what is tested here)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
import yaml
from rio_cogeo.cogeo import cog_validate

from metaflood.core.sar import to_db
from metaflood.demo.catalog import DEM_COLLECTION, REFERENCE_WATER_COLLECTION
from tests.helpers.acquire_provider import OPTICAL, SAR, build_provider, write_static_catalog
from tests.helpers.acquire_servers import RangeFileServer, StacApiServer, free_port
from tests.helpers.events import demo_event_config
from tests.helpers.workflow_runs import snakemake

pytestmark = pytest.mark.integration

MODEL = {"tile": 128, "overlap": 16, "batch_size": 4}
TINY_TRAIN = {
    "iterations": 2,
    "batch_size": 2,
    "crop": 64,
    "scenes": 2,
    "val_scenes": 1,
    "scene_size_m": 200,
    "save_every": 2,
    "seed": 1,
}
EVENTS = ("remote", "static", "local")
OMBRIA = "ombria"  # local optical files with green, nir and swir16 only


def write_local_files(demo_catalog: Path, folder: Path) -> dict[str, dict[str, Path]]:
    """The demo scenes as a user's own multi-band GeoTIFFs: SAR in dB, optical (blue,
    green, red, nir, swir16) as reflectance x 10000 with the scene classification as a
    sixth band."""
    import pystac

    folder.mkdir(parents=True, exist_ok=True)
    files: dict[str, dict[str, Path]] = {"sar": {}, "optical": {}}
    for item in pystac.Catalog.from_file(str(demo_catalog)).get_items(recursive=True):
        if item.collection_id in (DEM_COLLECTION, REFERENCE_WATER_COLLECTION):
            continue  # static layers, not scenes
        period = "pre" if item.datetime.day < 10 else "post"
        sar = item.collection_id.endswith("1")
        keys = ("vv", "vh") if sar else ("B02", "B03", "B04", "B08", "B11", "SCL")
        bands = []
        for key in keys:
            with rasterio.open(item.assets[key].get_absolute_href()) as src:
                profile = src.profile
                bands.append(src.read(1))
        data = to_db(np.stack(bands)) if sar else np.stack(bands).astype(np.uint16)
        profile.update(driver="GTiff", count=len(keys), dtype=data.dtype.name)
        profile.update(nodata=np.nan if sar else 0)
        path = folder / f"{period}_{'sar' if sar else 'optical'}.tif"
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(data)
        files["sar" if sar else "optical"][period] = path
    return files


def events_config(api_url: str, catalog_url: str, local: dict, checkpoint: Path) -> dict:
    base = demo_event_config()
    del base["demo"]
    pc = {"source": "stac", "preset": "planetary-computer", "url": api_url}
    static_optical = {
        "source": "static",
        "catalog": catalog_url,
        "collection": OPTICAL,
        "assets": {"blue": "B02", "green": "B03", "red": "B04", "nir": "B08", "swir16": "B11"},
        "mask_asset": "SCL",
        "scale": 0.0001,
    }
    local_sar = {
        "source": "local",
        **{p: str(local["sar"][p]) for p in ("pre", "post")},
        "bands": {"VV": 1, "VH": 2},
        "sar_scale": "db",
    }
    local_optical = {
        "source": "local",
        **{p: str(local["optical"][p]) for p in ("pre", "post")},
        "bands": {"blue": 1, "green": 2, "red": 3, "nir": 4, "swir16": 5},
        "mask": {"band": 6, "kind": "scl"},
        "scale": 0.0001,
    }
    ombria_optical = {**local_optical, "bands": {"green": 2, "nir": 4, "swir16": 5}}
    return {
        "events": {
            "remote": {**base, "sar": pc, "optical": pc},
            "static": {
                **base,
                "sar": {
                    "source": "static",
                    "catalog": catalog_url,
                    "collection": SAR,
                    "assets": {"VV": "vv", "VH": "vh"},
                },
                "optical": static_optical,
            },
            "local": {**base, "sar": local_sar, "optical": local_optical},
            OMBRIA: {**base, "sar": local_sar, "optical": ombria_optical},
        },
        "model": {**MODEL, "checkpoint": str(checkpoint)},
        "change": {"min_area_m2": 40},
    }


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("model")
    config = out / "config.yaml"
    sections = {"events": {"tiny": demo_event_config()}, "model": MODEL, "train": TINY_TRAIN}
    config.write_text(yaml.safe_dump(sections))
    command = [
        sys.executable,
        "-m",
        "metaflood",
        "train",
        "--config",
        str(config),
        "--out",
        str(out / "tiny.pt"),
        "--metrics",
        str(out / "tiny.json"),
        "--threads",
        "2",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return out / "tiny.pt"


@pytest.fixture(scope="module")
def workflow_run(tmp_path_factory, checkpoint):
    root = tmp_path_factory.mktemp("workflow")
    (root / "served").mkdir()
    with RangeFileServer(root / "served") as files:
        provider = build_provider(demo_event_config(), "tiny", root, files.url)
        catalog = write_static_catalog(provider, provider.served, files.url)
        items = provider.write_item_collection(root / "items.json")
        local = write_local_files(provider.demo_catalog, root / "local")
        with StacApiServer(items, root / "rustac.log") as api:
            workdir = root / "work"
            workdir.mkdir()
            config = events_config(api.url, f"{files.url}/{catalog.name}", local, checkpoint)
            (workdir / "config.yaml").write_text(yaml.safe_dump(config))
            result = snakemake(workdir, "--configfile", str(workdir / "config.yaml"), timeout=1800)
            assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
            requests = len(files.state.requests())
            again = snakemake(workdir, "--configfile", str(workdir / "config.yaml"), "-n")
            yield workdir, requests, again


def test_every_event_has_every_product(workflow_run):
    workdir, requests, _ = workflow_run
    assert requests > 0
    for event in EVENTS:
        results = workdir / "results" / event
        for path in ("report.html", "flood/stats.json", "flood/polygons.gpkg"):
            assert (results / path).is_file(), f"{event}: {path}"
        for path in ("aligned/post.tif", "landcover/post.tif", "flood/extent.tif"):
            valid, errors, _ = cog_validate(str(results / path))
            assert valid, f"{results / path}: {errors}"
        stats = json.loads((results / "flood/stats.json").read_text())
        for period in ("pre", "post"):
            for modality in ("sar", "optical"):
                assert stats["provenance"]["scenes"][period][modality]["status"] == "found"
        assert stats["coverage"]["pre"]["both"] == 1.0


def test_scenes_say_where_they_came_from(workflow_run):
    workdir = workflow_run[0]
    scenes = {
        e: json.loads((workdir / f"results/{e}/scenes/post/scenes.json").read_text())
        for e in EVENTS
    }
    assert scenes["remote"]["sar"]["source"] == "stac"
    assert scenes["remote"]["sar"]["collection"] == SAR
    assert "Planetary Computer" in scenes["remote"]["optical"]["provider"]
    assert scenes["static"]["optical"]["source"] == "static"
    assert scenes["local"]["sar"]["item"] == "local-post-sar"
    href = scenes["remote"]["optical"]["items"][0]["assets"]["blue"]["href"]
    assert href.startswith("http://127.0.0.1:") and href.endswith("/B02.tif")


def test_the_three_sources_give_the_same_stack(workflow_run):
    """Same scenes, three ways in: the aligned stacks agree (local SAR went through dB;
    the local files' swir16 is the demo's own, the provider's B11 is at twice the pixel
    size and interpolated, so that band agrees only closely)."""
    workdir = workflow_run[0]
    for period in ("pre", "post"):
        stacks = {}
        for event in EVENTS:
            with rasterio.open(workdir / f"results/{event}/aligned/{period}.tif") as src:
                assert src.descriptions == ("VV", "VH", "blue", "green", "red", "nir", "swir16")
                stacks[event] = src.read()
        np.testing.assert_array_equal(stacks["remote"], stacks["static"])
        remote, local = stacks["remote"], stacks["local"]
        np.testing.assert_allclose(remote[:6], local[:6], atol=1e-3, equal_nan=True)
        inner = (slice(2, -2), slice(2, -2))
        assert np.nanmedian(np.abs(remote[6][inner] - local[6][inner])) < 0.01


def test_a_source_without_blue_and_red_runs_end_to_end_from_sar(workflow_run):
    """OMBRIA's bands (green, NIR, SWIR): the stack holds exactly those; the checkpoint's
    optical head takes blue and red as well, so every pixel is mapped by the SAR head,
    as the land-cover log says; the report's optical maps are false colour and say so."""
    workdir = workflow_run[0]
    results = workdir / "results" / OMBRIA
    with rasterio.open(results / "aligned/post.tif") as src:
        assert src.descriptions == ("VV", "VH", "green", "nir", "swir16")
    with rasterio.open(results / "landcover/post_route.tif") as src:
        route = src.read(1)
    assert set(np.unique(route)) <= {2, 255}  # SAR only, or outside the AOI
    log = (results / "logs/landcover_post.log").read_text()
    assert "the stack lacks blue, red" in log and '"usable": false' in log
    assert "false colour: SWIR 1.6 um, NIR, green" in (results / "report.html").read_text()


def test_a_second_run_has_nothing_to_do(workflow_run):
    again = workflow_run[2]
    assert again.returncode == 0
    assert "Nothing to be done" in again.stdout + again.stderr


def test_an_unreachable_provider_fails_in_acquisition(tmp_path, checkpoint):
    url = f"http://127.0.0.1:{free_port()}/api/stac/v1"
    event = demo_event_config()
    del event["demo"]
    pc = {"source": "stac", "preset": "planetary-computer", "url": url}
    config = {
        "events": {"remote": {**event, "sar": pc, "optical": pc}},
        "model": {**MODEL, "checkpoint": str(checkpoint)},
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    result = snakemake(tmp_path, "--configfile", str(tmp_path / "config.yaml"), timeout=1800)
    assert result.returncode != 0
    log = (tmp_path / "results/remote/logs/acquire_search.log").read_text()
    assert "cannot reach Microsoft Planetary Computer" in log and "offline demo" in log
    # Only the static layers the event does without (written as absent, complete) may
    # have been made before the search failed; no scene, no product.
    made = {
        p.relative_to(tmp_path / "results/remote") for p in (tmp_path / "results").rglob("*.tif")
    }
    assert made <= {Path("auxiliary/dem.tif"), Path("auxiliary/reference_water.tif")}
    assert not (tmp_path / "results/remote/scenes/selection.json").exists()

"""The whole workflow, run by snakemake on a tiny demo event in a temporary directory."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from rio_cogeo.cogeo import cog_validate

from metaflood.flood.change import FLOODED
from metaflood.flood.support import CODES
from tests.helpers.workflow_runs import ROOT, snakemake, tiny_config, write_config

pytestmark = pytest.mark.integration


def read(path: Path):
    with rasterio.open(path) as src:
        return src.read(), src.profile, src


def test_every_product_exists_and_is_georeferenced(tiny_run):
    event = tiny_run / "results" / "tiny"
    rasters = [
        event / "aligned/pre.tif",
        event / "aligned/post.tif",
        event / "aligned/pre_valid.tif",
        event / "aligned/post_valid.tif",
        event / "landcover/pre.tif",
        event / "landcover/post.tif",
        event / "landcover/pre_proba.tif",
        event / "landcover/post_route.tif",
        event / "flood/extent.tif",
        event / "flood/exclusion.tif",
        event / "flood/reference_water.tif",
        event / "flood/support.tif",
        event / "auxiliary/reference_water.tif",
    ]
    profiles = []
    for path in rasters:
        valid, errors, _ = cog_validate(str(path))
        assert valid, f"{path}: {errors}"
        _, profile, _ = read(path)
        assert profile["crs"].to_epsg() == 32634
        assert profile["nodata"] is not None
        profiles.append((profile["transform"], profile["width"], profile["height"]))
    assert len(set(profiles)) == 1, "every product shares the event grid"


def test_the_static_layers_reach_the_exclusion_and_the_report(tiny_run):
    event = tiny_run / "results" / "tiny"
    layers = json.loads((event / "auxiliary/auxiliary.json").read_text())
    assert layers["dem"]["status"] == "found" and layers["reference_water"]["status"] == "found"
    stats = json.loads((event / "flood/stats.json").read_text())
    exclusion = stats["terrain"]["exclusion"]
    # the demo's items give the look direction: shadow and layover were computed
    assert exclusion["viewing_geometry"]["look_azimuth_deg"] == 90.0
    assert not exclusion["absent"]
    assert stats["terrain"]["reference_water"]["reference_layer"] == "found"
    effect = stats["validation"]["exclusion_effect"]
    assert (
        effect["with_exclusion"]["false_positive_px"]
        <= (effect["without_exclusion"]["false_positive_px"])
    )
    with rasterio.open(event / "flood/exclusion.tif") as src:
        assert src.colormap(1)[3][:3] == (60, 60, 60)
    assert (
        "Terrain exclusion and water before the event"
        in (event.parent.parent / "results/tiny/report.html").read_text()
    )


def test_value_ranges(tiny_run):
    event = tiny_run / "results" / "tiny"
    classes, profile, _ = read(event / "landcover/post.tif")
    assert set(np.unique(classes)) <= set(range(8)) | {255}
    route, _, _ = read(event / "landcover/post_route.tif")
    assert set(np.unique(route)) <= {0, 1, 2, 3, 255}
    # The post optical image is half cloud: both the joint and the SAR-only route are used.
    assert {1, 2} <= set(np.unique(route))
    proba, _, _ = read(event / "landcover/pre_proba.tif")
    assert proba.shape[0] == 8
    inside = proba[0] != 255
    sums = proba[:, inside].astype(int).sum(axis=0)
    assert np.abs(sums - 254).max() <= 8  # probabilities, rounded per class
    extent, _, _ = read(event / "flood/extent.tif")
    assert set(np.unique(extent)) <= {0, 1, 2, 255}
    assert (extent == 1).any() and (extent == 2).any()


def test_flood_matches_the_truth(tiny_run):
    stats = json.loads((tiny_run / "results/tiny/flood/stats.json").read_text())
    assert stats["validation"]["flood"]["iou"] >= 0.5
    assert stats["flood"]["flooded_area_km2"] > 0
    assert stats["provenance"]["scenes"]["post"]["sar"]["status"] == "found"
    # Half the post optical image is cloud or cloud shadow: both routes carry real weight.
    assert stats["coverage"]["post"]["both"] > 0.1
    assert stats["coverage"]["post"]["sar_only"] > 0.3
    assert stats["coverage"]["pre"]["both"] == 1.0
    polygons = gpd.read_file(tiny_run / "results/tiny/flood/polygons.gpkg")
    assert len(polygons) == stats["flood"]["polygons"] > 0
    assert polygons.is_valid.all()
    assert polygons.crs.to_epsg() == 32634
    assert abs(polygons.area_m2.sum() / 1e6 - stats["flood"]["flooded_area_km2"]) < 1e-6
    # What the flood rests on: every flooded pixel in one case, and where both lines of
    # evidence agree (most of the flood) the map is right nearly everywhere.
    by_evidence = stats["flood"]["flooded_by_evidence"]
    assert sum(by_evidence.values()) == pytest.approx(1.0, abs=1e-5)
    assert by_evidence["water_maps_and_sar_change"] > 0.5
    # flood/support.tif maps those cases: the statistics count the product
    flood = tiny_run / "results/tiny/flood"
    with rasterio.open(flood / "support.tif") as support, rasterio.open(flood / "extent.tif") as e:
        codes, flooded = support.read(1), e.read(1) == FLOODED
    assert ((codes >= 1) & (codes <= len(CODES)) == flooded).all()
    for name, code in CODES.items():
        assert (codes == code).sum() / flooded.sum() == pytest.approx(by_evidence[name], abs=1e-5)
    both = stats["validation"]["flood_by_evidence"]["water_maps_and_sar_change"]
    assert both["truly_flooded"] >= 0.9


def test_report_is_self_contained(tiny_run):
    html = (tiny_run / "results/tiny/report.html").read_text()
    assert html.count("data:image/png;base64,") >= 12
    assert "http://" not in html and "https://" not in html
    assert "Flood report: tiny" in html


def test_the_reports_links_lead_to_the_products(tiny_run):
    import re

    event = tiny_run / "results" / "tiny"
    links = re.findall(r'<a href="([^"]+)"', (event / "report.html").read_text())
    assert "flood/extent.tif" in links and "catalog.json" in links
    assert [link for link in links if not (event / link).is_file()] == []


def test_the_reports_north_arrow_points_north(tiny_run):
    """Read from the pixels of a map in report.html (issue 21: it pointed south)."""
    import base64
    import re

    from tests.helpers.figure_pixels import assert_points_north

    html = (tiny_run / "results/tiny/report.html").read_text()
    uri = re.search(r'alt="pre-event modality coverage" src="data:image/png;base64,([^"]+)"', html)
    assert_points_north(base64.b64decode(uri.group(1)))


def test_report_opens_in_chromium_offline(tiny_run):
    from tests.helpers.browser import visit

    screenshot = ROOT / "results" / "screenshots" / "report_tiny.png"
    page = visit(tiny_run / "results/tiny/report.html", screenshot)
    assert len(page.images) >= 12
    assert all(i["complete"] and i["width"] > 0 for i in page.images), page.images
    assert page.console == []
    leaving = [u for u in page.requests if not u.startswith(("data:", "file:"))]
    assert leaving == [], leaving
    assert screenshot.stat().st_size > 10_000
    shutil.copy(screenshot, tiny_run / "results/tiny/report.png")


def test_flood_products_are_valid(tiny_run):
    event = tiny_run / "results" / "tiny"
    for path in [*event.glob("flood/*.tif"), *event.glob("landcover/*.tif")]:
        valid, errors, _ = cog_validate(str(path))
        assert valid, f"{path}: {errors}"
        with rasterio.open(path) as src:
            assert src.nodata is not None and all(src.descriptions), path
    confidence, _, _ = read(event / "flood/confidence.tif")
    assert set(np.unique(confidence)) <= set(range(101)) | {255}
    validation = json.loads((event / "flood/validation.json").read_text())
    high = validation["confidence"]["high_confidence"]
    # A 60-iteration model on a 300 m scene: the calibrated figure (0.987 on the demo) is
    # in docs/products.md; here high confidence must still be mostly right.
    assert high["pixels"] > 0 and high["precision"] >= 0.85
    stats = json.loads((event / "flood/stats.json").read_text())
    assert stats["sar_change"]["share_flood_signal"] > 0
    assert (event / "flood/impact.csv").read_text().startswith("section,measure,value,unit")
    assert (event / "mapbook.pdf").read_bytes().startswith(b"%PDF")
    catalog = json.loads((event / "catalog.json").read_text())
    assert [link["rel"] for link in catalog["links"]] == ["root", "item"]


def test_the_products_open_in_qgis_with_their_styles(tiny_run):
    from metaflood.report.qgis_styles import style_path, styled_products
    from tests.helpers.qgis_drawing import qgis_draws

    event = tiny_run / "results" / "tiny"
    products = [event / product for product in styled_products(flood_network=False)]
    assert all(style_path(product).is_file() for product in products)
    assert not (event / "flood" / "network.qml").exists()  # no flood network configured
    drawn = qgis_draws(*products)
    renderers = {r.relative_to(event).as_posix(): d["renderer"] for r, d in drawn.items()}
    expected = {"flood/polygons.gpkg": "RuleRenderer"}
    expected |= {f"aligned/{period}.tif": "multibandcolor" for period in ("pre", "post")}
    assert renderers == {
        product: expected.get(product, "singlebandpseudocolor")
        for product in styled_products(flood_network=False)
    }
    assert all(layer["valid"] for layer in drawn.values())


def test_the_qgis_project_opens_every_product_where_the_folder_is_moved(tiny_run, tmp_path):
    """Read by QGIS from a copy of the event folder elsewhere: its paths are relative."""
    from metaflood.report.qgis_project import LAYERS
    from tests.helpers.qgis_drawing import qgis_draws

    moved = tmp_path / "shared" / "tiny"
    shutil.copytree(tiny_run / "results" / "tiny", moved)
    project = qgis_draws(moved / "tiny.qgs")[moved / "tiny.qgs"]
    assert project["read"] and project["crs"] == "EPSG:32634"
    layers = project["layers"]
    assert [layer["name"] for layer in layers] == [layer.name for layer in LAYERS]
    assert all(layer["valid"] and layer["crs"] == "EPSG:32634" for layer in layers)
    assert all(Path(layer["source"]).is_relative_to(moved) for layer in layers)
    renderers = {layer["name"]: layer["renderer"] for layer in layers}
    assert renderers["Flood extent"] == "paletted"  # its colour table
    assert renderers["What the flood rests on"] == "paletted"
    assert renderers["Flood polygons"] == "RuleRenderer"  # the ones to check outlined
    assert renderers["Flood confidence (%)"] == "singlebandpseudocolor"  # its style
    assert renderers["Image after the event"] == "multibandcolor"
    assert [layer["name"] for layer in layers if layer["visible"]] == [
        "Flood polygons",
        "Image after the event",
    ]


def test_a_second_run_has_nothing_to_do(tiny_run):
    # Validating by hand, as docs/products.md shows, leaves the workflow's outputs up to date.
    validation = tiny_run / "results/tiny/flood/validation.json"
    before = validation.stat().st_mtime_ns
    by_hand = subprocess.run(
        [sys.executable, "-m", "metaflood", "validate", "--event", "tiny", "--min-area-m2", "40"],
        cwd=tiny_run,
        capture_output=True,
        text=True,
    )
    assert by_hand.returncode == 0, by_hand.stderr
    assert "flood IoU" in by_hand.stdout
    assert validation.stat().st_mtime_ns == before
    result = snakemake(tiny_run, "--configfile", str(tiny_run / "config.yaml"), "-n")
    assert result.returncode == 0
    assert "Nothing to be done" in result.stdout + result.stderr


def test_snakemakes_report_has_every_product_and_no_warning(tiny_run, tmp_path):
    """Issue 21: a category named "Statistics" clashed with the report's own panel of
    that name ("Duplicate explicit target name")."""
    import zipfile

    config = str(tiny_run / "config.yaml")
    result = snakemake(tiny_run, "--report", str(tmp_path / "report.zip"), "--configfile", config)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "WARNING" not in output and "Duplicate" not in output, output[-3000:]
    names = zipfile.ZipFile(tmp_path / "report.zip").namelist()
    for product in ("extent.tif", "stats.json", "impact.csv", "mapbook.pdf", "catalog.json"):
        assert any(name.endswith(product) for name in names), product


def test_a_corrupt_scene_fails_acquisition_cleanly(tiny_run, tmp_path):
    shutil.copytree(tiny_run / "resources", tmp_path / "resources")
    config = write_config(tmp_path, tiny_config())
    asset = next((tmp_path / "resources/demo/tiny/demo-sentinel-1").glob("*0905/vv.tif"))
    asset.write_bytes(asset.read_bytes()[: asset.stat().st_size // 3])
    # The target goes first: --configfile takes every argument after it.
    result = snakemake(tmp_path, "results/tiny/scenes/pre/sar.tif", "--configfile", str(config))
    assert result.returncode != 0
    log = (tmp_path / "results/tiny/logs/acquire_pre.log").read_text()
    assert "vv.tif" in log and ("corrupt" in log or "cannot be opened" in log)
    assert not list((tmp_path / "results/tiny/scenes").rglob("*.tif"))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"aoi": {"bbox": [179.9, -16.8, -179.9, -16.6]}},
            "events.tiny.aoi.bbox: lon_min 179.9 is east of lon_max -179.9, so the box crosses "
            "the antimeridian",
        ),
        ({"pre": {"start": "2023-09-09", "end": "2023-09-01"}}, "events.tiny.pre: the date window"),
        ({"sar": {"source": "sentinel"}}, "events.tiny.sar.source: 'sentinel' is not one of"),
        ({"colour": "red"}, "events.tiny: Additional properties are not allowed ('colour'"),
    ],
)
def test_bad_configuration_stops_before_any_job(tmp_path, change, message):
    config = write_config(tmp_path, tiny_config(**change))
    result = snakemake(tmp_path, "--configfile", str(config))
    assert result.returncode != 0
    assert message in result.stderr + result.stdout
    assert not (tmp_path / "results").exists()
    assert not (tmp_path / "resources").exists()


def test_credentials_in_a_configured_url_are_refused_and_never_printed(tmp_path):
    """Issue 21: a URL with user:password and a signature appeared on the console and in
    the search log. Snakemake prints (and keeps under .snakemake/) each job's command,
    which carries the event's configuration: so the configuration may not hold them."""
    url = "http://user:pw-SECRET@127.0.0.1:9/stac?sig=SIG-SECRET&v=1"
    assets = {"VV": "vv", "VH": "vh"}
    sar = {"source": "stac", "url": url, "collection": "s1", "assets": assets}
    config = write_config(tmp_path, tiny_config(sar=sar))
    result = snakemake(tmp_path, "--configfile", str(config))
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert (
        "events.tiny.sar.url: the URL carries credentials (a user and password and query "
        "parameters sig)" in output
    ), output[-3000:]
    assert "http://127.0.0.1:9/stac?v=1" in output and "~/.netrc" in output
    assert "SECRET" not in output
    assert not (tmp_path / "results").exists()
    kept = [p for p in (tmp_path / ".snakemake").rglob("*") if p.is_file()]
    assert not [p for p in kept if b"SECRET" in p.read_bytes()]
    check = subprocess.run(
        [sys.executable, "-m", "metaflood", "check-config", str(config)],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 1 and "the URL carries credentials" in check.stderr
    assert "SECRET" not in check.stdout + check.stderr


def test_malformed_yaml_is_reported_with_its_line(tmp_path):
    """Issue 21: Snakemake says only "Config file is not valid JSON or YAML". The
    default config.yaml is read by the Snakefile first, with metaflood's message; a
    --configfile is parsed by Snakemake before the Snakefile runs, so there the README
    points to `metaflood check-config`, which names the line."""
    (tmp_path / "config.yaml").write_text("events:\n  tiny: {aoi: [unclosed\n")
    result = snakemake(tmp_path, "-n")
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "invalid configuration: config.yaml: not valid YAML (line 3, column 1)" in output, (
        output[-3000:]
    )
    assert "not valid JSON or YAML" not in output
    result = snakemake(tmp_path, "--configfile", str(tmp_path / "config.yaml"))
    assert result.returncode != 0
    assert "Config file is not valid JSON or YAML" in result.stderr + result.stdout
    assert not (tmp_path / "results").exists()
    # `metaflood check-config` says where.
    check = subprocess.run(
        [sys.executable, "-m", "metaflood", "check-config", str(tmp_path / "config.yaml")],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 1
    assert "not valid YAML (line 3, column 1)" in check.stderr

import hashlib
import json

import numpy as np
import pytest
from rasterio.transform import from_origin

from metaflood.change import map_flood
from metaflood.classes import BARREN, BUILDING, WATER, colormap
from metaflood.report import write_report
from metaflood.report.figures import _nice_length, true_colour
from metaflood.stats import route_coverage, write_stats

TRANSFORM = from_origin(600000, 3630000, 2.0, 2.0)
EVENT = {
    "pre": {"start": "2023-09-01", "end": "2023-09-09"},
    "post": {"start": "2023-09-11", "end": "2023-09-20"},
}


@pytest.fixture
def products(tmp_path, write_raster):
    pre = np.full((64, 64), BARREN, np.uint8)
    pre[:8] = WATER
    pre[20:30, 20:40] = BUILDING
    post = pre.copy()
    post[16:34, 16:44] = WATER
    post[40:44, 40:44] = BARREN
    pre[40:44, 40:44] = BUILDING
    cls = {"transform": TRANSFORM, "nodata": 255, "colormap": colormap()}
    paths = {
        "pre": write_raster("pre.tif", pre, **cls),
        "post": write_raster("post.tif", post, **cls),
    }
    route_post = np.ones((64, 64), np.uint8)
    route_post[:, 32:] = 2
    paths["route_pre"] = write_raster(
        "rpre.tif", np.ones((64, 64), np.uint8), transform=TRANSFORM, nodata=255
    )
    paths["route_post"] = write_raster("rpost.tif", route_post, transform=TRANSFORM, nodata=255)
    rng = np.random.default_rng(0)
    stack = np.concatenate([rng.normal(-12, 3, (2, 64, 64)), rng.uniform(0, 0.3, (4, 64, 64))])
    paths["stack"] = write_raster("stack.tif", stack.astype(np.float32), transform=TRANSFORM)
    valid = np.full((64, 64), 3, np.uint8)
    valid[:, 32:] = 1
    paths["valid"] = write_raster("valid.tif", valid, transform=TRANSFORM, nodata=255)
    for name in ("extent.tif", "polygons.gpkg", "transitions.csv"):
        paths[name] = tmp_path / name
    map_flood(
        paths["pre"],
        paths["post"],
        out_extent=paths["extent.tif"],
        out_polygons=paths["polygons.gpkg"],
        out_transitions=paths["transitions.csv"],
        min_area_m2=0,
    )
    scene = {
        "sar": {
            "status": "found",
            "item": "s1",
            "datetime": "2023-09-05T04:30:00",
            "reason": "nearest",
        },
        "optical": {"status": "missing", "reason": "0 items in the window"},
    }
    for period in ("pre", "post"):
        paths[f"scenes_{period}"] = tmp_path / f"scenes_{period}.json"
        paths[f"scenes_{period}"].write_text(json.dumps(scene))
        shifts = {
            "optical_to_sar": {
                "shift": [0.1, -0.2],
                "reliable": True,
                "spread": 0.1,
                "method": "m",
                "reason": "agree",
                "applied": True,
            }
        }
        paths[f"coreg_{period}"] = tmp_path / f"coreg_{period}.json"
        paths[f"coreg_{period}"].write_text(json.dumps({"shifts": shifts}))
    paths["checkpoint"] = tmp_path / "model.pt"
    paths["checkpoint"].write_bytes(b"weights")
    return paths


def test_stats_and_report(products, tmp_path):
    p = products
    stats = write_stats(
        "e",
        {"events": {"e": EVENT}},
        extent=p["extent.tif"],
        polygons=p["polygons.gpkg"],
        transitions=p["transitions.csv"],
        landcover=[p["pre"], p["post"]],
        routes=[p["route_pre"], p["route_post"]],
        scenes=[p["scenes_pre"], p["scenes_post"]],
        coregistration=[p["coreg_pre"], p["coreg_post"]],
        checkpoint=p["checkpoint"],
        validation=None,
        out=tmp_path / "stats.json",
    )
    flood = stats["flood"]
    new_water_px = 18 * 28 - 0  # the flooded block; buildings inside it count too
    assert flood["flooded_area_km2"] == pytest.approx(new_water_px * 4 / 1e6)
    assert flood["flooded_by_pre_class_km2"]["building"] == pytest.approx(200 * 4 / 1e6)
    assert flood["buildings"]["building_to_barren_km2"] == pytest.approx(16 * 4 / 1e6)
    assert flood["permanent_water_km2"] == pytest.approx(8 * 64 * 4 / 1e6)
    assert stats["coverage"]["post"] == {
        "both": 0.5,
        "sar_only": 0.5,
        "optical_only": 0.0,
        "none": 0.0,
    }
    assert stats["provenance"]["model"]["sha256"] == hashlib.sha256(b"weights").hexdigest()
    assert stats["provenance"]["software"]["numpy"] == np.__version__
    assert json.loads((tmp_path / "stats.json").read_text())["event"] == "e"

    out = write_report(
        "e",
        stacks=[p["stack"], p["stack"]],
        valid=[p["valid"], p["valid"]],
        landcover=[p["pre"], p["post"]],
        extent=p["extent.tif"],
        stats=tmp_path / "stats.json",
        out=tmp_path / "report.html",
    )
    html = out.read_text()
    assert html.count('src="data:image/png;base64,') == 8
    assert "http" not in html.replace("http-equiv", "")
    assert "0.0020 km&sup2;" in html  # flooded area, as the key figure
    assert "missing" in html  # the optical scene that was not found is shown as such


def test_route_coverage_ignores_outside():
    route = np.array([1, 1, 2, 3, 0, 255, 255])
    assert route_coverage(route) == {"both": 0.4, "sar_only": 0.2, "optical_only": 0.2, "none": 0.2}


@pytest.mark.parametrize(("width", "expected"), [(1300, 200), (300, 50), (90, 10), (5000, 1000)])
def test_scale_bar_lengths_are_round(width, expected):
    assert _nice_length(width) == expected


def test_true_colour_marks_nodata_transparent():
    stack = np.full((6, 4, 4), 0.1, np.float32)
    stack[:, 0, 0] = np.nan
    image = true_colour(stack)
    assert image.shape == (4, 4, 4)
    assert image[0, 0, 3] == 0 and image[1, 1, 3] == 1

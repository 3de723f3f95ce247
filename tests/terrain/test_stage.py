"""The exclusion stage on a padded synthetic DEM: a steep ridge east-west of a valley,
the viewing geometry from the scene metadata, an absent DEM."""

import json

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from metaflood.core.errors import InputError
from metaflood.core.exclusion_codes import HAND, LAYOVER, NOT_EXCLUDED, SHADOW
from metaflood.core.grid import Grid
from metaflood.core.raster import write_cog
from metaflood.core.settings import ExclusionSettings, section_defaults
from metaflood.terrain.stage import terrain_exclusion, viewing_geometry

RES = 10.0
GRID = Grid("EPSG:32634", from_origin(600000, 3630000, RES, RES), 60, 40)
PAD = 10


def settings(**given) -> ExclusionSettings:
    return ExclusionSettings.from_section(section_defaults("exclusion", given))


def ridge_dem() -> np.ndarray:
    """A valley floor at 0 m draining north, and a ridge 200 m high with a 60° face on
    either side, columns 40-50 of the padded grid."""
    rows, cols = GRID.height + 2 * PAD, GRID.width + 2 * PAD
    y = np.arange(rows)[:, None].astype(float)
    dem = np.broadcast_to(y * 0.5, (rows, cols)).copy()  # gently down to the north
    col = np.arange(cols)[None, :].astype(float)
    crest = 45.0
    ridge = np.clip(200 - np.abs(col - crest) * RES * np.tan(np.radians(60)), 0, None)
    return (dem + ridge).astype(np.float32)


def write_dem(path, dem, *, absent=False):
    transform = GRID.transform @ rasterio.Affine.translation(-PAD, -PAD)
    tags = {"pad_px": str(PAD), "absent": "true" if absent else "false"}
    return write_cog(path, dem, crs=GRID.crs, transform=transform, nodata=np.nan, tags=tags)


def write_scenes(path, properties):
    status = "found" if properties is not None else "missing"
    path.write_text(json.dumps({"sar": {"status": status, "properties": properties or {}}}))
    return path


def run(tmp_path, dem, properties, **given):
    dem_path = write_dem(tmp_path / "dem.tif", dem, absent=given.pop("absent", False))
    scenes = write_scenes(tmp_path / "scenes.json", properties)
    record = terrain_exclusion(
        dem_path,
        scenes,
        GRID,
        settings=settings(**given),
        out_exclusion=tmp_path / "exclusion.tif",
        out_record=tmp_path / "exclusion.json",
    )
    with rasterio.open(tmp_path / "exclusion.tif") as src:
        return src.read(1), record, {"colormap": src.colormap(1), "tags": src.tags()}


def test_viewing_geometry_prefers_the_scene_azimuth_then_the_orbit():
    geometry = viewing_geometry(
        {"sar": {"status": "found", "properties": {"view:azimuth": 90, "sat:orbit_state": "x"}}},
        39.0,
    )
    assert geometry.look_azimuth == 90 and geometry.incidence_assumed
    geometry = viewing_geometry(
        {
            "sar": {
                "status": "found",
                "properties": {"sat:orbit_state": "descending", "view:incidence_angle": 33},
            }
        },
        39.0,
    )
    assert geometry.look_azimuth == pytest.approx(280.0)
    assert geometry.incidence_deg == 33 and not geometry.incidence_assumed
    assert viewing_geometry({"sar": {"status": "missing"}}, 39.0).look_azimuth is None


def test_ridge_faces_fall_in_shadow_and_layover_looking_east(tmp_path):
    codes, record, src = run(tmp_path, ridge_dem(), {"view:azimuth": 90.0}, hand_max_m=1000)
    crest = 45 - PAD  # inner column of the crest
    # Looking east at 39°: the ridge's west face lays over, and so does the valley floor
    # in front of it as far as the crest's slant range reaches (200 m / tan 39° = 247 m,
    # 24 px); its 60° east face (steeper than 90° - 39°) and the floor behind it, as far
    # as the crest's ray falls (200 m x tan 39° ≈ 162 m beyond the foot) are in shadow.
    # Where both hold, layover wins (exclusion.py). The floor beyond is kept.
    assert (codes[:, crest - 24 : crest + 5] == LAYOVER).all()
    assert (codes[:, crest + 5 : crest + 17] == SHADOW).all()
    assert (codes[:, : crest - 25] == NOT_EXCLUDED).all()
    assert (codes[:, crest + 18 :] == NOT_EXCLUDED).all()
    assert record["viewing_geometry"]["look_azimuth_deg"] == 90.0
    assert record["absent"] == []
    shares = record["areas"]
    assert shares["excluded"]["share"] == pytest.approx((codes != NOT_EXCLUDED).mean(), abs=1e-9)
    assert src["colormap"][SHADOW][3] == 255


def test_hand_excludes_the_high_ground_without_viewing_geometry(tmp_path):
    # no look direction: no shadow or layover, recorded; the ridge top stays excluded
    # by HAND and its faces by slope
    codes, record, _ = run(tmp_path, ridge_dem(), {}, drainage_km2=0.01, slope_max_deg=80)
    assert not np.isin(codes, (SHADOW, LAYOVER)).any()
    assert (codes[:, 45 - PAD] == HAND).all()
    assert (codes[:, :10] == NOT_EXCLUDED).all()
    assert "radar shadow and layover" in record["absent"][0]


def test_an_absent_dem_excludes_nothing_and_says_so(tmp_path):
    dem = np.full((GRID.height + 2 * PAD, GRID.width + 2 * PAD), np.nan, np.float32)
    codes, record, src = run(tmp_path, dem, {"view:azimuth": 90.0}, absent=True)
    assert (codes == NOT_EXCLUDED).all()
    assert record["absent"][0].startswith("dem:")
    assert "dem" in src["tags"]["absent"]


def test_a_dem_on_another_grid_is_refused(tmp_path):
    dem = ridge_dem()[:-1]
    with pytest.raises(InputError, match="not the event grid"):
        run(tmp_path, dem, {})

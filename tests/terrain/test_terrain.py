"""Terrain exclusion numerics against cases worked by hand: HAND on a valley, slope of
planes, shadow and layover on ridges, exclusion codes and their areas."""

import math

import numpy as np
import pytest
from rasterio.transform import from_origin

from metaflood.core.errors import InputError
from metaflood.terrain import exclusion
from metaflood.terrain.geometry import (
    local_incidence_angle,
    look_azimuth,
    pixel_size_m,
    shadow_layover,
    slope_aspect,
)
from metaflood.terrain.hand import height_above_nearest_drainage, padded_window

# --- HAND ----------------------------------------------------------------------------


def valley() -> np.ndarray:
    """7x7 V-valley: channel down column 3, sides rise 10 m per cell, 1 m fall per row.

    z = 10·|col - 3| + (6 - row). Each cell drains to its lowest neighbour, which off
    the channel is the diagonal one towards the channel (a drop of 11 m): a cell d
    columns from the channel reaches it d rows further south, or reaches the last row
    first and then runs along it to the outlet (6, 3). Upstream areas along the channel:
    1, 4, 9, 16, 23, 30, 49 cells; (6, 2) and (6, 4) collect 6.
    """
    rows, cols = np.indices((7, 7))
    return 10.0 * np.abs(cols - 3) + (6 - rows)


# Drainage at 7 cells or more: channel rows 2-6 (z 4, 3, 2, 1, 0). HAND = own z minus
# the z of the first of those reached: 11·d when the diagonal meets the channel at a
# drainage row, z itself when the path ends at (6, 3) via the last row (bottom-left and
# bottom-right corners), z - 4 for the channel's head and (0, 2)/(0, 4), which reach
# the channel above the first drainage row.
HAND_VALLEY = np.array(
    [
        [33, 22, 12, 2, 12, 22, 33],
        [33, 22, 11, 1, 11, 22, 33],
        [33, 22, 11, 0, 11, 22, 33],
        [33, 22, 11, 0, 11, 22, 33],
        [32, 22, 11, 0, 11, 22, 32],
        [31, 21, 11, 0, 11, 21, 31],
        [30, 20, 10, 0, 10, 20, 30],
    ],
    dtype=np.float32,
)
TEN_METRES = from_origin(0.0, 70.0, 10.0, 10.0)


def test_hand_on_a_valley_matches_the_hand_worked_array():
    hand = height_above_nearest_drainage(valley(), TEN_METRES, drainage_cells=7)
    np.testing.assert_array_equal(hand, HAND_VALLEY)


def test_hand_drainage_threshold_in_km2_uses_the_cell_area():
    # 10 m cells are 1e-4 km²: 6.5e-4 km² means 7 cells or more
    hand = height_above_nearest_drainage(valley(), TEN_METRES, drainage_km2=6.5e-4)
    np.testing.assert_array_equal(hand, HAND_VALLEY)


def test_hand_keeps_nodata_and_routes_around_it():
    dem = valley()
    dem[0, 6] = np.nan  # a source cell: no other cell's path or drainage changes
    hand = height_above_nearest_drainage(dem, TEN_METRES, drainage_cells=7)
    expected = HAND_VALLEY.copy()
    expected[0, 6] = np.nan
    np.testing.assert_array_equal(hand, expected)


def test_hand_is_zero_not_negative_in_a_depression_below_its_drainage():
    dem = valley()
    dem[3, 5] = -5.0  # a pit, filled to its pour point (4, 4) at 12 m; it drains there
    hand = height_above_nearest_drainage(dem, TEN_METRES, drainage_cells=7)
    # (4, 4) now collects 7 cells, so it is a drainage cell 17 m above the pit's floor
    assert hand[3, 5] == 0.0 and hand[4, 4] == 0.0
    assert (hand >= 0).all()


def test_hand_refuses_an_empty_dem_and_an_ambiguous_threshold():
    with pytest.raises(InputError, match="all nodata"):
        height_above_nearest_drainage(np.full((3, 3), np.nan), TEN_METRES, drainage_cells=2)
    with pytest.raises(ValueError, match="exactly one"):
        height_above_nearest_drainage(valley(), TEN_METRES)


def test_padded_window_in_a_projected_grid():
    dem_transform = from_origin(0.0, 1000.0, 10.0, 10.0)  # 100x100 DEM, 10 m
    aoi = (200.0, 300.0, 500.0, 700.0)  # rows 30-70, cols 20-50
    window = padded_window(aoi, 100.0, dem_transform, (100, 100))
    assert (window.rows, window.cols) == (slice(20, 80), slice(10, 60))
    assert (window.inner_rows, window.inner_cols) == (slice(10, 50), slice(10, 40))
    assert window.complete
    dem = np.arange(100 * 100.0).reshape(100, 100)
    np.testing.assert_array_equal(window.crop(dem[window.rows, window.cols]), dem[30:70, 20:50])
    assert window.transform(dem_transform) == from_origin(100.0, 800.0, 10.0, 10.0)


def test_padded_window_is_clipped_at_the_dem_edge_and_says_so():
    window = padded_window(
        (200.0, 300.0, 500.0, 700.0), 500.0, from_origin(0, 1000, 10, 10), (100, 100)
    )
    assert (window.rows, window.cols) == (slice(0, 100), slice(0, 100))
    assert (window.inner_rows, window.inner_cols) == (slice(30, 70), slice(20, 50))
    assert not window.complete


def test_padded_window_refuses_a_dem_that_does_not_cover_the_aoi():
    with pytest.raises(InputError, match="does not cover the AOI"):
        padded_window((900.0, 300.0, 1100.0, 700.0), 0.0, from_origin(0, 1000, 10, 10), (100, 100))


def test_hand_on_a_padded_window_cropped_back_is_right_at_the_aoi_edge():
    # AOI: the valley's east side (columns 4-6), without its channel
    dem = valley()
    window = padded_window((40.0, 0.0, 70.0, 70.0), 30.0, TEN_METRES, dem.shape)
    assert window.cols == slice(1, 7) and not window.complete  # clipped at the DEM's edge
    padded = dem[window.rows, window.cols]
    hand = height_above_nearest_drainage(padded, window.transform(TEN_METRES), drainage_cells=7)
    np.testing.assert_array_equal(window.crop(hand), HAND_VALLEY[:, 4:])
    # cut at the AOI, column 4 drains off the window's edge: no channel, wrong HAND
    unpadded = height_above_nearest_drainage(dem[:, 4:], TEN_METRES, drainage_cells=7)
    assert (unpadded[:, 0] < HAND_VALLEY[:, 4]).all()


def test_padded_window_in_degrees_converts_the_pad_at_the_aoi_latitude():
    # At 60° N, 1 km is 1000 / 55800.0 = 0.01792° of longitude (17.9 cells of 0.001°,
    # so 18 whole cells) and 1000 / 111412.2 = 0.008976° of latitude (9 cells).
    grid = from_origin(10.0, 60.1, 0.001, 0.001)
    window = padded_window((10.1, 59.9, 10.15, 60.0), 1000.0, grid, (300, 300), geographic=True)
    assert (window.rows, window.cols) == (slice(91, 209), slice(82, 168))
    assert (window.inner_rows, window.inner_cols) == (slice(9, 109), slice(18, 68))


# --- slope and pixel size --------------------------------------------------------------


def test_slope_of_a_plane_rising_10_m_per_10_m_pixel_is_45_degrees():
    rows, cols = np.indices((5, 6))
    slope, aspect = slope_aspect(10.0 * cols, 10.0, 10.0)  # rises eastwards: faces west
    np.testing.assert_allclose(slope, 45.0, atol=1e-5)
    np.testing.assert_allclose(aspect, 270.0, atol=1e-5)
    slope, aspect = slope_aspect(10.0 * rows * math.sqrt(3), 10.0, 10.0)  # rises southwards
    np.testing.assert_allclose(slope, 60.0, atol=1e-5)
    np.testing.assert_allclose(aspect, 0.0, atol=1e-5)


def test_flat_ground_has_no_aspect_and_nodata_spreads_to_its_neighbours():
    dem = np.zeros((4, 4))
    dem[1, 1] = np.nan
    slope, aspect = slope_aspect(dem, 10.0, 10.0)
    assert np.isnan(aspect).all()
    assert np.isnan(slope[1, 1]) and np.isnan(slope[1, 0]) and np.isnan(slope[0, 1])
    assert slope[3, 3] == 0.0


def test_geographic_pixel_size_shrinks_with_the_cosine_of_latitude():
    # WGS84: a degree of longitude is 111 319.5 m at the equator, 55 800.0 m at 60°;
    # a degree of latitude 110 574.3 m at the equator, 111 412.2 m at 60°.
    dx, dy = pixel_size_m(from_origin(0.0, 0.0005, 0.001, 0.001), (1, 1), geographic=True)
    np.testing.assert_allclose([dx[0, 0], dy[0, 0]], [111.3195, 110.5743], atol=1e-3)
    dx, dy = pixel_size_m(from_origin(0.0, 60.0005, 0.001, 0.001), (1, 1), geographic=True)
    np.testing.assert_allclose([dx[0, 0], dy[0, 0]], [55.800, 111.412], atol=1e-3)
    dx, dy = pixel_size_m(TEN_METRES, (3, 3))
    assert dx.shape == (3, 1) and (dx == 10.0).all() and (dy == 10.0).all()


def test_slope_in_a_geographic_grid_uses_metres_at_each_row():
    grid = from_origin(0.0, 60.003, 0.001, 0.001)  # rows near 60° N
    dx, dy = pixel_size_m(grid, (6, 5), geographic=True)
    rows, cols = np.indices((6, 5))
    slope, _ = slope_aspect(cols * dx, dx, dy)  # rises one pixel width per pixel
    np.testing.assert_allclose(slope, 45.0, atol=1e-5)


# --- look direction, shadow and layover -------------------------------------------------


def test_look_azimuth_of_a_right_looking_sensor():
    assert look_azimuth("ascending") == 80.0  # heading 350°: looks east
    assert look_azimuth("descending") == 280.0  # heading 190°: looks west
    assert look_azimuth(heading=193.0) == 283.0
    assert look_azimuth(heading=350.0, right_looking=False) == 260.0
    with pytest.raises(ValueError, match="orbit direction"):
        look_azimuth("sideways")


# Incidence 40°, look east, 10 m pixels; cot 40° = 1.19175, tan 40° = 0.83910.
# Flat at 0, a face towards the radar rising 15 m per pixel (56.3° > 40°) from column 5
# to the crest, 45 m at column 8 (s = 80 m), then a cliff down to 0 at column 9.
RIDGE = np.array([0, 0, 0, 0, 0, 0, 15, 30, 45, 0, 0, 0, 0, 0, 0, 0], dtype=np.float64)
# Shadow: h + s·cot θ drops below the crest's 45 + 95.34 = 140.34 for columns 9 (107.3),
# 10 (119.2) and 11 (131.1), not 12 (143.0): h·tan θ = 37.8 m beyond the crest.
RIDGE_SHADOW = [9, 10, 11]
# Layover: h - s·tan θ is -25.2, -33.6, -42.0 at columns 3, 4, 5, -27.0 and -28.7 on the
# face (6, 7), -22.1 at the crest (8): the face and columns 3-5 (those within
# h·cot θ = 53.6 m in front of the crest) have a farther point nearer in slant range,
# and the crest a nearer point farther; column 2 (-16.8) and column 9 (-45.5) neither.
RIDGE_LAYOVER = [3, 4, 5, 6, 7, 8]


def columns_where(mask: np.ndarray) -> list[int]:
    assert (mask == mask[:1]).all(), "every row of a ridge along columns is the same"
    return np.flatnonzero(mask[0]).tolist()


@pytest.mark.parametrize(
    ("look", "orient", "unorient"),
    [
        (90.0, lambda a: a, lambda a: a),  # looks east along the columns
        (270.0, lambda a: a[:, ::-1], lambda a: a[:, ::-1]),  # mirrored, looks west
        (180.0, lambda a: a.T, lambda a: a.T),  # along the rows, looks south
        (0.0, lambda a: a.T[::-1], lambda a: a[::-1].T),  # looks north
    ],
)
def test_shadow_and_layover_of_a_ridge_match_the_geometry(look, orient, unorient):
    dem = np.tile(RIDGE, (3, 1))
    shadow, layover = shadow_layover(orient(dem), 10.0, 10.0, 40.0, look)
    assert columns_where(unorient(shadow)) == RIDGE_SHADOW
    assert columns_where(unorient(layover)) == RIDGE_LAYOVER


def test_a_45_degree_ridge_lays_over_at_40_degrees_but_casts_no_shadow():
    # Faces of 45°: steeper than θ = 40° (layover), gentler than 90° - θ = 50° (no
    # shadow). Crest 30 m at column 7 (70 m): columns within 30·cot 40° = 35.8 m in front
    # of it (4, 5, 6) and the crest lay over; h + s·cot θ keeps rising down the back face.
    ridge = np.array([0, 0, 0, 0, 0, 10, 20, 30, 20, 10, 0, 0, 0, 0, 0, 0], dtype=float)
    dem = np.tile(ridge, (3, 1))
    shadow, layover = shadow_layover(dem, 10.0, 10.0, 40.0, 90.0)
    assert not shadow.any()
    assert columns_where(layover) == [4, 5, 6, 7]
    incidence = local_incidence_angle(dem, 10.0, 10.0, 40.0, 90.0)
    np.testing.assert_allclose(incidence[:, 6], -5.0, atol=1e-4)  # 40° - 45°: layover
    np.testing.assert_allclose(incidence[:, 8], 85.0, atol=1e-4)  # 40° + 45°: seen
    np.testing.assert_allclose(incidence[:, 0], 40.0, atol=1e-4)


@pytest.mark.parametrize("incidence", [30.0, 40.0, 45.0])
def test_shadow_behind_a_thin_wall_is_its_height_times_tan_incidence(incidence):
    dem = np.zeros((2, 40))
    dem[:, 5] = 100.0
    shadow, _ = shadow_layover(dem, 10.0, 10.0, incidence, 90.0)
    length = 100.0 * math.tan(math.radians(incidence))
    expected = [5 + k for k in range(1, 40) if 10.0 * k < length - 1e-9]
    assert columns_where(shadow) == expected
    per_pixel = np.full(dem.shape, incidence)
    assert (shadow_layover(dem, 10.0, 10.0, per_pixel, 90.0)[0] == shadow).all()


def test_shadow_and_layover_at_an_oblique_look_follow_the_ridge_within_1_5_pixels():
    # A ridge across the look direction (south-east, 135°): crest at d = 300 m along it,
    # 45 m high, faces of slope 1.5. Shadow from the crest to 45·tan 40° = 37.8 m beyond,
    # layover from 45·cot 40° = 53.6 m in front of it to the crest.
    rows, cols = np.indices((60, 60))
    d = (rows + cols) / math.sqrt(2) * 10.0
    dem = np.clip(45.0 - 1.5 * np.abs(d - 300.0), 0.0, None)
    shadow, layover = shadow_layover(dem, 10.0, 10.0, 40.0, 135.0)
    lines = np.abs(cols - rows) < 30  # range lines that cross the crest inside the grid
    # Bilinear samples off the pixel centres round the crest off (39.4 m instead of 45 m
    # where a line passes between two crest pixels), and each pixel takes the nearest
    # sample: the edges move by up to about a pixel and a half.
    margin = 15.0
    in_shadow = (d > 300.0 + margin) & (d < 337.8 - margin)
    no_shadow = (d < 300.0 - margin) | (d > 337.8 + margin)
    in_layover = (d > 246.4 + margin) & (d < 300.0 - margin)
    no_layover = (d < 246.4 - margin) | (d > 300.0 + margin)
    assert shadow[lines & in_shadow].all() and not shadow[lines & no_shadow].any()
    assert layover[lines & in_layover].all() and not layover[lines & no_layover].any()


def test_shadow_and_layover_are_false_on_nodata():
    dem = np.tile(RIDGE, (3, 1))
    dem[1, 10] = np.nan
    shadow, layover = shadow_layover(dem, 10.0, 10.0, 40.0, 90.0)
    assert not shadow[1, 10]
    assert np.flatnonzero(shadow[0]).tolist() == RIDGE_SHADOW
    with pytest.raises(ValueError, match="incidence"):
        shadow_layover(dem, 10.0, 10.0, 90.0, 90.0)


# --- exclusion codes ---------------------------------------------------------------------


def test_exclusion_codes_combine_the_layers_by_priority():
    hand = np.array([[5.0, 20.0, 20.0, 20.0, 20.0, np.nan]])
    slope = np.array([[1.0, 1.0, 30.0, 30.0, 30.0, 1.0]])
    shadow = np.array([[False, False, False, True, True, False]])
    layover = np.array([[False, False, False, False, True, False]])
    codes = exclusion.exclusion_codes(
        (1, 6),
        hand=hand,
        slope=slope,
        shadow=shadow,
        layover=layover,
        hand_max_m=15.0,
        slope_max_deg=15.0,
    )
    assert codes.dtype == np.uint8
    assert codes.tolist() == [[0, 1, 2, 3, 4, 255]]
    # thresholds are strict and configurable; absent layers exclude nothing
    codes = exclusion.exclusion_codes((1, 6), hand=hand, hand_max_m=20.0, slope_max_deg=15.0)
    assert codes.tolist() == [[0, 0, 0, 0, 0, 255]]
    valid = np.array([[True, True, True, True, True, False]])
    assert exclusion.exclusion_codes(
        (1, 6), valid=valid, hand_max_m=15.0, slope_max_deg=15.0
    ).tolist() == [[0] * 5 + [255]]
    with pytest.raises(ValueError, match="steep slope"):
        exclusion.exclusion_codes((2, 3), slope=slope, hand_max_m=15.0, slope_max_deg=15.0)


def test_every_code_has_a_name_and_a_colour():
    codes = {0, 1, 2, 3, 4, 255}
    assert set(exclusion.NAMES) == codes and set(exclusion.COLOURS) == codes
    assert all(
        len(rgba) == 4 and all(0 <= v <= 255 for v in rgba) for rgba in exclusion.COLOURS.values()
    )


def test_area_summary_counts_each_code_and_its_share_of_the_aoi():
    codes = np.array([[0, 0, 1, 3], [4, 255, 0, 0]], dtype=np.uint8)
    summary = exclusion.area_summary(codes, pixel_area_m2=100.0)
    assert summary["not excluded"] == {"code": 0, "pixels": 4, "share": 0.5, "area_km2": 4e-4}
    assert summary["radar shadow"]["pixels"] == 1 and summary["steep slope"]["pixels"] == 0
    assert summary["excluded"] == {"pixels": 3, "share": 0.375, "area_km2": 3e-4}
    assert sum(row["share"] for name, row in summary.items() if name != "excluded") == 1.0
    aoi = np.array([[True, True, True, True], [False, False, False, False]])
    inside = exclusion.area_summary(codes, aoi=aoi)
    assert inside["excluded"] == {"pixels": 2, "share": 0.5}
    assert inside["nodata"]["pixels"] == 0

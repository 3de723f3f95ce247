import json

import pytest
from rasterio.transform import array_bounds, from_origin

from metaflood.core.grid import Grid

GRID = Grid("EPSG:32634", from_origin(600000, 3630000, 10, 10), 120, 80)
SIX = [10.0, 0.0, 600000.0, 0.0, -10.0, 3630000.0]


def test_to_dict_lists_the_six_coefficients():
    # selection.json and the acquisition cache keys hold this text: it must not change
    assert json.dumps(GRID.to_dict()) == (
        '{"crs": "EPSG:32634", "transform": [10.0, 0.0, 600000.0, 0.0, -10.0, 3630000.0], '
        '"width": 120, "height": 80}'
    )


@pytest.mark.parametrize("transform", [SIX, SIX + [0.0, 0.0, 1.0]])
def test_from_dict_reads_six_or_nine_coefficients(transform):
    grid = Grid.from_dict({"crs": "EPSG:32634", "transform": transform, "width": 120, "height": 80})
    assert grid == GRID and grid.to_dict() == GRID.to_dict()


def test_from_dict_refuses_another_length():
    with pytest.raises(ValueError, match="6 or 9"):
        Grid.from_dict({"crs": "EPSG:32634", "transform": SIX[:4], "width": 1, "height": 1})


def test_bounds_and_resolution():
    assert GRID.bounds == array_bounds(GRID.height, GRID.width, GRID.transform)
    assert GRID.bounds == (600000.0, 3629200.0, 601200.0, 3630000.0)
    assert GRID.resolution == 10.0

"""The acquisition cache's keys are file names of data already downloaded: a change of
their text would silently make every cache cold."""

from rasterio.enums import Resampling
from rasterio.transform import from_origin

from metaflood.acquire.download import AssetCache, Job
from metaflood.acquire.scene import BandRef
from metaflood.core.grid import Grid


def test_a_band_window_keeps_its_key(tmp_path):
    grid = Grid("EPSG:32634", from_origin(600000, 3630000, 10, 10), 120, 80)
    ref = BandRef(
        "https://example.test/s1/vv.tif?sig=secret", band=1, size=1234, checksum="1220abcd"
    )
    key = AssetCache(tmp_path).key(Job("vv", ref, grid, Resampling.bilinear))
    # computed by the code before the grid classes were merged (acquire.scene.SceneGrid)
    assert key == "35d7cd4005b5fcdd3814cd78ca774999"

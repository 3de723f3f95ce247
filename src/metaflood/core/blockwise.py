"""Block-by-block processing of rasters larger than memory: the windows and halos.

Products of block-by-block stages are written window by window through
`raster.cog_writer`, so memory does not grow with the scene.
"""

from __future__ import annotations

from collections.abc import Iterator

from rasterio.windows import Window


def block_windows(height: int, width: int, size: int) -> Iterator[Window]:
    """Row-major square blocks covering a raster; the last row and column may be smaller."""
    for row in range(0, height, size):
        for col in range(0, width, size):
            yield Window(col, row, min(size, width - col), min(size, height - row))


def with_halo(window: Window, halo: int, height: int, width: int) -> tuple[Window, tuple]:
    """`window` grown by `halo` pixels (clipped to the raster) and the slices that cut the
    original window back out of the grown one."""
    row0 = max(int(window.row_off) - halo, 0)
    col0 = max(int(window.col_off) - halo, 0)
    row1 = min(int(window.row_off + window.height) + halo, height)
    col1 = min(int(window.col_off + window.width) + halo, width)
    grown = Window(col0, row0, col1 - col0, row1 - row0)
    inner = (
        slice(int(window.row_off) - row0, int(window.row_off) - row0 + int(window.height)),
        slice(int(window.col_off) - col0, int(window.col_off) - col0 + int(window.width)),
    )
    return grown, inner

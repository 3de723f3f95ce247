"""Overview levels averaged from full-resolution strips as they are written.

GDAL builds a raster's overviews by reading it back once it is written, a pass over
the product that routed inference need not make: the strips pass through memory anyway,
so each level is pooled from them as they go by (the saving is in docs/performance.md).
Every level carries sums and counts of the full-resolution pixels that hold data, so an
overview pixel is the mean of the mapped pixels under it (not a mean of means), taken in
float before the 8-bit encoding, and a pixel with none under it is nodata.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

# emit(level, first row, mean (bands, rows, cols), covered (rows, cols) bool): level 0 is
# the factor-2 overview, level 1 the factor-4 one, and so on.
Emit = Callable[[int, int, torch.Tensor, torch.Tensor], None]


class MeanPyramid:
    """Feed full-width strips top to bottom (`add`), then `finish`; each level's rows
    reach `emit` as soon as both full-resolution rows under them have been added.

    A strip may have any number of rows: an odd last row waits for the next strip's
    first. Odd sizes end in a half block, averaged over the pixels it has, as GDAL
    sizes overviews (ceil of half the level above).
    """

    def __init__(self, levels: int, emit: Emit):
        self._emit = emit
        self._levels = levels
        self._pending: list[tuple[torch.Tensor, torch.Tensor] | None] = [None] * levels
        self._rows = [0] * levels

    def add(self, values: torch.Tensor, covered: torch.Tensor) -> None:
        """values (bands, rows, cols), 0 where the pixel holds no data; covered (rows,
        cols): where it does.

        The values are summed as they are (a strip's blended probabilities are 0 where no
        head mapped the pixel): masking them again costs more than the pooling.
        """
        if self._levels:
            self._push(0, values, covered.to(values.dtype), final=False)

    def finish(self) -> None:
        """Pool the rows still waiting for a partner, level by level."""
        if self._levels:
            self._push(0, None, None, final=True)

    def _push(
        self, level: int, sums: torch.Tensor | None, counts: torch.Tensor | None, final: bool
    ) -> None:
        """Pool the rows (sums and counts of full-resolution pixels) of the level below."""
        pending, self._pending[level] = self._pending[level], None
        if pending is not None:
            sums = pending[0] if sums is None else torch.cat([pending[0], sums], dim=1)
            counts = pending[1] if counts is None else torch.cat([pending[1], counts], dim=0)
        if sums is not None and sums.shape[1] % 2 and not final:
            self._pending[level] = (sums[:, -1:], counts[-1:])
            sums, counts = sums[:, :-1], counts[:-1]
        if sums is not None and sums.shape[1]:
            sums, counts = _pool(sums), _pool(counts)
            covered = counts > 0
            mean = sums / counts.clamp_min(1.0)
            self._emit(level, self._rows[level], mean, covered)
            self._rows[level] += counts.shape[0]
        else:
            sums = counts = None
        if level + 1 < self._levels and (sums is not None or final):
            self._push(level + 1, sums, counts, final)


def _pool(x: torch.Tensor) -> torch.Tensor:
    """Sums over 2 x 2 blocks of the last two axes; an odd last row or column is a
    block of its own."""
    rows, cols = x.shape[-2:]
    if rows % 2 or cols % 2:
        x = F.pad(x, (0, cols % 2, 0, rows % 2))
    # Rows first, then columns: adding even and odd rows keeps each operand's inner axes
    # contiguous, which torch runs as one long loop; on classes-innermost strips strided
    # 2 x 2 views, or avg_pool2d, are much slower (docs/performance.md).
    x = x[..., 0::2, :] + x[..., 1::2, :]
    return x[..., 0::2] + x[..., 1::2]

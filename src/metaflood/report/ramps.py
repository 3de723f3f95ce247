"""The colour scales of the continuous products, one each, shared by the report's maps
and the QGIS styles so that a product looks the same wherever it is opened."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Ramp:
    """A matplotlib colour map stretched over [minimum, maximum] of a product's values."""

    colormap: str
    minimum: float
    maximum: float
    label: str  # what the values are, with their unit (a colour bar's or legend's title)
    # In QGIS, values at the minimum fade to transparent: a probability overlays a base map.
    fade_minimum: bool = False

    def stops(self, count: int = 11) -> list[tuple[float, tuple[int, int, int, int]]]:
        """`count` evenly spaced (value, RGBA 0-255) stops along the ramp."""
        from matplotlib import colormaps

        values = np.linspace(self.minimum, self.maximum, count)
        colours = colormaps[self.colormap](np.linspace(0.0, 1.0, count))
        stops = []
        for i, (value, rgba) in enumerate(zip(values, colours, strict=True)):
            red, green, blue, alpha = (int(round(c * 255)) for c in rgba)
            if self.fade_minimum and i == 0:
                alpha = 0
            stops.append((float(value), (red, green, blue, alpha)))
        return stops


CONFIDENCE = Ramp("magma_r", 0, 100, "flood confidence (%)", fade_minimum=True)
LOG_RATIO = Ramp("RdBu", -15, 15, "SAR change, post / pre (dB)")
WATER = Ramp("Blues", 0, 100, "water probability (%)", fade_minimum=True)
FLOOD_NETWORK = Ramp("magma_r", 0, 100, "flood network probability (%)", fade_minimum=True)
# VV backscatter drawn in grey: black at the first, white at the second (dB).
SAR_GREY_DB = (-25.0, 0.0)

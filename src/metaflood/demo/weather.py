"""The post-event cloud field: drawn here so that the optical renderer (the clouds) and
the look-alike placement (hidden under them, so only the SAR sees them after the event)
read the same field."""

from __future__ import annotations

import numpy as np

from metaflood.demo.materials import Array
from metaflood.demo.noise import fractal, stream
from metaflood.demo.spec import SceneSpec


def cloud_field(spec: SceneSpec, shape: tuple[int, int]) -> tuple[Array, np.random.Generator]:
    """The large-scale cloud field on the image grid (higher: cloudier) and its stream,
    left where the cloud texture draws from it next."""
    rng = stream(spec, "clouds")
    return fractal(rng, shape, spec.resolution, 3.0, 1500.0), rng

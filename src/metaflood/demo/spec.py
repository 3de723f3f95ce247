"""What to simulate: the scene's seed, size, resolution, layout, clouds, injected
mis-registration, the number of pre-event SAR scenes and the flood look-alikes."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class SceneSpec:
    """What to simulate. Geometry is in metres, so `resolution` changes the pixel count
    of the same place, not the place; offsets are in native pixels (row, col)."""

    seed: int
    height: int
    width: int
    resolution: float = 1.0
    layout: Literal["town", "random"] = "town"
    cloud_fraction: float = 0.6
    post_optical: bool = True
    post_offset_px: tuple[float, float] = (0.0, 0.0)
    optical_offset_px: tuple[float, float] = (0.0, 0.0)
    enl: float = 4.5
    # More pre-event SAR renders of the same ground, each with its own speckle (a
    # multi-date baseline); 1 keeps the scene exactly as before.
    pre_sar_scenes: int = 1
    # Mesas whose cliffs fall in radar shadow and layover, dark smooth flats on their
    # tops (some dark only after the rain) and a pond: water to a SAR threshold, not flood.
    lookalikes: bool = False

    def __post_init__(self) -> None:
        for name in ("post_offset_px", "optical_offset_px"):  # YAML gives lists
            value = tuple(float(v) for v in getattr(self, name))
            if len(value) != 2 or not all(math.isfinite(v) for v in value):
                raise ValueError(f"{name} must be two finite numbers (row, col), got {value}")
            object.__setattr__(self, name, value)
        if self.seed < 0:
            raise ValueError(f"seed must be non-negative, got {self.seed}")
        if self.height < 16 or self.width < 16:
            raise ValueError(f"scene too small: {self.height} x {self.width} (min 16 x 16)")
        if not self.resolution > 0:
            raise ValueError(f"resolution must be positive, got {self.resolution}")
        if self.layout not in ("town", "random"):
            raise ValueError(f"layout must be 'town' or 'random', got {self.layout!r}")
        if not 0.0 <= self.cloud_fraction <= 1.0:
            raise ValueError(f"cloud_fraction must be in [0, 1], got {self.cloud_fraction}")
        if not self.enl > 0:
            raise ValueError(f"enl must be positive, got {self.enl}")
        if isinstance(self.pre_sar_scenes, bool) or int(self.pre_sar_scenes) != self.pre_sar_scenes:
            raise ValueError(f"pre_sar_scenes must be an integer, got {self.pre_sar_scenes!r}")
        if self.pre_sar_scenes < 1:
            raise ValueError(f"pre_sar_scenes must be at least 1, got {self.pre_sar_scenes}")
        object.__setattr__(self, "pre_sar_scenes", int(self.pre_sar_scenes))

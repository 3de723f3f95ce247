"""The pixel grid an array sits on: the event's analysis grid, a scene's read grid and
the demo's publishing grid are all this one class."""

from __future__ import annotations

from dataclasses import dataclass

from rasterio.transform import Affine


@dataclass(frozen=True)
class Grid:
    """A north-up grid: CRS (as text), affine transform and size in pixels."""

    crs: str
    transform: Affine
    width: int
    height: int

    @property
    def resolution(self) -> float:
        return abs(self.transform.a)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(west, south, east, north), as rasterio's `array_bounds` gives them."""
        t = self.transform
        return (t.c, t.f + t.e * self.height, t.c + t.a * self.width, t.f)

    def to_dict(self) -> dict:
        """The JSON form (selection.json, the acquisition cache): the six coefficients."""
        return {
            "crs": self.crs,
            "transform": list(self.transform)[:6],
            "width": self.width,
            "height": self.height,
        }

    @classmethod
    def from_dict(cls, d: dict) -> Grid:
        """Read `to_dict`'s form; the transform may list six or all nine coefficients."""
        coefficients = [float(v) for v in d["transform"]]
        if len(coefficients) not in (6, 9):
            raise ValueError(f"a grid transform has 6 or 9 coefficients, not {len(coefficients)}")
        return cls(str(d["crs"]), Affine(*coefficients[:6]), int(d["width"]), int(d["height"]))

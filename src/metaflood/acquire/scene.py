"""What a chosen scene is made of, in a form that survives a JSON round trip.

A scene is one or more items of one pass (a mosaic when one item does not cover the
AOI). Each item names, per canonical band, the file and band to read and how to scale
it. The search stage writes these to `selection.json`; the read stage needs nothing
else, whatever the source was.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field

MASK = "mask"  # the band key of an optical cloud/quality mask


@dataclass(frozen=True)
class BandRef:
    href: str  # absolute path or URL, never signed
    band: int = 1  # 1-based band index in the file
    scale: float | None = None  # None: the file's own
    offset: float | None = None
    radiometry: str = ""  # why this scale and offset
    size: int | None = None  # file:size, when the catalog gives it
    checksum: str | None = None  # file:checksum (multihash), when the catalog gives it
    resolution: float | None = None  # pixel size, when the catalog gives it

    @classmethod
    def from_dict(cls, d: dict) -> BandRef:
        return cls(**d)


def grid_band(refs: list[BandRef]) -> BandRef:
    """The band whose pixel lattice a scene is read on: the finest, where the catalog
    gives every band's resolution (Sentinel-2's 20 m B11 is then resampled onto a 10 m
    band's grid, whatever order the bands are named in), else the first of `refs` (in
    canonical order, blue or green: 10 m on Sentinel-2). Known without opening a file."""
    if all(ref.resolution for ref in refs):
        return min(refs, key=lambda ref: ref.resolution)
    return refs[0]


@dataclass(frozen=True)
class SceneItem:
    id: str
    datetime: str  # ISO 8601, UTC
    footprint: dict  # GeoJSON geometry, lon/lat
    bands: dict[str, BandRef]
    properties: dict = field(default_factory=dict)
    collection: str = ""

    @property
    def when(self) -> dt.datetime:
        return dt.datetime.fromisoformat(self.datetime.replace("Z", "+00:00"))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> SceneItem:
        bands = {k: BandRef.from_dict(v) for k, v in d["bands"].items()}
        return cls(**{**d, "bands": bands})

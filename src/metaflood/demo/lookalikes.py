"""Flood look-alikes on high ground, away from the flood (`SceneSpec.lookalikes`).

What makes operational flood maps exclude terrain (GFM, OPERA DSWx-S1): mesas tens of
metres high whose cliffs fall in radar shadow (faces away from the radar, which looks
east) or lay over (faces towards it), with a dark tone on their back slopes; smooth
flats on their tops, as dark as calm water in both periods; a silt crust that the rain
seals smooth, dark only after the event; and a small permanent pond, which the demo's
reference-water layer misses. All of it is water to a SAR threshold and none of it is
flood in the truth. The features are placed where the post-event optical scene is
cloudiest, so that after the event only the SAR sees them, and far enough from the
flood, the town and the roads that neither changes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from metaflood.demo.materials import CRUST, GRAVEL, LAKE, ROAD, SEA, SMOOTH_FLAT, Array
from metaflood.demo.noise import stream
from metaflood.demo.spec import SceneSpec
from metaflood.demo.terrain import CanonicalFrame, Terrain
from metaflood.demo.weather import cloud_field

# Codes of the look-alike truth layer (truth/lookalikes.tif); the radar geometry codes
# are added when the scene is rendered (`simulate`).
NONE, SLOPE, FLAT, WET_CRUST, POND, SHADOW, LAYOVER = range(7)
LOOKALIKE_NAMES = {
    NONE: "none",
    SLOPE: "mesa slope or rim",
    FLAT: "smooth flat, dark in both periods",
    WET_CRUST: "crust, dark after the rain",
    POND: "permanent pond missing from the reference water",
    SHADOW: "radar shadow",
    LAYOVER: "radar layover",
}

MESA_TOPS = (FLAT, WET_CRUST, NONE)  # what covers the top of the first, second, third mesa
FLOOD_CLEARANCE_M = 100.0  # from the flood and the sea
BUILT_CLEARANCE_M = 25.0  # from the town and roads
TALUS_DEG = 28.0  # angle of repose of the scree below the cliffs
CLIFF_SHARE = 0.7  # of a mesa's height, the rest is talus


@dataclass(frozen=True)
class _Mesa:
    height_m: float
    rim_m: float  # mean radius of the flat top
    face_deg: float  # cliff angle: above 90 - incidence -> shadow; above incidence -> layover
    elongation: float
    azimuth: float  # rad
    lobe_phase: float

    @property
    def footprint_m(self) -> float:
        cliff = CLIFF_SHARE * self.height_m / math.tan(math.radians(self.face_deg))
        talus = (1.0 - CLIFF_SHARE) * self.height_m / math.tan(math.radians(TALUS_DEG))
        return self.rim_m * (1.0 + self.elongation + 0.08) + cliff + talus

    def profile(self, ds: Array, dt: Array) -> tuple[Array, Array]:
        """Height above the ground and the signed distance beyond the rim (m)."""
        phi = np.arctan2(dt, ds)
        rim = self.rim_m * (
            1.0
            + self.elongation * np.cos(2.0 * (phi - self.azimuth))
            + 0.08 * np.cos(3.0 * phi + self.lobe_phase)
        )
        out = np.hypot(ds, dt) - rim
        cliff = self.height_m - out * math.tan(math.radians(self.face_deg))
        top_of_talus = (1.0 - CLIFF_SHARE) * self.height_m
        cliff_width = CLIFF_SHARE * self.height_m / math.tan(math.radians(self.face_deg))
        talus = top_of_talus - (out - cliff_width) * math.tan(math.radians(TALUS_DEG))
        return np.clip(np.maximum(cliff, talus), 0.0, self.height_m).astype(np.float32), out


@dataclass
class Lookalikes:
    """In the canonical frame: the mesas' height above the ground and what they and
    the pond replace in the pre-event materials (codes above)."""

    relief: Array  # float32 m
    code: Array  # uint8

    def apply(self, pre: Array) -> Array:
        """Pre-event materials with the look-alikes in place; the wet crust is the
        post-event state of CRUST (`landscape`)."""
        out = pre.copy()
        out[self.code == SLOPE] = GRAVEL
        out[self.code == FLAT] = SMOOTH_FLAT
        out[self.code == WET_CRUST] = CRUST
        out[self.code == POND] = LAKE
        return out


def place_lookalikes(
    spec: SceneSpec,
    frame: CanonicalFrame,
    terrain: Terrain,
    urban: Array,
    pre: Array,
    flood: Array,
    to_canonical,
) -> Lookalikes:
    """Up to three mesas and a pond where they fit (a small scene may hold fewer, or
    none), each at the cloudiest spot left. `to_canonical` maps an image raster into
    the canonical frame."""
    rng = stream(spec, "lookalikes")
    res = frame.res
    water = flood | np.isin(pre, (SEA, LAKE)) | terrain.sea
    clearance = np.minimum(
        _distance_to(water, res) - FLOOD_CLEARANCE_M,
        _distance_to(urban | (pre == ROAD), res) - BUILT_CLEARANCE_M,
    )
    clearance = np.minimum(clearance, _distance_to_edge(frame))
    clouds, _ = cloud_field(spec, (spec.height, spec.width))
    score = to_canonical(clouds) + 0.2 * rng.random(frame.shape, dtype=np.float32)
    relief = np.zeros(frame.shape, np.float32)
    code = np.zeros(frame.shape, np.uint8)
    for top in MESA_TOPS:
        mesa = _Mesa(
            height_m=float(rng.uniform(35.0, 55.0)),
            rim_m=float(rng.uniform(35.0, 60.0)),
            face_deg=float(rng.uniform(60.0, 70.0)),
            elongation=float(rng.uniform(0.05, 0.25)),
            azimuth=float(rng.uniform(0.0, math.pi)),
            lobe_phase=float(rng.uniform(0.0, 2.0 * math.pi)),
        )
        centre = _best_spot(score, clearance >= mesa.footprint_m)
        if centre is None:
            continue
        ds = frame.s - (centre[0] + 0.5) * res
        dt = frame.t - (centre[1] + 0.5) * res
        height, out = mesa.profile(ds, dt)
        relief = np.maximum(relief, height)
        code[height > 0.3] = SLOPE
        if top != NONE:
            code[out < -0.2 * mesa.rim_m] = top
        clearance = np.minimum(clearance, _distance_to(height > 0, res) - 30.0)
    radius = float(rng.uniform(8.0, 14.0))
    centre = _best_spot(-score, clearance >= radius + 10.0)  # a clear-sky spot for a change
    if centre is not None:
        ds = frame.s - (centre[0] + 0.5) * res
        dt = frame.t - (centre[1] + 0.5) * res
        code[np.hypot(ds, dt) < radius] = POND
    return Lookalikes(relief=relief, code=code)


def _best_spot(score: Array, fits: Array) -> tuple[int, int] | None:
    if not fits.any():
        return None
    flat = np.where(fits, score, -np.inf).argmax()
    return tuple(int(i) for i in np.unravel_index(flat, score.shape))


def _distance_to(mask: Array, res: float) -> Array:
    if not mask.any():
        return np.full(mask.shape, np.inf, np.float32)
    return ndimage.distance_transform_edt(~mask, sampling=res).astype(np.float32)


def _distance_to_edge(frame: CanonicalFrame) -> Array:
    """Distance (m) from the nearest scene edge: features stay whole inside the scene."""
    s = frame.s
    t = frame.t
    ext_s, ext_t = frame.extent
    return np.minimum(np.minimum(s, ext_s - s), np.minimum(t, ext_t - t)).astype(np.float32)

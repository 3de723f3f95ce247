"""A multi-date pre-event reference, as FLOODPY and TU Wien's flood mapper build one.

One pre-event scene carries its own speckle and whatever the ground did that day (a
wet field, a ploughed one), and both read as change against the post-event scene.
With `pre.max_scenes` > 1 the reference is:

- SAR: the per-pixel median, in linear power, of the pre-event scenes of one relative
  orbit and direction (valid scenes only: NaN where none is); their per-pixel standard
  deviation in dB (`spread_db`) is the normal change of the ground, written beside it.
- Optical: a least-cloud composite: scenes ordered by cloud over the AOI, each pixel
  from the first scene clear there.

Fewer scenes found than asked is a recorded fallback (`shortfall_note`), never an error.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np

from metaflood.core import optical as opt
from metaflood.core import sar
from metaflood.core.settings import schema


def max_scenes(event: dict) -> int:
    """`pre.max_scenes` of an event; the schema's default where the event was not
    validated (tests, notebooks build events by hand)."""
    if "max_scenes" in event["pre"]:  # always, in the workflow (the schema filled it)
        return int(event["pre"]["max_scenes"])
    return int(schema()["$defs"]["pre_window"]["properties"]["max_scenes"]["default"])


def shortfall_note(
    modality: str, asked: int, found: int, window: str, orbit: tuple | None
) -> str | None:
    """What selection.json and the report say when the window held fewer scenes than
    asked; None when it held enough."""
    if found >= asked:
        return None
    if modality == "sar":
        what = "pre-event SAR scenes"
        if orbit is not None:
            what += f" of relative orbit {orbit[0]} ({orbit[1]})"
        where = f"in the window {window}"
        if orbit is None:
            where += " (the chosen scene's metadata gives no relative orbit to match others by)"
        used = "the reference is that one scene" if found == 1 else "the reference is their median"
    else:
        what = "pre-event optical scenes"
        where = f"covering the AOI, not all under cloud, in the window {window}"
        used = (
            "the reference is that one scene"
            if found == 1
            else f"the composite is of those {found}"
        )
    return f"asked {asked} {what}, found {found} {where}; {used}"


def median_linear(layers: Sequence[np.ndarray]) -> np.ndarray:
    """Per-pixel median of the scenes, in linear power, over the scenes valid at the
    pixel; NaN where none is. float32."""
    stack = np.stack([np.asarray(layer, np.float32) for layer in layers])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmedian(stack, axis=0).astype(np.float32)


def spread_db(layers: Sequence[np.ndarray]) -> np.ndarray:
    """Per-pixel standard deviation of the scenes in dB (sample, ddof 1) over the scenes
    valid at the pixel; NaN where fewer than two are. float32."""
    stack = np.stack([sar.to_db(layer) for layer in layers])
    valid = np.isfinite(stack).sum(axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        spread = np.nanstd(stack, axis=0, ddof=1).astype(np.float32)
    spread[valid < 2] = np.nan
    return spread


def least_cloud_order(masks: Sequence[np.ndarray]) -> np.ndarray:
    """Per pixel, the index of the scene that fills it: the first (least cloudy) clear
    there; where none is clear, the first that observed it (its cloud or shadow code
    goes with it); where none did, the first. `masks` hold the canonical mask codes,
    in the order the scenes were ranked."""
    stack = np.stack(masks)
    clear = stack == opt.CLEAR
    observed = stack != opt.MASK_NODATA
    return np.where(
        clear.any(axis=0),
        clear.argmax(axis=0),
        np.where(observed.any(axis=0), observed.argmax(axis=0), 0),
    ).astype(np.intp)


def pick(layers: Sequence[np.ndarray], order: np.ndarray) -> np.ndarray:
    """Each pixel from the scene `order` names there."""
    stack = np.stack(layers)
    return np.take_along_axis(stack, order[None], axis=0)[0]


def median_over(values: np.ndarray, inside: np.ndarray) -> float | None:
    """The median of the finite values where `inside`; None where there is none."""
    finite = values[inside & np.isfinite(values)]
    return round(float(np.median(finite)), 4) if finite.size else None


def log_ratio_spread(reference: np.ndarray, post: np.ndarray) -> float:
    """Standard deviation (dB) of the log-ratio of `post` against `reference` (linear
    power) where both are valid: the noise the SAR change detection must see through.
    A benchmark compares it for one pre scene and for a multi-date reference."""
    ratio = sar.to_db(post) - sar.to_db(reference)
    return float(np.nanstd(ratio[np.isfinite(ratio)]))


def false_change_share(reference: np.ndarray, post: np.ndarray, threshold_db: float) -> float:
    """Share of the pixels, valid in both, whose log-ratio falls below -`threshold_db`:
    on a scene pair with no real change, the darkening a change detection would map."""
    ratio = sar.to_db(post) - sar.to_db(reference)
    finite = ratio[np.isfinite(ratio)]
    return float((finite < -threshold_db).mean()) if finite.size else 0.0

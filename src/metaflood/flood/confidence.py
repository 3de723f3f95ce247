"""Flood confidence: the calibrated probability, in percent, that a pixel is newly flooded.

Two lines of evidence meet here: the change of the water maps (the fused probability of
water before and after the event: MetaRS, SAR water and the optical index, see `water`)
and the SAR change (backscatter that fell to water level). A logistic model weighs them,
with their agreement as explicit terms, and an isotonic map on top makes the output
calibrated: of the pixels with confidence 80, about 80% were flooded in the held-out
events it was checked on. The coefficients are fitted by `metaflood calibrate-confidence`
(see benchmarks/flood_calibration.py) on synthetic events and a real set, and shipped as
JSON, never as a pickle; where SAR change evidence is missing, a water-only variant fitted
on the same events is used, so confidence never claims evidence it does not have.
"""

from __future__ import annotations

import json
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rasterio.windows import Window

from metaflood.core import water_map
from metaflood.core.errors import InputError
from metaflood.core.raster import open_georeferenced, read_window
from metaflood.flood.sar_change import (
    DARK_BEFORE,
    EVIDENCE_NODATA,
    FLOOD_SIGNAL,
    NO_SIGNAL,
    polarisation_mean,
    same_grid,
)

DEFAULT_CALIBRATION = Path(__file__).with_name("confidence_calibration.json")
JOINT_ROUTE, OPTICAL_ROUTE = 1, 3
EPS = 0.004  # probabilities are stored to 1/254; keep logits finite
CONFIDENCE_NODATA = 255

WATER_FEATURES = (
    "new_water",
    "post_water",
    "pre_water",
    "optical_post",
    "new_water_x_optical",
)
SAR_FEATURES = (
    "sar_flood",
    "sar_dark_before",
    "ratio_margin_db",
    "water_margin_db",
    "new_water_x_sar_flood",
    "new_water_x_dark_before",
)
# Without SAR the water maps alone decide, through their new water only: the maps' own
# levels before and after are nearly the same signal on the calibration events (sure
# water or sure dry), and fitted beside it they turned a clear gain of water (10% before,
# 90% after) into "not flooded".
WATER_ONLY_FEATURES = ("new_water", "optical_post", "new_water_x_optical")
WITH_SAR, WATER_ONLY = "water_and_sar_change", "water_only"
VARIANTS = {WITH_SAR: WATER_FEATURES + SAR_FEATURES, WATER_ONLY: WATER_ONLY_FEATURES}


@dataclass
class Evidence:
    """Everything the confidence rests on, per pixel of the event grid."""

    water_pre: np.ndarray  # fused probability of water before the event (NaN unknown)
    water_post: np.ndarray
    optical_post: np.ndarray  # bool: the post-event land cover saw the optical image
    sar: np.ndarray  # sar_change evidence codes (255: no SAR evidence)
    ratio_margin_db: np.ndarray  # log-ratio minus its threshold (negative: fell further)
    water_margin_db: np.ndarray  # post VV minus the water threshold (negative: darker)

    @property
    def mapped(self) -> np.ndarray:
        return np.isfinite(self.water_pre) & np.isfinite(self.water_post)

    @property
    def has_sar(self) -> np.ndarray:
        return self.sar != EVIDENCE_NODATA


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, EPS, 1 - EPS)
    return np.log(p / (1 - p))


def feature_matrix(evidence: Evidence, where: np.ndarray, variant: str) -> np.ndarray:
    """(pixels, features) for the pixels in `where`, in the order of VARIANTS[variant]."""
    pre, post = evidence.water_pre[where], evidence.water_post[where]
    new_water = _logit(post * (1 - pre))
    optical = evidence.optical_post[where].astype(np.float64)
    columns = {
        "new_water": new_water,
        "post_water": _logit(post),
        "pre_water": _logit(pre),
        "optical_post": optical,
        "new_water_x_optical": new_water * optical,
    }
    if variant == WITH_SAR:
        sar = evidence.sar[where]
        sensitive = np.isin(sar, (NO_SIGNAL, FLOOD_SIGNAL))
        flood = (sar == FLOOD_SIGNAL).astype(np.float64)
        dark = (sar == DARK_BEFORE).astype(np.float64)
        ratio = np.nan_to_num(evidence.ratio_margin_db[where])
        water = np.nan_to_num(evidence.water_margin_db[where])
        columns |= {
            "sar_flood": flood,
            "sar_dark_before": dark,
            "ratio_margin_db": np.where(sensitive, np.clip(ratio, -10, 10), 0.0),
            "water_margin_db": np.where(sensitive, np.clip(water, -10, 10), 0.0),
            "new_water_x_sar_flood": new_water * flood,
            "new_water_x_dark_before": new_water * dark,
        }
    return np.column_stack([columns[name] for name in VARIANTS[variant]])


def variant_masks(evidence: Evidence) -> dict[str, np.ndarray]:
    """Which model each mapped pixel gets: with SAR evidence where there is any."""
    mapped = evidence.mapped
    return {
        WITH_SAR: mapped & evidence.has_sar,
        WATER_ONLY: mapped & ~evidence.has_sar,
    }


def load_calibration(path: Path | None = None) -> dict:
    path = Path(path) if path else DEFAULT_CALIBRATION
    try:
        calibration = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise InputError(f"{path}: cannot be read as a confidence calibration ({err})") from err
    for variant, features in VARIANTS.items():
        model = calibration.get("variants", {}).get(variant)
        if model is None or tuple(model.get("features", ())) != features:
            raise InputError(
                f"{path}: variant {variant!r} is missing or was fitted on other features; "
                "refit it with `metaflood calibrate-confidence`"
            )
    join = calibration.get(NETWORK_JOIN)
    if join is not None and tuple(join.get("features", ())) != JOIN_FEATURES:
        raise InputError(
            f"{path}: its {NETWORK_JOIN} was fitted on other features; refit it with "
            "`metaflood fit-flood-join`"
        )
    return calibration


def apply_variant(model: dict, X: np.ndarray) -> np.ndarray:
    score = X @ np.asarray(model["coef"]) + model["intercept"]
    raw = 1.0 / (1.0 + np.exp(-score))
    iso = model["isotonic"]
    return np.interp(raw, iso["x"], iso["y"])


def flood_probability(evidence: Evidence, calibration: dict) -> np.ndarray:
    """Calibrated probability of new water per pixel; NaN where land cover is unmapped."""
    probability = np.full(evidence.water_pre.shape, np.nan, np.float64)
    for variant, where in variant_masks(evidence).items():
        if where.any():
            X = feature_matrix(evidence, where, variant)
            probability[where] = apply_variant(calibration["variants"][variant], X)
    return probability


# --- the flood network's join ---------------------------------------------------------
# Where a flood network is configured, the calibrated probability and the network's are
# joined. By default the higher of the two is taken (change.joined_probability). A join
# fitted on real flood masks (`metaflood fit-flood-join`, stored in the calibration as
# "network_join" for one network, whose sha256 it records) weighs them instead: the
# default keeps the calibrated evidence's false alarms where the network is sure there
# is no flood. The network reads the optical images only where both are clear, so whether
# the post-event image was seen is a feature, alone and with the network's logit.
NETWORK_JOIN = "network_join"
JOIN_FEATURES = (
    "calibrated",
    "network",
    "calibrated_x_network",
    "optical_post",
    "network_x_optical",
)


def join_features(
    probability: np.ndarray, network: np.ndarray, optical_post: np.ndarray
) -> np.ndarray:
    """(pixels, JOIN_FEATURES) of 1-D arrays of known probabilities."""
    calibrated, net = _logit(probability), _logit(network)
    optical = optical_post.astype(np.float64)
    return np.column_stack([calibrated, net, calibrated * net, optical, net * optical])


def network_join_probability(
    join: dict, probability: np.ndarray, network: np.ndarray, optical_post: np.ndarray
) -> np.ndarray:
    """The fitted join where both probabilities are known (NaN unknown); elsewhere the
    calibrated probability, as it is."""
    known = np.isfinite(probability) & np.isfinite(network)
    out = probability.astype(np.float64, copy=True)
    if known.any():
        X = join_features(probability[known], network[known], optical_post[known])
        out[known] = apply_variant(join, X)
    return out


def to_percent(probability: np.ndarray) -> np.ndarray:
    """0..100 as uint8, 255 where there is no estimate."""
    out = np.full(probability.shape, CONFIDENCE_NODATA, np.uint8)
    known = np.isfinite(probability)
    out[known] = np.clip(np.rint(probability[known] * 100), 0, 100).astype(np.uint8)
    return out


# --- reading the evidence from the products of earlier stages ---------------------------


class EvidenceSource:
    """The water maps, post-event route and sar_change products of one event, open
    together and read window by window, so the change stage's memory does not grow with
    the grid."""

    def __init__(
        self,
        water: list[Path],
        post_route: Path,
        sar_evidence: Path,
        sar_ratio: Path,
        sar_summary: Path,
        stack: ExitStack,
    ) -> None:
        paths = [*water, post_route, sar_evidence, sar_ratio]
        self.sources = [stack.enter_context(open_georeferenced(p)) for p in paths]
        for path, src in zip(water, self.sources[:2], strict=True):
            if src.count != 1 or src.dtypes[0] != "uint8":
                raise InputError(f"{path}: expected one uint8 band of water probability (%)")
        same_grid([(Path(p), src.profile) for p, src in zip(paths, self.sources, strict=True)])
        self.profile = dict(self.sources[0].profile)
        summary = json.loads(Path(sar_summary).read_text())
        self.ratio_threshold = summary["ratio_threshold_db"]["value"]
        self.water_threshold = summary["water_threshold_db"]["value"]

    def water_maps(self, window: Window | None = None) -> list[np.ndarray]:
        """The water maps before and after as stored (percent, 255 nodata) over `window`."""
        return [read_window(src, window, 1) for src in self.sources[:2]]

    def read(
        self, window: Window | None = None, water_maps: list[np.ndarray] | None = None
    ) -> Evidence:
        """The evidence over `window`; `water_maps`, where the caller has read them over it
        already (`water_maps`), are taken as they are rather than read again."""
        _, _, route, sar, ratio = self.sources
        stored = water_maps if water_maps is not None else self.water_maps(window)
        water_pre, water_post = (_water_probability(percent) for percent in stored)
        ratio_bands = read_window(ratio, window)
        return Evidence(
            water_pre=water_pre,
            water_post=water_post,
            optical_post=np.isin(read_window(route, window, 1), (JOINT_ROUTE, OPTICAL_ROUTE)),
            sar=read_window(sar, window, 1),
            ratio_margin_db=polarisation_mean(ratio_bands[:2]) - self.ratio_threshold,
            water_margin_db=ratio_bands[2] - self.water_threshold,
        )


def _water_probability(stored: np.ndarray) -> np.ndarray:
    """A water map (percent, 255 nodata) as a probability, NaN where unknown."""
    water = stored.astype(np.float64) / 100.0
    water[stored == water_map.NODATA] = np.nan
    return water


def read_evidence(
    water: list[Path], post_route: Path, sar_evidence: Path, sar_ratio: Path, sar_summary: Path
) -> tuple[Evidence, dict]:
    """The evidence of one event, whole, from its water and sar_change products."""
    with ExitStack() as stack:
        source = EvidenceSource(water, post_route, sar_evidence, sar_ratio, sar_summary, stack)
        return source.read(), source.profile

"""Independent SAR evidence of new water: the log-ratio of post- to pre-event backscatter.

Open water is a specular reflector, so ground that floods turns dark in C-band SAR: the
ratio of post- to pre-event backscatter drops by many dB. Operational flood services
threshold that change image automatically, but a scene where water covers a few percent
has no valley in its global histogram; the threshold is therefore computed only on tiles
whose histogram is clearly bimodal (split-based selection, after Martinis et al. 2009 and
Chini et al. 2017), pooled, and Otsu's method finds the valley.

A drop in backscatter is evidence of new water where it leaves the ground water-dark: a
drop that leaves it brighter than water (a destroyed building becomes rubble) is not
water. Surfaces already as dark as water that do not drop (smooth sand, asphalt, radar
shadow, the sea) are excluded, and say nothing either way. Ground that was dark before
but fell by the drop threshold to water level (soil wet from the rain, then flooded) was
not open water, whose backscatter is already near the noise floor: it is a flood signal.

Both scenes are first brought to one level: the median log-ratio, where ground that did
not change lies, is taken off. Two scenes calibrated alike are left as they are (about
0 dB); two on different scales (sigma0 against gamma0, two processors, 8-bit images
stretched one by one) would otherwise read as a scene-wide rise or fall, and the whole
pre-event scene as water-dark.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
from rasterio.transform import Affine
from scipy import ndimage
from skimage.filters import threshold_otsu

from metaflood.core.errors import InputError
from metaflood.core.raster import atomic_path, read_checked, write_cog
from metaflood.core.sar import to_db, to_linear
from metaflood.core.settings import ChangeSettings
from metaflood.flood.mmu import drop_small_patches

log = logging.getLogger(__name__)

NO_SIGNAL, FLOOD_SIGNAL, DARK_BEFORE = 0, 1, 2
EVIDENCE_NODATA = 255
EVIDENCE_COLORMAP = {
    NO_SIGNAL: (225, 225, 225, 255),
    FLOOD_SIGNAL: (0, 112, 255, 255),
    DARK_BEFORE: (150, 110, 60, 255),
    EVIDENCE_NODATA: (0, 0, 0, 0),
}
EVIDENCE_VALUES = (
    "0 no flood signal, 1 backscatter dropped to water level (flood signal), "
    "2 excluded: already water-dark before the event and did not fall, "
    "255 no SAR in one period or outside the AOI"
)
SAR_VALID_BIT = 1
VALID_NODATA = 255
RATIO_DEFINITION = (
    "10 log10(post / pre) after a boxcar filter in linear power, less the level offset of "
    "sar_change.json (the median log-ratio, where change.sar_match_levels)"
)


@dataclass(frozen=True)
class SarChangeSettings:
    """How the change image is filtered and thresholded (config keys change.sar_*)."""

    window_px: int
    tile_px: int
    min_ashman_d: float
    min_share: float = 0.1
    min_separation_db: float = 3.0
    fallback_ratio_db: float = -3.0
    fallback_water_db: float = -15.0
    # Calm water in C-band VV lies near -20 dB; a tile whose darker mode is brighter than
    # this is split between two kinds of land (fields and buildings), not water and land.
    water_mode_max_db: float = -15.0
    min_pixels: int = 1
    match_levels: bool = True

    @classmethod
    def for_grid(cls, change: ChangeSettings, transform: Affine) -> SarChangeSettings:
        """The `change` section's settings on a grid of `transform`'s pixel size (the
        minimum mapping unit in pixels)."""
        pixel_area_m2 = abs(transform.a * transform.e)
        return cls(
            window_px=int(change.sar_window_px),
            tile_px=int(change.sar_tile_px),
            min_ashman_d=float(change.sar_min_ashman_d),
            match_levels=bool(change.sar_match_levels),
            min_pixels=max(1, int(np.ceil(float(change.min_area_m2) / pixel_area_m2))),
        )


@dataclass(frozen=True)
class TiledThreshold:
    """A threshold and how it was found: from bimodal tiles, or a documented fallback."""

    value: float
    tiles_selected: int
    tiles_total: int
    fallback: bool
    reason: str


def speckle_filtered_db(db: np.ndarray, window: int) -> np.ndarray:
    """Boxcar mean in linear power (NaN-aware), back to dB: averaging dB would bias low."""
    if window <= 1:
        return db.astype(np.float32)
    valid = np.isfinite(db)
    power = np.where(valid, to_linear(np.nan_to_num(db)), 0.0).astype(np.float64)
    total = ndimage.uniform_filter(power, window, mode="constant")
    weight = ndimage.uniform_filter(valid.astype(np.float64), window, mode="constant")
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / weight
    return np.where(valid, to_db(mean.astype(np.float32)), np.nan).astype(np.float32)


def ashman_d(low: np.ndarray, high: np.ndarray) -> float:
    """Separation of two populations in pooled standard deviations; > 2 is clearly bimodal."""
    spread = np.sqrt(low.var() + high.var())
    return float(np.sqrt(2.0) * abs(high.mean() - low.mean()) / max(spread, 1e-6))


def _bimodal_low_mode(values: np.ndarray, settings: SarChangeSettings) -> float | None:
    """The mean of the darker of a tile's two Otsu classes if its histogram is bimodal,
    else None. Every test is unmoved by a shift of the values, so a tile found bimodal
    stays bimodal once the scene's level is matched; only its low mode moves."""
    if values.size < 32 or np.ptp(values) < settings.min_separation_db:
        return None
    threshold = threshold_otsu(values)
    low, high = values[values <= threshold], values[values > threshold]
    if min(low.size, high.size) < settings.min_share * values.size:
        return None
    if high.mean() - low.mean() < settings.min_separation_db:
        return None
    if ashman_d(low, high) < settings.min_ashman_d:
        return None
    return float(low.mean())


def tiled_threshold(
    values: np.ndarray,
    usable: np.ndarray,
    settings: SarChangeSettings,
    *,
    fallback: float,
    what: str,
    low_mode_max: float | None = None,
) -> TiledThreshold:
    """Otsu threshold over the pooled pixels of the tiles whose histogram is bimodal.

    A tile counts only if at least half of it is usable, so edge tiles with a handful of
    pixels do not decide the threshold.
    """
    pooled, total = bimodal_tile_values(values, usable, settings, low_mode_max)
    return threshold_from_pool(pooled, total, fallback=fallback, what=what)


def bimodal_tile_values(
    values: np.ndarray,
    usable: np.ndarray,
    settings: SarChangeSettings,
    low_mode_max: float | None = None,
) -> tuple[list[np.ndarray], int]:
    """The usable values of each tile (from the array's origin) whose histogram is
    bimodal, and how many tiles were at least half usable. A block whose origin is on the
    tile lattice gives the same tiles as the whole grid, so blocks can be pooled."""
    tiles, total = bimodal_tiles(values, usable, settings)
    return [v for v, low in tiles if low_mode_max is None or low <= low_mode_max], total


def bimodal_tiles(
    values: np.ndarray, usable: np.ndarray, settings: SarChangeSettings
) -> tuple[list[tuple[np.ndarray, float]], int]:
    """Each bimodal tile's usable values and the mean of its darker mode, and how many
    tiles were at least half usable."""
    tile = settings.tile_px
    rows, cols = values.shape
    found, total = [], 0
    for r0 in range(0, rows, tile):
        for c0 in range(0, cols, tile):
            window = (slice(r0, r0 + tile), slice(c0, c0 + tile))
            ok = usable[window]
            if ok.mean() < 0.5:
                continue
            total += 1
            tile_values = values[window][ok]
            low = _bimodal_low_mode(tile_values, settings)
            if low is not None:
                found.append((tile_values, low))
    return found, total


def threshold_from_pool(
    pooled: list[np.ndarray], total: int, *, fallback: float, what: str
) -> TiledThreshold:
    """Otsu's threshold over the pooled bimodal tiles, or the documented fallback."""
    if not pooled:
        return TiledThreshold(
            fallback,
            0,
            total,
            True,
            f"no tile with a bimodal {what} histogram: fallback {fallback:g} dB",
        )
    value = float(threshold_otsu(np.concatenate(pooled)))
    return TiledThreshold(
        value,
        len(pooled),
        total,
        False,
        f"Otsu over {len(pooled)} of {total} tiles with a bimodal {what} histogram",
    )


def drop_threshold(
    tiles: list[tuple[np.ndarray, float]], total: int, offset_db: float, settings: SarChangeSettings
) -> TiledThreshold:
    """The log-ratio's threshold once the scene's level is matched: over the bimodal tiles
    of the unmatched change (`bimodal_tiles`) whose darker mode, moved by `offset_db`, is
    a fall (below 0 dB). Otsu's threshold moves with the values, so it is found on them
    as they are and moved, the same whether the grid was read whole or block by block."""
    pooled = [values for values, low in tiles if low - offset_db <= 0.0]
    found = threshold_from_pool(
        pooled, total, fallback=settings.fallback_ratio_db, what="post/pre log-ratio"
    )
    return found if found.fallback else replace(found, value=float(found.value - offset_db))


# The log-ratio histogram whose median gives the level offset: 0.01 dB bins.
LEVEL_RANGE_DB = (-40.0, 40.0)
LEVEL_BINS = 8000


@dataclass
class RatioLevels:
    """Each polarisation's log-ratio over the usable pixels, as a histogram pooled block
    by block. Its median is the level of ground that did not change, which covers most
    of a grid: 0 dB when both scenes are calibrated alike, several dB when they are not
    (sigma0 against gamma0, two processors, images stretched one by one). Subtracting it
    is a relative radiometric normalisation of the pre-event scene to the post-event one."""

    bands: int
    enabled: bool = True  # change.sar_match_levels; disabled, every offset is 0
    counts: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.counts = np.zeros((self.bands, LEVEL_BINS), np.int64)

    def add(self, ratio: np.ndarray, usable: np.ndarray) -> None:
        if not self.enabled:
            return
        low, high = LEVEL_RANGE_DB
        for band in range(self.bands):
            values = ratio[band][usable]
            index = ((values - low) / (high - low) * LEVEL_BINS).astype(np.int64)
            index = np.clip(index, 0, LEVEL_BINS - 1)
            self.counts[band] += np.bincount(index, minlength=LEVEL_BINS)

    def offsets(self) -> np.ndarray:
        """The median log-ratio of each polarisation (dB; 0 where no pixel was added)."""
        low, high = LEVEL_RANGE_DB
        out = np.zeros(self.bands, np.float32)
        for band, counts in enumerate(self.counts):
            total = int(counts.sum())
            if total:
                k = int(np.searchsorted(np.cumsum(counts), total / 2))
                out[band] = low + (k + 0.5) * (high - low) / LEVEL_BINS
        return out


@dataclass
class SarEvidence:
    ratio_db: np.ndarray  # (bands, rows, cols) post/pre log-ratio, VV (and VH), dB; NaN nodata
    post_vv_db: np.ndarray  # speckle-filtered post-event VV, dB
    evidence: np.ndarray  # uint8 codes, see EVIDENCE_VALUES
    summary: dict


def sar_evidence(
    pre_db: np.ndarray, post_db: np.ndarray, usable: np.ndarray, settings: SarChangeSettings
) -> SarEvidence:
    """Flood signal where backscatter fell (the polarisations averaged) to water level.

    `pre_db` and `post_db` are (bands, rows, cols) VV, and VH where acquired, in dB;
    `usable` marks pixels with valid SAR in both periods.
    """
    pre, post, usable = filtered_pair(pre_db, post_db, usable, settings)
    offsets, tiles, total = unmatched_statistics(pre, post, usable, settings)
    water = tiled_threshold(
        post[0],
        usable,
        settings,
        fallback=settings.fallback_water_db,
        what="post-event VV backscatter",
        low_mode_max=settings.water_mode_max_db,
    )
    drop = drop_threshold(tiles, total, float(offsets.mean()), settings)
    pre, ratio, change = change_of(pre, post, usable, offsets)
    evidence = classify(pre, post, usable, change, water.value, drop.value)
    evidence = drop_small_patches(evidence, FLOOD_SIGNAL, NO_SIGNAL, settings.min_pixels)
    summary = evidence_summary(evidence, settings, water, drop, offsets)
    return SarEvidence(ratio, post[0], evidence, summary)


def unmatched_statistics(
    pre: np.ndarray, post: np.ndarray, usable: np.ndarray, settings: SarChangeSettings
) -> tuple[np.ndarray, list[tuple[np.ndarray, float]], int]:
    """What the level match needs from the change as it is: the level offsets and the
    bimodal tiles of the change (`drop_threshold` chooses among them); the unmatched
    log-ratio is dropped on return."""
    _, ratio, change = change_of(pre, post, usable, np.zeros(len(pre), np.float32))
    levels = RatioLevels(len(ratio), settings.match_levels)
    levels.add(ratio, usable)
    return levels.offsets(), *bimodal_tiles(change, usable, settings)


def filtered_pair(
    pre_db: np.ndarray, post_db: np.ndarray, usable: np.ndarray, settings: SarChangeSettings
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Speckle-filtered pre and post (VV, and VH) and the pixels usable after filtering.
    Pixelwise but for the filter window, so a block read with a halo of window_px // 2
    gives the whole grid's values."""
    pre = np.stack([speckle_filtered_db(b, settings.window_px) for b in pre_db[:2]])
    post = np.stack([speckle_filtered_db(b, settings.window_px) for b in post_db[:2]])
    usable = usable & np.isfinite(pre).all(axis=0) & np.isfinite(post).all(axis=0)
    return pre, post, usable


def change_of(
    pre: np.ndarray, post: np.ndarray, usable: np.ndarray, offsets: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The pre-event scene raised to the post-event level (`offsets`, dB a polarisation),
    the log-ratio and its polarisation mean."""
    pre = pre + offsets[:, None, None]
    ratio = np.where(usable, post - pre, np.nan).astype(np.float32)
    return pre, ratio, ratio.mean(axis=0)


def filtered_change(
    pre_db: np.ndarray,
    post_db: np.ndarray,
    usable: np.ndarray,
    settings: SarChangeSettings,
    offsets: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """`filtered_pair` and `change_of`: the matched pre, post, usable pixels, log-ratio and
    its polarisation mean (unmatched without `offsets`)."""
    pre, post, usable = filtered_pair(pre_db, post_db, usable, settings)
    if offsets is None:
        offsets = np.zeros(len(pre), np.float32)
    pre, ratio, change = change_of(pre, post, usable, offsets)
    return pre, post, usable, ratio, change


def classify(
    pre: np.ndarray,
    post: np.ndarray,
    usable: np.ndarray,
    change: np.ndarray,
    water_db: float,
    drop_db: float,
) -> np.ndarray:
    """Evidence codes from the two thresholds, before the minimum mapping unit: a fall to
    water level is a flood signal; ground water-dark before that did not fall, excluded."""
    evidence = np.full(change.shape, EVIDENCE_NODATA, np.uint8)
    evidence[usable] = NO_SIGNAL
    evidence[usable & (pre[0] < water_db)] = DARK_BEFORE
    evidence[usable & (change < drop_db) & (post[0] < water_db)] = FLOOD_SIGNAL  # over it
    return evidence


def evidence_summary(
    evidence: np.ndarray,
    settings: SarChangeSettings,
    water: TiledThreshold,
    drop: TiledThreshold,
    offsets: np.ndarray,
) -> dict:
    usable = evidence != EVIDENCE_NODATA
    n_usable = max(int(usable.sum()), 1)
    return {
        "settings": asdict(settings),
        "level_offset_db": level_record(offsets, settings),
        "water_threshold_db": asdict(water),
        "ratio_threshold_db": asdict(drop),
        "share_with_sar_in_both_periods": round(float(usable.mean()), 6),
        "share_flood_signal": round(float((evidence == FLOOD_SIGNAL).sum()) / n_usable, 6),
        "share_excluded_dark_before": round(float((evidence == DARK_BEFORE).sum()) / n_usable, 6),
    }


# A level offset beyond this says the two scenes are not on one radiometric scale.
LEVEL_WARNING_DB = 2.0


def level_record(offsets: np.ndarray, settings: SarChangeSettings) -> dict:
    """What was subtracted from each polarisation's log-ratio, and why; a warning in the
    log where the scenes' levels differ by more than ground that did not change would."""
    scales_differ = bool(np.abs(offsets).max(initial=0.0) > LEVEL_WARNING_DB)
    record = {
        "matched": settings.match_levels,
        "offsets": {pol: round(float(v), 3) for pol, v in zip(("VV", "VH"), offsets, strict=False)},
        "scales_differ": scales_differ,
        "why": "the median log-ratio: where ground that did not change lies",
    }
    if scales_differ:
        log.warning(
            "pre- and post-event backscatter differ by %s dB where the ground did not change: "
            "scenes on different radiometric scales? The pre-event scene was matched to the "
            "post-event one",
            ", ".join(f"{pol} {v:+.1f}" for pol, v in record["offsets"].items()),
        )
    return record


def sar_usable(valid_pre: np.ndarray, valid_post: np.ndarray) -> np.ndarray:
    """Pixels inside the AOI with valid SAR in both periods."""
    inside = (valid_pre != VALID_NODATA) & (valid_post != VALID_NODATA)
    return (
        inside
        & (valid_pre & SAR_VALID_BIT).astype(bool)
        & (valid_post & SAR_VALID_BIT).astype(bool)
    )


def shared_polarisations(stacks: list[tuple[Path, list[str]]]) -> list[str]:
    """The polarisations compared: VV, and VH where every stack has it (a VV-only source
    has none); InputError naming a stack without VV."""
    for path, names in stacks:
        if "VV" not in names:
            raise InputError(f"{path}: no band named VV (bands: {names})")
    return ["VV", *(["VH"] if all("VH" in names for _, names in stacks) else [])]


def with_vh_band(ratio: np.ndarray) -> np.ndarray:
    """The log-ratio as written: VV and VH, VH all NaN where the stacks have no VH."""
    if len(ratio) == 2:
        return ratio
    return np.concatenate([ratio, np.full_like(ratio[:1], np.nan)])


def polarisation_mean(ratio: np.ndarray) -> np.ndarray:
    """The written log-ratio (VV, VH bands) averaged over the polarisations acquired, as
    the change was thresholded: a VV-only source's VH band is all NaN, and a plain mean
    would blank every pixel."""
    finite = np.isfinite(ratio)
    count = finite.sum(axis=0)
    total = np.where(finite, ratio, 0.0).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / count, np.nan)


def same_grid(paths_profiles: list[tuple[Path, dict]]) -> None:
    """Refuse inputs that are not on one grid: comparing them pixel by pixel would be wrong."""
    first_path, first = paths_profiles[0]
    key = (first["crs"], first["transform"], first["width"], first["height"])
    for path, profile in paths_profiles[1:]:
        if (profile["crs"], profile["transform"], profile["width"], profile["height"]) != key:
            raise InputError(f"{first_path} and {path} are not on the same grid")


def map_sar_change(
    stacks: list[Path],
    valid: list[Path],
    *,
    change: ChangeSettings,
    out_evidence: Path,
    out_ratio: Path,
    out_summary: Path,
) -> dict:
    """The sar_change stage: evidence classes, log-ratio and thresholds, written atomically."""
    (pre, pre_profile), (post, post_profile) = (read_checked(p) for p in stacks)
    names = [[d or "" for d in profile["descriptions"]] for profile in (pre_profile, post_profile)]
    pols = shared_polarisations(list(zip(stacks, names, strict=True)))
    pre, post = (
        data[[n.index(b) for b in pols]].astype(np.float32)
        for data, n in ((pre, names[0]), (post, names[1]))
    )
    valid_pre, vpre_profile = read_checked(valid[0])
    valid_post, vpost_profile = read_checked(valid[1])
    same_grid(
        [
            (stacks[0], pre_profile),
            (stacks[1], post_profile),
            (valid[0], vpre_profile),
            (valid[1], vpost_profile),
        ]
    )
    transform = pre_profile["transform"]
    settings = SarChangeSettings.for_grid(change, transform)
    usable = sar_usable(valid_pre[0], valid_post[0])
    if not usable.any():
        log.warning("no pixel has SAR in both periods: no SAR change evidence")
    result = sar_evidence(pre, post, usable, settings)
    crs = pre_profile["crs"]
    write_cog(
        out_evidence,
        result.evidence,
        crs=crs,
        transform=transform,
        nodata=EVIDENCE_NODATA,
        descriptions=("sar_flood_evidence",),
        colormap=EVIDENCE_COLORMAP,
        tags={"values": EVIDENCE_VALUES},
    )
    write_cog(
        out_ratio,
        np.concatenate([with_vh_band(result.ratio_db), result.post_vv_db[None]]),
        crs=crs,
        transform=transform,
        nodata=np.nan,
        descriptions=("VV_log_ratio", "VH_log_ratio", "VV_post_filtered"),
        units=("dB", "dB", "dB"),
        tags={"definition": RATIO_DEFINITION},
    )
    with atomic_path(out_summary) as tmp:
        tmp.write_text(json.dumps(result.summary, indent=2))
    return result.summary

"""Input normalisation of the network: per-band centre and spread of each modality, from
the training set (`dataset` mode) or from each scene itself (`scene` and `scene_moments`
modes)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

DATASET, SCENE, SCENE_MOMENTS = "dataset", "scene", "scene_moments"
NORMALIZATION_MODES = (DATASET, SCENE, SCENE_MOMENTS)
PER_SCENE_MODES = (SCENE, SCENE_MOMENTS)
# Fewest valid pixels a scene's own statistics are taken from; below it the training
# set's statistics stand in.
MIN_SCENE_PIXELS = 256
# Pixels (per side, at most) of the sample a scene's own statistics are measured on.
SCENE_SAMPLE_PX = 1024


@dataclass
class Normalization:
    """Per-band centre and spread of each modality (SAR in dB).

    `dataset` mode standardises every scene by the training set's statistics. The
    per-scene modes standardise each scene by its own, per band over its valid pixels, so
    an 8-bit image stretched on its own and a calibrated one meet: `scene` by the median
    and interquartile spread, `scene_moments` by the mean and standard deviation (an
    image stretched so that most of it sits on a few grey levels has a narrow
    interquartile spread, which blows its tails up). The training set's statistics then
    only stand in for a scene too small to measure.
    """

    sar_mean: list[float]
    sar_std: list[float]
    optical_mean: list[float]
    optical_std: list[float]
    mode: str = DATASET

    @classmethod
    def from_pool(cls, pool: Sequence[dict[str, np.ndarray]], mode: str = DATASET) -> Normalization:
        _check_mode(mode)
        if mode in PER_SCENE_MODES:
            sar = [scene_statistics(s["sar"], mode) for s in pool]
            optical = [scene_statistics(s["optical"], mode) for s in pool]
            return cls(*_median_of(sar), *_median_of(optical), mode=mode)
        sar_mean, sar_std = _band_stats([s["sar"] for s in pool])
        opt_mean, opt_std = _band_stats([s["optical"] for s in pool])
        return cls(sar_mean, sar_std, opt_mean, opt_std)

    def to_dict(self) -> dict[str, Any]:
        return {
            "sar": {"mean": list(self.sar_mean), "std": list(self.sar_std)},
            "optical": {"mean": list(self.optical_mean), "std": list(self.optical_std)},
            "mode": self.mode,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Normalization:
        mode = data.get("mode", DATASET)  # checkpoints before scene mode are dataset mode
        _check_mode(mode)
        return cls(
            [float(v) for v in data["sar"]["mean"]],
            [float(v) for v in data["sar"]["std"]],
            [float(v) for v in data["optical"]["mean"]],
            [float(v) for v in data["optical"]["std"]],
            mode,
        )

    @property
    def per_scene(self) -> bool:
        """Whether each scene is standardised by its own statistics."""
        return self.mode in PER_SCENE_MODES

    def for_scene(self, sar: np.ndarray | None, optical: np.ndarray | None) -> Normalization:
        """The statistics to apply to one scene, given its bands (NaN where invalid; a
        sample of its pixels will do): the scene's own in a per-scene mode, else these."""
        if not self.per_scene:
            return self
        sar_stats = scene_statistics(sar, self.mode) if sar is not None else None
        opt_stats = scene_statistics(optical, self.mode) if optical is not None else None
        return Normalization(
            *(sar_stats or (self.sar_mean, self.sar_std)),
            *(opt_stats or (self.optical_mean, self.optical_std)),
            mode=DATASET,
        )

    def apply(self, x: np.ndarray, modality: str) -> np.ndarray:
        """(bands, ...) array standardised band by band, as float32."""
        mean = np.asarray(getattr(self, f"{modality}_mean"), dtype=np.float32)
        std = np.asarray(getattr(self, f"{modality}_std"), dtype=np.float32)
        if x.shape[0] != mean.size:
            raise ValueError(f"{modality}: {x.shape[0]} bands, normalisation has {mean.size}")
        shape = (-1,) + (1,) * (x.ndim - 1)
        out = np.subtract(x, mean.reshape(shape), dtype=np.float32)
        return np.divide(out, std.reshape(shape), out=out)  # in place: one new array


def _check_mode(mode: str) -> None:
    if mode not in NORMALIZATION_MODES:
        raise ValueError(f"normalisation mode {mode!r}: one of {NORMALIZATION_MODES}")


def scene_statistics(
    bands: np.ndarray, mode: str = SCENE
) -> tuple[list[float], list[float]] | None:
    """Per-band centre and spread of the pixels where every band is finite; None when
    too few pixels are valid to measure. `scene`: the median and robust spread
    (interquartile range / 1.349, the standard deviation of a normal distribution with
    that IQR); `scene_moments`: the mean and standard deviation."""
    if mode not in PER_SCENE_MODES:
        raise ValueError(f"scene statistics of mode {mode!r}: one of {PER_SCENE_MODES}")
    flat = bands.reshape(bands.shape[0], -1)
    valid = np.isfinite(flat).all(axis=0)
    if valid.sum() < MIN_SCENE_PIXELS:
        return None
    pixels = flat[:, valid]
    if mode == SCENE_MOMENTS:
        centre, spread = pixels.mean(axis=1, dtype=np.float64), pixels.std(axis=1, dtype=np.float64)
    else:
        q25, centre, q75 = np.percentile(pixels, [25, 50, 75], axis=1)
        spread = (q75 - q25) / 1.349
    spread = np.maximum(spread, 1e-3)
    return [float(v) for v in centre], [float(v) for v in spread]


def _median_of(
    stats: Sequence[tuple[list[float], list[float]] | None],
) -> tuple[list[float], list[float]]:
    """The median of scenes' statistics: the stand-in for a scene too small to measure."""
    known = [s for s in stats if s is not None]
    if not known:
        raise ValueError("no training sample has enough valid pixels for its statistics")
    centre = np.median([s[0] for s in known], axis=0)
    spread = np.median([s[1] for s in known], axis=0)
    return [float(v) for v in centre], [float(v) for v in spread]


def _band_stats(arrays: Sequence[np.ndarray]) -> tuple[list[float], list[float]]:
    """Per-band mean and standard deviation over every finite value (a real sample may
    lack a modality, or pixels outside its swath)."""
    n = total = total_sq = None
    for a in arrays:
        flat = a.reshape(a.shape[0], -1).astype(np.float64)
        finite = np.isfinite(flat)
        if not finite.all():
            flat = np.where(finite, flat, 0.0)
        s, sq, count = flat.sum(axis=1), (flat**2).sum(axis=1), finite.sum(axis=1)
        total = s if total is None else total + s
        total_sq = sq if total_sq is None else total_sq + sq
        n = count if n is None else n + count
    if n is None or (n == 0).any():
        raise ValueError("a band has no finite value in the training pool")
    mean = total / n
    std = np.sqrt(np.maximum(total_sq / n - mean**2, 0.0))
    std = np.maximum(std, 1e-6)  # a constant band must not divide by zero
    return [float(v) for v in mean], [float(v) for v in std]


def network_input(norm: Normalization, bands: np.ndarray, modality: str) -> np.ndarray:
    """Standardised bands; 0 (no signal) where a value is missing, as inference feeds a
    modality that is absent or invalid."""
    x = norm.apply(bands, modality)
    if not np.isfinite(x).all():
        np.nan_to_num(x, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
    return x

"""One water probability per pixel from the lines of evidence it has.

A logistic model per combination of the evidence a pixel has (the MetaRS water logit,
the SAR and index margins of `evidence`; MetaRS alone passes its probability through), so
a pixel is never weighed on evidence it lacks, and one the model could not map (a set
without the bands it reads) still gets the others' answer. The coefficients are fitted
by `metaflood fit-water-fusion` on labelled pixels of real sets (each set weighted
equally), for the checkpoint in use, and shipped as JSON, never as a pickle.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from metaflood.core.errors import InputError

DEFAULT_FUSION = Path(__file__).with_name("fusion.json")
EPS = 0.004  # probabilities are stored to 1/254: keep logits finite
MARGIN_CLIP_DB = 10.0
INDEX_SCALE = 10.0  # index units to the order of dB margins, for a well-conditioned fit
# One model per combination of the evidence a pixel has, named by its features.
LINES = ("land_cover", "sar_margin", "index_margin")
FEATURES = {
    "+".join(combo): combo
    for combo in (
        ("land_cover", "sar_margin", "index_margin"),
        ("land_cover", "sar_margin"),
        ("land_cover", "index_margin"),
        ("land_cover",),
        ("sar_margin", "index_margin"),
        ("sar_margin",),
        ("index_margin",),
    )
}
PASS_THROUGH = "land_cover"  # without SAR or index evidence: MetaRS's own probability


@dataclass
class WaterEvidence:
    """Per pixel: MetaRS water probability (NaN unmapped) and the two margins (NaN where
    the line has no answer)."""

    land_cover: np.ndarray
    sar_margin: np.ndarray
    index_margin: np.ndarray

    def variant_masks(self) -> dict[str, np.ndarray]:
        """Which variant each pixel gets: the one over exactly the lines it has."""
        has = {name: np.isfinite(getattr(self, name)) for name in LINES}
        masks = {}
        for variant, features in FEATURES.items():
            mask = np.ones(self.land_cover.shape, bool)
            for name in LINES:
                mask &= has[name] if name in features else ~has[name]
            masks[variant] = mask
        return masks


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, EPS, 1 - EPS)
    return np.log(p / (1 - p))


def feature_columns(evidence: WaterEvidence, where: np.ndarray) -> dict[str, np.ndarray]:
    return {
        "land_cover": logit(evidence.land_cover[where].astype(np.float64)),
        "sar_margin": np.clip(evidence.sar_margin[where], -MARGIN_CLIP_DB, MARGIN_CLIP_DB),
        "index_margin": np.clip(
            evidence.index_margin[where] * INDEX_SCALE, -MARGIN_CLIP_DB, MARGIN_CLIP_DB
        ),
    }


def feature_matrix(evidence: WaterEvidence, where: np.ndarray, variant: str) -> np.ndarray:
    columns = feature_columns(evidence, where)
    return np.column_stack([columns[name] for name in FEATURES[variant]]).astype(np.float64)


def load_fusion(path: str | Path | None = None) -> dict:
    path = Path(path) if path else DEFAULT_FUSION
    try:
        fusion = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise InputError(f"{path}: cannot be read as a water fusion model ({err})") from err
    for variant, features in FEATURES.items():
        model = fusion.get("variants", {}).get(variant)
        if model is None or tuple(model.get("features", ())) != features:
            raise InputError(
                f"{path}: variant {variant!r} is missing or was fitted on other features; "
                "refit it with `metaflood fit-water-fusion`"
            )
    return fusion


def water_probability(evidence: WaterEvidence, fusion: Mapping) -> np.ndarray:
    """Fused probability of water per pixel; NaN where no line has an answer."""
    probability = np.full(evidence.land_cover.shape, np.nan, np.float64)
    for variant, where in evidence.variant_masks().items():
        if where.any():
            model = fusion["variants"][variant]
            score = feature_matrix(evidence, where, variant) @ np.asarray(model["coef"])
            probability[where] = 1.0 / (1.0 + np.exp(-(score + model["intercept"])))
    return probability


def fit_fusion(
    sets: Sequence[tuple[str, WaterEvidence, np.ndarray]],
    *,
    max_pixels: int = 400_000,
    keep_from: tuple[str, Mapping] | None = None,
) -> dict:
    """Logistic models from labelled pixels (label 0/1, 255 ignored) of named sets, each
    set carrying the same total weight whatever its size; at most `max_pixels` a set and
    variant, drawn with a fixed seed. A variant learns from every pixel that has its
    lines (whatever else it has): what the others would add is unknown where it applies.

    A variant the sets cannot fit (a SAR-only set has no index margin) is an error, or,
    with `keep_from` (a name and a loaded fusion), taken from that fusion and marked so."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    variants: dict[str, dict] = {
        PASS_THROUGH: {"features": [PASS_THROUGH], "coef": [1.0], "intercept": 0.0}
    }
    for variant, features in FEATURES.items():
        if variant in variants:
            continue
        X_parts, y_parts, w_parts, counts = [], [], [], {}
        for name, evidence, label in sets:
            where = label <= 1
            for line in features:
                where = where & np.isfinite(getattr(evidence, line))
            n = int(where.sum())
            if n == 0:
                continue
            picked = np.flatnonzero(where)
            if n > max_pixels:
                picked = np.sort(rng.choice(picked, max_pixels, replace=False))
            mask = np.zeros(where.size, bool)
            mask[picked] = True
            mask = mask.reshape(where.shape)
            X_parts.append(feature_matrix(evidence, mask, variant))
            y_parts.append(label[mask].astype(np.int64))
            w_parts.append(np.full(len(picked), 1.0 / len(picked)))
            counts[name] = counts.get(name, 0) + len(picked)
        if not X_parts or len(np.unique(np.concatenate(y_parts))) < 2:
            if keep_from is not None:
                source, fusion = keep_from
                variants[variant] = {**fusion["variants"][variant], "kept_from": source}
                continue
            raise InputError(
                f"no labelled pixels of both classes for the {variant!r} variant: give sets "
                "whose samples have that evidence, or a fusion to keep it from"
            )
        X, y, w = np.concatenate(X_parts), np.concatenate(y_parts), np.concatenate(w_parts)
        model = LogisticRegression(C=1.0, max_iter=1000).fit(X, y, sample_weight=w * len(w))
        variants[variant] = {
            "features": list(features),
            "coef": [round(float(c), 6) for c in model.coef_[0]],
            "intercept": round(float(model.intercept_[0]), 6),
            "pixels": counts,
        }
    return {"variants": variants}

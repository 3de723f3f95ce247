"""The event's maps, described once and drawn for both the HTML report and the map book."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from metaflood.core import exclusion_codes
from metaflood.core.classes import CLASS_COLORS, CLASS_NAMES, colormap
from metaflood.core.config import PERIODS
from metaflood.core.raster import read_checked
from metaflood.flood import support
from metaflood.flood.change import EXTENT_COLORMAP, FLOODED, PERMANENT
from metaflood.flood.sar_change import (
    DARK_BEFORE,
    EVIDENCE_COLORMAP,
    FLOOD_SIGNAL,
    polarisation_mean,
)
from metaflood.report.figures import classes_rgba, optical_composite, sar_image, scalar_rgba
from metaflood.report.ramps import CONFIDENCE, LOG_RATIO, Ramp

AVAILABILITY_COLORS = {
    3: (0, 153, 68, 255),  # both valid
    1: (230, 145, 30, 255),  # SAR only
    2: (70, 130, 200, 255),  # optical only
    0: (120, 120, 120, 255),  # neither
}
AVAILABILITY_LEGEND = [
    ("SAR and optical", AVAILABILITY_COLORS[3][:3]),
    ("SAR only", AVAILABILITY_COLORS[1][:3]),
    ("optical only", AVAILABILITY_COLORS[2][:3]),
    ("neither", AVAILABILITY_COLORS[0][:3]),
]
FLOOD_LEGEND = [
    ("flooded (new water)", EXTENT_COLORMAP[FLOODED][:3]),
    ("permanent water", EXTENT_COLORMAP[PERMANENT][:3]),
]
EVIDENCE_LEGEND = [
    ("backscatter fell to water level", EVIDENCE_COLORMAP[FLOOD_SIGNAL][:3]),
    ("excluded: water-dark before", EVIDENCE_COLORMAP[DARK_BEFORE][:3]),
]

SUPPORT_LEGEND = [
    (label, support.COLOURS[support.CODES[name]][:3])
    for name, label in {
        "water_maps_and_sar_change": "both lines",
        "sar_change_only": "the SAR change alone",
        "water_maps_only_sar_blind": "water maps alone, SAR blind",
        "water_maps_only_sar_disagrees": "water maps alone, against the SAR",
        "neither_alone": "neither line alone",
    }.items()
]
EXCLUSION_LEGEND = [
    (exclusion_codes.NAMES[code], exclusion_codes.COLOURS[code][:3])
    for code in exclusion_codes.EXCLUDING
]


@dataclass
class ReportInputs:
    """The products a report is made from (pre, post pairs where a period applies)."""

    stacks: list[Path]
    valid: list[Path]
    landcover: list[Path]
    extent: Path
    confidence: Path
    sar_evidence: Path
    sar_ratio: Path
    stats: Path
    exclusion: Path | None = None
    support: Path | None = None

    @classmethod
    def from_named(cls, named: Any) -> ReportInputs:
        """From a rule's named inputs (the report and map-book rules share them)."""
        return cls(
            stacks=[Path(p) for p in named.stacks],
            valid=[Path(p) for p in named.valid],
            landcover=[Path(p) for p in named.landcover],
            extent=Path(named.extent),
            confidence=Path(named.confidence),
            sar_evidence=Path(named.sar_evidence),
            sar_ratio=Path(named.sar_ratio),
            stats=Path(named.stats),
            exclusion=Path(named.exclusion),
            support=Path(named.support),
        )


@dataclass
class Layers:
    stacks: list[np.ndarray]
    stack_bands: list[tuple[str, ...]]  # each stack's band names (VV, VH, optical bands)
    valid: list[np.ndarray]
    landcover: list[np.ndarray]
    extent: np.ndarray
    confidence: np.ndarray
    sar_evidence: np.ndarray
    sar_ratio: np.ndarray
    pixel_size: float
    exclusion: np.ndarray | None = None
    support: np.ndarray | None = None


def load_layers(inputs: ReportInputs) -> Layers:
    extent, profile = read_checked(inputs.extent)
    stacks = [read_checked(p) for p in inputs.stacks]
    return Layers(
        stacks=[data for data, _ in stacks],
        stack_bands=[tuple(d or "" for d in meta["descriptions"]) for _, meta in stacks],
        valid=[read_checked(p)[0][0] for p in inputs.valid],
        landcover=[read_checked(p)[0][0] for p in inputs.landcover],
        extent=extent[0],
        confidence=read_checked(inputs.confidence)[0][0],
        sar_evidence=read_checked(inputs.sar_evidence)[0][0],
        sar_ratio=read_checked(inputs.sar_ratio)[0],
        pixel_size=abs(profile["transform"].a),
        exclusion=read_checked(inputs.exclusion)[0][0] if inputs.exclusion else None,
        support=read_checked(inputs.support)[0][0] if inputs.support else None,
    )


def event_maps(layers: Layers) -> dict[str, dict]:
    """Keyword arguments of map_figure for every map, by key, in reading order."""
    maps: dict[str, dict] = {}
    class_legend = list(zip(CLASS_NAMES, CLASS_COLORS, strict=True))
    common = {"pixel_size": layers.pixel_size}
    for period, stack, bands in zip(PERIODS, layers.stacks, layers.stack_bands, strict=True):
        label = "Pre-event" if period == "pre" else "Post-event"
        image, caption = optical_composite(stack, bands)
        maps[f"{period}_optical"] = {
            "image": image,
            "title": f"{label} optical ({caption}; blank: cloud or no scene)",
        }
        maps[f"{period}_sar"] = {
            "image": sar_image(stack, bands),
            "title": f"{label} SAR (VV, dB)",
        }
    for period, classes in zip(PERIODS, layers.landcover, strict=True):
        label = "Pre-event" if period == "pre" else "Post-event"
        maps[f"{period}_landcover"] = {
            "image": classes_rgba(classes, colormap()),
            "title": f"{label} land cover (MetaRS)",
            "legend": class_legend,
        }
    overlay_colors = {FLOODED: EXTENT_COLORMAP[FLOODED], PERMANENT: EXTENT_COLORMAP[PERMANENT]}
    background, caption = _post_background(layers.stacks[1], layers.stack_bands[1])
    maps["flood_optical"] = {
        "image": background,
        "overlay": classes_rgba(layers.extent, overlay_colors),
        "title": f"Flood extent over the post-event image (optical, {caption}, where clear; "
        "else SAR)",
        "legend": FLOOD_LEGEND,
    }
    maps["confidence"] = {
        "image": scalar_rgba(
            layers.confidence.astype(float), *_scale(CONFIDENCE), layers.confidence <= 100
        ),
        "title": "Flood confidence (calibrated probability of new water)",
        "colorbar": (*_scale(CONFIDENCE), CONFIDENCE.label),
    }
    if layers.support is not None:
        maps["support"] = {
            "image": background,
            "overlay": classes_rgba(
                layers.support, {code: support.COLOURS[code] for code in support.CODES.values()}
            ),
            "title": "What the flood rests on (check the single-line cases first)",
            "legend": SUPPORT_LEGEND,
        }
    ratio = polarisation_mean(layers.sar_ratio[:2]) if layers.sar_ratio.size else None
    maps["sar_ratio"] = {
        "image": scalar_rgba(ratio, *_scale(LOG_RATIO)),
        "title": "SAR change: log-ratio post / pre (VV and VH mean)",
        "colorbar": (*_scale(LOG_RATIO), LOG_RATIO.label),
    }
    maps["sar_evidence"] = {
        "image": sar_image(layers.stacks[1], layers.stack_bands[1]),
        "overlay": classes_rgba(
            layers.sar_evidence,
            {
                FLOOD_SIGNAL: EVIDENCE_COLORMAP[FLOOD_SIGNAL],
                DARK_BEFORE: EVIDENCE_COLORMAP[DARK_BEFORE],
            },
        ),
        "title": "SAR flood evidence and exclusions over the post-event SAR",
        "legend": EVIDENCE_LEGEND,
    }
    if layers.exclusion is not None:
        maps["exclusion"] = {
            "image": sar_image(layers.stacks[1], layers.stack_bands[1]),
            "overlay": classes_rgba(
                layers.exclusion,
                {code: exclusion_codes.COLOURS[code] for code in exclusion_codes.EXCLUDING},
            ),
            "title": "Terrain exclusion over the post-event SAR (no flood is mapped there)",
            "legend": EXCLUSION_LEGEND,
        }
    for period, valid in zip(PERIODS, layers.valid, strict=True):
        label = "Pre-event" if period == "pre" else "Post-event"
        maps[f"{period}_coverage"] = {
            "image": classes_rgba(valid, AVAILABILITY_COLORS),
            "title": f"{label} modality availability",
            "legend": AVAILABILITY_LEGEND,
        }
    return {key: spec | common for key, spec in maps.items()}


def _scale(ramp: Ramp) -> tuple[str, float, float]:
    return ramp.colormap, ramp.minimum, ramp.maximum


def _post_background(stack: np.ndarray, bands: tuple[str, ...]) -> tuple[np.ndarray, str]:
    """The optical composite where the post-event optical image is clear, SAR underneath
    elsewhere; and the composite's caption."""
    optical, caption = optical_composite(stack, bands)
    clear = optical[..., 3:4] > 0
    return np.where(clear, optical, sar_image(stack, bands)), caption

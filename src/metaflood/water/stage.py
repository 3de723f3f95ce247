"""The water stage of one period: SAR water, the optical index and the fused water map.

Two passes over blocks on the threshold tiles' lattice: the first pools the bimodal tiles
of the whole grid (so thresholds do not depend on how the grid is cut), the second
classifies, fuses and writes. Memory follows the block, not the grid.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from rasterio.windows import Window

from metaflood.core import water_map
from metaflood.core.blockwise import block_windows, with_halo
from metaflood.core.classes import WATER, stored_probability
from metaflood.core.errors import InputError
from metaflood.core.raster import atomic_path, cog_writer, open_georeferenced, read_window
from metaflood.core.settings import ChangeSettings
from metaflood.flood.sar_change import SAR_VALID_BIT, VALID_NODATA, SarChangeSettings, same_grid
from metaflood.water.evidence import (
    SAR_INDEX_BANDS,
    Pools,
    WaterIndex,
    choose_index,
    filtered_sar,
    index_margin,
    normalised_difference,
    pool_block,
    sar_margin,
    thresholds,
)
from metaflood.water.fusion import WaterEvidence, load_fusion, water_probability

OPTICAL_VALID_BIT = 2
BLOCK_PX = 2048
DRY, WET = 0, 1
CLASS_NODATA = 255
EVIDENCE_BANDS = ("sar_margin_db", "water_index", "index_margin")
SAR_WATER_COLORMAP = {
    DRY: (235, 235, 235, 255),
    WET: (0, 112, 255, 255),
    CLASS_NODATA: (0, 0, 0, 0),
}


@dataclass
class _Block:
    sar: dict[str, np.ndarray]
    sar_ok: np.ndarray
    index: np.ndarray | None
    optical_ok: np.ndarray
    inside: np.ndarray


class WaterInputs:
    """A period's stack, availability and land-cover probabilities, read block by block."""

    def __init__(self, stack: Path, valid: Path, proba: Path, exits: ExitStack) -> None:
        self.paths = (stack, valid, proba)
        self.stack, self.valid, self.proba = (
            exits.enter_context(open_georeferenced(p)) for p in self.paths
        )
        same_grid([(p, s.profile) for p, s in zip(self.paths, self.sources, strict=True)])
        names = [d or "" for d in self.stack.descriptions]
        self.sar_bands = {b: names.index(b) + 1 for b in SAR_INDEX_BANDS if b in names}
        if "VV" not in self.sar_bands:
            raise InputError(f"{stack}: no band named VV (bands: {names})")
        self.index: WaterIndex | None = choose_index(names)
        self.index_bands = (
            [names.index(b) + 1 for b in self.index.bands] if self.index is not None else []
        )
        self.height, self.width = self.stack.height, self.stack.width

    @property
    def sources(self):
        return (self.stack, self.valid, self.proba)

    def blocks(self, settings: SarChangeSettings) -> Iterator[Window]:
        size = max(1, BLOCK_PX // settings.tile_px) * settings.tile_px
        return block_windows(self.height, self.width, size)

    def read(self, window: Window, settings: SarChangeSettings) -> _Block:
        """One block's evidence inputs, SAR filtered with a halo (so equal to the grid's)."""
        halo = settings.window_px // 2 + 1
        grown, inner = with_halo(window, halo, self.height, self.width)
        raw = read_window(self.stack, grown, list(self.sar_bands.values())).astype(np.float32)
        sar = filtered_sar(dict(zip(self.sar_bands, raw, strict=True)), settings.window_px)
        sar = {band: values[inner] for band, values in sar.items()}
        valid = read_window(self.valid, window, 1)
        inside = valid != VALID_NODATA
        sar_ok = inside & (valid & SAR_VALID_BIT).astype(bool)
        optical_ok = inside & (valid & OPTICAL_VALID_BIT).astype(bool)
        index = None
        if self.index is not None:
            wet, dry = read_window(self.stack, window, self.index_bands)
            index = normalised_difference(wet, dry)
            index[~optical_ok] = np.nan
        return _Block(sar, sar_ok, index, optical_ok, inside)

    def land_cover_water(self, window: Window) -> np.ndarray:
        return stored_probability(read_window(self.proba, window, WATER + 1))


def _writers(inputs: WaterInputs, exits: ExitStack, outputs: dict[str, Path], index_name: str):
    grid = {
        "crs": inputs.stack.crs,
        "transform": inputs.stack.transform,
        "width": inputs.width,
        "height": inputs.height,
    }
    return {
        "sar": exits.enter_context(
            cog_writer(
                outputs["sar"],
                count=1,
                dtype="uint8",
                nodata=CLASS_NODATA,
                descriptions=("sar_water",),
                colormap=SAR_WATER_COLORMAP,
                tags={"values": "0 dry, 1 water (VV below its automatic threshold), 255 no SAR"},
                **grid,
            )
        ),
        "evidence": exits.enter_context(
            cog_writer(
                outputs["evidence"],
                count=len(EVIDENCE_BANDS),
                dtype="float32",
                nodata=np.nan,
                descriptions=EVIDENCE_BANDS,
                units=("dB", "index", "index"),
                tags={
                    "sar_margin_db": "speckle-filtered backscatter minus its water threshold, "
                    "mean of the polarisations (negative: water-dark)",
                    "water_index": f"{index_name}; NaN where no clear optical pixel",
                    "index_margin": "water index minus its threshold (positive: wet)",
                },
                **grid,
            )
        ),
        "water": exits.enter_context(
            cog_writer(
                outputs["water"],
                count=1,
                dtype="uint8",
                nodata=water_map.NODATA,
                descriptions=("water_probability",),
                units=("percent",),
                tags={
                    "definition": "fused probability (percent) that the pixel is open water",
                    "water_at": "50 and above",
                },
                **grid,
            )
        ),
    }


def map_water(
    stack: Path,
    valid: Path,
    proba: Path,
    *,
    change: ChangeSettings,
    fusion: Path | None,
    out_sar: Path,
    out_evidence: Path,
    out_water: Path,
    out_summary: Path,
) -> dict:
    """The water stage of one period; returns (and writes) the thresholds and shares."""
    model = load_fusion(fusion)
    with ExitStack() as exits:
        inputs = WaterInputs(Path(stack), Path(valid), Path(proba), exits)
        transform = inputs.stack.transform
        settings = SarChangeSettings.for_grid(change, transform)
        names = (*inputs.sar_bands, *(("index",) if inputs.index is not None else ()))
        pools = Pools.empty(names)
        for window in inputs.blocks(settings):
            block = inputs.read(window, settings)
            pool_block(pools, block.sar, block.sar_ok, block.index, block.optical_ok, settings)
        found = thresholds(pools, settings)
        index_name = inputs.index.name if inputs.index is not None else "no_water_index"
        writers = _writers(
            inputs,
            exits,
            {"sar": out_sar, "evidence": out_evidence, "water": out_water},
            index_name,
        )
        counts = dict.fromkeys(("inside", "sar", "sar_water", "index", "index_water"), 0)
        counts |= {"mapped": 0, "water": 0}
        for window in inputs.blocks(settings):
            block = inputs.read(window, settings)
            sar_vv_margin = block.sar["VV"] - np.float32(found["VV"].value)
            sar_class = np.full(block.inside.shape, CLASS_NODATA, np.uint8)
            sar_class[block.sar_ok] = (sar_vv_margin[block.sar_ok] < 0).astype(np.uint8)
            evidence = WaterEvidence(
                land_cover=inputs.land_cover_water(window),
                sar_margin=sar_margin(block.sar, found, block.sar_ok),
                index_margin=index_margin(block.index, found, block.optical_ok),
            )
            probability = water_probability(evidence, model)
            known = np.isfinite(probability) & block.inside
            percent = np.full(known.shape, water_map.NODATA, np.uint8)
            percent[known] = np.clip(np.rint(probability[known] * 100), 0, 100).astype(np.uint8)
            index = block.index if block.index is not None else np.full(known.shape, np.nan)
            bands = np.stack([evidence.sar_margin, index, evidence.index_margin])
            writers["sar"].write(sar_class, 1, window=window)
            writers["evidence"].write(bands.astype(np.float32), window=window)
            writers["water"].write(percent, 1, window=window)
            index_wet = np.isfinite(evidence.index_margin) & (evidence.index_margin > 0)
            counts["inside"] += int(block.inside.sum())
            counts["sar"] += int(block.sar_ok.sum())
            counts["sar_water"] += int((sar_class == WET).sum())
            counts["index"] += int(np.isfinite(evidence.index_margin).sum())
            counts["index_water"] += int(index_wet.sum())
            counts["mapped"] += int(known.sum())
            counts["water"] += int(water_map.is_water(percent).sum())
    summary = {
        "settings": asdict(settings),
        "thresholds": {name: asdict(t) for name, t in found.items()},
        "index": index_name,
        "fusion": str(fusion) if fusion else "shipped (metaflood/water/fusion.json)",
        "pixels": counts,
    }
    with atomic_path(out_summary) as tmp:
        tmp.write_text(json.dumps(summary, indent=2))
    return summary

"""SAR change evidence of a tiled event: global thresholds once, then tile by tile.

The automatic thresholds come from the whole grid (a tile job alone would see too few
bimodal tiles, and neighbouring tiles would disagree), computed block by block on the
same lattice of `change.sar_tile_px` tiles as the untiled stage, so they are identical to
its thresholds. Each tile job then classifies its core; the minimum mapping unit is
applied on the gathered mosaic, where a patch is not cut by tile edges.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import rasterio
from rasterio.windows import Window

from metaflood.core.blockwise import block_windows, with_halo
from metaflood.core.errors import InputError
from metaflood.core.mosaic import copy_gather, tile_frame
from metaflood.core.raster import atomic_path, band_index, cog_writer, open_checked, write_cog
from metaflood.core.settings import ChangeSettings
from metaflood.flood.mmu import drop_small_patches
from metaflood.flood.sar_change import (
    EVIDENCE_COLORMAP,
    EVIDENCE_NODATA,
    EVIDENCE_VALUES,
    FLOOD_SIGNAL,
    NO_SIGNAL,
    RATIO_DEFINITION,
    RatioLevels,
    SarChangeSettings,
    TiledThreshold,
    bimodal_tile_values,
    bimodal_tiles,
    classify,
    drop_threshold,
    evidence_summary,
    filtered_change,
    sar_usable,
    shared_polarisations,
    threshold_from_pool,
    with_vh_band,
)

# Blocks the thresholds are computed in: about this many pixels a side, a whole number
# of threshold tiles.
BLOCK_PX = 2048
RATIO_BANDS = ("VV_log_ratio", "VH_log_ratio", "VV_post_filtered")


class _Inputs:
    """The two stacks and two availability rasters, checked to share one grid."""

    def __init__(self, stacks: list[Path], valid: list[Path], stack: ExitStack):
        self.paths = [*stacks, *valid]
        self.sources = [stack.enter_context(open_checked(p)) for p in self.paths]
        first = self.sources[0]
        for path, src in zip(self.paths, self.sources, strict=True):
            if (src.crs, src.transform, src.width, src.height) != (
                first.crs,
                first.transform,
                first.width,
                first.height,
            ):
                raise InputError(f"{self.paths[0]} and {path} are not on the same grid")
        pols = shared_polarisations(
            [
                (path, list(src.descriptions))
                for path, src in zip(stacks, self.sources, strict=False)
            ]
        )
        self.sar_bands = [[band_index(src, b) for b in pols] for src in self.sources[:2]]
        self.height, self.width = first.height, first.width
        self.crs, self.transform = first.crs, first.transform

    def settings(self, change: ChangeSettings) -> SarChangeSettings:
        return SarChangeSettings.for_grid(change, self.transform)

    def read(self, window: Window) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        pre, post = (
            src.read(bands, window=window).astype(np.float32)
            for src, bands in zip(self.sources[:2], self.sar_bands, strict=True)
        )
        valid_pre, valid_post = (src.read(1, window=window) for src in self.sources[2:])
        return pre, post, sar_usable(valid_pre, valid_post)

    def filtered(
        self, window: Window, settings: SarChangeSettings, offsets: np.ndarray | None = None
    ) -> tuple:
        """`filtered_change` over `window`, computed with a halo, so equal to the grid's."""
        grown, inner = with_halo(window, settings.window_px // 2 + 1, self.height, self.width)
        pre, post, usable, ratio, change = filtered_change(*self.read(grown), settings, offsets)
        return pre[:, *inner], post[:, *inner], usable[inner], ratio[:, *inner], change[inner]

    def blocks(self, settings: SarChangeSettings) -> Iterator[Window]:
        size = max(1, BLOCK_PX // settings.tile_px) * settings.tile_px
        return block_windows(self.height, self.width, size)


def global_thresholds(
    stacks: list[Path], valid: list[Path], *, change: ChangeSettings, out: Path
) -> dict:
    """The level offset and the water and log-ratio thresholds of the whole grid, block
    by block, in one pass: the log-ratio's bimodal tiles are kept with their darker mode,
    and chosen once the offset is known (`drop_threshold`)."""
    with ExitStack() as stack:
        inputs = _Inputs(stacks, valid, stack)
        settings = inputs.settings(change)
        water_pool, drop_tiles, total = [], [], 0
        levels = RatioLevels(len(inputs.sar_bands[0]), settings.match_levels)
        for window in inputs.blocks(settings):
            _, post, usable, ratio, change_db = inputs.filtered(window, settings)
            values, n = bimodal_tile_values(post[0], usable, settings, settings.water_mode_max_db)
            water_pool += values
            drop_tiles += bimodal_tiles(change_db, usable, settings)[0]
            levels.add(ratio, usable)
            total += n
        offsets = levels.offsets()
        water = threshold_from_pool(
            water_pool, total, fallback=settings.fallback_water_db, what="post-event VV backscatter"
        )
        drop = drop_threshold(drop_tiles, total, float(offsets.mean()), settings)
    result = {
        "level_offsets_db": [float(v) for v in offsets],
        "water_threshold_db": water.__dict__,
        "ratio_threshold_db": drop.__dict__,
    }
    with atomic_path(out) as tmp:
        tmp.write_text(json.dumps(result, indent=2))
    return result


def sar_change_tile(
    stacks: list[Path],
    valid: list[Path],
    *,
    change: ChangeSettings,
    thresholds: Path,
    window: Window,
    out_evidence: Path,
    out_ratio: Path,
) -> None:
    """Evidence codes (before the minimum mapping unit) and log-ratio over one tile."""
    found = json.loads(Path(thresholds).read_text())
    with ExitStack() as stack:
        inputs = _Inputs(stacks, valid, stack)
        settings = inputs.settings(change)
        offsets = np.asarray(found["level_offsets_db"], np.float32)
        pre, post, usable, ratio, change_db = inputs.filtered(window, settings, offsets)
        evidence = classify(
            pre,
            post,
            usable,
            change_db,
            found["water_threshold_db"]["value"],
            found["ratio_threshold_db"]["value"],
        )
        common = {
            "crs": inputs.crs,
            "transform": rasterio.windows.transform(window, inputs.transform),
            "width": int(window.width),
            "height": int(window.height),
        }
    with cog_writer(
        out_evidence,
        count=1,
        dtype="uint8",
        nodata=EVIDENCE_NODATA,
        descriptions=("sar_flood_evidence",),
        categorical=True,
        **common,
    ) as dst:
        dst.write(evidence, 1)
    with cog_writer(
        out_ratio,
        count=3,
        dtype="float32",
        nodata=np.nan,
        descriptions=RATIO_BANDS,
        units=("dB", "dB", "dB"),
        **common,
    ) as dst:
        dst.write(np.concatenate([with_vh_band(ratio), post[:1]]).astype(np.float32))


def gather_sar_change(
    evidence_tiles: list[Path],
    ratio_tiles: list[Path],
    *,
    change: ChangeSettings,
    thresholds: Path,
    out_evidence: Path,
    out_ratio: Path,
    out_summary: Path,
    threads: int = 1,
) -> dict:
    """The untiled stage's three products from the tiles: the minimum mapping unit on the
    mosaic of evidence, the log-ratio copied into place."""
    found = json.loads(Path(thresholds).read_text())
    frame = tile_frame(evidence_tiles)
    evidence = np.full((frame.height, frame.width), EVIDENCE_NODATA, np.uint8)
    for path, window in zip(evidence_tiles, frame.windows, strict=True):
        with open_checked(path) as src:
            evidence[
                int(window.row_off) : int(window.row_off + window.height),
                int(window.col_off) : int(window.col_off + window.width),
            ] = src.read(1)
    settings = SarChangeSettings.for_grid(change, frame.transform)
    evidence = drop_small_patches(evidence, FLOOD_SIGNAL, NO_SIGNAL, settings.min_pixels)
    write_cog(
        out_evidence,
        evidence,
        crs=frame.crs,
        transform=frame.transform,
        nodata=EVIDENCE_NODATA,
        descriptions=("sar_flood_evidence",),
        colormap=EVIDENCE_COLORMAP,
        tags={"values": EVIDENCE_VALUES},
    )
    copy_gather(
        ratio_tiles,
        out_ratio,
        threads=threads,
        tags={"definition": RATIO_DEFINITION},
    )
    summary = evidence_summary(
        evidence,
        settings,
        TiledThreshold(**found["water_threshold_db"]),
        TiledThreshold(**found["ratio_threshold_db"]),
        np.asarray(found["level_offsets_db"], np.float32),
    )
    with atomic_path(out_summary) as tmp:
        tmp.write_text(json.dumps(summary, indent=2))
    return summary

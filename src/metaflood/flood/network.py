"""The flood network's line of evidence: per pixel of the event grid, the probability that
a network trained on flood masks (`metaflood train-flood`, model/flood_network.py) calls
it flooded, from the co-registered pre- and post-event stacks.

On new events the SAR change finds flood the network misses, and the network flood the
SAR change misses: the change stage joins the two (either may say flooded). Each period's
image is standardised by its own statistics, measured on a sample of the whole grid as
the network's training images were standardised whole, so every block of a large grid is
read alike; the grid is then mapped block by block with a halo of context, and memory
follows the block. Where both periods' optical images are clear the network reads them
(`joint`); elsewhere it maps from SAR alone, the optical bands zero-filled as it learnt
when they were dropped (`sar`); where either SAR image is missing it says nothing.
"""

from __future__ import annotations

import json
import logging
import time
from contextlib import ExitStack
from dataclasses import asdict
from pathlib import Path

import numpy as np
import rasterio
import torch

from metaflood.core.blockwise import block_windows, with_halo
from metaflood.core.errors import InputError
from metaflood.core.hashing import file_sha256
from metaflood.core.raster import (
    atomic_path,
    band_index,
    cog_writer,
    open_georeferenced,
    read_sampled,
)
from metaflood.flood.change import NETWORK_NODATA, NETWORK_SHA256_TAG
from metaflood.flood.sar_change import SAR_VALID_BIT, VALID_NODATA, same_grid
from metaflood.model.checkpoint import resolve_device
from metaflood.model.flood_network import (
    STATISTICS,
    FloodNetworkInputs,
    apply_statistics,
    flood_probability,
    load_flood_network,
)
from metaflood.model.normalization import SCENE_SAMPLE_PX, scene_statistics

log = logging.getLogger(__name__)

OPTICAL_VALID_BIT = 2
BLOCK_PX = 1024
# Context read around each block: beyond the U-Net's reach at the block's edge, so a
# block's probabilities do not depend on where the grid was cut.
HALO_PX = 64

Stats = tuple[list[float], list[float]]


class _Period:
    """One period's stack and availability, with the bands the network reads and the
    statistics that standardise them."""

    def __init__(self, stack: Path, valid: Path, inputs: FloodNetworkInputs, exits: ExitStack):
        self.stack = exits.enter_context(open_georeferenced(stack))
        self.valid = exits.enter_context(open_georeferenced(valid))
        self.vv = band_index(self.stack, "VV")
        names = [d or "" for d in self.stack.descriptions]
        missing = [b for b in inputs.optical_bands if b not in names]
        if missing:
            log.warning(
                "%s: no %s band (it has %s): the flood network maps it from SAR alone",
                stack,
                ", ".join(missing),
                ", ".join(names),
            )
        self.optical = [] if missing else [names.index(b) + 1 for b in inputs.optical_bands]
        self.optical_count = len(inputs.optical_bands)
        statistics = STATISTICS[inputs.statistics]
        sar_stats = self._statistics([self.vv], SAR_VALID_BIT, statistics)
        if sar_stats is None:
            raise InputError(f"{stack}: too few valid SAR pixels for the flood network")
        self.sar_stats: Stats = sar_stats
        self.optical_stats = (
            self._statistics(self.optical, OPTICAL_VALID_BIT, statistics) if self.optical else None
        )

    def _statistics(self, indexes: list[int], bit: int, mode: str) -> Stats | None:
        """The bands' centre and spread over the valid pixels of a sample of the grid."""
        values = read_sampled(self.stack, indexes, SCENE_SAMPLE_PX).astype(np.float32)
        valid = read_sampled(self.valid, [1], SCENE_SAMPLE_PX)[0]
        values[:, (valid == VALID_NODATA) | (valid & bit == 0)] = np.nan
        return scene_statistics(values, mode)

    def read(self, window: rasterio.windows.Window) -> tuple[np.ndarray, ...]:
        """Standardised VV (1, h, w) and optical (bands, h, w) of the window, 0 where
        invalid, and where each is valid."""
        valid = self.valid.read(1, window=window)
        inside = valid != VALID_NODATA
        sar_ok = inside & (valid & SAR_VALID_BIT > 0)
        vv = self.stack.read([self.vv], window=window).astype(np.float32)
        vv[:, ~sar_ok] = np.nan
        vv = apply_statistics(vv, self.sar_stats)
        if self.optical_stats is None:
            nothing = np.zeros((self.optical_count, *valid.shape), np.float32)
            return vv, sar_ok, nothing, np.zeros_like(sar_ok)
        optical_ok = inside & (valid & OPTICAL_VALID_BIT > 0)
        optical = self.stack.read(self.optical, window=window).astype(np.float32)
        optical[:, ~optical_ok] = np.nan
        return vv, sar_ok, apply_statistics(optical, self.optical_stats), optical_ok


def map_flood_network(
    stacks: list[Path],
    valids: list[Path],
    checkpoint: Path,
    *,
    out: Path,
    out_summary: Path,
    device: str = "cpu",
    block_px: int = BLOCK_PX,
) -> dict:
    """Write the network's flood probability (percent, 255 nodata) over the event grid."""
    dev = resolve_device(device)
    net, inputs = load_flood_network(checkpoint, map_location=dev)
    start = time.perf_counter()
    counts = dict.fromkeys(("mapped", "joint", "flooded"), 0)
    with ExitStack() as exits:
        periods = [_Period(s, v, inputs, exits) for s, v in zip(stacks, valids, strict=True)]
        same_grid(
            [(path, p.stack.profile) for path, p in zip(stacks, periods, strict=True)]
            + [(path, p.valid.profile) for path, p in zip(valids, periods, strict=True)]
        )
        src = periods[0].stack
        height, width = src.height, src.width
        writer = exits.enter_context(
            cog_writer(
                out,
                count=1,
                dtype="uint8",
                crs=src.crs,
                transform=src.transform,
                width=width,
                height=height,
                nodata=NETWORK_NODATA,
                descriptions=("flood_network_probability",),
                units=("percent",),
                tags={
                    "definition": "probability (percent) that the flood network calls the "
                    "pixel flooded; not calibrated",
                    "checkpoint": Path(checkpoint).name,
                    NETWORK_SHA256_TAG: file_sha256(checkpoint),
                    "network": inputs.network,
                },
                smooth=True,
            )
        )
        for window in block_windows(height, width, block_px):
            grown, inner = with_halo(window, HALO_PX, height, width)
            (vv0, sar0, opt0, ok0), (vv1, sar1, opt1, ok1) = (p.read(grown) for p in periods)
            sar_ok = sar0 & sar1
            joint = ok0 & ok1 & sar_ok
            percent = np.full(sar_ok.shape, NETWORK_NODATA, np.uint8)
            if sar_ok.any():
                sar, optical = np.concatenate([vv0, vv1]), np.concatenate([opt0, opt1])
                probability = _probability(net, inputs.presence_band, sar, optical, joint, dev)
                percent[sar_ok] = np.rint(probability[sar_ok] * 100).astype(np.uint8)
            percent = percent[inner]
            writer.write(percent, 1, window=window)
            mapped = percent != NETWORK_NODATA
            counts["mapped"] += int(mapped.sum())
            counts["joint"] += int(joint[inner].sum())
            counts["flooded"] += int((mapped & (percent >= 50)).sum())
    summary = {
        "checkpoint": str(checkpoint),
        "inputs": asdict(inputs),
        "optical_read": all(p.optical_stats is not None for p in periods),
        "pixels": counts,
        "seconds": round(time.perf_counter() - start, 1),
    }
    with atomic_path(out_summary) as tmp:
        tmp.write_text(json.dumps(summary, indent=2))
    return summary


def _probability(
    net: torch.nn.Module,
    presence_band: bool,
    sar: np.ndarray,
    optical: np.ndarray,
    joint: np.ndarray,
    device: torch.device,
) -> np.ndarray:
    """The flooded probability of one block: the joint head where both optical images
    are clear, the SAR head elsewhere."""
    if presence_band:
        optical = np.concatenate([optical, joint[None].astype(np.float32)])
    heads = ("sar", "joint") if joint.any() else ("sar",)
    to_tensor = lambda a: torch.from_numpy(np.ascontiguousarray(a[None])).to(device)  # noqa: E731
    probability = flood_probability([net], to_tensor(sar), to_tensor(optical), heads)
    if "joint" in probability:
        return np.where(joint, probability["joint"], probability["sar"])
    return probability["sar"]

"""Tiled, modality-routed MetaRS inference over one co-registered scene.

Each pixel is mapped by the head its available modalities allow (both: joint head, SAR
only: SAR head, optical only: optical head). Near the edge of a route (a cloud edge, the
end of a SAR swath) the joint head's share fades out smoothly, so the map shows no seam
where the route changes; overlapping tiles are blended the same way.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from scipy.ndimage import gaussian_filter

from metaflood.checkpoint import InferenceModel, load_for_inference, resolve_device
from metaflood.classes import CLASS_NODATA, NUM_CLASSES, colormap
from metaflood.errors import InputError
from metaflood.model.metars import HEADS, SIZE_MULTIPLE
from metaflood.raster import band_index, open_checked, write_cog

SAR_VALID, OPTICAL_VALID = 1, 2  # bits of the availability raster
OUTSIDE_AOI = 255
ROUTE_NONE, ROUTE_JOINT, ROUTE_SAR, ROUTE_OPTICAL, ROUTE_OUTSIDE = 0, 1, 2, 3, 255
ROUTE_NAMES = {ROUTE_JOINT: "joint", ROUTE_SAR: "sar_only", ROUTE_OPTICAL: "optical_only"}
PROBA_NODATA = 255
# Head weights below this are dropped, so a tile far from any route edge runs one head.
MIN_HEAD_WEIGHT = 1e-3
# Width (Gaussian sigma, in pixels) of the blend between routes.
SEAM_SIGMA = 8.0

Predictor = Callable[[np.ndarray, np.ndarray, tuple[str, ...]], Mapping[str, np.ndarray]]


# --- windows ---------------------------------------------------------------------------


def window_starts(size: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles covering 0..size; the last tile ends at the edge (no padding)."""
    if size <= tile:
        return [0]
    stride = tile - overlap
    starts = list(range(0, size - tile, stride))
    starts.append(size - tile)
    return starts


def window_weight(tile: int, overlap: int) -> np.ndarray:
    """(tile, tile) blending weight: 1 inside, ramping down (never to 0) over the overlap."""
    if overlap <= 0:
        return np.ones((tile, tile), dtype=np.float32)
    i = np.arange(tile, dtype=np.float64) + 0.5
    ramp = np.clip(np.minimum(i, tile - i) / overlap, 0.0, 1.0)
    ramp = ramp * ramp * (3 - 2 * ramp)  # smoothstep: no kink where the ramp meets 1
    ramp = np.maximum(ramp, 1e-3)
    return np.outer(ramp, ramp).astype(np.float32)


def check_tiling(tile: int, overlap: int) -> None:
    if tile < SIZE_MULTIPLE or tile % SIZE_MULTIPLE:
        raise ValueError(f"tile {tile} must be a positive multiple of {SIZE_MULTIPLE}")
    if not 0 <= overlap < tile // 2:
        raise ValueError(f"overlap {overlap} must be in 0..{tile // 2 - 1} for tile {tile}")


# --- routing ---------------------------------------------------------------------------


def route_map(valid: np.ndarray, sar_ok: np.ndarray, opt_ok: np.ndarray) -> np.ndarray:
    """Which head maps each pixel (codes ROUTE_*), 255 outside the AOI."""
    route = np.full(valid.shape, ROUTE_NONE, dtype=np.uint8)
    route[sar_ok & opt_ok] = ROUTE_JOINT
    route[sar_ok & ~opt_ok] = ROUTE_SAR
    route[~sar_ok & opt_ok] = ROUTE_OPTICAL
    route[valid == OUTSIDE_AOI] = ROUTE_OUTSIDE
    return route


def head_weights(
    sar_ok: np.ndarray, opt_ok: np.ndarray, sigma: float = SEAM_SIGMA
) -> dict[str, np.ndarray]:
    """Per-pixel share of each head, summing to 1 where a modality is valid, else 0.

    A single-modality pixel takes only its own head. A both-valid pixel takes the joint
    head, blended near a route edge with the neighbouring single-modality head in
    proportion to how much of its surroundings that route covers.
    """
    both = sar_ok & opt_ok
    masks = {"joint": both, "sar": sar_ok & ~opt_ok, "optical": opt_ok & ~sar_ok}
    allowed = {"joint": both, "sar": sar_ok, "optical": opt_ok}
    raw = {}
    for head, mask in masks.items():
        smooth = gaussian_filter(mask.astype(np.float32), sigma, mode="nearest") if sigma else mask
        raw[head] = np.where(allowed[head], smooth, 0.0).astype(np.float32)
    total = sum(raw.values())
    out = {}
    for head in HEADS:
        w = np.divide(raw[head], total, out=np.zeros_like(total), where=total > 0)
        out[head] = np.where(w >= MIN_HEAD_WEIGHT, w, 0.0).astype(np.float32)
    total = sum(out.values())
    return {
        h: np.divide(w, total, out=np.zeros_like(total), where=total > 0) for h, w in out.items()
    }


# --- blending --------------------------------------------------------------------------


def blend_tiles(
    predict: Predictor,
    sar: np.ndarray,
    optical: np.ndarray,
    weights: Mapping[str, np.ndarray],
    *,
    tile: int,
    overlap: int,
    batch_size: int,
    num_classes: int,
) -> tuple[np.ndarray, dict[str, int]]:
    """Class probabilities (classes, H, W) from overlapping tiles and routed heads.

    `predict(sar_batch, optical_batch, heads)` returns per-head probabilities of each
    tile. Tiles are grouped by the heads they need, so a tile with no optical data never
    runs the optical encoders. Pixels without any head weight come out as 0.
    """
    h, w = sar.shape[-2:]
    H, W = max(h, tile), max(w, tile)
    pad = ((0, 0), (0, H - h), (0, W - w))
    sar, optical = np.pad(sar, pad), np.pad(optical, pad)
    weights = {k: np.pad(v, pad[1:]) for k, v in weights.items()}
    win = window_weight(tile, overlap)

    groups: dict[tuple[str, ...], list[tuple[int, int]]] = defaultdict(list)
    n_windows = 0
    for y in window_starts(H, tile, overlap):
        for x in window_starts(W, tile, overlap):
            n_windows += 1
            heads = tuple(hd for hd in HEADS if weights[hd][y : y + tile, x : x + tile].any())
            if heads:
                groups[heads].append((y, x))

    acc = np.zeros((num_classes, H, W), dtype=np.float32)
    norm = np.zeros((H, W), dtype=np.float32)
    stats = {"tiles": n_windows, "tiles_run": 0}
    for heads, origins in groups.items():
        stats["tiles_" + "+".join(heads)] = len(origins)
        for b in range(0, len(origins), batch_size):
            batch = origins[b : b + batch_size]
            s = np.stack([sar[:, y : y + tile, x : x + tile] for y, x in batch])
            o = np.stack([optical[:, y : y + tile, x : x + tile] for y, x in batch])
            probs = predict(s, o, heads)
            for i, (y, x) in enumerate(batch):
                sl = (slice(y, y + tile), slice(x, x + tile))
                mixed = sum(weights[hd][sl] * probs[hd][i] for hd in heads)
                acc[(slice(None), *sl)] += win * mixed
                norm[sl] += win
            stats["tiles_run"] += len(batch)
    proba = np.divide(acc, norm, out=np.zeros_like(acc), where=norm > 0)
    return proba[:, :h, :w], stats


def model_predictor(loaded: InferenceModel, device: torch.device) -> Predictor:
    """Wrap the network as a Predictor: only the requested heads (and encoders) run."""
    model = loaded.model

    def predict(
        sar: np.ndarray, optical: np.ndarray, heads: tuple[str, ...]
    ) -> dict[str, np.ndarray]:
        need_sar = "sar" in heads or "joint" in heads
        need_opt = "optical" in heads or "joint" in heads
        s = torch.from_numpy(sar).to(device) if need_sar else None
        o = torch.from_numpy(optical).to(device) if need_opt else None
        with torch.inference_mode():
            out = model(s, o, heads=heads, features=False)
            return {hd: torch.softmax(out[hd].float(), dim=1).cpu().numpy() for hd in heads}

    return predict


# --- scene -----------------------------------------------------------------------------


def _read_bands(src, names: Sequence[str]) -> np.ndarray:
    idx = [band_index(src, n) for n in names]
    return src.read(idx).astype(np.float32)


def predict_scene(
    aligned_path: str | os.PathLike,
    valid_path: str | os.PathLike,
    checkpoint_path: str | os.PathLike,
    out_class: str | os.PathLike,
    out_proba: str | os.PathLike,
    out_route: str | os.PathLike,
    *,
    tile: int = 256,
    overlap: int = 32,
    batch_size: int = 4,
    device: str = "auto",
    threads: int = 2,
    seam_sigma: float = SEAM_SIGMA,
) -> dict:
    """Map land cover over a co-registered stack; write class, probability and route rasters.

    Returns a summary: pixels per route and tiles per head combination.
    """
    check_tiling(tile, overlap)
    torch.set_num_threads(max(1, int(threads)))
    dev = resolve_device(device)

    with open_checked(aligned_path) as src:
        descriptions = [d for d in src.descriptions if d]
        loaded = load_for_inference(
            checkpoint_path, NUM_CLASSES, available_bands=descriptions, map_location=dev
        )
        sar_raw = _read_bands(src, loaded.sar_bands)
        opt_raw = _read_bands(src, loaded.optical_bands)
        crs, transform, shape = src.crs, src.transform, (src.height, src.width)
    if crs is None:
        raise InputError(f"{aligned_path}: has no coordinate reference system")
    with open_checked(valid_path) as vsrc:
        if (vsrc.height, vsrc.width) != shape or vsrc.transform != transform or vsrc.crs != crs:
            raise InputError(
                f"{valid_path}: grid {vsrc.height}x{vsrc.width} {vsrc.crs} does not match "
                f"{aligned_path} ({shape[0]}x{shape[1]} {crs})"
            )
        valid = vsrc.read(1)

    inside = valid != OUTSIDE_AOI
    sar_ok = inside & (valid & SAR_VALID > 0) & np.isfinite(sar_raw).all(axis=0)
    opt_ok = inside & (valid & OPTICAL_VALID > 0) & np.isfinite(opt_raw).all(axis=0)
    norm = loaded.normalization
    sar = np.nan_to_num(norm.apply(sar_raw, "sar"), nan=0.0, posinf=0.0, neginf=0.0)
    opt = np.nan_to_num(norm.apply(opt_raw, "optical"), nan=0.0, posinf=0.0, neginf=0.0)
    sar[:, ~sar_ok] = 0.0  # 0 = the training mean: a missing modality carries no signal
    opt[:, ~opt_ok] = 0.0
    del sar_raw, opt_raw

    weights = head_weights(sar_ok, opt_ok, seam_sigma)
    proba, tiles = blend_tiles(
        model_predictor(loaded, dev),
        sar,
        opt,
        weights,
        tile=tile,
        overlap=overlap,
        batch_size=batch_size,
        num_classes=loaded.config.num_classes,
    )

    mapped = sar_ok | opt_ok
    classes = proba.argmax(axis=0).astype(np.uint8)
    classes[~mapped] = CLASS_NODATA
    proba_u8 = np.round(np.clip(proba, 0.0, 1.0) * 254).astype(np.uint8)
    proba_u8[:, ~mapped] = PROBA_NODATA
    route = route_map(valid, sar_ok, opt_ok)

    tags = {"checkpoint": Path(checkpoint_path).name}
    write_cog(
        out_class,
        classes,
        crs=crs,
        transform=transform,
        nodata=CLASS_NODATA,
        descriptions=["class"],
        colormap=colormap(),
        tags=tags,
        categorical=True,
    )
    write_cog(
        out_proba,
        proba_u8,
        crs=crs,
        transform=transform,
        nodata=PROBA_NODATA,
        descriptions=loaded.class_names,
        tags={**tags, "scale": "probability = value / 254"},
    )
    write_cog(
        out_route,
        route,
        crs=crs,
        transform=transform,
        nodata=ROUTE_OUTSIDE,
        descriptions=["route"],
        tags={**tags, "codes": "0 none, 1 joint, 2 sar_only, 3 optical_only, 255 outside AOI"},
        categorical=True,
    )
    pixels = {name: int((route == code).sum()) for code, name in ROUTE_NAMES.items()}
    pixels["none"] = int((route == ROUTE_NONE).sum())
    pixels["outside_aoi"] = int((route == ROUTE_OUTSIDE).sum())
    return {"pixels": pixels, "tiles": tiles, "device": str(dev)}

"""Tiled, modality-routed MetaRS inference over one co-registered scene, streamed.

Each pixel is mapped by the head its available modalities allow (both: joint head, SAR
only: SAR head, optical only: optical head). Near the edge of a route (a cloud edge, the
end of a SAR swath) the joint head's share fades out smoothly, so the map shows no seam
where the route changes; overlapping model windows are blended the same way.

A checkpoint whose optical head takes a band the stack lacks (a source without blue, say)
cannot use the optical image at all: every pixel is then routed as if optical were
absent (SAR head), said in the log and in the summary; missing SAR bands are an error.

The scene is read and written one row of windows at a time: memory holds one strip of
`window_px` rows across the scene (about 40 bytes per pixel of the strip, plus a halo for
the route blending), never the scene, so a scene larger than memory streams through.

The parts: inference windows (`windows`), routes and head weights (`routing`), blending
of overlapping windows (`blending`), reading the stack (`reading`), the products
(`writers`); this module runs a scene or a tile through them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import closing
from functools import partial
from pathlib import Path
from typing import NamedTuple

import numpy as np
import rasterio.windows
import torch
from rasterio.windows import Window

from metaflood.core.pyramid import MeanPyramid
from metaflood.core.raster import cog_writer, overview_writers
from metaflood.landcover.blending import Rows, WindowStats, model_predictor, stream_blend
from metaflood.landcover.reading import SceneReader, open_inputs, reads_ahead, start_inference
from metaflood.landcover.routing import (
    ROUTE_NAMES,
    ROUTE_NONE,
    ROUTE_OUTSIDE,
    SEAM_RADIUS,
    route_map,
)
from metaflood.landcover.writers import (
    encode_products,
    landcover_writers,
    route_writer,
    write_proba_level,
)
from metaflood.model.checkpoint import InferenceModel


def optical_summary(loaded: InferenceModel) -> dict:
    """The summary's account of whether the model could use the optical image."""
    summary: dict = {"usable": loaded.optical_usable, "model_bands": loaded.optical_bands}
    if not loaded.optical_usable:
        summary["missing_bands"] = list(loaded.missing_optical)
        summary["routed_as"] = "optical absent: SAR head"
    return summary


class Windowing(NamedTuple):
    """How a scene is cut into model windows and batched."""

    window_px: int
    overlap: int
    batch_size: int


def model_strips(
    loaded: InferenceModel,
    reader: SceneReader,
    shape: tuple[int, int],
    dev: torch.device,
    stats: WindowStats,
    threads: int,
    read_ahead: bool | None,
    windowing: Windowing,
) -> Iterator[tuple[int, torch.Tensor, Rows]]:
    """The model's blended probabilities over `shape`, strip by strip (`stream_blend`)."""
    return stream_blend(
        model_predictor(loaded, dev),
        reader,
        shape,
        **windowing._asdict(),
        num_classes=loaded.config.num_classes,
        stats=stats,
        read_ahead=reads_ahead(read_ahead, dev, threads),
        device=dev,
    )


def predict_scene(
    aligned_path: str | os.PathLike,
    valid_path: str | os.PathLike,
    checkpoint_path: str | os.PathLike,
    out_class: str | os.PathLike,
    out_proba: str | os.PathLike,
    out_route: str | os.PathLike,
    *,
    window_px: int,
    overlap: int,
    batch_size: int,
    device: str,
    threads: int = 2,
    seam_radius: int = SEAM_RADIUS,
    read_ahead: bool | None = None,
) -> dict:
    """Map land cover over a co-registered stack; write class, probability and route COGs.

    `read_ahead` (default: where cores are spare, see `reads_ahead`) reads the next strip
    in a thread while this one is mapped. Returns a summary: pixels per route, model
    windows per head combination (under `tiles`), and whether the model could use the optical image.
    """
    dev = start_inference(window_px, overlap, threads, device)
    windowing = Windowing(window_px, overlap, batch_size)
    with open_inputs(aligned_path, valid_path, checkpoint_path, threads, dev) as (
        src,
        vsrc,
        loaded,
    ):
        crs, transform, shape = src.crs, src.transform, (src.height, src.width)
        reader = SceneReader(src, vsrc, loaded, seam_radius, max(shape[1], window_px))
        tags = {"checkpoint": Path(checkpoint_path).name}
        grid = {"width": shape[1], "height": shape[0], "crs": crs, "transform": transform}
        grid["threads"] = threads  # COG compression
        pixels = dict.fromkeys([*ROUTE_NAMES.values(), "none", "outside_aoi"], 0)
        stats = WindowStats()
        with (
            landcover_writers(
                out_class, out_proba, out_route, class_names=loaded.class_names, tags=tags, **grid
            ) as (w_class, w_proba, w_route),
            overview_writers(w_proba) as proba_levels,
        ):
            # The probabilities' overviews are averaged from the strips as they pass
            # (`pyramid`), in float, instead of read back and averaged by GDAL.
            pyramid = MeanPyramid(len(proba_levels), partial(write_proba_level, proba_levels))
            strips = model_strips(loaded, reader, shape, dev, stats, threads, read_ahead, windowing)
            with closing(strips):  # before the datasets close
                for y, proba, read in strips:
                    n = proba.shape[1]
                    valid, sar_ok, opt_ok = (m[:n] for m in read.masks)
                    route = route_map(valid, sar_ok, opt_ok)
                    classes, proba_u8 = encode_products(proba, route)
                    strip = Window(0, y, shape[1], n)
                    w_class.write(classes, 1, window=strip)
                    w_proba.write(proba_u8, window=strip)
                    w_route.write(route, 1, window=strip)
                    # Unmapped pixels' probabilities are 0 (no head weighs on them).
                    pyramid.add(proba, torch.from_numpy(sar_ok | opt_ok).to(proba.device))
                    count_routes(route, pixels)
            pyramid.finish()
    return {
        "pixels": pixels,
        "tiles": stats.to_dict(),
        "device": str(dev),
        "optical": optical_summary(loaded),
    }


def predict_tile(
    aligned_path: str | os.PathLike,
    valid_path: str | os.PathLike,
    checkpoint_path: str | os.PathLike,
    window: Window,
    out_proba: str | os.PathLike,
    out_route: str | os.PathLike,
    *,
    window_px: int,
    overlap: int,
    batch_size: int,
    device: str,
    threads: int = 2,
    seam_radius: int = SEAM_RADIUS,
    read_ahead: bool | None = None,
) -> dict:
    """One tile of a tiled run: unquantised probabilities (float32, 0 where unmapped) and
    routes over `window` of the scene, for the gather to blend with the tile's neighbours."""
    dev = start_inference(window_px, overlap, threads, device)
    windowing = Windowing(window_px, overlap, batch_size)
    with open_inputs(aligned_path, valid_path, checkpoint_path, threads, dev) as (
        src,
        vsrc,
        loaded,
    ):
        # A tile smaller than one model window is mapped from a model window of real
        # context around it, never zero padding (instance norm sees the whole window).
        run = context_window(window, window_px, src.height, src.width)
        shape = (int(run.height), int(run.width))
        reader = SceneReader(src, vsrc, loaded, seam_radius, max(shape[1], window_px), run)
        r0, c0 = int(window.row_off - run.row_off), int(window.col_off - run.col_off)
        r1, c1 = r0 + int(window.height), c0 + int(window.width)
        grid = {
            "width": int(window.width),
            "height": int(window.height),
            "crs": src.crs,
            "transform": rasterio.windows.transform(window, src.transform),
        }
        stats = WindowStats()
        with (
            cog_writer(
                out_proba,
                count=loaded.config.num_classes,
                dtype="float32",
                nodata=None,
                descriptions=loaded.class_names,
                tags={"checkpoint": Path(checkpoint_path).name},
                **grid,
            ) as w_proba,
            route_writer(out_route, {}, **grid) as w_route,
        ):
            strips = model_strips(loaded, reader, shape, dev, stats, threads, read_ahead, windowing)
            with closing(strips):  # before the datasets close
                for y, strip_proba, read in strips:
                    proba = strip_proba.cpu().numpy()
                    n = proba.shape[1]
                    valid, sar_ok, opt_ok = (m[:n] for m in read.masks)
                    proba[:, ~(sar_ok | opt_ok)] = 0.0
                    route = route_map(valid, sar_ok, opt_ok)
                    a, b = max(y, r0), min(y + n, r1)  # the rows of the tile in this strip
                    if a < b:
                        rows = Window(0, a - r0, c1 - c0, b - a)
                        tile_proba = proba[:, a - y : b - y, c0:c1].astype(np.float32)
                        w_proba.write(tile_proba, window=rows)
                        w_route.write(route[a - y : b - y, c0:c1], 1, window=rows)
    return {"tiles": stats.to_dict(), "device": str(dev), "optical": optical_summary(loaded)}


def context_window(window: Window, window_px: int, height: int, width: int) -> Window:
    """`window` (a job tile) grown (about its centre, inside the scene) to at least one
    model window, `window_px`, a side."""

    def grow(start: int, size: int, limit: int) -> tuple[int, int]:
        if size >= window_px or limit <= window_px:
            return (0, limit) if size < window_px else (start, size)
        start = min(max(start - (window_px - size) // 2, 0), limit - window_px)
        return start, window_px

    row, rows = grow(int(window.row_off), int(window.height), height)
    col, cols = grow(int(window.col_off), int(window.width), width)
    return Window(col, row, cols, rows)


def count_routes(route: np.ndarray, pixels: dict[str, int]) -> None:
    """Add a strip's pixels per route to `pixels` (one pass, not one per code)."""
    counts = np.bincount(route.ravel(), minlength=256)
    for code, name in ROUTE_NAMES.items():
        pixels[name] += int(counts[code])
    pixels["none"] += int(counts[ROUTE_NONE])
    pixels["outside_aoi"] += int(counts[ROUTE_OUTSIDE])

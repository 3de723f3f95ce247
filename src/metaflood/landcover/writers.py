"""The land-cover products: classes, 8-bit probabilities with their overviews, routes."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import torch
from rasterio.io import DatasetWriter
from rasterio.windows import Window

from metaflood.core.classes import CLASS_NODATA, PROBA_NODATA, PROBA_SCALE, colormap
from metaflood.core.raster import cog_writer
from metaflood.landcover.routing import ROUTE_JOINT, ROUTE_OPTICAL, ROUTE_OUTSIDE, ROUTE_SAR

ROUTE_CODES = "0 none, 1 joint, 2 sar_only, 3 optical_only, 255 outside AOI"


@contextmanager
def landcover_writers(
    out_class: str | os.PathLike,
    out_proba: str | os.PathLike,
    out_route: str | os.PathLike,
    *,
    class_names: Sequence[str],
    tags: dict[str, str],
    **grid,
) -> Iterator[tuple[DatasetWriter, DatasetWriter, DatasetWriter]]:
    """The three land-cover products (classes, 8-bit probabilities, routes), written by
    windows and finished as COGs; a whole scene and a tiled gather write them alike."""
    with (
        cog_writer(
            out_class,
            count=1,
            dtype="uint8",
            nodata=CLASS_NODATA,
            descriptions=["class"],
            colormap=colormap(),
            tags=tags,
            categorical=True,
            **grid,
        ) as w_class,
        cog_writer(
            out_proba,
            count=len(class_names),
            dtype="uint8",
            nodata=PROBA_NODATA,
            descriptions=class_names,
            tags={**tags, "scale": f"probability = value / {PROBA_SCALE}"},
            smooth=True,
            **grid,
        ) as w_proba,
        route_writer(out_route, tags, **grid) as w_route,
    ):
        yield w_class, w_proba, w_route


def route_writer(out_route: str | os.PathLike, tags: dict[str, str], **grid):
    """The route map's writer (codes ROUTE_*), for a scene, a tile or a gather."""
    return cog_writer(
        out_route,
        count=1,
        dtype="uint8",
        nodata=ROUTE_OUTSIDE,
        descriptions=["route"],
        tags={**tags, "codes": ROUTE_CODES},
        categorical=True,
        **grid,
    )


def encode_products(
    proba: np.ndarray | torch.Tensor, route: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Classes and 8-bit probabilities of blended probabilities, nodata where no head
    mapped the pixel (as `predict_scene` writes them).

    Encoded with torch where the probabilities are: a GPU's strip comes back as a
    quarter of the bytes.
    """
    proba = torch.as_tensor(proba)
    classes = first_argmax(proba).to(torch.uint8).cpu().numpy()
    unmapped = (route != ROUTE_JOINT) & (route != ROUTE_SAR) & (route != ROUTE_OPTICAL)
    if unmapped.any():
        classes[unmapped] = CLASS_NODATA
    return classes, encode_probabilities(proba, unmapped)


def first_argmax(proba: torch.Tensor) -> torch.Tensor:
    """The class (first axis) of the highest probability, the first of equal maxima, as
    numpy's argmax.

    Probabilities are never negative, and a non-negative float's bits order as integers
    the way its values do; torch's argmax over int32 is faster than a float `max` or
    `argmax` over the classes (docs/performance.md).
    """
    if proba.dtype == torch.float32:
        proba = proba.view(torch.int32)
    return torch.argmax(proba, dim=0)


def encode_probabilities(proba: torch.Tensor, unmapped: np.ndarray) -> np.ndarray:
    """8-bit probabilities (value / 254), PROBA_NODATA where `unmapped`.

    Band by band in memory (the strips come classes-innermost): the conversion to bytes
    reorders them in the same pass, where GDAL's writer would copy them again.
    """
    scaled = proba.clamp(0.0, 1.0).mul_(PROBA_SCALE).round_()
    proba_u8 = scaled.to(torch.uint8, memory_format=torch.contiguous_format).cpu().numpy()
    if unmapped.any():  # boolean indexing across the bands costs as much as the rest
        proba_u8[:, unmapped] = PROBA_NODATA
    return proba_u8


def write_proba_level(
    writers: Sequence[DatasetWriter],
    level: int,
    row: int,
    mean: torch.Tensor,
    covered: torch.Tensor,
) -> None:
    """One strip of an overview level of the probability product (a `MeanPyramid` emit)."""
    proba_u8 = encode_probabilities(mean, ~covered.cpu().numpy())
    writers[level].write(proba_u8, window=Window(0, row, proba_u8.shape[2], proba_u8.shape[1]))

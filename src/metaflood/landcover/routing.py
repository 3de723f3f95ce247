"""Routing: which head maps each pixel (joint, SAR only, optical only), and the head
weights that fade one route into the next without a seam."""

from __future__ import annotations

from collections.abc import Mapping

import cv2
import numpy as np

from metaflood.model.metars import HEADS

SAR_VALID, OPTICAL_VALID = 1, 2  # bits of the availability raster
OUTSIDE_AOI = 255
ROUTE_NONE, ROUTE_JOINT, ROUTE_SAR, ROUTE_OPTICAL, ROUTE_OUTSIDE = 0, 1, 2, 3, 255
ROUTE_NAMES = {ROUTE_JOINT: "joint", ROUTE_SAR: "sar_only", ROUTE_OPTICAL: "optical_only"}
# Head weights below this are dropped, so a window far from any route edge runs one head.
MIN_HEAD_WEIGHT = 1e-3
# Half-width (pixels) of the box whose three passes blend one route into the next
# (`seam_blur`: a bell of sigma 8.5 px, reaching 24 px).
SEAM_RADIUS = 8

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
    sar_ok: np.ndarray,
    opt_ok: np.ndarray,
    radius: int = SEAM_RADIUS,
    keep: tuple[slice, slice] = (slice(None), slice(None)),
) -> dict[str, np.ndarray]:
    """Per-pixel share of each head, summing to 1 where a modality is valid, else 0.

    A single-modality pixel takes only its own head. A both-valid pixel takes the joint
    head, blended near a route edge with the neighbouring single-modality head in
    proportion to how much of its surroundings that route covers. The masks may carry
    a halo of context; `keep` (rows, columns) is the part whose shares are wanted.
    """
    both = sar_ok & opt_ok
    allowed = {"joint": both[keep], "sar": sar_ok[keep], "optical": opt_ok[keep]}
    # A head no pixel of the strip may take (optical only, under a full SAR swath) keeps
    # its zeros out of the arithmetic.
    live_heads = [head for head in HEADS if allowed[head].any()]
    if len(live_heads) <= 1:
        # One head in the strip (all under cloud, say): it takes every pixel it may,
        # whatever the blur, so none is made.
        return {head: allowed[head].astype(np.float32) for head in HEADS}
    masks = {"joint": both, "sar": sar_ok & ~opt_ok, "optical": opt_ok & ~sar_ok}
    if not varying_routes(masks, radius):
        # Nothing to blend (one route throughout, halo included: a clear strip): each
        # pixel takes its route's head, which the arithmetic below would leave as it is.
        return {head: masks[head][keep].astype(np.float32) for head in HEADS}
    smooth = smoothed_routes(masks, ~(sar_ok | opt_ok), radius, keep)
    shares = {head: np.multiply(smooth[head], allowed[head]) for head in HEADS}
    live = {head: shares[head] for head in live_heads}
    _normalise(live)
    for share in live.values():
        share *= share >= MIN_HEAD_WEIGHT
    _normalise(live)
    return shares


def _normalise(shares: Mapping[str, np.ndarray]) -> None:
    """Scale the shares (in place) to sum to 1 wherever any is positive."""
    total = sum(shares.values())
    scale = np.divide(np.float32(1), total, out=np.zeros_like(total), where=total > 0)
    for share in shares.values():
        share *= scale


def smoothed_routes(
    masks: Mapping[str, np.ndarray],
    unmapped: np.ndarray,
    radius: int,
    keep: tuple[slice, slice] = (slice(None), slice(None)),
) -> dict[str, np.ndarray]:
    """Each route mask blurred (`seam_blur`), filtering as few masks as possible, over
    the `keep` part.

    A constant mask stays as it is. The route masks and the unmapped pixels cover every
    pixel once and the blur keeps a constant, so the blurred masks sum to 1: where no
    pixel is unmapped, the last varying mask is 1 minus the others (in a cloudy scene
    with SAR throughout, one filter where there were two).
    """
    varying = varying_routes(masks, radius)
    smooth = {k: m[keep].astype(np.float32) for k, m in masks.items() if k not in varying}
    derived = varying.pop() if varying and not unmapped.any() else None
    for k in varying:
        smooth[k] = seam_blur(masks[k], radius, keep)
    if derived is not None:
        rest = sum(v for k, v in smooth.items() if k != derived)
        smooth[derived] = np.clip(1.0 - rest, 0.0, 1.0)
    return smooth


def varying_routes(masks: Mapping[str, np.ndarray], radius: int) -> list[str]:
    """The route masks a blur of `radius` would change: neither empty nor full."""
    return [k for k, m in masks.items() if radius and m.any() and not m.all()]


def seam_blur(
    mask: np.ndarray, radius: int, keep: tuple[slice, slice] = (slice(None), slice(None))
) -> np.ndarray:
    """Three passes of a (2 radius + 1)-pixel box along each axis, over the `keep` part.

    A smooth bell close to a Gaussian of sigma sqrt(radius (radius + 1)) (8.5 px for
    radius 8) but exactly 0 beyond 3 radius, so a strip needs a halo of 3 radius rows
    and no more; and at a few operations per pixel (a running box sum) it costs a
    quarter of the Gaussian's 65-tap convolution. Rows are cut to `keep` between the
    axes, so the halo rows are filtered along one axis only. OpenCV's box filter runs
    along either axis without a transpose, which scipy's `uniform_filter1d` needs
    (the difference is in docs/performance.md).
    """
    size = 2 * radius + 1
    blurred = mask.astype(np.float32)
    for _ in range(3):  # down the columns: cv2's box is (width, height)
        blurred = cv2.boxFilter(blurred, -1, (1, size), borderType=cv2.BORDER_REPLICATE)
    blurred = blurred[keep[0]]
    for _ in range(3):  # along the rows
        blurred = cv2.boxFilter(blurred, -1, (size, 1), borderType=cv2.BORDER_REPLICATE)
    return blurred[:, keep[1]]

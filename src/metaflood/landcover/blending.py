"""Blending overlapping inference windows, one strip of rows at a time, and the predictor
that runs the network's heads on a batch of windows."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass, field

import numpy as np
import torch

from metaflood.landcover.windows import window_starts, window_weight
from metaflood.model.checkpoint import InferenceModel
from metaflood.model.metars import HEADS, modalities_read

# predict(sar, optical, heads) -> each head's class probabilities, (batch, classes, t, t),
# as numpy arrays or as torch tensors on the device they were computed on. A modality no
# requested head reads comes as None.
Predictor = Callable[
    [np.ndarray | None, np.ndarray | None, tuple[str, ...]],
    Mapping[str, np.ndarray | torch.Tensor],
]


# --- blending ------------------------------------------------------------------------


@dataclass
class Rows:
    """Rows y..y+rows of the padded scene, ready for the network.

    `masks` (availability code, SAR valid, optical valid) travel with the rows, so the
    strip's products are made from the masks read with it even when reading runs ahead.
    A modality with no valid pixel in the rows (a strip under cloud) is None: no head
    that reads it has any weight there.
    """

    sar: np.ndarray | None
    optical: np.ndarray | None
    weights: Mapping[str, np.ndarray]
    masks: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None


RowReader = Callable[[int, int], Rows]  # read_rows(y, rows)


@dataclass
class WindowStats:
    """Model windows seen, run, and run per head combination. The summary's keys keep the
    name `tiles` (a file contract: the landcover JSON)."""

    windows: int = 0
    windows_run: int = 0
    by_heads: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, int]:
        return {"tiles": self.windows, "tiles_run": self.windows_run, **self.by_heads}


def stream_blend(
    predict: Predictor,
    read_rows: RowReader,
    shape: tuple[int, int],
    *,
    window_px: int,
    overlap: int,
    batch_size: int,
    num_classes: int,
    stats: WindowStats | None = None,
    read_ahead: bool = False,
    device: torch.device | str = "cpu",
) -> Iterator[tuple[int, torch.Tensor, Rows]]:
    """Blended class probabilities, yielded as (first row, (classes, rows, W) tensor on
    `device`, the rows read) strips.

    Windows are processed one row of windows at a time; the rows no later window
    touches are final and yielded, the overlap is carried to the next row. Windows are
    grouped by the heads they need, so a window with no optical data never runs the
    optical encoders. Pixels without any head weight come out as 0. With `read_ahead`
    the next row of windows is read in a thread while this one is mapped.

    The blend is accumulated on `device`, where the network leaves its output: one
    fused multiply-add per head and window (on the CPU with torch's threads, not one
    numpy thread), and on a GPU the strip stays there to be encoded. The accumulator
    keeps the classes innermost, the order the network's probabilities come in
    (channels-last): adding a window across orders is much slower. The strips
    yielded keep that order (a (classes, rows, W) view).
    """
    h, w = shape
    H, W = max(h, window_px), max(w, window_px)
    stats = stats if stats is not None else WindowStats()
    device = torch.device(device)
    win = torch.from_numpy(window_weight(window_px, overlap)).to(device)
    ys, xs = window_starts(H, window_px, overlap), window_starts(W, window_px, overlap)
    acc = torch.zeros((window_px, W, num_classes), dtype=torch.float32, device=device).permute(
        2, 0, 1
    )
    norm = torch.zeros((window_px, W), dtype=torch.float32, device=device)
    origin = 0
    # Closed before this generator returns, so no read is left running on the reader's
    # datasets after the caller closes them (a consumer that stops early included).
    with closing(rows_in_order(read_rows, ys, window_px, read_ahead)) as strips:
        for r, (y, rows) in enumerate(zip(ys, strips, strict=True)):
            shift = y - origin
            if shift:  # the rows carried over move to the top (a copy: they overlap)
                acc[:, : window_px - shift] = acc[:, shift:].clone()
                acc[:, window_px - shift :] = 0.0
                norm[: window_px - shift] = norm[shift:].clone()
                norm[window_px - shift :] = 0.0
                origin = y
            sar, optical, weights = rows.sar, rows.optical, rows.weights
            groups: dict[tuple[str, ...], list[int]] = defaultdict(list)
            for x in xs:
                stats.windows += 1
                heads = tuple(hd for hd in HEADS if weights[hd][:, x : x + window_px].any())
                if heads:
                    groups[heads].append(x)
            on_device = {
                hd: torch.from_numpy(np.ascontiguousarray(weights[hd])).to(device)
                for hd in {hd for heads in groups for hd in heads}
            }
            for heads, origins in groups.items():
                key = "tiles_" + "+".join(heads)
                stats.by_heads[key] = stats.by_heads.get(key, 0) + len(origins)
                reads = modalities_read(heads)
                for b in range(0, len(origins), batch_size):
                    batch = origins[b : b + batch_size]
                    probs = predict(
                        window_batch(sar, batch, window_px) if reads["sar"] else None,
                        window_batch(optical, batch, window_px) if reads["optical"] else None,
                        heads,
                    )
                    for hd in heads:
                        head_proba = torch.as_tensor(probs[hd], dtype=torch.float32, device=device)
                        for i, x in enumerate(batch):
                            share = on_device[hd][:, x : x + window_px] * win
                            acc[:, :, x : x + window_px].addcmul_(head_proba[i], share)
                    for x in batch:
                        norm[:, x : x + window_px] += win
                    stats.windows_run += len(batch)
            end = min(ys[r + 1] if r + 1 < len(ys) else H, h)
            if end > y:
                n = end - y
                done = norm[:n, :w]
                # A pixel no window covered has nothing accumulated either: 0 / tiny = 0.
                yield y, acc[:, :n, :w] / done.clamp_min(torch.finfo(done.dtype).tiny), rows


def window_batch(strip: np.ndarray, origins: Sequence[int], window_px: int) -> np.ndarray:
    """The (batch, bands, rows, window_px) windows of a (bands, rows, W) strip starting at
    `origins`, laid out channels-last in memory, the order the network takes.

    One copy where stacking and then reordering took two (docs/performance.md).
    """
    source = torch.from_numpy(strip)
    batch = torch.empty(
        (len(origins), *strip.shape[:2], window_px),
        dtype=source.dtype,
        memory_format=torch.channels_last,
    )
    for i, x in enumerate(origins):
        batch[i].copy_(source[:, :, x : x + window_px])
    return batch.numpy()


def rows_in_order(
    read_rows: RowReader, starts: Sequence[int], rows: int, ahead: bool
) -> Iterator[Rows]:
    """`read_rows(y, rows)` for each start, in order; with `ahead`, each read runs in a
    thread while the caller works on the previous rows.

    One thread: the reader's datasets are only ever used by it while the rows stream,
    and GDAL releases the GIL while it decompresses.
    """
    if not ahead or not starts:
        for y in starts:
            yield read_rows(y, rows)
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="read-ahead") as pool:
        pending = pool.submit(read_rows, starts[0], rows)
        for y_next in [*starts[1:], None]:
            current = pending.result()
            pending = pool.submit(read_rows, y_next, rows) if y_next is not None else None
            yield current


def pad_rows(a: np.ndarray, rows: int, width: int) -> np.ndarray:
    pad = [(0, 0)] * (a.ndim - 2) + [(0, rows - a.shape[-2]), (0, width - a.shape[-1])]
    return np.pad(a, pad) if any(p[1] for p in pad) else a


def _channels_last(batch: np.ndarray, device: torch.device) -> torch.Tensor:
    """The memory order the inference model's weights are in (prepare_for_inference);
    the windows `window_batch` makes are in it already, and pass through without a copy."""
    return torch.from_numpy(batch).to(device, memory_format=torch.channels_last)


def model_predictor(loaded: InferenceModel, device: torch.device) -> Predictor:
    """Wrap the network as a Predictor: only the requested heads (and encoders) run."""
    model = loaded.model

    def predict(
        sar: np.ndarray | None, optical: np.ndarray | None, heads: tuple[str, ...]
    ) -> dict[str, torch.Tensor]:
        # `stream_blend` passes only the modalities the heads read.
        s = None if sar is None else _channels_last(sar, device)
        o = None if optical is None else _channels_last(optical, device)
        with torch.inference_mode():
            return model.probabilities(s, o, heads)

    return predict

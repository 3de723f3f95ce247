"""Reading a co-registered stack for inference: strips with their halo, read ahead on a
thread, and the per-scene normalisation sample."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace

import numpy as np
import rasterio.windows
import torch
from rasterio.windows import Window

from metaflood.core.allocator import keep_freed_memory
from metaflood.core.classes import NUM_CLASSES
from metaflood.core.errors import InputError
from metaflood.core.raster import band_index, open_checked, read_sampled
from metaflood.landcover.blending import Rows, pad_rows
from metaflood.landcover.routing import OPTICAL_VALID, OUTSIDE_AOI, SAR_VALID, head_weights
from metaflood.landcover.windows import check_windows
from metaflood.model.checkpoint import InferenceModel, load_for_inference, resolve_device
from metaflood.model.normalization import SCENE_SAMPLE_PX

log = logging.getLogger(__name__)


# --- scene -----------------------------------------------------------------------------


def seam_halo(radius: int) -> int:
    """Rows of context that make a strip's route blend equal the whole scene's."""
    return 3 * radius  # seam_blur's reach


class SceneReader:
    """Reads strips of a co-registered stack and its availability mask, ready for the model.

    Each strip is read with a halo so that the route blending (a blur of the route
    masks) is exactly that of the whole scene. The strip's availability masks come with
    it, for the route map.
    """

    def __init__(
        self,
        src,
        vsrc,
        loaded: InferenceModel,
        seam_radius: int,
        width: int,
        window: Window | None = None,
    ):
        self.src, self.vsrc, self.loaded = src, vsrc, loaded
        self.sar_idx = [band_index(src, n) for n in loaded.sar_bands]
        # Optical bands the model cannot have: optical is treated as absent everywhere.
        self.opt_idx = (
            [band_index(src, n) for n in loaded.optical_bands] if loaded.optical_usable else []
        )
        self.radius = seam_radius
        self.halo = seam_halo(seam_radius)
        # The part of the scene mapped (a tile of a tiled run, or all of it); the halo
        # reaches beyond it, so a tile's route blending equals the whole scene's.
        window = window if window is not None else Window(0, 0, src.width, src.height)
        self.row0, self.col0 = int(window.row_off), int(window.col_off)
        self.height, self.width = int(window.height), int(window.width)
        self.padded_width = width

    def _read(self, dataset, indexes, a: int, b: int) -> np.ndarray:
        """Rows a..b (of the window) over the window's columns plus the halo."""
        c0 = max(0, self.col0 - self.halo)
        c1 = min(self.src.width, self.col0 + self.width + self.halo)
        return dataset.read(indexes, window=Window(c0, self.row0 + a, c1 - c0, b - a))

    def __call__(self, y: int, rows: int):
        h = self.height
        a = max(-self.row0, y - self.halo)
        b = min(self.src.height - self.row0, min(h, y + rows) + self.halo)
        valid = self._read(self.vsrc, 1, a, b)
        inside = valid != OUTSIDE_AOI
        flagged = {
            "sar": inside & (valid & SAR_VALID > 0),
            "optical": inside & (valid & OPTICAL_VALID > 0) & self.loaded.optical_usable,
        }
        raw, ok = self._read_modalities(flagged, a, b)
        left = self.col0 - max(0, self.col0 - self.halo)
        # The strip inside the halo: the masks' halo is only context for the route blur.
        strip = (slice(y - a, min(y + rows, h) - a), slice(left, left + self.width))
        weights = head_weights(ok["sar"], ok["optical"], self.radius, strip)
        W = self.padded_width
        inputs: dict[str, np.ndarray | None] = dict.fromkeys(ok)
        for m, bands in raw.items():
            if ok[m][strip].any():
                x = self._model_input(bands[:, strip[0], strip[1]], ok[m][strip], m)
                inputs[m] = pad_rows(x, rows, W)
        return Rows(
            inputs["sar"],
            inputs["optical"],
            {k: pad_rows(v, rows, W) for k, v in weights.items()},
            (valid[strip], ok["sar"][strip], ok["optical"][strip]),
        )

    def _read_modalities(
        self, flagged: Mapping[str, np.ndarray], a: int, b: int
    ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """The bands (float32) of each modality flagged somewhere in rows a..b, and where
        each modality is valid (flagged, and all its bands finite).

        A modality flagged nowhere is not read: under a full cloud the optical bands are
        neither read nor prepared (a 1024 px scene under cloud: 2 bands read of 6). The
        others come in one read: the stack's bands share their compressed blocks.
        """
        indexes = {"sar": self.sar_idx, "optical": self.opt_idx}
        wanted = [m for m in indexes if flagged[m].any()]
        raw: dict[str, np.ndarray] = {}
        ok = {m: flagged[m] for m in indexes}  # all False where not read
        if wanted:
            stack = self._read(self.src, [i for m in wanted for i in indexes[m]], a, b)
            first = 0
            for m in wanted:
                raw[m] = stack[first : first + len(indexes[m])].astype(np.float32, copy=False)
                first += len(indexes[m])
                ok[m] = flagged[m] & np.isfinite(raw[m]).all(axis=0)
        return raw, ok

    def _model_input(self, raw: np.ndarray, ok: np.ndarray, modality: str) -> np.ndarray:
        """Normalised bands, 0 (the training mean: no signal) where the modality is missing."""
        x = self.loaded.prepare(raw, modality)  # a new array: changed in place below
        # `ok` holds only pixels whose bands are all finite, so zeroing the rest leaves no
        # NaN behind: one pass, where nan_to_num and a multiply took five.
        np.copyto(x, np.float32(0), where=~ok)
        return x


def start_inference(window_px: int, overlap: int, threads: int, device: str) -> torch.device:
    """What a scene and a tile job set up alike: the model windows checked before any work, the
    network's threads, freed memory kept between batches, and the device to run on."""
    check_windows(window_px, overlap)
    torch.set_num_threads(max(1, int(threads)))
    keep_freed_memory()
    return resolve_device(device)


def reads_ahead(asked: bool | None, device: torch.device, threads: int) -> bool:
    """Whether to read the next strip in a thread beside the network.

    Where the network already uses every core (2 threads on 2 cores) a reading thread
    slows it more than it hides (benchmarks/model_routed_inference.py --read-ahead
    on|off; docs/performance.md); beside a GPU, or with cores to spare, it runs free.
    """
    if asked is not None:
        return asked
    return device.type == "cuda" or usable_cores() > max(1, int(threads))


def usable_cores() -> int:
    """Cores this process may run on: a cluster job's CPU set, not the node's count."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def open_stack(path: str | os.PathLike, threads: int):
    """The co-registered stack, its blocks decoded by `threads` GDAL threads where it is
    compressed (stacks written before they were stored uncompressed are ZSTD): a strip
    spans many blocks, which the threads decode at once. Uncompressed, the threads
    neither gain nor cost measurably (docs/performance.md)."""
    return open_checked(path, num_threads=str(max(1, int(threads))))


@contextmanager
def open_inputs(
    aligned_path: str | os.PathLike,
    valid_path: str | os.PathLike,
    checkpoint_path: str | os.PathLike,
    threads: int,
    device: torch.device,
) -> Iterator[tuple[rasterio.DatasetReader, rasterio.DatasetReader, InferenceModel]]:
    """The stack, its availability mask and the network, checked before any window runs:
    the stack is georeferenced, the mask on its grid, and the checkpoint's bands in it.
    A scene job and a tile job open them alike."""
    with open_stack(aligned_path, threads) as src, open_checked(valid_path) as vsrc:
        crs, transform, shape = src.crs, src.transform, (src.height, src.width)
        if crs is None:
            raise InputError(f"{aligned_path}: has no coordinate reference system")
        if (vsrc.height, vsrc.width) != shape or vsrc.transform != transform or vsrc.crs != crs:
            raise InputError(
                f"{valid_path}: grid {vsrc.height}x{vsrc.width} {vsrc.crs} does not match "
                f"{aligned_path} ({shape[0]}x{shape[1]} {crs})"
            )
        descriptions = [d for d in src.descriptions if d]
        loaded = load_for_inference(
            checkpoint_path, NUM_CLASSES, available_bands=descriptions, map_location=device
        )
        if not loaded.optical_usable:
            log.warning(
                "%s: the checkpoint's optical head takes %s, the stack lacks %s (it has %s): "
                "the optical image is unusable for this model, every pixel is routed as if "
                "optical were absent (SAR head)",
                aligned_path,
                ", ".join(loaded.optical_bands),
                ", ".join(loaded.missing_optical),
                ", ".join(descriptions),
            )
        yield src, vsrc, for_scene(loaded, src, vsrc)


def scene_bands(
    src: rasterio.DatasetReader,
    vsrc: rasterio.DatasetReader,
    loaded: InferenceModel,
) -> dict[str, np.ndarray]:
    """Each modality's bands over the whole scene, sampled to at most SCENE_SAMPLE_PX a
    side, in network units, NaN where the modality is not valid."""
    valid = read_sampled(vsrc, [1], SCENE_SAMPLE_PX)[0]
    inside = valid != OUTSIDE_AOI
    bands = {}
    for modality, bit, names in (
        ("sar", SAR_VALID, loaded.sar_bands),
        ("optical", OPTICAL_VALID, loaded.optical_bands if loaded.optical_usable else ()),
    ):
        if not names:
            continue  # an optical image the model cannot use: only the SAR head runs
        indexes = [band_index(src, n) for n in names]
        values = loaded.encoding.apply(read_sampled(src, indexes, SCENE_SAMPLE_PX), modality)
        values[:, ~(inside & (valid & bit > 0))] = np.nan
        bands[modality] = values
    return bands


def for_scene(
    loaded: InferenceModel, src: rasterio.DatasetReader, vsrc: rasterio.DatasetReader
) -> InferenceModel:
    """The model with the scene's own input statistics where it was trained so (scene
    normalisation), measured on the whole scene, not the strip or tile being mapped: every
    tile of a tiled run is standardised alike."""
    if not loaded.normalization.per_scene:
        return loaded
    bands = scene_bands(src, vsrc, loaded)
    return replace(loaded, normalization=loaded.normalization.for_scene(**bands))

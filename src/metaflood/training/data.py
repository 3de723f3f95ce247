"""Training data: synthetic scenes at the model resolution, normalisation, random crops.

Native simulator rasters are brought to the model grid the way co-registration brings
real scenes there (SAR averaged in linear power, optical averaged, labels by majority),
so the model is trained on inputs that look like what it will be given.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch
from torch.utils.data import Dataset

from metaflood.core.classes import IGNORE_INDEX, NUM_CLASSES
from metaflood.core.config import PERIODS
from metaflood.core.sar import to_db
from metaflood.demo.materials import OPTICAL_BANDS
from metaflood.demo.simulate import simulate_event
from metaflood.demo.spec import SceneSpec
from metaflood.model.normalization import Normalization, network_input

Sample = dict[str, np.ndarray]  # sar (2, h, w) dB, optical (bands, h, w), label (h, w) uint8
# Held-out scenes use seeds far from the training seeds so the splits never share a scene:
# validation for training, test for `metaflood evaluate` (neither training nor validation).
HELD_OUT_SEED_OFFSETS = {"validation": 100_000, "test": 200_000}


# --- resampling to the model grid ------------------------------------------------------


def resample_factor(native_resolution: float, model_resolution: float) -> int:
    """Integer block size from native to model pixels (the grids must nest)."""
    ratio = model_resolution / native_resolution
    factor = round(ratio)
    if factor < 1 or abs(ratio - factor) > 1e-6:
        raise ValueError(
            f"model resolution {model_resolution} m is not a whole multiple of the native "
            f"resolution {native_resolution} m"
        )
    return factor


def _blocks(a: np.ndarray, f: int) -> np.ndarray:
    """View (..., H, W) as (..., h, w, f*f) blocks, dropping an incomplete edge."""
    h, w = a.shape[-2] // f, a.shape[-1] // f
    a = a[..., : h * f, : w * f]
    a = a.reshape(*a.shape[:-2], h, f, w, f)
    a = np.moveaxis(a, -3, -2)  # (..., h, w, f, f)
    return a.reshape(*a.shape[:-2], f * f)


def block_mean(a: np.ndarray, f: int) -> np.ndarray:
    """Mean over f x f blocks of the last two axes."""
    if f == 1:
        return np.asarray(a, dtype=np.float32)
    return _blocks(np.asarray(a, dtype=np.float64), f).mean(axis=-1).astype(np.float32)


def sar_to_model_grid(linear: np.ndarray, f: int) -> np.ndarray:
    """Linear power -> block mean in linear power -> dB (averaging dB biases low)."""
    return to_db(block_mean(linear, f))


def block_mode(labels: np.ndarray, f: int, num_classes: int = NUM_CLASSES) -> np.ndarray:
    """Majority class of each f x f block (ties to the lower class); all-ignored stays ignored."""
    labels = np.asarray(labels)
    if f == 1:
        return labels.astype(np.uint8)
    blocks = _blocks(labels, f)
    counts = np.stack([(blocks == c).sum(axis=-1) for c in range(num_classes)], axis=-1)
    mode = counts.argmax(axis=-1).astype(np.uint8)
    mode[counts.sum(axis=-1) == 0] = IGNORE_INDEX
    return mode


def to_model_grid(sar_linear: np.ndarray, optical: np.ndarray, label: np.ndarray, f: int) -> Sample:
    return {
        "sar": sar_to_model_grid(sar_linear, f),
        "optical": block_mean(optical, f),
        "label": block_mode(label, f),
    }


# --- synthetic pools -------------------------------------------------------------------


def make_synthetic_pool(
    n_scenes: int,
    scene_size_m: float,
    native_resolution: float,
    model_resolution: float,
    seed: int,
    *,
    optical_bands: Sequence[str],
    layout: str = "random",
) -> list[Sample]:
    """Samples from `n_scenes` simulated events (seeds seed..seed+n-1), both periods each,
    with the optical bands `optical_bands` (the model's, by name, of those the simulator
    renders).

    Post-event optical is simulated cloud-free: the optical head must learn what it sees
    under clear sky; clouds are handled at inference time by routing, not by the model.
    """
    unknown = [b for b in optical_bands if b not in OPTICAL_BANDS]
    if unknown:
        raise ValueError(
            f"the simulator renders no optical band {unknown} (it renders {list(OPTICAL_BANDS)})"
        )
    picked = [OPTICAL_BANDS.index(b) for b in optical_bands]
    f = resample_factor(native_resolution, model_resolution)
    size = int(round(scene_size_m / native_resolution))
    if size // f < 32:
        raise ValueError(f"scenes of {scene_size_m} m are smaller than 32 model pixels")
    pool: list[Sample] = []
    for i in range(n_scenes):
        spec = SceneSpec(
            seed=seed + i,
            height=size,
            width=size,
            resolution=native_resolution,
            layout=layout,
            cloud_fraction=0.0,
            post_optical=True,
        )
        event = simulate_event(spec)
        for period in PERIODS:
            optical = event.optical[period][picked]
            pool.append(to_model_grid(event.sar[period], optical, event.landcover[period], f))
    return pool


def make_held_out_pool(
    split: Literal["validation", "test"],
    n_scenes: int,
    scene_size_m: float,
    native_resolution: float,
    model_resolution: float,
    seed: int,
    *,
    optical_bands: Sequence[str],
) -> list[Sample]:
    """A held-out pool, `validation` (training's) or `test` (the model comparison's), from
    seeds no training pool of a sane size reaches and the other split does not use."""
    return make_synthetic_pool(
        n_scenes,
        scene_size_m,
        native_resolution,
        model_resolution,
        seed + HELD_OUT_SEED_OFFSETS[split],
        optical_bands=optical_bands,
    )


# --- crops -----------------------------------------------------------------------------


def augment(sample: Sample, rng: np.random.Generator, crop: int) -> Sample:
    """A random crop, flips and a 90-degree rotation, applied identically to every array."""
    h, w = sample["label"].shape
    if h < crop or w < crop:
        raise ValueError(f"crop {crop} is larger than a {h}x{w} sample")
    y = int(rng.integers(0, h - crop + 1))
    x = int(rng.integers(0, w - crop + 1))
    flip_v, flip_h = bool(rng.integers(2)), bool(rng.integers(2))
    k = int(rng.integers(4))
    out = {}
    for key, a in sample.items():
        a = a[..., y : y + crop, x : x + crop]
        if flip_v:
            a = a[..., ::-1, :]
        if flip_h:
            a = a[..., ::-1]
        a = np.rot90(a, k, axes=(-2, -1))
        out[key] = np.ascontiguousarray(a)
    return out


class SyntheticCrops(Dataset):
    """Normalised random crops from a pool; item i is the same crop on every run and resume.

    Each item draws from its own generator seeded by (seed, i), so the batches of an
    interrupted and resumed training run are those of an uninterrupted one. `weights`
    (one per sample) draws some samples more often, as when synthetic and real sets are
    mixed. With `partial`, items also carry their water label (255 where none: a real
    set labels water and nothing else) and which modalities the sample has: a set without
    optical images must not teach the heads that read it.
    """

    def __init__(
        self,
        pool: Sequence[Sample],
        crop: int,
        normalization: Normalization,
        length: int,
        seed: int,
        *,
        weights: Sequence[float] | None = None,
        partial: bool = False,
    ):
        if not pool:
            raise ValueError("empty training pool")
        self.pool = pool
        self.crop = crop
        self.normalization = normalization
        self.length = length
        self.seed = seed
        self.weights = None if weights is None else np.asarray(weights, float) / np.sum(weights)
        self.partial = partial
        self._scene_norms: dict[int, Normalization] = {}

    def __len__(self) -> int:
        return self.length

    def _normalization(self, index: int, sample: Sample) -> Normalization:
        """The sample's own statistics in scene mode (a sample is a scene), once each."""
        if not self.normalization.per_scene:
            return self.normalization
        if index not in self._scene_norms:
            self._scene_norms[index] = self.normalization.for_scene(
                sample["sar"], sample["optical"]
            )
        return self._scene_norms[index]

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        if not 0 <= i < self.length:
            raise IndexError(i)
        rng = np.random.default_rng([self.seed, i])
        if self.weights is None:
            index = int(rng.integers(len(self.pool)))
        else:
            index = int(rng.choice(len(self.pool), p=self.weights))
        sample = self.pool[index]
        norm = self._normalization(index, sample)
        s = augment(sample, rng, self.crop)
        item = {
            "sar": torch.from_numpy(network_input(norm, s["sar"], "sar")),
            "optical": torch.from_numpy(network_input(norm, s["optical"], "optical")),
            "label": torch.from_numpy(s["label"].astype(np.int64)),
        }
        if self.partial:
            water = s.get("water", np.full(s["label"].shape, IGNORE_INDEX, np.uint8))
            item["water"] = torch.from_numpy(water.astype(np.int64))
            item["present"] = torch.tensor(
                [bool(np.isfinite(sample[m]).any()) for m in ("sar", "optical")]
            )
        return item

    def batch(self, start: int, size: int) -> dict[str, torch.Tensor]:
        """Items start..start+size-1 stacked: the batch of one training iteration."""
        items = [self[i] for i in range(start, start + size)]
        return {k: torch.stack([it[k] for it in items]) for k in items[0]}

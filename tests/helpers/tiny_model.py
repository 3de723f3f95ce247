"""A tiny MetaRS overfitted on a few synthetic water scenes, saved as a real checkpoint."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from metaflood.core.classes import WATER
from metaflood.model import MetaRS, MetaRSConfig, metars_losses
from metaflood.model.checkpoint import save_checkpoint
from metaflood.model.normalization import Normalization
from metaflood.training.data import SyntheticCrops
from tests.helpers.realdata_sets import reflectance, sar_db, water_scene

BARREN = 4
OPTICAL_BANDS = ("blue", "green", "red", "nir")


def train_tiny(
    path: Path,
    steps: int = 30,
    size: int = 64,
    sar_bands: tuple[str, ...] = ("VV", "VH"),
    optical_bands: tuple[str, ...] = OPTICAL_BANDS,
) -> Path:
    """Water against barren land from the fixtures' own scene model (SAR dB, reflectance),
    reading the bands named (OMBRIA's: VV; green, NIR, SWIR)."""
    torch.set_num_threads(2)
    rng = np.random.default_rng(0)
    pool = []
    for i in range(3):
        water = water_scene(rng, size, shift=3 * i)
        refl = reflectance(rng, water)
        pool.append(
            {
                "sar": np.stack([sar_db(rng, water, pol) for pol in sar_bands]),
                "optical": np.stack([refl[b] for b in optical_bands]),
                "label": np.where(water, WATER, BARREN).astype(np.uint8),
            }
        )
    norm = Normalization.from_pool(pool)
    torch.manual_seed(0)
    config = MetaRSConfig(
        width=8,
        fpn_channels=16,
        decoder_channels=16,
        sar_bands=list(sar_bands),
        optical_bands=list(optical_bands),
    )
    model = MetaRS(config)
    crops = SyntheticCrops(pool, size, norm, length=4 * steps, seed=0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for it in range(steps):
        batch = crops.batch(4 * it, 4)
        loss = metars_losses(model(batch["sar"], batch["optical"]), batch["label"])["total"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return save_checkpoint(path, model, norm)

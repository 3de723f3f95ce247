"""Real labelled sets as training samples: the bands a model reads, partial water labels.

A sample is one period of one place. Its bands are those the model names, in its order;
a band the set lacks is not made up: the whole modality is then absent (NaN), and the
heads that read it learn nothing from the sample. Labels are water / not water (255
unlabelled), which supervise the water class only; the full land-cover label is ignored.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from metaflood.core.classes import IGNORE_INDEX
from metaflood.core.errors import ConfigError
from metaflood.training.data import Sample
from metaflood.training.layouts import (
    LABEL_NONE,
    NOMINAL_RESOLUTION,
    TRAIN,
    discover,
    layout,
    partial_water_labels,
)

# The sets are 10 m products; a model trained on them is trained at 10 m.
RESOLUTION = NOMINAL_RESOLUTION


def select_bands(
    values: np.ndarray | None, have: Sequence[str], want: Sequence[str], shape: tuple[int, int]
) -> np.ndarray:
    """The wanted bands in order, or all NaN (the modality absent) when any is missing."""
    if values is None or not set(want) <= set(have):
        return np.full((len(want), *shape), np.nan, np.float32)
    return np.stack([values[list(have).index(b)] for b in want]).astype(np.float32)


def training_samples(
    root: str | Path,
    layout_name: str,
    sar_bands: Sequence[str],
    optical_bands: Sequence[str],
    split: str = TRAIN,
) -> list[Sample]:
    """Every labelled period of the split's samples, ready for `data.SyntheticCrops`."""
    adapter = layout(layout_name)
    samples: list[Sample] = []
    for ref in discover(root, layout_name, split):
        sample = adapter.load(ref)
        shape = sample.shape
        for period, water in partial_water_labels(sample.water, sample.flood).items():
            if (water == LABEL_NONE).all():
                continue
            sar = select_bands(sample.sar.get(period), sample.sar_bands, sar_bands, shape)
            optical = select_bands(
                sample.optical.get(period), sample.optical_bands, optical_bands, shape
            )
            if np.isnan(sar).all() and np.isnan(optical).all():
                continue
            samples.append(
                {
                    "sar": sar,
                    "optical": optical,
                    "label": np.full(shape, IGNORE_INDEX, np.uint8),
                    "water": water,
                }
            )
    if not samples:
        raise ConfigError(
            f"train.real_sets: {root} ({layout_name}, {split} split) has no labelled sample "
            f"with the model's bands ({', '.join([*sar_bands, *optical_bands])})"
        )
    return samples

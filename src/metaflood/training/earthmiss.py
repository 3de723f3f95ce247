"""The EarthMiss dataset in the layout its authors publish, as training samples.

Per city: `images/SAR/*.tif` (one band), `images/RGB/*.tif` (three bands) and
`masks/*.tif`, matched by name (the authors' files may carry `_SAR` and `_mask`
suffixes). Mask values 1..8 on disk are classes 0..7; 0 is unlabelled and becomes the
ignore label. Images are 8-bit-valued (0..255); see `metaflood.model.encoding`.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from rasterio.errors import NotGeoreferencedWarning, RasterioError

from metaflood.core.classes import IGNORE_INDEX, NUM_CLASSES
from metaflood.core.errors import InputError
from metaflood.training.data import Sample

# The authors' city split (configs/metadata/EarthMiss.py of their repository).
DEFAULT_SPLIT: dict[str, tuple[str, ...]] = {
    "train": (
        "America-Eugene",
        "America-Louisville",
        "French-Paris",
        "Morocco-Casablanca",
        "Nanjing",
        "Netherlands-Rotterdam",
        "Singapore",
    ),
    "val": ("Australia-PortHedland", "America-Pake", "Russian-Engels"),
    "test": ("America-NewYork", "Japan-Hakodate", "Peru-Callao"),
}
SAR_BANDS = ["VV"]
OPTICAL_BANDS = ["red", "green", "blue"]
SUFFIXES = {"sar": "_SAR", "mask": "_mask"}
EXTENSIONS = (".tif", ".tiff", ".png")


@dataclass(frozen=True)
class EarthMissPair:
    city: str
    name: str
    sar: Path
    rgb: Path
    mask: Path


def _index(folder: Path, suffix: str = "") -> dict[str, Path]:
    if not folder.is_dir():
        raise InputError(f"EarthMiss: {folder} is not a directory")
    files = {}
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() in EXTENSIONS:
            stem = path.stem
            if suffix and stem.endswith(suffix):
                stem = stem[: -len(suffix)]
            files[stem] = path
    return files


def find_pairs(root: str | os.PathLike, cities: Sequence[str]) -> list[EarthMissPair]:
    """Every (SAR, RGB, mask) triple of the given cities, checked to be complete."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"EarthMiss root {root} does not exist")
    pairs = []
    for city in cities:
        base = root / city
        sar = _index(base / "images" / "SAR", SUFFIXES["sar"])
        rgb = _index(base / "images" / "RGB")
        mask = _index(base / "masks", SUFFIXES["mask"])
        names = set(sar) | set(rgb) | set(mask)
        incomplete = sorted(n for n in names if not (n in sar and n in rgb and n in mask))
        if incomplete:
            raise InputError(
                f"EarthMiss {city}: {len(incomplete)} images lack a SAR, RGB or mask file "
                f"(first: {incomplete[:3]})"
            )
        if not names:
            raise InputError(f"EarthMiss {city}: no images under {base}")
        pairs += [EarthMissPair(city, n, sar[n], rgb[n], mask[n]) for n in sorted(names)]
    return pairs


def _read(path: Path, bands: int) -> np.ndarray:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(path) as src:
                data = src.read()
    except RasterioError as err:
        raise InputError(f"EarthMiss: {path} cannot be read ({err})") from err
    if data.shape[0] < bands:
        raise InputError(f"EarthMiss: {path} has {data.shape[0]} bands, expected {bands}")
    return data[:bands]


def read_pair(pair: EarthMissPair) -> Sample:
    """SAR (1, H, W) and RGB (3, H, W) as float32 0..255, label (H, W) uint8 (255 ignore)."""
    sar = _read(pair.sar, 1).astype(np.float32)
    rgb = _read(pair.rgb, 3).astype(np.float32)
    mask = _read(pair.mask, 1)[0]
    if not (sar.shape[1:] == rgb.shape[1:] == mask.shape):
        raise InputError(
            f"EarthMiss {pair.city}/{pair.name}: sizes differ (SAR {sar.shape[1:]}, "
            f"RGB {rgb.shape[1:]}, mask {mask.shape})"
        )
    values = np.asarray(mask, dtype=np.int64)
    if values.min() < 0 or values.max() > NUM_CLASSES:
        raise InputError(
            f"EarthMiss {pair.mask}: mask values {values.min()}..{values.max()}, "
            f"expected 0 (unlabelled) to {NUM_CLASSES}"
        )
    label = np.where(values == 0, IGNORE_INDEX, values - 1).astype(np.uint8)
    return {"sar": sar, "optical": rgb, "label": label}


class EarthMissImages(Sequence):
    """Samples read from disk on access, so a dataset larger than memory can be used."""

    def __init__(self, pairs: Sequence[EarthMissPair]):
        self.pairs = list(pairs)

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return [read_pair(p) for p in self.pairs[i]]
        return read_pair(self.pairs[i])


def split_cities(split: dict[str, Sequence[str]] | None = None) -> dict[str, tuple[str, ...]]:
    """The configured split, or the authors'; a city in two subsets is refused."""
    split = {k: tuple(v) for k, v in (split or DEFAULT_SPLIT).items()}
    seen: dict[str, str] = {}
    for subset, cities in split.items():
        for city in cities:
            if city in seen:
                raise InputError(f"EarthMiss city {city} is in both {seen[city]} and {subset}")
            seen[city] = subset
    return split

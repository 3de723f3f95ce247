"""The EarthMiss loader on a small directory in the authors' layout, written here."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import rasterio
from rasterio.errors import NotGeoreferencedWarning

from metaflood.core.errors import InputError
from metaflood.model.checkpoint import load_checkpoint
from metaflood.training.earthmiss import DEFAULT_SPLIT, find_pairs, read_pair, split_cities
from metaflood.training.train import train_model

CITIES = ("Alpha", "Beta", "Gamma")


def _tif(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    data = data[None] if data.ndim == 2 else data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(
            path, "w", driver="GTiff", width=data.shape[2], height=data.shape[1],
            count=data.shape[0], dtype=data.dtype,
        ) as dst:  # fmt: skip
            dst.write(data)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """Two images per city: water (mask 4 = class 3) on the left, dark SAR, blue RGB."""
    base = tmp_path_factory.mktemp("earthmiss")
    rng = np.random.default_rng(0)
    for city in CITIES:
        for name in ("tile_0001", "tile_0002"):
            mask = np.full((64, 64), 5, np.uint8)  # barren
            mask[:, :30] = 4  # water
            mask[:4, :4] = 0  # unlabelled
            sar = np.where(mask == 4, 15, 120).astype(np.uint8) + rng.integers(0, 20, (64, 64))
            rgb = np.stack([np.where(mask == 4, v, 180) for v in (30, 60, 120)]).astype(np.uint8)
            _tif(base / city / "images" / "SAR" / f"{name}_SAR.tif", sar.astype(np.uint8))
            _tif(base / city / "images" / "RGB" / f"{name}.tif", rgb)
            _tif(base / city / "masks" / f"{name}_mask.tif", mask)
    return base


def test_pairs_are_matched_by_name_and_masks_shifted(root):
    pairs = find_pairs(root, CITIES[:2])
    names = [(p.city, p.name) for p in pairs]
    assert names == [(c, f"tile_000{i}") for c in ("Alpha", "Beta") for i in (1, 2)]
    sample = read_pair(pairs[0])
    assert sample["sar"].shape == (1, 64, 64) and sample["optical"].shape == (3, 64, 64)
    assert sample["label"][0, 0] == 255  # 0 on disk: ignored
    assert sample["label"][10, 10] == 3 and sample["label"][10, 50] == 4  # 4 -> water, 5 -> barren
    assert sample["optical"][:, 10, 10].tolist() == [30.0, 60.0, 120.0]


def test_incomplete_city_and_bad_split_are_refused(root, tmp_path):
    city = tmp_path / "Delta"
    for folder in ("images/SAR", "images/RGB", "masks"):
        (city / folder).mkdir(parents=True)
    _tif(city / "images/SAR/a_SAR.tif", np.zeros((8, 8), np.uint8))
    _tif(city / "images/RGB/a.tif", np.zeros((3, 8, 8), np.uint8))
    with pytest.raises(InputError, match=r"Delta: 1 images lack a SAR, RGB or mask file"):
        find_pairs(tmp_path, ["Delta"])
    with pytest.raises(InputError, match="Omega"):
        find_pairs(root, ["Omega"])
    with pytest.raises(InputError, match="both train and val"):
        split_cities({"train": ["Alpha"], "val": ["Alpha"]})
    assert split_cities()["test"] == DEFAULT_SPLIT["test"] == (
        "America-NewYork", "Japan-Hakodate", "Peru-Callao",
    )  # fmt: skip


def test_training_on_earthmiss_records_its_bands_and_encoding(root, tmp_path):
    model = {"width": 8, "fpn_channels": 16, "decoder_channels": 16}
    train = {
        "dataset": "earthmiss", "earthmiss_root": str(root),
        "earthmiss_split": {"train": ["Alpha", "Beta"], "val": ["Gamma"]},
        "iterations": 3, "batch_size": 2, "crop": 32, "mmr_warmup": 0.34,
        "mmr_calibration_images": 2, "seed": 1,
    }  # fmt: skip
    lines: list[str] = []
    metrics = train_model(
        model, train, tmp_path / "m.pt", tmp_path / "m.json", log=lines.append, device="cpu"
    )
    ckpt = load_checkpoint(tmp_path / "m.pt")
    assert ckpt["model_config"]["sar_bands"] == ["VV"]
    assert ckpt["model_config"]["optical_bands"] == ["red", "green", "blue"]
    assert ckpt["input_encoding"]["optical"]["kind"] == "reflectance_u8"
    assert 15 < ckpt["normalization"]["sar"]["mean"][0] < 130  # 8-bit values, from training
    assert metrics["conditions"]["both"]["pixels"] == 2 * 64 * 64 - 2 * 16  # Gamma, labelled
    assert any("EarthMiss: 4 training images (Alpha, Beta)" in line for line in lines)

"""Training on real labelled sets: partial water labels, missing modalities, scene statistics."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from metaflood.core.classes import IGNORE_INDEX, WATER
from metaflood.core.errors import ConfigError
from metaflood.model.checkpoint import load_checkpoint
from metaflood.model.losses import head_labels, metars_losses, water_bce
from metaflood.model.normalization import (
    DATASET,
    SCENE,
    SCENE_MOMENTS,
    Normalization,
    network_input,
    scene_statistics,
)
from metaflood.training.data import SyntheticCrops
from metaflood.training.pools import training_samples
from metaflood.training.train import train_model, training_config
from tests.helpers.realdata_sets import write_etci, write_ombria


def test_water_bce_supervises_the_water_class_only():
    logits = torch.randn(2, 8, 4, 4)
    water = torch.zeros(2, 4, 4, dtype=torch.long)
    water[:, :2] = 1
    water[1] = IGNORE_INDEX
    loss = water_bce(logits, water)
    # "Not water" says nothing of which other class: swapping two of them changes nothing.
    swapped = logits.clone()
    swapped[:, [1, 4]] = logits[:, [4, 1]]
    assert water_bce(swapped, water) == pytest.approx(loss.item())
    confident = torch.full_like(logits, -5.0)
    confident[:, WATER] = torch.where(water == 1, 5.0, -5.0).float()
    confident[:, 4] = torch.where(water == 0, 5.0, -5.0).float()
    assert water_bce(confident, water) < 0.01 < loss
    assert water_bce(logits, torch.full_like(water, IGNORE_INDEX)) == 0


def test_a_head_learns_nothing_from_a_sample_lacking_its_modality():
    labels = torch.full((2, 3, 3), 4)
    present = torch.tensor([[True, True], [True, False]])  # the second has no optical
    assert (head_labels(labels, present, "sar") == 4).all()
    for head in ("optical", "joint"):
        masked = head_labels(labels, present, head)
        assert (masked[0] == 4).all() and (masked[1] == IGNORE_INDEX).all()


def test_cross_modal_terms_see_only_samples_with_both():
    outputs = {
        "sar": torch.randn(2, 8, 4, 4),
        "meta_sar": [torch.randn(2, 4, 2, 2) for _ in range(4)],
        "meta_optical": [torch.randn(2, 4, 2, 2) for _ in range(4)],
    }
    labels = torch.full((2, 4, 4), IGNORE_INDEX)
    none = torch.tensor([[True, False], [True, False]])
    terms = metars_losses(outputs, labels, present=none, water=torch.ones(2, 4, 4).long())
    assert "align" not in terms and "water_sar" in terms
    one = torch.tensor([[True, True], [True, False]])
    aligned = metars_losses(outputs, labels, present=one)["align"]
    alone = {k: [f[:1] for f in v] if k.startswith("meta") else v for k, v in outputs.items()}
    assert aligned == pytest.approx(metars_losses(alone, labels)["align"].item())


@pytest.mark.parametrize("mode", [SCENE, SCENE_MOMENTS])
def test_scene_statistics_make_a_stretched_image_and_a_calibrated_one_meet(mode):
    rng = np.random.default_rng(0)
    db = rng.normal(-12, 4, (2, 64, 64)).astype(np.float32)
    stretched = (db + 30) / 30 * 255  # an 8-bit rendering of the same scene
    optical = np.full((4, 64, 64), np.nan, np.float32)  # no optical image
    norm = Normalization([0.0, 0.0], [1.0, 1.0], [0.0] * 4, [1.0] * 4, mode=mode)
    assert Normalization.from_dict(norm.to_dict()) == norm  # the checkpoint keeps the mode
    a = network_input(norm.for_scene(db, optical), db, "sar")
    b = network_input(norm.for_scene(stretched, optical), stretched, "sar")
    np.testing.assert_allclose(a, b, atol=1e-4)
    centre = np.median(a, axis=(1, 2)) if mode == SCENE else a.mean(axis=(1, 2))
    assert np.allclose(centre, 0, atol=1e-5)
    if mode == SCENE_MOMENTS:
        assert np.allclose(a.std(axis=(1, 2)), 1, atol=1e-4)
    # The absent modality falls back to the stand-in statistics and reads as "no signal".
    assert (network_input(norm.for_scene(db, optical), optical, "optical") == 0).all()


def test_moments_keep_the_tails_of_an_image_stretched_onto_few_grey_levels():
    # Most of the image on two grey levels, a tenth of it spread far: the interquartile
    # spread is narrow and the median and IQR throw the tails out by hundreds of spreads;
    # the standard deviation sees the tails and keeps them within a few.
    rng = np.random.default_rng(1)
    image = rng.choice([100.0, 101.0], size=(1, 64, 64)).astype(np.float32)
    tails = rng.random((64, 64)) < 0.1
    image[0, tails] = rng.uniform(0, 255, int(tails.sum()))
    reach = {}
    for mode in (SCENE, SCENE_MOMENTS):
        centre, spread = scene_statistics(image, mode)
        reach[mode] = float(np.abs((image - centre[0]) / spread[0]).max())
    assert reach[SCENE] > 100 and reach[SCENE_MOMENTS] < 10
    with pytest.raises(ValueError, match="scene statistics of mode 'dataset'"):
        scene_statistics(image, DATASET)


def test_real_samples_keep_only_the_model_bands_they_have(tmp_path):
    etci = write_etci(tmp_path / "etci", [(9, 0), (10, 0)])  # training tiles
    samples = training_samples(etci, "etci2021", ["VV", "VH"], ["green", "nir", "swir16"])
    assert len(samples) == 2
    assert np.isnan(samples[0]["optical"]).all()  # ETCI has no optical image
    assert (samples[0]["label"] == IGNORE_INDEX).all()
    assert set(np.unique(samples[0]["water"])) <= {0, 1, 255}
    ombria = write_ombria(tmp_path / "ombria", [1])
    samples = training_samples(ombria, "ombria", ["VV", "VH"], ["green", "nir", "swir16"])
    # OMBRIA has no VH: its SAR is absent for this model, its optical image is not.
    assert len(samples) == 2 and all(np.isnan(s["sar"]).all() for s in samples)
    assert not np.isnan(samples[0]["optical"]).any()
    pre, post = samples
    flooded = post["water"] == 1
    assert flooded.any() and (pre["water"][flooded] == 0).all()
    assert (pre["water"][~flooded] == 255).all() and (post["water"][~flooded] == 255).all()
    with pytest.raises(ConfigError, match="no labelled sample"):
        training_samples(etci, "etci2021", ["VV"], ["blue"], split="test")


def test_mixed_crops_carry_water_labels_and_presence(tmp_path):
    etci = write_etci(tmp_path / "etci", [(9, 0)])
    real = training_samples(etci, "etci2021", ["VV", "VH"], ["blue", "green", "red", "nir"])
    synthetic = {
        "sar": np.zeros((2, 96, 96), np.float32),
        "optical": np.ones((4, 96, 96), np.float32),
        "label": np.full((96, 96), 4, np.uint8),
    }
    pool = [synthetic, *real]
    norm = Normalization.from_pool(pool, SCENE)
    crops = SyntheticCrops(pool, 64, norm, 40, seed=0, weights=[0.5, 0.5], partial=True)
    batch = crops.batch(0, 40)
    assert set(batch) == {"sar", "optical", "label", "water", "present"}
    real_items = ~batch["present"][:, 1]
    assert 5 < int(real_items.sum()) < 35  # about half the crops from each
    assert (batch["optical"][real_items] == 0).all()  # absent optical: no signal
    assert (batch["water"][~real_items] == IGNORE_INDEX).all()


def test_real_sets_are_trained_at_their_resolution(tmp_path):
    etci = write_etci(tmp_path / "etci", [(9, 0)])
    sets = [{"layout": "etci2021", "root": str(etci)}]
    with pytest.raises(ConfigError, match="the real sets are 10 m products"):
        training_config({"real_sets": sets, "resolution": 2.0})
    cfg = training_config({"real_sets": sets, "resolution": 10.0})
    assert cfg["native_resolution"] == 5.0 and cfg["scene_size_m"] == 2560.0
    with pytest.raises(ConfigError, match="train.normalization 'tile'"):
        training_config({"normalization": "tile"})


def test_a_model_trains_on_synthetic_and_real_tiles(tmp_path):
    etci = write_etci(tmp_path / "etci", [(9, 0), (10, 0)])
    model = {"width": 8, "fpn_channels": 16, "decoder_channels": 16}
    train = {
        "iterations": 4,
        "batch_size": 2,
        "crop": 64,
        "scenes": 1,
        "val_scenes": 1,
        "resolution": 10.0,
        "scene_size_m": 960,
        "native_resolution": 10.0,
        "mmr_warmup": 0.5,
        "normalization": "scene",
        "real_sets": [{"layout": "etci2021", "root": str(etci)}],
    }
    out = tmp_path / "m.pt"
    metrics = train_model(
        model, train, out, tmp_path / "m.json", threads=1, log=lambda m: None, device="cpu"
    )
    ckpt = load_checkpoint(out)
    assert ckpt["normalization"]["mode"] == "scene"
    assert ckpt["training"]["train_config"]["real_sets"][0]["layout"] == "etci2021"
    assert metrics["iterations"] == 4

"""Training data: resampling to the model grid, normalisation, aligned augmentation."""

from __future__ import annotations

import numpy as np
import pytest

from metaflood.core.sar import to_linear
from metaflood.model.normalization import Normalization
from metaflood.training.data import (
    SyntheticCrops,
    augment,
    block_mean,
    block_mode,
    make_held_out_pool,
    make_synthetic_pool,
    resample_factor,
    sar_to_model_grid,
)


def test_sar_is_averaged_in_linear_power():
    db = np.where((np.indices((4, 4)).sum(axis=0) % 2) == 0, -10.0, -20.0)[None]
    out = sar_to_model_grid(to_linear(db), 2)
    expected = 10 * np.log10((0.1 + 0.01) / 2)  # -12.6 dB, not the -15 dB mean of decibels
    assert out.shape == (1, 2, 2)
    np.testing.assert_allclose(out, expected, atol=1e-4)


def test_block_mean_drops_incomplete_edge():
    a = np.arange(5 * 7, dtype=np.float32).reshape(1, 5, 7)
    out = block_mean(a, 2)
    assert out.shape == (1, 2, 3)
    assert out[0, 0, 0] == pytest.approx((0 + 1 + 7 + 8) / 4)


def test_block_mode_is_majority():
    labels = np.array(
        [
            [3, 3, 1, 1],
            [3, 5, 1, 2],
            [4, 4, 255, 255],
            [6, 6, 255, 255],
        ],
        dtype=np.uint8,
    )
    # Majorities 3 and 1; a tie (4 vs 6) goes to the lower class; all-ignored stays ignored.
    np.testing.assert_array_equal(block_mode(labels, 2), [[3, 1], [4, 255]])


def test_resample_factor_must_be_whole():
    assert resample_factor(1.0, 2.0) == 2
    with pytest.raises(ValueError, match="multiple"):
        resample_factor(1.0, 2.5)


def _sample(rng, size=16):
    sar = rng.normal(size=(2, size, size)).astype(np.float32)
    optical = rng.normal(size=(4, size, size)).astype(np.float32)
    # The label is a function of the pixel values: any misalignment breaks the relation.
    label = (sar[0] > 0).astype(np.uint8) * 3 + (optical[2] > 0).astype(np.uint8)
    return {"sar": sar, "optical": optical, "label": label}


def test_augmentations_keep_image_and_label_aligned():
    rng = np.random.default_rng(0)
    sample = _sample(rng)
    seen_transforms = set()
    for i in range(40):
        out = augment(sample, np.random.default_rng(i), crop=8)
        assert out["sar"].shape == (2, 8, 8) and out["optical"].shape == (4, 8, 8)
        assert out["label"].shape == (8, 8)
        expected = (out["sar"][0] > 0).astype(np.uint8) * 3 + (out["optical"][2] > 0)
        np.testing.assert_array_equal(out["label"], expected)
        # Every crop is some rotation/flip of a window of the input.
        key = out["sar"][0].tobytes()
        seen_transforms.add(key)
    assert len(seen_transforms) > 20


def test_crops_are_deterministic_per_item():
    rng = np.random.default_rng(1)
    pool = [_sample(rng), _sample(rng)]
    norm = Normalization.from_pool(pool)
    a = SyntheticCrops(pool, 8, norm, length=10, seed=5)
    b = SyntheticCrops(pool, 8, norm, length=10, seed=5)
    np.testing.assert_array_equal(a[3]["sar"].numpy(), b[3]["sar"].numpy())
    batch = a.batch(2, 4)
    assert batch["sar"].shape == (4, 2, 8, 8) and batch["label"].dtype.is_floating_point is False
    np.testing.assert_array_equal(batch["optical"][1].numpy(), b[3]["optical"].numpy())


def test_normalization_statistics_and_round_trip():
    pool = [
        {"sar": np.full((2, 4, 4), -10.0, np.float32), "optical": np.zeros((4, 4, 4), np.float32)},
        {"sar": np.full((2, 4, 4), -20.0, np.float32), "optical": np.ones((4, 4, 4), np.float32)},
    ]
    norm = Normalization.from_pool(pool)
    assert norm.sar_mean == pytest.approx([-15.0, -15.0])
    assert norm.sar_std == pytest.approx([5.0, 5.0])
    assert Normalization.from_dict(norm.to_dict()) == norm
    np.testing.assert_allclose(norm.apply(pool[0]["sar"], "sar"), 1.0)
    with pytest.raises(ValueError, match="bands"):
        norm.apply(np.zeros((3, 2, 2), np.float32), "sar")


def test_synthetic_pool_from_simulator():
    pytest.importorskip("metaflood.demo.simulate")
    four = ["blue", "green", "red", "nir"]
    pool = make_synthetic_pool(1, 96.0, 1.0, 2.0, seed=7, optical_bands=four)
    assert len(pool) == 2  # pre and post
    for s in pool:
        assert s["sar"].shape == (2, 48, 48) and s["sar"].dtype == np.float32
        assert s["optical"].shape == (4, 48, 48)
        assert s["label"].shape == (48, 48) and s["label"].dtype == np.uint8
        assert s["label"].max() < 8
        assert -40 < np.median(s["sar"]) < 10  # decibels, not linear power
    val = make_held_out_pool("validation", 1, 96.0, 1.0, 2.0, seed=7, optical_bands=four)
    assert not np.array_equal(val[0]["sar"], pool[0]["sar"])
    # The bands a model names, by name: green, NIR and SWIR are the simulator's 2, 4, 5.
    ombria = make_synthetic_pool(
        1, 96.0, 1.0, 2.0, seed=7, optical_bands=["green", "nir", "swir16"]
    )
    np.testing.assert_array_equal(ombria[0]["optical"][:2], pool[0]["optical"][[1, 3]])
    assert ombria[0]["optical"].shape == (3, 48, 48)
    with pytest.raises(ValueError, match=r"renders no optical band \['swir22'\]"):
        make_synthetic_pool(1, 96.0, 1.0, 2.0, seed=7, optical_bands=["green", "swir22"])

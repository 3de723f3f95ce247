"""benchmarks/supervised_flood.py: the reference network trained on a set's own flood masks."""

from __future__ import annotations

import json

import numpy as np
import pytest

from benchmarks.supervised_flood import main, standardised
from tests.helpers.realdata_sets import write_ombria


def test_each_band_is_standardised_by_its_own_image():
    rng = np.random.default_rng(0)
    bands = np.stack([rng.normal(-12, 3, (64, 64)), rng.normal(0.1, 0.02, (64, 64))])
    out = standardised(bands.astype(np.float32))
    assert np.allclose(np.median(out, axis=(1, 2)), 0, atol=1e-3)
    spread = np.subtract(*np.percentile(out, [75, 25], axis=(1, 2))) / 1.349
    assert np.allclose(spread, 1, atol=1e-3)


def test_a_blank_image_is_named():
    with pytest.raises(SystemExit, match="train_0001 SAR pre: too few valid pixels"):
        standardised(np.full((1, 64, 64), np.nan, np.float32), "train_0001 SAR pre")


@pytest.mark.parametrize(
    ("network", "options"),
    [("early_fusion", []), ("unet", []), ("unet", ["--drop", "optical", "--dice"])],
)
def test_trained_on_the_training_split_it_maps_held_out_floods_beside_the_log_ratio(
    tmp_path, network, options
):
    # Numbers 150-199 are held out in OMBRIA's train folder; the others train.
    root = write_ombria(tmp_path / "ombria", [1, 2, 3, 151, 152], size=96)
    out = tmp_path / "out"
    main([str(root), "--network", network, *options, "--iterations", "20", "--out", str(out)])

    summary = json.loads((out / "supervised_flood.json").read_text())
    recipe = summary["recipe"]
    assert (recipe["network"], recipe["dice"]) == (network, "--dice" in options)
    assert summary["triplets"] == {"training": 3, "held-out": 2}
    held_out = summary["scores"]["held-out"]
    assert set(held_out) == {"both", "sar_only", "optical_only", "log-ratio Otsu (VV, per sample)"}
    # The fixture's flood is a dark, wet disc after the event: learnt in 20 steps, in each
    # condition the network was trained for (with `--drop optical` it never maps without SAR).
    trained_for = ("both", "sar_only") + (() if options else ("optical_only",))
    for condition in trained_for:
        assert held_out[condition]["iou"] > 0.7
    assert "| sar_only | held-out |" in (out / "supervised_flood.md").read_text()

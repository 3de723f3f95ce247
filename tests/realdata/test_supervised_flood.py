"""benchmarks/supervised_flood.py: the reference network trained on a set's own flood masks."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from benchmarks.supervised_flood import SAR_CHANGE, WEIGHTS, main
from metaflood.core.errors import InputError
from metaflood.model.flood_network import (
    VIEWS,
    FloodNetworkInputs,
    build_flood_network,
    dihedral,
    flood_probability,
    standardised,
    undo_dihedral,
    with_presence_band,
)
from metaflood.training.flood import drop_optical
from tests.helpers.realdata_sets import write_ombria


def test_each_band_is_standardised_by_its_own_image():
    rng = np.random.default_rng(0)
    bands = np.stack([rng.normal(-12, 3, (64, 64)), rng.normal(0.1, 0.02, (64, 64))])
    out = standardised(bands.astype(np.float32), "robust")
    assert np.allclose(np.median(out, axis=(1, 2)), 0, atol=1e-3)
    spread = np.subtract(*np.percentile(out, [75, 25], axis=(1, 2))) / 1.349
    assert np.allclose(spread, 1, atol=1e-3)
    out = standardised(bands.astype(np.float32), "moments")
    assert np.allclose(out.mean(axis=(1, 2)), 0, atol=1e-3)
    assert np.allclose(out.std(axis=(1, 2)), 1, atol=1e-3)


def test_a_blank_image_is_named():
    with pytest.raises(InputError, match="train_0001 SAR pre: too few valid pixels"):
        standardised(np.full((1, 64, 64), np.nan, np.float32), "robust", "train_0001 SAR pre")


def test_the_presence_band_says_whether_the_optical_image_is_there():
    optical = with_presence_band(torch.full((4, 3, 8, 8), 0.5))
    assert optical.shape == (4, 4, 8, 8)
    dropped = drop_optical(optical, torch.Generator().manual_seed(1))
    present = dropped[:, :3].flatten(1).ne(0).any(1)
    assert present.any() and not present.all()
    assert torch.equal(dropped[:, 3].flatten(1).eq(1).all(1), present)
    assert torch.equal(dropped[:, 3].flatten(1).eq(0).all(1), ~present)
    # Scored without the optical image, the network zero-fills the band with the image.
    net = build_flood_network(FloodNetworkInputs("unet", ("green", "nir"))).eval()  # 4 bands
    sar = torch.zeros(1, 2, 16, 16)
    with torch.no_grad():
        missing = net(sar, None, heads=("sar",))["sar"]
        told_missing = net(sar, torch.zeros(1, 4, 16, 16), heads=("joint",))["joint"]
    assert torch.equal(missing, told_missing)


@pytest.mark.parametrize(
    ("network", "options", "iterations"),
    [
        ("early_fusion", [], 20),
        ("unet", [], 20),
        ("unet", ["--drop", "optical", "--dice"], 20),
        # The presence band, a constant the network must first learn to read, is slower
        # to start: 20 steps do not do on this fixture, 40 do.
        ("unet", ["--drop", "optical", "--dice", "--presence-band", "--statistics", "moments"], 40),
    ],
)
def test_trained_on_the_training_split_it_maps_held_out_floods_beside_the_log_ratio(
    tmp_path, network, options, iterations
):
    # Numbers 150-199 are held out in OMBRIA's train folder; the others train.
    root = write_ombria(tmp_path / "ombria", [1, 2, 3, 151, 152], size=96)
    out = tmp_path / "out"
    main(
        [
            str(root),
            "--network",
            network,
            *options,
            "--iterations",
            str(iterations),
            "--out",
            str(out),
        ]
    )

    summary = json.loads((out / "supervised_flood.json").read_text())
    recipe = summary["recipe"]
    assert (recipe["network"], recipe["dice"]) == (network, "--dice" in options)
    assert recipe["presence_band"] == ("--presence-band" in options)
    assert recipe["statistics"] == ("moments" if "moments" in options else "robust")
    assert summary["triplets"] == {"training": 3, "held-out": 2}
    held_out = summary["scores"]["held-out"]
    assert set(held_out) == {
        "both",
        "sar_only",
        "optical_only",
        *(f"{c} {j} SAR change" for c in ("both", "sar_only") for j in ("or", "and")),
        SAR_CHANGE,
        "log-ratio Otsu (VV, per sample)",
    }
    assert (out / WEIGHTS).is_file()
    # The fixture's flood is a dark, wet disc after the event: learnt in a few steps, in each
    # condition the network was trained for (with `--drop optical` it never maps without SAR).
    trained_for = ("both", "sar_only") + (() if options else ("optical_only",))
    for condition in trained_for:
        assert held_out[condition]["iou"] > 0.7
    assert "| sar_only | held-out |" in (out / "supervised_flood.md").read_text()


def test_every_turn_and_mirror_is_undone():
    x = torch.arange(2 * 5 * 5, dtype=torch.float32).view(1, 2, 5, 5)
    seen = set()
    for turns, mirror in VIEWS[True]:
        view = dihedral(x, turns, mirror)
        seen.add(view.numpy().tobytes())
        assert torch.equal(undo_dihedral(view, turns, mirror), x)
    assert len(seen) == 8


class _Left(torch.nn.Module):
    """Says a pixel is flooded the more, the further left it sits: not symmetric."""

    def forward(self, sar, optical, heads):
        columns = torch.arange(sar.shape[-1], dtype=torch.float32)
        flooded = (sar.shape[-1] - 1 - columns).expand(sar.shape[-2], -1)
        logits = torch.stack([torch.zeros_like(flooded), flooded])[None]
        return dict.fromkeys(heads, logits)


def test_test_time_augmentation_averages_the_views_each_turned_back():
    sar, optical = torch.zeros(1, 2, 4, 4), torch.zeros(1, 3, 4, 4)
    plain = flood_probability([_Left()], sar, optical, ("joint",))["joint"]
    assert (np.diff(plain, axis=1) < 0).all()
    # Each view reads "left" in its own frame; turned back, the eight views cover every
    # side of the image equally, so the average is symmetric under every turn and mirror.
    averaged = flood_probability([_Left()], sar, optical, ("joint",), tta=True)["joint"]
    for turns, mirror in VIEWS[True]:
        view = dihedral(torch.from_numpy(averaged), turns, mirror).numpy()
        assert np.allclose(view, averaged)
    # Two members are averaged: the same network twice gives its own probability.
    twice = flood_probability([_Left(), _Left()], sar, optical, ("joint",))["joint"]
    assert np.allclose(twice, plain)


def test_an_ensemble_scores_earlier_runs_without_training(tmp_path):
    root = write_ombria(tmp_path / "ombria", [1, 2, 3, 151, 152], size=64)
    runs = []
    for seed in (0, 1):
        runs.append(tmp_path / f"seed{seed}")
        common = ["--network", "unet", "--drop", "optical", "--iterations", "5"]
        main([str(root), *common, "--seed", str(seed), "--out", str(runs[-1])])
    out = tmp_path / "ensemble"
    main([str(root), "--ensemble", *map(str, runs), "--tta", "--out", str(out)])

    summary = json.loads((out / "supervised_flood.json").read_text())
    assert summary["training_seconds"] is None and summary["test_time_augmentation"]
    assert summary["members"] == [str(r) for r in runs]
    assert [r["seed"] for r in summary["member_recipes"]] == [0, 1]
    assert not (out / WEIGHTS).exists()
    held_out = summary["scores"]["held-out"]
    # Joined to the SAR change, the network finds at least as much, and at most as much.
    for condition in ("both", "sar_only"):
        recall = held_out[condition]["recall"]
        assert held_out[f"{condition} or SAR change"]["recall"] >= recall
        assert held_out[f"{condition} and SAR change"]["recall"] <= recall


def test_an_ensemble_names_a_missing_run_and_a_mismatched_member(tmp_path):
    root = write_ombria(tmp_path / "ombria", [1, 151], size=64)
    with pytest.raises(SystemExit, match=r"nowhere/supervised_flood.json: not found"):
        main([str(root), "--ensemble", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o")])
    runs = []
    for statistics in ("robust", "moments"):
        runs.append(tmp_path / statistics)
        options = ["--network", "unet", "--iterations", "1", "--statistics", statistics]
        main([str(root), *options, "--out", str(runs[-1])])
    with pytest.raises(SystemExit, match=r"moments: its statistics differ from .*robust's"):
        main([str(root), "--ensemble", *map(str, runs), "--out", str(tmp_path / "o")])

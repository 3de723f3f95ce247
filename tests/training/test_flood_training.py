"""metaflood.training.flood and `metaflood train-flood`: the flood network learnt from a
set's own flood masks, written as a checkpoint that says what it reads."""

from __future__ import annotations

import json
from dataclasses import asdict

import numpy as np
import pytest
import torch

from metaflood.cli import _parser
from metaflood.cli import main as cli_main
from metaflood.core.errors import InputError
from metaflood.model.flood_network import (
    FloodNetworkInputs,
    build_flood_network,
    flood_probability,
    load_flood_network,
)
from metaflood.training.flood import (
    FloodRecipe,
    load_flood_set,
    train_flood,
    train_flood_network,
)
from metaflood.training.layouts import OMBRIA_OPTICAL_BANDS, TRAIN
from tests.helpers.realdata_sets import write_ombria

FEW = 2  # iterations: enough to run every step of training, not to learn


@pytest.fixture(scope="module")
def ombria(tmp_path_factory):
    # 1 and 2 train; 151 is held out (numbers 150-199 of OMBRIA's train folder).
    return write_ombria(tmp_path_factory.mktemp("flood") / "ombria", [1, 2, 151], size=64)


def test_the_checkpoint_records_what_the_network_reads_and_how_it_learnt(ombria, tmp_path):
    out = tmp_path / "models" / "flood.pt"
    recipe = FloodRecipe(iterations=FEW)
    lines: list[str] = []
    summary = train_flood(ombria, out, recipe, threads=1, log=lines.append)

    assert summary["triplets"] == 2 and summary["recipe"] == asdict(recipe)
    assert any(line.startswith(f"step {FEW - 1}: loss") for line in lines)
    net, inputs = load_flood_network(out)
    assert inputs == FloodNetworkInputs(
        network="unet", optical_bands=OMBRIA_OPTICAL_BANDS, statistics="moments"
    )
    meta = torch.load(out, weights_only=True)["meta"]
    assert meta["recipe"] == asdict(recipe)
    assert (meta["trained_on"], meta["split"], meta["triplets"]) == (str(ombria), TRAIN, 2)
    assert not out.with_name("flood.pt.partial").exists()
    data = load_flood_set(ombria, TRAIN, inputs.statistics)
    sar, optical = (torch.from_numpy(a[:1]) for a in (data.sar, data.optical))
    probability = flood_probability([net], sar, optical, ("joint", "sar"))
    assert all(p.shape == (64, 64) and np.isfinite(p).all() for p in probability.values())


def test_a_seed_gives_the_same_network(ombria):
    data = load_flood_set(ombria, TRAIN, "robust")
    assert data.optical.shape == (2, 2 * len(OMBRIA_OPTICAL_BANDS), 64, 64)
    recipe = FloodRecipe(network="unet", drop="any", presence_band=True, iterations=FEW)
    first, again = (train_flood_network(data, recipe, log=lambda _: None) for _ in range(2))
    for name, weights in first.state_dict().items():
        assert torch.equal(weights, again.state_dict()[name]), name


def test_a_file_that_is_not_a_checkpoint_is_named(tmp_path):
    bare = tmp_path / "state_dict.pt"
    net = build_flood_network(FloodNetworkInputs("unet", OMBRIA_OPTICAL_BANDS))
    torch.save(net.state_dict(), bare)  # a benchmark run's network.pt: no inputs recorded
    with pytest.raises(InputError, match=r"state_dict\.pt: not a flood network checkpoint"):
        load_flood_network(bare)
    noise = tmp_path / "noise.pt"
    noise.write_bytes(np.random.default_rng(0).bytes(256))
    with pytest.raises(InputError, match=r"noise\.pt: not a readable flood network checkpoint"):
        load_flood_network(noise)


def test_a_missing_root_or_an_empty_training_split_is_named(ombria, tmp_path):
    with pytest.raises(InputError, match=r"nowhere: no such dataset folder"):
        train_flood(tmp_path / "nowhere", tmp_path / "flood.pt", FloodRecipe(iterations=FEW))
    held_out_only = write_ombria(tmp_path / "held_out", [151], size=64)
    with pytest.raises(InputError, match=r"held_out: no OMBRIA triplet in the train split"):
        train_flood(held_out_only, tmp_path / "flood.pt", FloodRecipe(iterations=FEW))
    with pytest.raises(InputError, match=r"trains on the train split or its fit part"):
        train_flood(ombria, tmp_path / "flood.pt", FloodRecipe(iterations=FEW), split="test")
    assert not (tmp_path / "flood.pt").exists()


def test_the_fit_part_leaves_the_validation_part_out(tmp_path):
    """Trained on the fit part, the network never saw the validation part (numbers
    100-149), on which its join to the evidence is fitted; the checkpoint says so."""
    root = write_ombria(tmp_path / "ombria", [1, 101, 151], size=64)
    out = tmp_path / "flood.pt"
    summary = train_flood(root, out, FloodRecipe(iterations=FEW), log=lambda _: None, split="fit")
    assert summary["triplets"] == 1
    assert torch.load(out, weights_only=True)["meta"]["split"] == "fit"


def test_the_command_defaults_to_the_recipe_that_did_best():
    args = _parser().parse_args(["train-flood", "root", "--out", "flood.pt"])
    assert {f: getattr(args, f) for f in asdict(FloodRecipe())} == asdict(FloodRecipe())
    assert not _parser().parse_args(["train-flood", "root", "--out", "x", "--no-dice"]).dice


def test_the_command_trains_and_writes_the_checkpoint(ombria, tmp_path, capsys):
    out = tmp_path / "flood.pt"
    options = ["--network", "early_fusion", "--no-dice", "--statistics", "robust"]
    command = ["train-flood", str(ombria), "--out", str(out), *options, "--threads", "1"]
    assert cli_main([*command, "--iterations", str(FEW), "--seed", "3"]) == 0

    printed = capsys.readouterr().out
    summary = json.loads(printed[printed.index("{") :])
    assert summary["checkpoint"] == str(out) and summary["triplets"] == 2
    _, inputs = load_flood_network(out)
    assert (inputs.network, inputs.statistics) == ("early_fusion", "robust")
    recipe = torch.load(out, weights_only=True)["meta"]["recipe"]
    assert (recipe["dice"], recipe["seed"], recipe["iterations"]) == (False, 3, FEW)

    missing = tmp_path / "nowhere"
    assert cli_main(["train-flood", str(missing), "--out", str(out)]) == 1
    assert f"{missing}: no such dataset folder" in capsys.readouterr().err

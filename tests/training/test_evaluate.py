"""The evaluate machinery on tiny settings: five models, one held-out table."""

from __future__ import annotations

import csv

import pytest
import yaml

from metaflood.cli import main
from metaflood.training.data import HELD_OUT_SEED_OFFSETS
from metaflood.training.evaluate import MODELS
from tests.helpers.events import demo_event_config


@pytest.fixture(scope="module")
def evaluation(tmp_path_factory):
    pytest.importorskip("metaflood.demo.simulate")
    out = tmp_path_factory.mktemp("evaluate")
    model = {"width": 8, "fpn_channels": 16, "decoder_channels": 16, "device": "cpu"}
    train = {
        "iterations": 2, "batch_size": 2, "crop": 32, "scenes": 1, "val_scenes": 1,
        "scene_size_m": 64, "mmr_warmup": 0.5, "mmr_calibration_images": 2, "resolution": 2.0,
    }  # fmt: skip
    config = out / "config.yaml"
    sections = {"model": model, "train": train, "evaluate": {"test_scenes": 1}}
    config.write_text(yaml.safe_dump({"events": {"e": demo_event_config()}, **sections}))
    args = [
        "evaluate", "--config", str(config), "--out-csv", str(out / "evaluation.csv"),
        "--out-md", str(out / "evaluation.md"), "--workdir", str(out / "models"), "--threads", "2",
    ]  # fmt: skip
    assert main(args) == 0
    return out, args


def test_table_has_every_model_and_condition(evaluation):
    out, _ = evaluation
    rows = list(csv.DictReader((out / "evaluation.csv").open()))
    assert [r["model"] for r in rows] == list(MODELS)
    for row in rows:
        for condition in ("both", "sar_only"):
            assert 0.0 <= float(row[condition]) <= 100.0
        assert row["iterations"] == "2"
    by_name = {r["model"]: r for r in rows}
    assert by_name["sar_only"]["optical_only"] == ""  # a SAR network cannot serve it
    assert by_name["metars"]["heads"] == "joint/sar/optical"
    md = (out / "evaluation.md").read_text()
    assert md.count("\n| ") == 6 and "| SAR-only network |" in md and "| n/a |" in md
    assert {p.name for p in (out / "models").glob("*.pt")} == {f"{m}.pt" for m in MODELS}


def test_rerun_reuses_the_trained_models(evaluation, capsys):
    _, args = evaluation
    assert main(args) == 0
    assert capsys.readouterr().out.count("already holds 2 iterations") == len(MODELS)


def test_test_split_is_apart_from_training_and_validation():
    offsets = HELD_OUT_SEED_OFFSETS
    assert offsets["test"] > offsets["validation"] > 10_000  # no run uses so many scenes

"""Event-adaptive fine-tuning: pseudo-labels where three answers agree, SAR head only."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from rasterio.transform import from_origin

from metaflood.core.classes import IGNORE_INDEX, NUM_CLASSES, WATER
from metaflood.core.raster import write_cog
from metaflood.core.settings import AdaptSettings, ChangeSettings, section_defaults
from metaflood.model.checkpoint import load_checkpoint
from metaflood.training.adapt import (
    adapt_checkpoint,
    candidate_windows,
    pseudo_labels,
)
from tests.helpers.realdata_sets import reflectance, sar_db, water_scene
from tests.helpers.tiny_model import train_tiny

UTM = "EPSG:32634"
SETTINGS = {
    "enabled": True,
    "iterations": 4,
    "lr": 0.001,
    "crop": 64,
    "batch_size": 2,
    "min_pixels": 100,
    "min_post_pixels": 0,
    "periods": ["pre", "post"],
    "seed": 0,
}


def test_pseudo_labels_keep_only_what_three_answers_agree_on():
    optical_water = np.array([[0.9, 0.9, 0.1, 0.1, 0.9]])
    sar_margin = np.array([[-3.0, 2.0, 3.0, 3.0, -3.0]])
    index_margin = np.array([[0.2, 0.2, -0.2, -0.2, 0.2]])
    usable = np.array([[True, True, True, True, False]])
    joint = np.full((NUM_CLASSES, 1, 5), 0.01)
    joint[WATER, 0, 0] = 0.93  # confident water
    joint[4, 0, 2] = 0.93  # confident barren
    joint[WATER, 0, 3] = 0.6  # unsure
    water, label = pseudo_labels(optical_water, joint, sar_margin, index_margin, usable)
    # SAR disagrees on pixel 1; pixel 4 has no usable pair.
    assert water.tolist() == [[1, IGNORE_INDEX, 0, 0, IGNORE_INDEX]]
    assert label.tolist() == [[WATER, IGNORE_INDEX, 4, IGNORE_INDEX, IGNORE_INDEX]]


def test_windows_need_clear_optical():
    valid = np.full((128, 128), 1, np.uint8)  # SAR only
    assert candidate_windows(valid, 64) == []
    valid[:64, :64] = 3
    windows = candidate_windows(valid, 64)
    assert windows and all(w.row_off < 64 and w.col_off < 64 for w in windows)


def _period(tmp_path, name, rng, clear: bool):
    water = water_scene(rng, 128)
    refl = reflectance(rng, water)
    bands = ["VV", "VH", "blue", "green", "red", "nir", "swir16"]
    data = np.stack(
        [sar_db(rng, water, "VV"), sar_db(rng, water, "VH")] + [refl[b] for b in bands[2:]]
    )
    transform = from_origin(500000, 4000000, 10.0, 10.0)
    stack = write_cog(
        tmp_path / f"{name}.tif",
        data,
        crs=UTM,
        transform=transform,
        nodata=np.nan,
        descriptions=bands,
    )
    valid = np.full(water.shape, 3 if clear else 1, np.uint8)
    valid_path = write_cog(
        tmp_path / f"{name}_valid.tif", valid, crs=UTM, transform=transform, nodata=255
    )
    return stack, valid_path


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return train_tiny(tmp_path_factory.mktemp("model") / "tiny.pt")


def _adapt(tmp_path, checkpoint, clear: dict[str, bool], seed: int = 0, **settings) -> dict:
    """Adapt `checkpoint` to a pre- and a post-event period, each clear or under cloud."""
    rng = np.random.default_rng(seed)
    periods = {p: _period(tmp_path, p, rng, clear=clear[p]) for p in ("pre", "post")}
    return adapt_checkpoint(
        checkpoint,
        {p: stack for p, (stack, _) in periods.items()},
        {p: valid for p, (_, valid) in periods.items()},
        tmp_path / "adapted.pt",
        tmp_path / "a.json",
        settings=AdaptSettings.from_section({**SETTINGS, **settings}),
        change=ChangeSettings.from_section(section_defaults("change", {"min_area_m2": 200})),
        threads=1,
        device="cpu",
        log=lambda m: None,
    )


def _unchanged(checkpoint, adapted) -> bool:
    before, after = (
        load_checkpoint(checkpoint)["state_dict"],
        load_checkpoint(adapted)["state_dict"],
    )
    return all(torch.equal(before[k], after[k]) for k in before)


PRE_CLEAR = {"pre": True, "post": False}  # the post-event image under cloud


def test_a_clear_pre_event_pair_adapts_the_sar_head_only(tmp_path, checkpoint):
    summary = _adapt(tmp_path, checkpoint, PRE_CLEAR)
    out = tmp_path / "adapted.pt"
    assert summary["adapted"] is True, summary["reason"]
    assert summary["pseudo_labelled_pixels"] >= 100
    assert summary["pseudo_labelled_by_period"] == {
        "pre": summary["pseudo_labelled_pixels"],
        "post": 0,
    }
    assert set(summary["thresholds"]) == {"pre.tif"}  # no clear optical after the event
    before, after = load_checkpoint(checkpoint)["state_dict"], load_checkpoint(out)["state_dict"]
    changed = {k.split(".")[0] for k in before if not torch.equal(before[k], after[k])}
    assert changed == {"sar_encoder", "sar_decoder"}
    assert json.loads((tmp_path / "a.json").read_text())["adapted"] is True
    assert load_checkpoint(out)["training"]["adaptation"]["adapted"] is True


def test_without_clear_optical_the_model_is_left_as_it_was(tmp_path, checkpoint):
    summary = _adapt(tmp_path, checkpoint, {"pre": False, "post": False}, seed=1)
    assert summary["adapted"] is False and "at least 100 are needed" in summary["reason"]
    assert _unchanged(checkpoint, tmp_path / "adapted.pt")


def test_a_period_left_out_of_the_settings_does_not_teach(tmp_path, checkpoint):
    """With only the post-event period allowed to teach, a clear pre-event pair alone
    leaves the model as it was (on real data it taught the SAR head the place is dry)."""
    summary = _adapt(tmp_path, checkpoint, PRE_CLEAR, periods=["post"])
    assert summary["adapted"] is False
    assert summary["pseudo_labelled_by_period"] == {"post": 0}
    assert "clear optical in post" in summary["reason"]
    assert _unchanged(checkpoint, tmp_path / "adapted.pt")


def test_a_clear_pre_event_pair_alone_does_not_adapt_when_the_post_event_must_teach(
    tmp_path, checkpoint
):
    summary = _adapt(tmp_path, checkpoint, PRE_CLEAR, min_post_pixels=100)
    assert summary["adapted"] is False
    assert summary["pseudo_labelled_by_period"]["pre"] >= 100
    assert "0 pixels where the optical head" in summary["reason"]
    assert "model.adapt.min_post_pixels" in summary["reason"]
    assert _unchanged(checkpoint, tmp_path / "adapted.pt")

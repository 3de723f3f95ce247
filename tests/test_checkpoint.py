"""Checkpoints: round trip through weights-only loading, and refusal of misfits."""

from __future__ import annotations

import os

import pytest
import torch

from metaflood.checkpoint import (
    FORMAT,
    build_model,
    load_checkpoint,
    load_for_inference,
    save_checkpoint,
)
from metaflood.data import Normalization
from metaflood.errors import ModelError
from metaflood.model import MetaRS, MetaRSConfig

TINY = MetaRSConfig(width=8, fpn_channels=16, decoder_channels=16)
NORM = Normalization([-12.0, -19.0], [4.0, 4.5], [0.1, 0.12, 0.14, 0.25], [0.05] * 4)
DATA_BANDS = ["VV", "VH", "blue", "green", "red", "nir"]


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    torch.manual_seed(0)
    model = MetaRS(TINY)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model(torch.randn(2, 2, 32, 32), torch.randn(2, 4, 32, 32))["joint"].sum().backward()
    opt.step()
    path = tmp_path_factory.mktemp("ckpt") / "m.pt"
    training = {
        "iteration": 3,
        "total_iterations": 10,
        "optimizer": opt.state_dict(),
        "torch_rng": torch.get_rng_state(),
        "train_config": {"lr": 1e-3, "seed": 0, "dataset": "synthetic"},
    }
    save_checkpoint(path, model, NORM, training=training)
    return path, model


def test_round_trip_with_weights_only(saved):
    path, model = saved
    assert list(path.parent.iterdir()) == [path]  # the temporary file is gone
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # shareable, unlike mkstemp's 0600
    raw = torch.load(path, map_location="cpu", weights_only=True)
    assert raw["format"] == FORMAT
    assert raw["sar_bands"] == ["VV", "VH"] and raw["optical_bands"][-1] == "nir"
    assert raw["normalization"]["sar"]["mean"] == [-12.0, -19.0]
    assert raw["training"]["iteration"] == 3
    assert len(raw["class_names"]) == 8

    ckpt = load_checkpoint(path)
    rebuilt = build_model(ckpt)
    for key, value in model.state_dict().items():
        assert torch.equal(value, rebuilt.state_dict()[key]), key
    opt = torch.optim.AdamW(rebuilt.parameters(), lr=1e-3)
    opt.load_state_dict(ckpt["training"]["optimizer"])


def test_load_for_inference(saved):
    path, model = saved
    loaded = load_for_inference(path, available_bands=DATA_BANDS)
    assert not loaded.model.training
    assert loaded.normalization == NORM
    assert loaded.sar_bands == ["VV", "VH"]
    x, y = torch.randn(1, 2, 32, 32), torch.randn(1, 4, 32, 32)
    model.eval()
    with torch.inference_mode():
        a = model(x, y, heads=("joint",))["joint"]
        b = loaded.model(x, y, heads=("joint",))["joint"]
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)  # batch norms folded for inference


def test_wrong_class_count_is_refused(tmp_path):
    model = MetaRS(MetaRSConfig(width=8, fpn_channels=16, decoder_channels=16, num_classes=6))
    path = tmp_path / "six.pt"
    save_checkpoint(path, model, NORM, class_names=[f"c{i}" for i in range(6)])
    with pytest.raises(ModelError, match=r"predicts 6 classes.*expects 8 classes"):
        load_for_inference(path, expected_classes=8, available_bands=DATA_BANDS)


def test_missing_sar_bands_are_refused(tmp_path):
    model = MetaRS(MetaRSConfig(width=8, fpn_channels=16, decoder_channels=16, sar_bands=["HH"]))
    path = tmp_path / "hh.pt"
    save_checkpoint(path, model, Normalization([0.0], [1.0], [0.0] * 4, [1.0] * 4))
    with pytest.raises(ModelError, match=r"needs SAR bands \['HH'.*lacks \['HH'\].*data bands"):
        load_for_inference(path, available_bands=DATA_BANDS)


def test_missing_optical_bands_make_the_optical_head_unusable(saved):
    """Not an error: the model maps from SAR alone (infer routes every pixel there)."""
    path, _ = saved
    loaded = load_for_inference(path, available_bands=["VV", "VH", "green", "nir", "swir16"])
    assert not loaded.optical_usable and loaded.missing_optical == ["blue", "red"]
    assert load_for_inference(path, available_bands=DATA_BANDS).optical_usable


def test_pickled_objects_and_foreign_files_are_refused(tmp_path):
    evil = tmp_path / "evil.pt"
    torch.save({"format": FORMAT, "obj": object.__new__(Normalization)}, evil)
    with pytest.raises(ModelError, match="not a readable metaflood checkpoint"):
        load_checkpoint(evil)
    other = tmp_path / "other.pt"
    torch.save({"state_dict": {}}, other)
    with pytest.raises(ModelError, match="format None"):
        load_checkpoint(other)
    with pytest.raises(ModelError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")


def test_mismatched_weights_are_refused(saved, tmp_path):
    path, _ = saved
    ckpt = load_checkpoint(path)
    ckpt["model_config"]["width"] = 16
    with pytest.raises(ModelError, match="do not fit"):
        build_model(ckpt)


def test_band_count_that_does_not_fit_the_weights_is_refused(saved, tmp_path):
    path, _ = saved
    ckpt = load_checkpoint(path)
    ckpt["model_config"]["sar_bands"] = ["VV"]  # the stems take VV and VH
    bad = tmp_path / "bad.pt"
    torch.save(ckpt, bad)
    with pytest.raises(ModelError, match=r"sar stem .* takes 2 bands, but the checkpoint names 1"):
        load_for_inference(bad, available_bands=DATA_BANDS)


def test_wrong_checkpoint_is_refused_at_start_up(tmp_path):
    from metaflood.errors import ConfigError
    from metaflood.model_checks import check_model_sections

    model = MetaRS(MetaRSConfig(width=8, fpn_channels=16, decoder_channels=16, num_classes=6))
    save_checkpoint(tmp_path / "six.pt", model, NORM, class_names=[f"c{i}" for i in range(6)])
    with pytest.raises(ConfigError, match=r"model.checkpoint: six.pt: checkpoint predicts 6"):
        check_model_sections({"model": {"checkpoint": "six.pt"}}, tmp_path)
    # A checkpoint of another metaflood version: renamed weights, or reshaped ones.
    model = MetaRS(MetaRSConfig(width=8, fpn_channels=16, decoder_channels=16))
    save_checkpoint(tmp_path / "old.pt", model, NORM)
    ckpt = load_checkpoint(tmp_path / "old.pt")
    name = next(iter(ckpt["state_dict"]))
    ckpt["state_dict"]["renamed." + name] = ckpt["state_dict"].pop(name)
    torch.save(ckpt, tmp_path / "renamed.pt")
    with pytest.raises(ConfigError, match=r"renamed.pt: .*1 missing.*another version"):
        check_model_sections({"model": {"checkpoint": "renamed.pt"}}, tmp_path)
    ckpt = load_checkpoint(tmp_path / "old.pt")
    head = "joint_decoder.classifier.weight"
    ckpt["state_dict"][head] = torch.cat([ckpt["state_dict"][head]] * 2)
    torch.save(ckpt, tmp_path / "reshaped.pt")
    with pytest.raises(ConfigError, match=r"reshaped.pt: .*1 of another shape.*another version"):
        check_model_sections({"model": {"checkpoint": "reshaped.pt"}}, tmp_path)
    check_model_sections({"model": {"checkpoint": "old.pt"}}, tmp_path)
    authors = {"path": "resources/a.pth", "url": None}
    with pytest.raises(ConfigError, match=r"authors_checkpoint.path: .*download .* by hand"):
        check_model_sections(
            {"model": {"checkpoint": None, "authors_checkpoint": authors}}, tmp_path
        )
    authors["url"] = "https://example.org/a.pth"  # downloaded by the workflow: nothing needed yet
    check_model_sections({"model": {"checkpoint": None, "authors_checkpoint": authors}}, tmp_path)


def test_encoding_round_trip_and_baselines_are_not_for_inference(tmp_path):
    from metaflood.encoding import InputEncoding
    from metaflood.model.baselines import EarlyFusionNet

    enc = InputEncoding.earthmiss(sar_full_scale_db=3.0)
    assert InputEncoding.from_dict(enc.to_dict()) == enc
    path = tmp_path / "ef.pt"
    save_checkpoint(path, EarlyFusionNet(TINY), NORM, encoding=enc, architecture="early_fusion")
    ckpt = load_checkpoint(path)
    assert isinstance(build_model(ckpt), EarlyFusionNet)
    with pytest.raises(ModelError, match="early_fusion baseline checkpoint"):
        load_for_inference(path, available_bands=DATA_BANDS)


def test_training_state_is_written_from_the_cpu():
    from metaflood.checkpoint import on_cpu

    tree = {"a": torch.ones(2), "b": [torch.zeros(1), (torch.ones(1), 3)], "c": None}
    moved = on_cpu(tree)
    assert moved["c"] is None and moved["b"][1][1] == 3 and isinstance(moved["b"][1], tuple)
    assert torch.equal(moved["a"], tree["a"]) and moved["a"].device.type == "cpu"


def test_initialisers_do_nothing_while_a_model_is_built_then_work_again():
    from metaflood.checkpoint import without_initialisation

    weights = torch.zeros(4, 4)
    with without_initialisation():
        assert torch.nn.init.normal_(weights) is weights and not weights.any()
    torch.nn.init.normal_(weights)
    assert weights.any()

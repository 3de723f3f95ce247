"""Checkpoints: round trip through weights-only loading, and refusal of misfits."""

from __future__ import annotations

import os
import struct
import traceback
import zipfile

import numpy as np
import pytest
import torch

from metaflood.core.errors import ModelError
from metaflood.model import MetaRS, MetaRSConfig
from metaflood.model.checkpoint import (
    FORMAT,
    HASH_KEY,
    build_model,
    content_sha256,
    load_checkpoint,
    load_for_inference,
    save_checkpoint,
    save_payload,
)
from metaflood.model.normalization import Normalization

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
    with pytest.raises(
        ModelError,
        match=r"evil.pt: not a metaflood checkpoint: it holds a Python object "
        r"\(metaflood.model.normalization.Normalization\) .* refused "
        r"\(unpickling it could run code\)",
    ):
        load_checkpoint(evil)
    other = tmp_path / "other.pt"
    torch.save({"state_dict": {}}, other)
    with pytest.raises(ModelError, match="format None"):
        load_checkpoint(other)
    with pytest.raises(ModelError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")


def test_refusals_say_what_the_file_is_not_and_never_advise_unsafe_loading(saved, tmp_path):
    """Issue 21: PyTorch's message, quoted, advised loading again with pickle code allowed,
    also for random bytes."""
    evil = tmp_path / "evil.pt"
    torch.save({"format": FORMAT, "obj": object.__new__(Normalization)}, evil)
    noise = tmp_path / "noise.pt"
    noise.write_bytes(np.random.default_rng(0).bytes(20_000))
    cut = tmp_path / "cut.pt"
    cut.write_bytes(saved[0].read_bytes()[:5000])
    for path in (evil, noise, cut):
        with pytest.raises(ModelError) as refused:
            load_checkpoint(path)
        # Not in the message, nor in the traceback Python would print (chained causes).
        assert "weights_only" not in "".join(traceback.format_exception(refused.value))
    for path in (noise, cut):
        with pytest.raises(ModelError, match="not a metaflood checkpoint: not a PyTorch zip"):
            load_checkpoint(path)
    # Files from elsewhere (the authors' weights, ImageNet weights) may be PyTorch's
    # legacy format: not required to be a zip, and refused in the same words.
    from metaflood.model.checkpoint import read_torch_file

    for path in (evil, noise):
        with pytest.raises(ModelError, match="not a weights file: ") as refused:
            read_torch_file(path, "a weights file", zip_required=False)
        assert "weights_only" not in "".join(traceback.format_exception(refused.value))


def _tensor_bytes(path, name: str) -> tuple[int, int]:
    """Where a zip member's bytes start in the file, and how many there are (torch.save
    stores tensors uncompressed)."""
    with zipfile.ZipFile(path) as archive:
        info = next(i for i in archive.infolist() if i.filename.endswith(name))
    with open(path, "rb") as f:
        f.seek(info.header_offset)
        header = f.read(30)
    name_len, extra_len = struct.unpack("<HH", header[26:30])
    assert info.compress_type == zipfile.ZIP_STORED
    return info.header_offset + 30 + name_len + extra_len, info.file_size


def test_a_checkpoint_with_4_kb_flipped_inside_a_tensor_is_refused(saved, tmp_path):
    """Issue 21: 4 KB flipped inside one tensor of metars.pt mapped with rc 0 and a worse
    map. Fault injection on the file's bytes: the zip's CRC-32 no longer matches."""
    path, model = saved
    with zipfile.ZipFile(path) as archive:
        largest = max(archive.infolist(), key=lambda i: i.file_size)
    start, size = _tensor_bytes(path, largest.filename)
    assert size > 3 * 4096
    data = bytearray(path.read_bytes())
    middle = start + size // 2
    data[middle : middle + 4096] = bytes(b ^ 0xFF for b in data[middle : middle + 4096])
    flipped = tmp_path / "metars.pt"
    flipped.write_bytes(data)
    assert torch.load(flipped, weights_only=True)  # PyTorch itself reads it without a word
    with pytest.raises(ModelError, match=r"metars.pt: damaged: .* does not match the CRC-32"):
        load_checkpoint(flipped)
    with pytest.raises(ModelError, match="damaged"):
        load_for_inference(flipped, available_bands=DATA_BANDS)
    from metaflood.core.errors import ConfigError
    from metaflood.model.checks import check_model_sections

    with pytest.raises(ConfigError, match=r"model.checkpoint: .*metars.pt: damaged"):
        check_model_sections({"model": {"checkpoint": "metars.pt"}}, tmp_path)


def test_contents_that_do_not_match_their_hash_are_refused(saved, tmp_path):
    """A tensor changed and the zip written again (its CRCs fresh): the content hash
    written at save no longer matches."""
    raw = torch.load(saved[0], map_location="cpu", weights_only=True)
    assert raw[HASH_KEY] == content_sha256({k: v for k, v in raw.items() if k != HASH_KEY})
    name = next(iter(raw["state_dict"]))
    raw["state_dict"][name] = raw["state_dict"][name] + 1e-3
    torch.save(raw, tmp_path / "edited.pt")
    with pytest.raises(ModelError, match=r"edited.pt: the checkpoint is damaged: its contents"):
        load_checkpoint(tmp_path / "edited.pt")
    raw["normalization"]["sar"]["mean"][0] += 1.0  # a setting, not a tensor, is covered too
    raw["state_dict"][name] = raw["state_dict"][name] - 1e-3
    torch.save(raw, tmp_path / "edited.pt")
    with pytest.raises(ModelError, match="its contents do not match the hash"):
        load_checkpoint(tmp_path / "edited.pt")


def test_a_checkpoint_from_before_the_hash_loads_with_a_warning(saved, tmp_path, caplog):
    raw = torch.load(saved[0], map_location="cpu", weights_only=True)
    del raw[HASH_KEY]
    torch.save(raw, tmp_path / "old.pt")
    with caplog.at_level("WARNING", logger="metaflood.model.checkpoint"):
        ckpt = load_checkpoint(tmp_path / "old.pt")
    assert "old.pt: the checkpoint carries no content hash" in caplog.text
    assert "retrain it or convert it again" in caplog.text
    assert HASH_KEY not in ckpt and ckpt["training"]["iteration"] == 3


def test_the_configured_checkpoint_sha256_is_checked_at_start_up(saved, tmp_path):
    import hashlib
    import shutil

    from metaflood.core.errors import ConfigError
    from metaflood.core.settings import schema_error
    from metaflood.model.checks import check_model_sections
    from tests.helpers.events import demo_event_config

    shutil.copy(saved[0], tmp_path / "m.pt")
    digest = hashlib.sha256((tmp_path / "m.pt").read_bytes()).hexdigest()
    model = {"checkpoint": "m.pt", "checkpoint_sha256": digest.upper()}
    assert schema_error({"events": {"e": demo_event_config()}, "model": model}) is None
    check_model_sections({"model": model}, tmp_path)
    model["checkpoint_sha256"] = "0" * 64
    with pytest.raises(
        ConfigError,
        match=rf"model.checkpoint_sha256: m.pt has sha256 {digest}, not the configured 0{{64}}",
    ):
        check_model_sections({"model": model}, tmp_path)
    with pytest.raises(ConfigError, match="given without model.checkpoint"):
        check_model_sections({"model": {"checkpoint": None, "checkpoint_sha256": digest}})
    bad = {"checkpoint": "m.pt", "checkpoint_sha256": "abc"}
    assert schema_error({"events": {"e": demo_event_config()}, "model": bad}).startswith(
        "model.checkpoint_sha256: 'abc' does not match"
    )


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
    save_payload(bad, ckpt)
    with pytest.raises(ModelError, match=r"sar stem .* takes 2 bands, but the checkpoint names 1"):
        load_for_inference(bad, available_bands=DATA_BANDS)


def test_wrong_checkpoint_is_refused_at_start_up(tmp_path):
    from metaflood.core.errors import ConfigError
    from metaflood.model.checks import check_model_sections

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
    save_payload(tmp_path / "renamed.pt", ckpt)
    with pytest.raises(ConfigError, match=r"renamed.pt: .*1 missing.*another version"):
        check_model_sections({"model": {"checkpoint": "renamed.pt"}}, tmp_path)
    ckpt = load_checkpoint(tmp_path / "old.pt")
    head = "joint_decoder.classifier.weight"
    ckpt["state_dict"][head] = torch.cat([ckpt["state_dict"][head]] * 2)
    save_payload(tmp_path / "reshaped.pt", ckpt)
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
    from metaflood.model.baselines import EarlyFusionNet
    from metaflood.model.encoding import InputEncoding

    enc = InputEncoding.earthmiss(sar_full_scale_db=3.0, optical_full_scale=0.2)
    assert InputEncoding.from_dict(enc.to_dict()) == enc
    path = tmp_path / "ef.pt"
    save_checkpoint(path, EarlyFusionNet(TINY), NORM, encoding=enc, architecture="early_fusion")
    ckpt = load_checkpoint(path)
    assert isinstance(build_model(ckpt), EarlyFusionNet)
    with pytest.raises(ModelError, match="early_fusion baseline checkpoint"):
        load_for_inference(path, available_bands=DATA_BANDS)


def test_training_state_is_written_from_the_cpu():
    from metaflood.model.checkpoint import on_cpu

    tree = {"a": torch.ones(2), "b": [torch.zeros(1), (torch.ones(1), 3)], "c": None}
    moved = on_cpu(tree)
    assert moved["c"] is None and moved["b"][1][1] == 3 and isinstance(moved["b"][1], tuple)
    assert torch.equal(moved["a"], tree["a"]) and moved["a"].device.type == "cpu"


def test_initialisers_do_nothing_while_a_model_is_built_then_work_again():
    from metaflood.model.checkpoint import without_initialisation

    weights = torch.zeros(4, 4)
    with without_initialisation():
        assert torch.nn.init.normal_(weights) is weights and not weights.any()
    torch.nn.init.normal_(weights)
    assert weights.any()

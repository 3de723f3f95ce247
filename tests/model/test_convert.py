"""The authors' MetaRS checkpoint converted to ours: names, shapes, strict loading.

The authors' layout is written here independently of our model code: their ResNet
bodies are torchvision's (en_sar/en_rgb/en_content + ".resnet."), their fusion units
segmentation-models-pytorch SCSE modules inside `Project`/`Fuse`, their decoders
nn.Sequential(FPN, AssymetricDecoder, Conv2d, Upsampling), as in their training code.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision

from metaflood.cli import main
from metaflood.core.errors import ModelError
from metaflood.core.settings import section_defaults
from metaflood.model.checkpoint import build_model, load_checkpoint, load_for_inference
from metaflood.model.convert import AUTHORS_NORMALIZATION, convert_authors_checkpoint

# The authors' input scales as the schema fills them (model.authors_checkpoint).
_AUTHORS = section_defaults("model", {"authors_checkpoint": {"path": "a.pth"}})[
    "authors_checkpoint"
]
SCALES = {k: _AUTHORS[k] for k in ("sar_full_scale_db", "optical_full_scale")}

FUSE_CHANNELS = (256, 512, 1024, 2048)


def _bn(sd: dict, prefix: str, c: int) -> None:
    sd[f"{prefix}.weight"] = torch.rand(c)
    sd[f"{prefix}.bias"] = torch.randn(c)
    sd[f"{prefix}.running_mean"] = torch.randn(c)
    sd[f"{prefix}.running_var"] = torch.rand(c) + 0.5
    sd[f"{prefix}.num_batches_tracked"] = torch.tensor(15000)


def authors_state_dict(num_classes: int = 8) -> dict[str, torch.Tensor]:
    sd: dict[str, torch.Tensor] = {}
    for name, in_ch, has_bn1 in (
        ("en_sar", 1, True),
        ("en_rgb", 3, True),
        ("en_content", 1, False),
    ):
        for key, value in torchvision.models.resnet50().state_dict().items():
            if key.startswith("fc.") or (not has_bn1 and key.startswith("bn1.")):
                continue  # fc popped; the content encoder's bn1 is instance norm
            if key == "conv1.weight":
                value = torch.empty(64, in_ch, 7, 7)
            sd[f"{name}.resnet.{key}"] = (
                torch.randn(value.shape) if value.is_floating_point() else value
            )
    sd["rgb_conv1.weight"] = torch.randn(64, 3, 7, 7)

    def scse(prefix: str, c: int) -> None:
        sd[f"{prefix}.cSE.1.weight"] = torch.randn(c // 16, c, 1, 1)
        sd[f"{prefix}.cSE.1.bias"] = torch.randn(c // 16)
        sd[f"{prefix}.cSE.3.weight"] = torch.randn(c, c // 16, 1, 1)
        sd[f"{prefix}.cSE.3.bias"] = torch.randn(c)
        sd[f"{prefix}.sSE.0.weight"] = torch.randn(1, c, 1, 1)
        sd[f"{prefix}.sSE.0.bias"] = torch.randn(1)

    for module in ("Project", "Fuse"):
        for i, c in enumerate(FUSE_CHANNELS):
            unit = f"{module}.fuse_module_list.{i}"
            scse(f"{unit}.scse_1", c)
            scse(f"{unit}.scse_2", c)
            sd[f"{unit}.convblk.conv.weight"] = torch.randn(c, 2 * c, 1, 1)
            _bn(sd, f"{unit}.convblk.bn", c)
            scse(f"{unit}.scse", c)

    def decoder(prefix: str, channels) -> None:
        for i, c in enumerate(channels, start=1):
            sd[f"{prefix}.0.fpn_inner{i}.0.weight"] = torch.randn(256, c, 1, 1)
            sd[f"{prefix}.0.fpn_layer{i}.0.weight"] = torch.randn(256, 256, 3, 3)
        for i, layers in enumerate((1, 1, 2, 3)):  # strides 4, 8, 16, 32 to stride 4
            for j in range(layers):
                sd[f"{prefix}.1.blocks.{i}.{j}.0.weight"] = torch.randn(
                    128, 256 if j == 0 else 128, 3, 3
                )
                _bn(sd, f"{prefix}.1.blocks.{i}.{j}.1", 128)
        sd[f"{prefix}.2.weight"] = torch.randn(num_classes, 128, 1, 1)
        sd[f"{prefix}.2.bias"] = torch.randn(num_classes)

    decoder("decoder_sar", [2 * c for c in FUSE_CHANNELS])
    decoder("decoder_rgb", [2 * c for c in FUSE_CHANNELS])
    decoder("decoder", FUSE_CHANNELS)
    return sd


@pytest.fixture(scope="module")
def authors_file(tmp_path_factory):
    torch.manual_seed(0)
    sd = authors_state_dict()
    path = tmp_path_factory.mktemp("authors") / "earthmiss_metars.pth"
    # The `ever` trainer's layout: DDP-prefixed weights, the step, the optimizer state.
    opt = {"state": {}, "param_groups": [{"lr": 1e-4, "betas": (0.9, 0.999), "params": [0]}]}
    torch.save(
        {"model": {f"module.{k}": v for k, v in sd.items()}, "global_step": 13239, "opt": opt}, path
    )
    yield path, sd
    path.unlink()  # 450 MB: not left for the rest of the session (CI's disk is finite)


# Before the conversion below: one 450 MB state dict fewer on disk at a time.
def test_incomplete_or_foreign_weights_are_refused(authors_file, tmp_path):
    _, sd = authors_file
    broken = dict(sd)
    broken.pop("Fuse.fuse_module_list.1.scse_2.sSE.0.weight")
    broken["extra.weight"] = torch.zeros(1)
    path = tmp_path / "broken.pth"
    torch.save({"model": broken}, path)
    with pytest.raises(
        ModelError, match=r"no rule maps.*extra.weight.*have no source.*fuse.units.1.gate_b"
    ):
        convert_authors_checkpoint(path, tmp_path / "out.pt", **SCALES)
    assert not (tmp_path / "out.pt").exists()
    path.unlink()
    six = {
        k: (v[:6] if k.startswith(("decoder_sar.2", "decoder_rgb.2", "decoder.2")) else v)
        for k, v in sd.items()
    }
    torch.save(six, tmp_path / "six.pth")
    with pytest.raises(ModelError, match="predicts 6 classes"):
        convert_authors_checkpoint(tmp_path / "six.pth", tmp_path / "out.pt", **SCALES)
    (tmp_path / "six.pth").unlink()
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(
        ModelError, match="junk.pth: not a PyTorch checkpoint: its contents are not"
    ):
        convert_authors_checkpoint(tmp_path / "junk.pth", tmp_path / "out.pt", **SCALES)


@pytest.fixture(scope="module")
def converted(authors_file, tmp_path_factory):
    src, _ = authors_file
    out = tmp_path_factory.mktemp("ours") / "metars_earthmiss.pt"
    torch.set_num_threads(2)
    assert main(["convert-checkpoint", "--src", str(src), "--out", str(out)]) == 0
    yield out
    out.unlink()


def test_converted_checkpoint_loads_strictly_with_their_values(authors_file, converted):
    _, theirs = authors_file
    ckpt = load_checkpoint(converted)
    model = build_model(ckpt, converted)  # load_state_dict(strict=True) inside
    cfg = model.config
    assert (cfg.backbone, cfg.width, cfg.fpn_channels, cfg.decoder_channels) == (
        "resnet50",
        None,
        256,
        128,
    )
    assert cfg.sar_bands == ["VV"] and cfg.optical_bands == ["red", "green", "blue"]
    ours = model.state_dict()
    pairs = {
        "meta_encoder.conv1.weight": "en_content.resnet.conv1.weight",
        "meta_encoder.optical_conv1.weight": "rgb_conv1.weight",
        "meta_encoder.layer3.5.bn3.running_var": "en_content.resnet.layer3.5.bn3.running_var",
        "sar_encoder.layer4.2.downsample.1.weight": None,
        "optical_encoder.bn1.running_mean": "en_rgb.resnet.bn1.running_mean",
        "project.units.2.gate_a.channel_gate.1.weight": (
            "Project.fuse_module_list.2.scse_1.cSE.1.weight"
        ),
        "project.units.0.reduce.1.running_var": "Project.fuse_module_list.0.convblk.bn.running_var",
        "fuse.units.3.gate_out.spatial_gate.0.bias": "Fuse.fuse_module_list.3.scse.sSE.0.bias",
        "sar_decoder.fpn.lateral.3.weight": "decoder_sar.0.fpn_inner4.0.weight",
        "optical_decoder.fpn.output.0.weight": "decoder_rgb.0.fpn_layer1.0.weight",
        "joint_decoder.merge.branches.3.2.1.weight": "decoder.1.blocks.3.2.1.weight",
        "joint_decoder.classifier.bias": "decoder.2.bias",
    }
    for key, their_key in pairs.items():
        if their_key is not None:
            assert torch.equal(ours[key], theirs[their_key]), key
    assert len(ours) == len(theirs)
    assert ckpt["source"]["global_step"] == 13239 and len(ckpt["source"]["sha256"]) == 64
    assert ckpt["normalization"] == AUTHORS_NORMALIZATION.to_dict()
    assert ckpt["input_encoding"]["sar"]["kind"] == "sar_amplitude_u8"


def test_converted_model_runs_on_workflow_bands(converted):
    loaded = load_for_inference(
        converted, available_bands=["VV", "VH", "blue", "green", "red", "nir"]
    )
    sar = loaded.prepare(np.full((1, 64, 64), -10.0, np.float32), "sar")  # dB
    opt = loaded.prepare(np.full((3, 64, 64), 0.1, np.float32), "optical")  # reflectance
    # -10 dB is amplitude 0.316: 80.6 on their 8-bit scale; 0.1 reflectance is 127.5.
    np.testing.assert_allclose(sar[0, 0, 0], (255 * 10 ** (-0.5) - 63.3005) / 68.2041, rtol=1e-4)
    np.testing.assert_allclose(opt[0, 0, 0], (127.5 - 111.9726) / 72.9709, rtol=1e-4)
    with torch.inference_mode():
        out = loaded.model(
            torch.from_numpy(sar[None]), torch.from_numpy(opt[None]), heads=("joint", "sar")
        )
    assert out["joint"].shape == out["sar"].shape == (1, 8, 64, 64)  # random weights: no values

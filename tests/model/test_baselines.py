"""Baselines and ImageNet initialisation from a local weights file."""

from __future__ import annotations

import pytest
import torch
import torchvision

from metaflood.core.errors import ModelError
from metaflood.model import MetaRS, MetaRSConfig
from metaflood.model.baselines import EarlyFusionNet, SingleModalityNet, drop_modalities
from metaflood.model.pretrained import load_imagenet_weights

TINY = MetaRSConfig(width=8, fpn_channels=16, decoder_channels=16)


def test_sar_only_network_ignores_optical():
    torch.manual_seed(0)
    net = SingleModalityNet(TINY).eval()
    sar = torch.randn(1, 2, 64, 64)
    with torch.inference_mode():
        a = net(sar, torch.randn(1, 4, 64, 64), heads=("sar", "joint"))
        b = net(sar, None, heads=("sar",))
    assert torch.equal(a["sar"], b["sar"]) and torch.equal(a["joint"], a["sar"])
    with pytest.raises(ValueError, match="serves"):
        net(sar, None, heads=("optical",))


def test_early_fusion_zero_fills_the_missing_modality():
    torch.manual_seed(0)
    net = EarlyFusionNet(TINY).eval()
    sar, opt = torch.randn(2, 2, 50, 70), torch.randn(2, 4, 50, 70)
    with torch.inference_mode():
        out = net(sar, opt, heads=("sar", "optical", "joint"))
        zero_opt = net(sar, torch.zeros_like(opt), heads=("joint",))["joint"]
        zero_sar = net(torch.zeros_like(sar), opt, heads=("joint",))["joint"]
    assert out["joint"].shape == (2, 8, 50, 70)
    torch.testing.assert_close(out["sar"], zero_opt)
    torch.testing.assert_close(out["optical"], zero_sar)


def test_modality_dropout_keeps_one_modality_per_sample():
    g = torch.Generator().manual_seed(0)
    sar, opt = torch.ones(300, 2, 4, 4), torch.ones(300, 4, 4, 4)
    s, o = drop_modalities(sar, opt, g)
    kept_sar, kept_opt = s.flatten(1).amax(1) > 0, o.flatten(1).amax(1) > 0
    assert (kept_sar | kept_opt).all()
    for share in (kept_sar & kept_opt, ~kept_sar, ~kept_opt):
        assert 0.25 < share.float().mean() < 0.42


@pytest.fixture(scope="module")
def resnet18_weights(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("imagenet") / "resnet18.pth"
    torch.save(torchvision.models.resnet18().state_dict(), path)
    return path


def test_imagenet_initialisation_of_every_body(resnet18_weights):
    source = torch.load(resnet18_weights, weights_only=True)
    cfg = MetaRSConfig(width=None, fpn_channels=16, decoder_channels=16)
    net = MetaRS(cfg)
    lines = load_imagenet_weights(net, resnet18_weights)
    assert len(lines) == 3
    rgb = source["conv1.weight"]
    summed = rgb.sum(dim=1)
    # SAR stems: the summed RGB kernels shared by VV and VH.
    for stem in (net.meta_encoder.conv1.weight, net.sar_encoder.conv1.weight):
        torch.testing.assert_close(stem.sum(dim=1), summed)
    # Optical stems: blue, green, red by name, NIR the mean; scaled by 3/4.
    opt = net.optical_encoder.conv1.weight
    torch.testing.assert_close(opt[:, 2], rgb[:, 0] * 0.75)  # red
    torch.testing.assert_close(opt[:, 0], rgb[:, 2] * 0.75)  # blue
    torch.testing.assert_close(opt[:, 3], rgb.mean(dim=1) * 0.75)
    torch.testing.assert_close(
        net.meta_encoder.layer3[1].conv2.weight, source["layer3.1.conv2.weight"]
    )
    torch.testing.assert_close(net.sar_encoder.bn1.running_var, source["bn1.running_var"])


def test_imagenet_weights_need_standard_widths(resnet18_weights):
    with pytest.raises(ModelError, match="width null"):
        load_imagenet_weights(MetaRS(TINY), resnet18_weights)
    sar_net = SingleModalityNet(MetaRSConfig(width=None, fpn_channels=16, decoder_channels=16))
    assert load_imagenet_weights(sar_net, resnet18_weights)[0].startswith("pretrained: encoder")

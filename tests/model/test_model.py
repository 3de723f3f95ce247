"""The MetaRS network: shapes, shared meta encoder, head selection, losses."""

from __future__ import annotations

import pytest
import torch

from metaflood.core.errors import ModelError
from metaflood.model import MetaRS, MetaRSConfig, metars_losses
from metaflood.model.backbone import MetaEncoder, ResNetEncoder
from metaflood.model.decoder import to_input_resolution
from metaflood.model.fusion import SCSE, FusionUnit

TINY = MetaRSConfig(width=8, fpn_channels=16, decoder_channels=16)


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(2)
    torch.manual_seed(0)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return MetaRS(TINY)


def _inputs(n=2, size=64):
    return torch.randn(n, 2, size, size), torch.randn(n, 4, size, size)


def test_encoder_keeps_resnet_names_and_strides():
    enc = ResNetEncoder("resnet18", 8, in_chans=2)
    names = set(enc.state_dict())
    for key in ("conv1.weight", "bn1.running_mean", "layer1.0.conv1.weight", "layer4.1.bn2.bias"):
        assert key in names
    assert not any(k.startswith(("fc.", "global_pool")) for k in names)
    feats = enc(torch.randn(1, 2, 64, 64))
    assert [tuple(f.shape) for f in feats] == [
        (1, 8, 16, 16),
        (1, 16, 8, 8),
        (1, 32, 4, 4),
        (1, 64, 2, 2),
    ]


def test_standard_width_is_torchvision_resnet():
    enc = ResNetEncoder("resnet50", None, in_chans=3)
    assert enc.channels == (256, 512, 1024, 2048)


def test_meta_encoder_shares_body_with_distinct_stems():
    enc = MetaEncoder("resnet18", 8, sar_chans=2, optical_chans=4)
    assert enc.stem("sar") is enc.conv1
    assert enc.stem("optical") is enc.optical_conv1
    assert enc.conv1.weight.shape[1] == 2 and enc.optical_conv1.weight.shape[1] == 4
    # Instance norm without affine parameters: nothing modality-specific to learn there.
    x = torch.randn(2, 64, 8, 8) * 3 + 1
    torch.testing.assert_close(enc.bn1(x), torch.nn.functional.instance_norm(x))
    assert not any(k.startswith("bn1.") for k in enc.state_dict())

    used: dict[str, list[int]] = {"sar": [], "optical": []}
    for modality, x in zip(("sar", "optical"), _inputs(1), strict=True):
        params = []
        handle = enc.layer1.register_forward_hook(
            lambda m, i, o, params=params: params.append(id(m[0].conv1.weight))
        )
        out = enc(x, modality)
        handle.remove()
        used[modality] = params
        assert len(out.features) == 4 and len(out.in_maps) == 3
    # The same parameter object serves both modalities.
    assert used["sar"] == used["optical"] == [id(enc.layer1[0].conv1.weight)]


def test_in_maps_are_instance_normalised():
    enc = MetaEncoder("resnet18", 8, sar_chans=2, optical_chans=4)
    out = enc(torch.randn(2, 4, 64, 64) * 7 + 3, "optical")
    stem, l1, l2 = out.in_maps
    assert stem.shape == (2, 64, 32, 32) and l1.shape == (2, 8, 16, 16) and l2.shape[1] == 16
    for m in out.in_maps:
        mean = m.mean(dim=(2, 3))
        var = m.var(dim=(2, 3), unbiased=False)
        assert torch.allclose(mean, torch.zeros_like(mean), atol=1e-4)
        assert torch.allclose(var[var > 1e-3], torch.ones_like(var[var > 1e-3]), atol=1e-2)
    # RobustNet placement: the stage output is the ReLU of its instance-normalised map.
    torch.testing.assert_close(out.features[0], torch.relu(out.in_maps[1]))
    torch.testing.assert_close(out.features[1], torch.relu(out.in_maps[2]))


def test_fusion_keeps_width():
    a, b = torch.randn(2, 16, 8, 8), torch.randn(2, 16, 8, 8)
    assert FusionUnit(16)(a, b).shape == (2, 16, 8, 8)
    assert SCSE(16)(a).shape == a.shape


def test_all_heads_and_features_shapes(model):
    model.train()
    sar, opt = _inputs()
    out = model(sar, opt)
    for head in ("sar", "optical", "joint"):
        assert out[head].shape == (2, 8, 64, 64)
    for modality in ("sar", "optical"):
        assert [f.shape[1] for f in out[f"meta_{modality}"]] == [8, 16, 32, 64]
        assert [f.shape[-1] for f in out[f"meta_{modality}"]] == [16, 8, 4, 2]
        assert len(out[f"in_{modality}"]) == 3
    model.eval()
    with torch.inference_mode():
        out = model(sar, opt)
    assert set(out) == {"sar", "optical", "joint"}


def test_odd_sizes_are_padded_and_cropped(model):
    model.eval()
    with torch.inference_mode():
        out = model(torch.randn(1, 2, 50, 70), torch.randn(1, 4, 50, 70), heads=("joint",))
    assert out["joint"].shape == (1, 8, 50, 70)


def test_probabilities_interpolate_the_stride_4_softmax(model):
    model.eval()
    sar, opt = torch.randn(2, 2, 50, 70), torch.randn(2, 4, 50, 70)  # padded to 64 x 96
    with torch.inference_mode():
        coarse = model(sar, opt, heads=("sar", "joint"), full_resolution=False)
        proba = model.probabilities(sar, opt, ("sar", "joint"))
        logits = model(sar, opt, heads=("sar", "joint"))
    assert set(proba) == {"sar", "joint"}
    for head in ("sar", "joint"):
        assert coarse[head].shape == (2, 8, 16, 24)
        assert proba[head].shape == (2, 8, 50, 70)
        torch.testing.assert_close(proba[head].sum(dim=1), torch.ones(2, 50, 70))
        expected = to_input_resolution(torch.softmax(coarse[head], dim=1))[..., :50, :70]
        torch.testing.assert_close(proba[head], expected)
        # The class taken differs from the full-resolution softmax's only where two
        # classes score alike inside a 4-pixel cell.
        agree = (proba[head].argmax(dim=1) == logits[head].argmax(dim=1)).float().mean()
        assert agree > 0.98, head


def _count_calls(model):
    calls: dict[str, int] = {}
    hooks = []
    for name in (
        "meta_encoder",
        "sar_encoder",
        "optical_encoder",
        "sar_decoder",
        "optical_decoder",
        "joint_decoder",
    ):
        module = getattr(model, name)

        def hook(m, i, o, name=name):
            calls[name] = calls.get(name, 0) + 1

        hooks.append(module.register_forward_hook(hook))
    return calls, hooks


@pytest.mark.parametrize(
    ("heads", "expected"),
    [
        (("sar",), {"meta_encoder": 1, "sar_encoder": 1, "sar_decoder": 1}),
        (("optical",), {"meta_encoder": 1, "optical_encoder": 1, "optical_decoder": 1}),
        (("joint",), {"meta_encoder": 2, "joint_decoder": 1}),
        (
            ("sar", "optical", "joint"),
            {
                "meta_encoder": 2,
                "sar_encoder": 1,
                "optical_encoder": 1,
                "sar_decoder": 1,
                "optical_decoder": 1,
                "joint_decoder": 1,
            },
        ),
    ],
)
def test_only_requested_heads_run(model, heads, expected):
    model.eval()
    calls, hooks = _count_calls(model)
    sar, opt = _inputs(1)
    with torch.inference_mode():
        # An input the heads do not need is not even given.
        needs_sar, needs_opt = {"sar", "joint"} & set(heads), {"optical", "joint"} & set(heads)
        out = model(sar if needs_sar else None, opt if needs_opt else None, heads=heads)
    for h in hooks:
        h.remove()
    assert calls == expected
    assert set(out) == set(heads)


def test_missing_needed_input_and_wrong_bands_are_refused(model):
    model.eval()
    with pytest.raises(ValueError, match="optical"):
        model(torch.randn(1, 2, 32, 32), None, heads=("joint",))
    with pytest.raises(ModelError, match="VV"):
        model(torch.randn(1, 3, 32, 32), None, heads=("sar",))
    with pytest.raises(ValueError, match="differ"):
        model(torch.randn(1, 2, 32, 32), torch.randn(1, 4, 64, 64), heads=("joint",))


def test_losses_are_named_and_decrease_when_overfitting():
    torch.manual_seed(1)
    net = MetaRS(TINY)
    sar, opt = _inputs(2, 32)
    labels = torch.zeros(2, 32, 32, dtype=torch.long)
    labels[:, :, :16] = 3  # water on the left: dark SAR, dark optical
    sar[:, :, :, :16] -= 2
    opt[:, :, :, :16] -= 2
    labels[0, :4, :4] = 255
    opt_ = torch.optim.AdamW(net.parameters(), lr=3e-3)
    net.train()
    history = []
    for _ in range(12):
        terms = metars_losses(net(sar, opt), labels, align_weight=0.1)
        opt_.zero_grad()
        terms["total"].backward()
        opt_.step()
        history.append(terms["total"].item())
    assert set(terms) == {"ce_sar", "ce_optical", "ce_joint", "align", "total"}
    assert history[-1] < 0.7 * history[0]


def test_loss_total_is_sum_and_all_ignored_is_finite():
    logits = torch.randn(1, 8, 4, 4)
    out = {"sar": logits, "joint": logits}
    terms = metars_losses(out, torch.full((1, 4, 4), 255), extra={"other": torch.tensor(0.5)})
    assert terms["ce_sar"].item() == 0.0
    assert terms["total"].item() == pytest.approx(0.5)


def test_config_round_trip_and_unknown_keys():
    cfg = MetaRSConfig(width=16, sar_bands=["VV"])
    assert MetaRSConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ModelError, match="tile"):
        MetaRSConfig.from_dict({"tile": 256})
    assert MetaRSConfig.from_dict({"tile": 256, "width": 16}, ignore_unknown=True).width == 16
    assert MetaRSConfig.authors().backbone == "resnet50"


def test_one_projection_is_shared_by_both_modality_heads(model):
    """The authors' `Project`: the same weights project SAR and optical features."""
    model.eval()
    used = []
    handle = model.project.units[0].register_forward_hook(lambda m, i, o: used.append(id(m)))
    sar, opt = _inputs(1)
    with torch.inference_mode():
        model(sar, opt, heads=("sar", "optical"))
    handle.remove()
    assert len(used) == 2 and used[0] == used[1]
    assert not any(k.startswith(("sar_head", "optical_head")) for k in model.state_dict())


def test_authors_configuration_has_their_parameter_count():
    """ResNet-50 MetaRS with 1 SAR and 3 RGB bands: 113.91 M parameters, as the authors log."""
    cfg = MetaRSConfig.authors(sar_bands=["VV"], optical_bands=["red", "green", "blue"])
    with torch.device("meta"):
        net = MetaRS(cfg)
    assert round(sum(p.numel() for p in net.parameters()) / 1e6, 2) == 113.91


def test_folded_batch_norms_give_the_same_outputs():
    from metaflood.model.fold import fold_batch_norms

    torch.manual_seed(3)
    net = MetaRS(TINY)
    net.train()
    for _ in range(2):  # running statistics that are not the identity
        net(*_inputs(2, 64))
    net.eval()
    sar, opt = _inputs(1, 64)
    with torch.inference_mode():
        before = net(sar, opt, heads=("sar", "optical", "joint"))
    assert fold_batch_norms(net) > 50
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())
    with torch.inference_mode():
        after = net(sar, opt, heads=("sar", "optical", "joint"))
    for head in before:
        torch.testing.assert_close(after[head], before[head], rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="eval mode"):
        fold_batch_norms(MetaRS(TINY).train())

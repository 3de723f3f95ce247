"""The MMR regulariser: covariances, calibration by exact 1-D k-means, the masked penalty."""

from __future__ import annotations

import pytest
import torch

from metaflood.model import MetaRS, MetaRSConfig, metars_losses
from metaflood.model.mmr import MMRCalibration, calibrate, channel_covariance, mmr_penalty


def test_covariance_of_instance_normalised_maps():
    torch.manual_seed(0)
    f = torch.nn.functional.instance_norm(torch.randn(3, 5, 8, 8))
    cov = channel_covariance(f, eps=1e-5)
    x = f.reshape(3, 5, 64)
    expected = torch.stack([torch.cov(x[b]) for b in range(3)])  # H*W - 1, mean-centred
    torch.testing.assert_close(cov, expected + 1e-5 * torch.eye(5), rtol=1e-4, atol=1e-5)


def _maps(n: int, flip: bool, generator: torch.Generator) -> torch.Tensor:
    """Channels 0 and 1 move together in one modality and oppositely in the other."""
    base = torch.randn(n, 6, 16, 16, generator=generator)
    base[:, 1] = (-1 if flip else 1) * base[:, 0] + 0.1 * base[:, 1]
    return torch.nn.functional.instance_norm(base)


def test_calibration_marks_the_entries_that_differ_between_modalities():
    g = torch.Generator().manual_seed(1)
    calib = MMRCalibration([6])
    for _ in range(3):
        calib.add([_maps(4, False, g)], [_maps(4, True, g)])
    assert calib.images == 12
    (mask,) = calib.masks(clusters=3)
    assert mask.dtype == torch.bool and mask.shape == (6, 6)
    assert mask[0, 1]  # the modality-sensitive pair
    assert not mask.tril().any()  # upper triangle only, no diagonal
    assert int(mask.sum()) < 15 // 2  # most pairs are alike in both modalities


def test_penalty_is_mean_abs_covariance_over_sensitive_entries():
    g = torch.Generator().manual_seed(2)
    s, o = _maps(2, False, g), _maps(2, True, g)
    mask = torch.zeros(6, 6, dtype=torch.bool)
    mask[0, 1] = mask[2, 3] = True
    expected = []
    for f in (s, o):
        cov = channel_covariance(f)
        expected.append(((cov[:, 0, 1].abs() + cov[:, 2, 3].abs()) / 2).mean())
    value = mmr_penalty([s], [o], [mask])
    torch.testing.assert_close(value, torch.stack(expected).mean())
    assert mmr_penalty([s], [o], [torch.zeros(6, 6, dtype=torch.bool)]).item() == 0.0


def test_calibration_through_the_meta_encoder_and_the_loss_term():
    torch.manual_seed(0)
    net = MetaRS(MetaRSConfig(width=8, fpn_channels=16, decoder_channels=16))
    net.train()
    batches = [(torch.randn(2, 2, 64, 64), torch.randn(2, 4, 64, 64)) for _ in range(2)]
    masks = calibrate(net.meta_encoder, batches, clusters=4)
    assert net.meta_encoder.training  # restored
    assert [m.shape[0] for m in masks] == list(net.meta_encoder.in_channels_list)
    assert all(0 < int(m.sum()) < m.shape[0] * (m.shape[0] - 1) // 2 for m in masks)
    out = net(*batches[0])
    labels = torch.randint(0, 8, (2, 64, 64))
    terms = metars_losses(out, labels, align_weight=1.25, mmr_masks=masks)
    assert terms["mmr"].item() > 0
    terms["total"].backward()
    assert net.meta_encoder.conv1.weight.grad.abs().sum() > 0
    without = metars_losses(out, labels, align_weight=0.1)
    assert "mmr" not in without


def test_calibration_needs_images():
    with pytest.raises(ValueError, match="no images"):
        MMRCalibration([4]).masks()

"""Meta-modal representation regulariser (MMR).

After a warm-up, a calibration pass measures, for every channel pair of each
instance-normalised layer of the meta encoder, how much its covariance differs between
the SAR and the optical view of the same place. Pairs whose covariance varies between
the modalities (all but the lowest-variance cluster of an exact 1-D k-means) are
"modality-sensitive"; from then on their covariances are pushed towards zero, so the
shared representation keeps what both modalities agree on and transfers when one is
missing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import kmeans1d
import torch

# Added to the covariance diagonal (as the authors do); it keeps constant channels sane.
COVARIANCE_EPS = 1e-5


def channel_covariance(f: torch.Tensor, eps: float = COVARIANCE_EPS) -> torch.Tensor:
    """(B, C, H, W) instance-normalised maps -> (B, C, C) channel covariances.

    The maps have zero mean per channel already, so the second moment is the
    covariance; it is divided by H*W - 1 and gets `eps` on the diagonal.
    """
    b, c, h, w = f.shape
    if h * w < 2:
        raise ValueError(f"a {h}x{w} map has too few positions for a covariance")
    x = f.reshape(b, c, h * w).float()
    cov = torch.bmm(x, x.transpose(1, 2)) / (h * w - 1)
    return cov + eps * torch.eye(c, device=f.device, dtype=cov.dtype)


def _upper(c: int, device: torch.device) -> torch.Tensor:
    return torch.ones(c, c, dtype=torch.bool, device=device).triu(diagonal=1)


class MMRCalibration:
    """Accumulates, per layer, the between-modality variance of each covariance entry."""

    def __init__(self, channels: Sequence[int]):
        self.channels = tuple(channels)
        self.sums: list[torch.Tensor | None] = [None] * len(self.channels)
        self.images = 0

    @torch.no_grad()
    def add(self, in_sar: Sequence[torch.Tensor], in_optical: Sequence[torch.Tensor]) -> None:
        """One batch of instance-normalised maps of both modalities (same places)."""
        if len(in_sar) != len(self.channels) or len(in_optical) != len(self.channels):
            raise ValueError(f"expected {len(self.channels)} layers of maps per modality")
        for i, (s, o) in enumerate(zip(in_sar, in_optical, strict=True)):
            cov = torch.stack([channel_covariance(s), channel_covariance(o)])  # 2, B, C, C
            var = cov.var(dim=0, unbiased=True)  # between the two modalities, per image
            var = var[:, _upper(var.shape[-1], var.device)].sum(dim=0).cpu()
            self.sums[i] = var if self.sums[i] is None else self.sums[i] + var
        self.images += in_sar[0].shape[0]

    def masks(self, clusters: int = 10) -> list[torch.Tensor]:
        """(C, C) boolean masks of modality-sensitive entries (upper triangle only)."""
        if self.images == 0:
            raise ValueError("MMR calibration saw no images")
        out = []
        for c, total in zip(self.channels, self.sums, strict=True):
            mean_var = (total / self.images).double().tolist()
            k = max(1, min(int(clusters), len(mean_var)))
            labels, _ = kmeans1d.cluster(mean_var, k)  # centroids ascending: 0 = lowest
            sensitive = torch.tensor(labels) != 0
            mask = torch.zeros(c, c, dtype=torch.bool)
            mask[_upper(c, mask.device)] = sensitive
            out.append(mask)
        return out


def mmr_penalty(
    in_sar: Sequence[torch.Tensor],
    in_optical: Sequence[torch.Tensor],
    masks: Sequence[torch.Tensor],
) -> torch.Tensor:
    """Mean over layers and modalities of the mean |covariance| of the sensitive entries."""
    terms = []
    for s, o, mask in zip(in_sar, in_optical, masks, strict=True):
        mask = mask.to(s.device)
        n = int(mask.sum())
        for f in (s, o):
            if n == 0:
                terms.append(f.new_zeros(()))
                continue
            cov = channel_covariance(f)
            terms.append(cov[:, mask].abs().sum(dim=1).div(n).mean())
    if not terms:
        raise ValueError("no layers to regularise")
    return torch.stack(terms).mean()


@torch.no_grad()
def calibrate(
    meta_encoder: torch.nn.Module,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    clusters: int = 10,
) -> list[torch.Tensor]:
    """Run (sar, optical) batches through the meta encoder in eval mode; return the masks."""
    was_training = meta_encoder.training
    meta_encoder.eval()
    calibration = MMRCalibration(meta_encoder.in_channels_list)
    try:
        for sar, optical in batches:
            calibration.add(
                meta_encoder(sar, "sar").in_maps, meta_encoder(optical, "optical").in_maps
            )
    finally:
        meta_encoder.train(was_training)
    return calibration.masks(clusters)

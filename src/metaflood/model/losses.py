"""Training losses of MetaRS, returned as named terms so the log shows each one."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F

from metaflood.classes import IGNORE_INDEX
from metaflood.model.metars import HEADS
from metaflood.model.mmr import mmr_penalty

# Meta-feature scales compared by the alignment loss: the two deepest (strides 16, 32),
# where the representation is semantic enough to be modality-independent.
ALIGN_SCALES = (2, 3)


def segmentation_ce(
    logits: torch.Tensor, labels: torch.Tensor, ignore_index: int = IGNORE_INDEX
) -> torch.Tensor:
    """Mean cross-entropy over labelled pixels; 0 (not NaN) for a batch with none."""
    labels = labels.long()
    total = F.cross_entropy(logits, labels, ignore_index=ignore_index, reduction="sum")
    count = (labels != ignore_index).sum().clamp(min=1)
    return total / count


def alignment_loss(meta_sar: list[torch.Tensor], meta_optical: list[torch.Tensor]) -> torch.Tensor:
    """Mean squared difference of SAR and optical meta features at the deepest scales."""
    terms = [F.mse_loss(meta_sar[i], meta_optical[i]) for i in ALIGN_SCALES]
    return torch.stack(terms).mean()


def metars_losses(
    outputs: Mapping[str, Any],
    labels: torch.Tensor,
    *,
    align_weight: float = 0.1,
    ignore_index: int = IGNORE_INDEX,
    mmr_masks: Sequence[torch.Tensor] | None = None,
    mmr_weight: float = 1.0,
    extra: Mapping[str, torch.Tensor] | None = None,
) -> dict[str, torch.Tensor]:
    """Named loss terms ("ce_sar", "ce_optical", "ce_joint", "align", "mmr", extras) and
    "total". The MMR term is there once calibration has produced `mmr_masks`."""
    terms: dict[str, torch.Tensor] = {}
    for head in HEADS:
        if head in outputs:
            terms[f"ce_{head}"] = segmentation_ce(outputs[head], labels, ignore_index)
    if align_weight > 0 and "meta_sar" in outputs and "meta_optical" in outputs:
        terms["align"] = align_weight * alignment_loss(outputs["meta_sar"], outputs["meta_optical"])
    if mmr_masks is not None and mmr_weight > 0 and "in_sar" in outputs and "in_optical" in outputs:
        penalty = mmr_penalty(outputs["in_sar"], outputs["in_optical"], mmr_masks)
        terms["mmr"] = mmr_weight * penalty
    if extra:
        terms.update(extra)
    if not terms:
        raise ValueError("no loss terms: the outputs hold no head logits")
    terms["total"] = torch.stack(list(terms.values())).sum()
    return terms

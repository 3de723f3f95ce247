"""Training losses of MetaRS, returned as named terms so the log shows each one.

Later terms (the MMR regulariser) are passed in through `extra` and simply join the sum.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F

from metaflood.classes import IGNORE_INDEX
from metaflood.model.metars import HEADS

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
    extra: Mapping[str, torch.Tensor] | None = None,
) -> dict[str, torch.Tensor]:
    """Named loss terms ("ce_sar", "ce_optical", "ce_joint", "align", extras) and "total"."""
    terms: dict[str, torch.Tensor] = {}
    for head in HEADS:
        if head in outputs:
            terms[f"ce_{head}"] = segmentation_ce(outputs[head], labels, ignore_index)
    if align_weight > 0 and "meta_sar" in outputs and "meta_optical" in outputs:
        terms["align"] = align_weight * alignment_loss(outputs["meta_sar"], outputs["meta_optical"])
    if extra:
        terms.update(extra)
    if not terms:
        raise ValueError("no loss terms: the outputs hold no head logits")
    terms["total"] = torch.stack(list(terms.values())).sum()
    return terms

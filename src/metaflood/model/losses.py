"""Training losses of MetaRS, returned as named terms so the log shows each one."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F

from metaflood.core.classes import IGNORE_INDEX, WATER
from metaflood.model.metars import HEADS, HEADS_READING
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


def water_bce(
    logits: torch.Tensor, water: torch.Tensor, ignore_index: int = IGNORE_INDEX
) -> torch.Tensor:
    """Binary cross-entropy of the water class's probability against a water/not-water
    label (a partial label: "not water" does not say which other class), over labelled
    pixels; 0 for a batch with none."""
    labelled = water != ignore_index
    if not labelled.any():
        return logits.new_zeros(())
    log_p = F.log_softmax(logits.float(), dim=1)
    log_water = log_p[:, WATER][labelled]
    log_not_water = torch.log1p(-log_water.exp().clamp(max=1 - 1e-6))
    wet = water[labelled] == 1
    return -torch.where(wet, log_water, log_not_water).mean()


def head_labels(labels: torch.Tensor, present: torch.Tensor | None, head: str) -> torch.Tensor:
    """Labels a head learns from: none from a sample lacking a modality the head reads."""
    if present is None:
        return labels
    reads = torch.ones(present.shape[0], dtype=torch.bool, device=present.device)
    for index, modality in enumerate(("sar", "optical")):
        if head in HEADS_READING[modality]:
            reads &= present[:, index]
    if bool(reads.all()):
        return labels
    return torch.where(reads[:, None, None], labels, torch.full_like(labels, IGNORE_INDEX))


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
    water: torch.Tensor | None = None,
    present: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """Named loss terms ("ce_sar", "ce_optical", "ce_joint", "water_<head>", "align",
    "mmr", extras) and "total". The MMR term is there once calibration has produced
    `mmr_masks`. With `water` (partial water labels) each head also learns the water
    class from them; with `present` ((batch, 2): SAR, optical) a head learns nothing from
    a sample lacking a modality it reads, and the cross-modal terms see only samples
    with both."""
    terms: dict[str, torch.Tensor] = {}
    for head in HEADS:
        if head in outputs:
            head_label = head_labels(labels, present, head)
            terms[f"ce_{head}"] = segmentation_ce(outputs[head], head_label, ignore_index)
            if water is not None:
                head_water = head_labels(water, present, head)
                terms[f"water_{head}"] = water_bce(outputs[head], head_water, ignore_index)
    both = None if present is None else present.all(dim=1)
    if both is not None and bool(both.all()):
        both = None  # every sample has both: no selection needed

    def paired(features: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        return list(features) if both is None else [f[both] for f in features]

    cross_modal = both is None or bool(both.any())
    if align_weight > 0 and "meta_sar" in outputs and "meta_optical" in outputs and cross_modal:
        terms["align"] = align_weight * alignment_loss(
            paired(outputs["meta_sar"]), paired(outputs["meta_optical"])
        )
    if (
        mmr_masks is not None
        and mmr_weight > 0
        and "in_sar" in outputs
        and "in_optical" in outputs
        and cross_modal
    ):
        penalty = mmr_penalty(paired(outputs["in_sar"]), paired(outputs["in_optical"]), mmr_masks)
        terms["mmr"] = mmr_weight * penalty
    if extra:
        terms.update(extra)
    if not terms:
        raise ValueError("no loss terms: the outputs hold no head logits")
    terms["total"] = torch.stack(list(terms.values())).sum()
    return terms

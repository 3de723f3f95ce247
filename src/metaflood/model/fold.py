"""Batch norms folded into the convolutions before them, for inference.

In eval mode a batch norm is a fixed per-channel affine map, so it can be merged into
the weights and bias of the convolution it follows; inference then skips a pass over
every feature map. Only for a model in eval mode: training needs the batch norms.
"""

from __future__ import annotations

from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

# (convolution, batch norm) attribute pairs inside a ResNet block or stem.
BLOCK_PAIRS = (("conv1", "bn1"), ("conv2", "bn2"), ("conv3", "bn3"))


def _fold(parent: nn.Module, conv_name: str, bn_name: str) -> int:
    conv, bn = getattr(parent, conv_name, None), getattr(parent, bn_name, None)
    if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
        setattr(parent, conv_name, fuse_conv_bn_eval(conv, bn))
        setattr(parent, bn_name, nn.Identity())
        return 1
    return 0


def fold_batch_norms(model: nn.Module) -> int:
    """Fold in place every conv -> batch norm pair the model's modules use; returns how many."""
    if model.training:
        raise ValueError("batch norms can only be folded into a model in eval mode")
    folded = 0
    for module in list(model.modules()):
        for conv_name, bn_name in BLOCK_PAIRS:
            folded += _fold(module, conv_name, bn_name)
        if isinstance(module, nn.Sequential):  # downsample, fusion and decoder blocks
            for i in range(len(module) - 1):
                folded += _fold(module, str(i), str(i + 1))
    return folded

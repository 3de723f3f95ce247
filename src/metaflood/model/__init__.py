"""The MetaRS network, its parts and its losses."""

from metaflood.model.backbone import MetaEncoder, MetaFeatures, ResNetEncoder
from metaflood.model.losses import metars_losses
from metaflood.model.metars import HEADS, MetaRS, MetaRSConfig

__all__ = [
    "HEADS",
    "MetaEncoder",
    "MetaFeatures",
    "MetaRS",
    "MetaRSConfig",
    "ResNetEncoder",
    "metars_losses",
]

"""metaflood: flood mapping with a missing modality (MetaRS land cover, pre/post change)."""

__version__ = "0.1.0"

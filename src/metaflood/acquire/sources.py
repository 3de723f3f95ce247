"""Where each modality's scenes come from, and how their assets map to our bands."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from metaflood.errors import ConfigError


@dataclass(frozen=True)
class SourceSpec:
    name: str
    modality: str
    catalog: str
    collection: str
    bands: dict[str, str] = field(default_factory=dict)  # our band name -> asset key
    mask_asset: str | None = None  # Sentinel-2 SCL-like classification asset
    sar_scale: str = "linear"  # "linear" power or "db"


def _demo(modality: str, demo_catalog: str | None, key: str) -> SourceSpec:
    from metaflood.demo_catalog import OPTICAL_COLLECTION, SAR_COLLECTION

    if not demo_catalog or not Path(demo_catalog).exists():
        raise ConfigError(f"{key}: source demo needs the generated catalog ({demo_catalog})")
    if modality == "sar":
        return SourceSpec("demo", "sar", demo_catalog, SAR_COLLECTION, {"VV": "vv", "VH": "vh"})
    bands = {"blue": "B02", "green": "B03", "red": "B04", "nir": "B08"}
    return SourceSpec("demo", "optical", demo_catalog, OPTICAL_COLLECTION, bands, "SCL")


def resolve_source(cfg: dict, modality: str, demo_catalog: str | None, key: str) -> SourceSpec:
    if cfg["source"] == "demo":
        return _demo(modality, demo_catalog, key)
    raise ConfigError(f"{key}.source: unknown source {cfg['source']!r}")

"""Where each modality's scenes come from, and how their assets map to our bands.

One `SourceSpec` per event and modality, built from the configuration (and a preset),
checked before any job starts so that a wrong key stops the run with its name.

Whether a modality must be found (`required`): true (both periods), false, "pre" or
"post". By default SAR is required in both periods (it sees through cloud, and the flood
confidence rests on its pre/post change), optical is not (MetaRS maps from SAR where
optical is missing or cloudy, which is the point of the method). A required modality
that has no scene covering the AOI in a window stops the run with the window and the
collection named; a modality that is not required is written as absent.

Which bands a source has is what its mapping names (`assets`, or `bands` for local
files), from the known bands of the modality; the required ones must be there
(`metaflood.core.bands.REQUIRED_BANDS`), an unknown name stops the run with its key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from metaflood.acquire.presets import PRESETS
from metaflood.core.bands import (
    BANDS,
    canonical_bands,
    missing_bands_message,
    unknown_band,
    unknown_band_message,
)
from metaflood.core.config import PERIODS
from metaflood.core.errors import ConfigError
from metaflood.core.redact import redact_url, refuse_url_credentials
from metaflood.demo.catalog import (
    OPTICAL_ASSETS,
    OPTICAL_COLLECTION,
    SAR_ASSETS,
    SAR_COLLECTION,
)

# A scene (one item, or a mosaic of items from one pass) must cover this share of the AOI.
DEFAULT_MIN_COVERAGE = 0.95
DEFAULT_REQUIRED = {"sar": True, "optical": False}


@dataclass(frozen=True)
class SourceSpec:
    kind: str  # demo | stac | static | local | none
    modality: str  # sar | optical
    provider: str  # how messages name the provider
    collection: str = ""
    url: str = ""  # STAC API root (stac), catalog href (static, demo)
    bands: dict[str, str] = field(default_factory=dict)  # our band -> asset key
    mask_asset: str | None = None
    mask_kind: str = "scl"  # scl: Sentinel-2 scene classification; binary: nonzero = cloud
    query: dict = field(default_factory=dict)
    sign: str | None = None  # "planetary-computer": sign hrefs with SAS tokens
    bearer_env: str | None = None  # environment variable holding a bearer token
    required: tuple[str, ...] = ()  # periods in which the modality must be found
    min_coverage: float = DEFAULT_MIN_COVERAGE
    sar_scale: str = "linear"
    scale: float | None = None  # overrides of the assets' own scale and offset
    offset: float | None = None
    max_items: int = 200
    local: dict = field(default_factory=dict)  # local: {pre: path, post: path}
    local_bands: dict[str, int] = field(default_factory=dict)  # local: our band -> index
    mask_band: int | None = None  # local: band holding the cloud mask

    def requires(self, period: str) -> bool:
        return period in self.required

    @property
    def band_names(self) -> tuple[str, ...]:
        """The bands this source has, in canonical order."""
        return canonical_bands(
            self.modality, self.local_bands if self.kind == "local" else self.bands
        )


def _required(cfg: dict, modality: str) -> tuple[str, ...]:
    value = cfg.get("required", DEFAULT_REQUIRED[modality])
    if value is True:
        return PERIODS
    if value is False:
        return ()
    return (value,)


def _common(cfg: dict, modality: str) -> dict:
    return {
        "required": _required(cfg, modality),
        "min_coverage": float(cfg.get("min_coverage", DEFAULT_MIN_COVERAGE)),
    }


def _check_bands(bands: dict, modality: str, key: str) -> None:
    """Every name a known band of the modality, the required ones all there."""
    unknown = unknown_band(bands, modality)
    if unknown is not None:
        raise ConfigError(f"{key}.{unknown}: {unknown_band_message(unknown, modality)}")
    missing = missing_bands_message(bands, modality)
    if missing:
        raise ConfigError(f"{key}: {missing}")


def _demo(cfg: dict, modality: str, demo_catalog: str | None, key: str) -> SourceSpec:
    if demo_catalog is not None and not Path(demo_catalog).exists():
        raise ConfigError(f"{key}: source demo needs the generated catalog ({demo_catalog})")
    common = {"url": demo_catalog or "", **_common(cfg, modality)}
    if modality == "sar":
        return SourceSpec(
            "demo",
            "sar",
            "the demo catalog",
            SAR_COLLECTION,
            bands={band: asset for asset, band in SAR_ASSETS},
            **common,
        )
    bands = {band.common_name: band.asset for band in OPTICAL_ASSETS}
    return SourceSpec(
        "demo",
        "optical",
        "the demo catalog",
        OPTICAL_COLLECTION,
        bands=bands,
        mask_asset="SCL",
        **common,
    )


def _stac(cfg: dict, modality: str, key: str) -> SourceSpec:
    preset_name = cfg.get("preset")
    preset = PRESETS.get(preset_name, {}) if preset_name else {}
    if preset_name and preset_name not in PRESETS:
        raise ConfigError(f"{key}.preset: unknown preset {preset_name!r} ({', '.join(PRESETS)})")
    defaults = preset.get(modality, {})
    if preset_name and not defaults:
        raise ConfigError(
            f"{key}.preset: {preset['title']} has no {modality} collection in metaflood's "
            f"presets; give url, collection and assets instead"
        )
    url = cfg.get("url") or preset.get("url")
    if not url:
        raise ConfigError(f"{key}: a stac source needs url (the STAC API root) or a preset")
    refuse_url_credentials(url, f"{key}.url")
    if urlsplit(url).scheme not in ("http", "https"):
        raise ConfigError(f"{key}.url: {url!r} is not an http(s) URL")
    collection = cfg.get("collection") or defaults.get("collection")
    if not collection:
        raise ConfigError(f"{key}: a stac source needs collection (or a preset)")
    # A band the configuration sets to null is one the preset has but this source lacks.
    merged = {**defaults.get("assets", {}), **cfg.get("assets", {})}
    bands = {band: asset for band, asset in merged.items() if asset is not None}
    _check_bands(bands, modality, f"{key}.assets")
    host = urlsplit(url).hostname or ""
    sign = cfg.get("sign", preset.get("sign"))
    if sign is None and host.endswith("planetarycomputer.microsoft.com"):
        sign = "planetary-computer"
    provider = preset.get("title") or host
    return SourceSpec(
        "stac",
        modality,
        f"{provider} ({redact_url(url)})",
        collection,
        url=url,
        bands=bands,
        mask_asset=cfg.get("mask_asset", defaults.get("mask_asset")),
        mask_kind=cfg.get("mask_kind", defaults.get("mask_kind", "scl")),
        query=dict(cfg.get("query", {})),
        sign=sign or None,
        bearer_env=(cfg.get("auth") or {}).get("bearer_env"),
        sar_scale=cfg.get("sar_scale", defaults.get("sar_scale", "linear")),
        scale=cfg.get("scale", defaults.get("scale")),
        offset=cfg.get("offset"),
        max_items=int(cfg.get("max_items", 200)),
        **_common(cfg, modality),
    )


def _static(cfg: dict, modality: str, key: str, base_dir: Path) -> SourceSpec:
    catalog = cfg.get("catalog")
    if not catalog:
        raise ConfigError(f"{key}: a static source needs catalog (a catalog.json path or URL)")
    refuse_url_credentials(catalog, f"{key}.catalog")
    if not cfg.get("collection"):
        raise ConfigError(f"{key}: a static source needs collection")
    remote = urlsplit(catalog).scheme in ("http", "https")
    if not remote:
        path = Path(base_dir) / catalog
        if not path.is_file():
            raise ConfigError(f"{key}.catalog: {path} does not exist")
        catalog = str(path)
    bands = {band: asset for band, asset in cfg.get("assets", {}).items() if asset is not None}
    _check_bands(bands, modality, f"{key}.assets")
    return SourceSpec(
        "static",
        modality,
        f"the static catalog {redact_url(catalog)}",
        cfg["collection"],
        url=catalog,
        bands=bands,
        mask_asset=cfg.get("mask_asset"),
        mask_kind=cfg.get("mask_kind", "scl"),
        query=dict(cfg.get("query", {})),
        bearer_env=(cfg.get("auth") or {}).get("bearer_env"),
        sar_scale=cfg.get("sar_scale", "linear"),
        scale=cfg.get("scale"),
        offset=cfg.get("offset"),
        **_common(cfg, modality),
    )


def _local(cfg: dict, modality: str, key: str, base_dir: Path) -> SourceSpec:
    files = {}
    for period in PERIODS:
        if cfg.get(period):
            path = Path(base_dir) / cfg[period]
            if not path.is_file():
                raise ConfigError(f"{key}.{period}: {path} does not exist")
            files[period] = str(path)
    if not files:
        raise ConfigError(f"{key}: a local source needs a file for pre, post or both")
    bands = {name: int(index) for name, index in cfg.get("bands", {}).items()}
    _check_bands(bands, modality, f"{key}.bands")
    for period in _required(cfg, modality):
        if period not in files:
            raise ConfigError(
                f"{key}.{period}: the {modality} modality is required in the {period} period "
                f"but no {period} file is given (or set required: false)"
            )
    mask = cfg.get("mask") or {}
    if mask and modality != "optical":
        raise ConfigError(f"{key}.mask: only an optical source has a cloud mask")
    return SourceSpec(
        "local",
        modality,
        "local files",
        "local",
        bands={},
        mask_kind=mask.get("kind", "scl"),
        sar_scale=cfg.get("sar_scale", "linear"),
        scale=cfg.get("scale"),
        offset=cfg.get("offset"),
        local=files,
        local_bands=bands,
        mask_band=mask.get("band"),
        **_common(cfg, modality),
    )


def _none(cfg: dict, modality: str, key: str) -> SourceSpec:
    """A modality the event does without (a user with SAR alone, a single-sensor set)."""
    if _required(cfg, modality):
        raise ConfigError(f"{key}: source none cannot be required (set required: false)")
    # Its all-nodata rasters hold every band of the modality, so whatever bands a model
    # reads are found there (and are absent, as the modality is).
    every = {band: band for band in BANDS[modality]}
    return SourceSpec("none", modality, "no source", "none", bands=every, required=())


def resolve_source(
    cfg: dict,
    modality: str,
    demo_catalog: str | None,
    key: str,
    base_dir: Path | str = ".",
) -> SourceSpec:
    """The checked source of one modality; ConfigError naming the key when it is wrong."""
    kind = cfg["source"]
    if kind == "demo":
        return _demo(cfg, modality, demo_catalog, key)
    if kind == "stac":
        return _stac(cfg, modality, key)
    if kind == "static":
        return _static(cfg, modality, key, Path(base_dir))
    if kind == "local":
        return _local(cfg, modality, key, Path(base_dir))
    if kind == "none":
        return _none(cfg, modality, key)
    raise ConfigError(f"{key}.source: unknown source {kind!r}")

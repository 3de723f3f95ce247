"""Typed settings of each configuration section, built from the configuration as the
schema validated it: the schema (workflow/schemas/config.schema.yaml) is the one place a
default lives.

`apply_defaults(config)` fills the schema's defaults into a configuration, as the
workflow does at start-up (common.smk); `validated(config)` returns a filled copy for
callers outside Snakemake (tests, notebooks, `benchmark-real`). Each section's class is
then built by `from_section`, which takes every key of the section and nothing else: a
key missing there means the configuration was not validated, and the error names it.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, ClassVar, Self

from metaflood.core.errors import ConfigError

SCHEMA_PATH = Path(__file__).resolve().parents[3] / "workflow" / "schemas" / "config.schema.yaml"


@cache
def schema() -> dict:
    import yaml

    return yaml.safe_load(SCHEMA_PATH.read_text())


def _iso_dates(obj: Any) -> Any:
    """YAML dates as ISO strings, so the schema can check them as text."""
    if isinstance(obj, dict):
        return {k: _iso_dates(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_iso_dates(v) for v in obj]
    if isinstance(obj, dt.datetime):
        return obj.date().isoformat()
    if isinstance(obj, dt.date):
        return obj.isoformat()
    return obj


def _filling_validator():
    """The schema's validator, extended to fill each property's default where the key is
    missing: what `snakemake.utils.validate(..., set_default=True)` does (the jsonschema
    FAQ's recipe), except that a default is copied (never shared between configurations)
    and only filled into an object, so a nullable section (model.authors_checkpoint) can
    carry defaults for when it is given."""
    import jsonschema
    from jsonschema import validators

    base = jsonschema.Draft202012Validator
    validate_properties = base.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, subschema):
        if isinstance(instance, dict):
            for name, prop in properties.items():
                if "default" in prop and name not in instance:
                    instance[name] = copy.deepcopy(prop["default"])
        yield from validate_properties(validator, properties, instance, subschema)

    return validators.extend(base, {"properties": set_defaults})(schema())


def _filled(node: dict, instance: Any) -> Any:
    """The schema's defaults filled into `instance` where `node` (a subschema of plain
    `properties`, no references) gives them, objects within objects included."""
    if isinstance(instance, dict):
        for name, prop in node.get("properties", {}).items():
            if "default" in prop and name not in instance:
                instance[name] = copy.deepcopy(prop["default"])
            if name in instance:
                _filled(prop, instance[name])
    return instance


def event_section(event: dict, name: str) -> dict:
    """An event's sub-section (`grid`, `demo`, ...) with the schema's defaults filled in
    where `event` does not give them: code that reads one event (tests, benchmarks, the
    demo's generator) need not restate them."""
    node = schema()["$defs"]["event"]["properties"][name]
    if "$ref" in node:
        node = schema()["$defs"][node["$ref"].rsplit("/", 1)[-1]]
    return _filled(node, copy.deepcopy(event.get(name) or {}))


def schema_error(config: dict) -> str | None:
    """One line naming the key that breaks the schema (None when it holds)."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema())
    error = jsonschema.exceptions.best_match(validator.iter_errors(config))
    if error is None:
        return None
    where = ".".join(str(p) for p in error.absolute_path) or "(top level)"
    return f"{where}: {error.message}"


def apply_defaults(config: dict) -> dict:
    """Check `config` against the schema and fill its defaults in place (dates become ISO
    strings); a ConfigError naming the key when the schema does not hold."""
    config.update(_iso_dates(config))
    message = schema_error(config)
    if message:
        raise ConfigError(message)
    for error in _filling_validator().iter_errors(config):
        raise ConfigError(error.message)
    return config


def validated(config: dict) -> dict:
    """A copy of `config` with the schema's defaults filled in (see apply_defaults)."""
    return apply_defaults(copy.deepcopy(config))


def section_defaults(name: str, given: dict | None = None, *, check: bool = True) -> dict:
    """A section (`model`, `change`, ...) with the schema's defaults filled around what is
    `given`; a ConfigError naming the key when the section breaks the schema (unless
    `check` is false: the caller checks the values itself, and jsonschema, which a
    rule's conda environment need not have, is not used)."""
    if not check:
        return _filled(schema()["properties"][name], copy.deepcopy(given or {}))
    config = {name: copy.deepcopy(given or {})}
    validator = _filling_validator()
    for error in validator.iter_errors(config):
        if check and list(error.absolute_path)[:1] == [name]:
            where = ".".join(str(p) for p in error.absolute_path)
            raise ConfigError(f"{where}: {error.message}")
    return config[name]


def authors_input_scales() -> dict:
    """The EarthMiss authors' 8-bit input scales as the schema fills them
    (model.authors_checkpoint.sar_full_scale_db and optical_full_scale)."""
    section = section_defaults("model", {"authors_checkpoint": {"path": ""}}, check=False)
    authors = section["authors_checkpoint"]
    return {k: authors[k] for k in ("sar_full_scale_db", "optical_full_scale")}


class Section:
    """A configuration section as one frozen dataclass: `from_section` takes every key."""

    SECTION: ClassVar[str]

    @classmethod
    def from_section(cls, section: dict | None, where: str | None = None) -> Self:
        where = where or cls.SECTION
        if not isinstance(section, dict):
            raise ConfigError(f"{where}: expected a mapping, got {section!r}")
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(section) - set(names))
        if unknown:
            raise ConfigError(f"{where}.{unknown[0]}: not a setting of {where}")
        missing = [name for name in names if name not in section]
        if missing:
            raise ConfigError(
                f"{where}.{missing[0]}: missing (build settings from the configuration as "
                "validated: metaflood.settings.validated fills the schema's defaults)"
            )
        return cls(**{name: cls._convert(name, section[name], where) for name in names})

    @classmethod
    def in_config(cls, config: dict) -> Self:
        """The section of a whole validated configuration."""
        return cls.from_section(config.get(cls.SECTION), cls.SECTION)

    @classmethod
    def _convert(cls, name: str, value: Any, where: str) -> Any:
        return tuple(value) if isinstance(value, list) else value

    def to_dict(self) -> dict:
        return {
            f.name: v.to_dict() if isinstance(v := getattr(self, f.name), Section) else v
            for f in dataclasses.fields(self)
        }


@dataclass(frozen=True)
class AdaptSettings(Section):
    """`model.adapt`: fine-tuning the SAR head on an event's clear-optical pixels."""

    SECTION: ClassVar[str] = "model.adapt"

    enabled: bool
    iterations: int
    lr: float
    crop: int
    batch_size: int
    min_pixels: int  # fewest agreeing pseudo-labelled pixels worth adapting on
    min_post_pixels: int  # of which the post-event period must give at least this many
    periods: tuple[str, ...]  # the periods whose clear-optical pixels may teach
    seed: int


@dataclass(frozen=True)
class AuthorsCheckpoint(Section):
    """`model.authors_checkpoint`: the EarthMiss authors' weights and their 8-bit input
    encoding (the scales their images were stretched with)."""

    SECTION: ClassVar[str] = "model.authors_checkpoint"

    path: str
    url: str | None
    sha256: str | None
    sar_full_scale_db: float
    optical_full_scale: float


@dataclass(frozen=True)
class ModelSettings(Section):
    """`model`: the network, the checkpoint that maps, and how inference runs."""

    SECTION: ClassVar[str] = "model"

    checkpoint: str | None
    checkpoint_sha256: str | None
    backbone: str
    width: int | None
    fpn_channels: int
    sar_bands: tuple[str, ...]
    optical_bands: tuple[str, ...]
    decoder_channels: int
    tile: int
    overlap: int
    batch_size: int
    device: str
    pretrained: str | None
    adapt: AdaptSettings
    authors_checkpoint: AuthorsCheckpoint | None

    @classmethod
    def _convert(cls, name: str, value: Any, where: str) -> Any:
        if name == "adapt":
            return AdaptSettings.from_section(value, f"{where}.adapt")
        if name == "authors_checkpoint":
            if value is None:
                return None
            return AuthorsCheckpoint.from_section(value, f"{where}.authors_checkpoint")
        return super()._convert(name, value, where)


@dataclass(frozen=True)
class TrainSettings(Section):
    """`train`: how MetaRS is trained (the keys train.train_model reads)."""

    SECTION: ClassVar[str] = "train"

    dataset: str
    earthmiss_root: str | None
    earthmiss_split: dict | None
    val_images: int
    norm_images: int
    mmr: bool
    mmr_warmup: float
    mmr_clusters: int
    mmr_calibration_images: int
    mmr_weight: float
    align_weight_mmr: float
    iterations: int
    batch_size: int
    crop: int
    lr: float
    poly_power: float
    weight_decay: float
    align_weight: float
    seed: int
    scenes: int
    val_scenes: int
    scene_size_m: float | None
    native_resolution: float | None
    resolution: float | None
    normalization: str
    real_share: float
    real_sets: tuple[dict, ...]
    save_every: int
    log_every: int


@dataclass(frozen=True)
class ChangeSettings(Section):
    """`change`: the SAR change, water and flood stages' settings."""

    SECTION: ClassVar[str] = "change"

    min_area_m2: float
    flooded_min_confidence: int
    calibration: str | None
    water_fusion: str | None
    flood_network: str | None
    sar_window_px: int
    sar_tile_px: int
    sar_min_ashman_d: float
    sar_match_levels: bool
    reference_occurrence_min: float


@dataclass(frozen=True)
class ExclusionSettings(Section):
    """`exclusion`: the terrain exclusion's thresholds, DEM padding and assumed incidence."""

    SECTION: ClassVar[str] = "exclusion"

    enabled: bool
    hand_max_m: float
    slope_max_deg: float
    drainage_km2: float
    pad_m: float
    incidence_deg: float


@dataclass(frozen=True)
class CoregisterSettings(Section):
    """`coregister`: speckle filter, cloud mask, block size and accepted shifts."""

    SECTION: ClassVar[str] = "coregister"

    speckle_filter: str
    speckle_window: int
    speckle_looks: float | None
    cloud_mask: str
    block_size: int
    max_shift_px: float


@dataclass(frozen=True)
class TilingSettings(Section):
    """`tiling`: the largest tile of a job and the context each tile reads around it."""

    SECTION: ClassVar[str] = "tiling"

    tile_px: int
    overlap_px: int


@dataclass(frozen=True)
class ComputeSettings(Section):
    """`compute`: the dask scheduler of the raster gathers."""

    SECTION: ClassVar[str] = "compute"

    scheduler: str

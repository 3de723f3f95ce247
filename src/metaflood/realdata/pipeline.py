"""One labelled sample through the workflow's stages, in process.

The sample is written as the user's own GeoTIFFs and read back through the `local`
source (search, acquisition and its plausibility checks), co-registered onto a 10 m event
grid, mapped by MetaRS, given its water evidence and, where it has a before and an
after, its SAR change and flood extent: the same functions the Snakemake rules call,
without Snakemake's per-job start-up. Its labels are carried onto the event grid.

Modality conditions are made from one co-registration by clearing availability bits, as
co-registration does for a cloud or a missing scene: `both` (with an optional simulated
cloud over a share of the post-event optical image), `sar_only` and `optical_only`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import rasterio
from rasterio.warp import Resampling, reproject

from metaflood.acquire.stage import acquire_period, search_scenes
from metaflood.core.classes import WATER, stored_probability
from metaflood.core.config import PERIODS
from metaflood.core.raster import read_checked, write_cog
from metaflood.core.settings import AdaptSettings, ChangeSettings, CoregisterSettings
from metaflood.coregister.scenes import Settings
from metaflood.coregister.stage import coregister_period
from metaflood.flood.change import map_flood
from metaflood.flood.confidence import read_evidence
from metaflood.flood.network import map_flood_network
from metaflood.flood.sar_change import map_sar_change
from metaflood.landcover.infer import predict_scene
from metaflood.training.adapt import adapt_checkpoint
from metaflood.training.layouts import LABEL_NONE, NOMINAL_RESOLUTION, Sample
from metaflood.water.stage import map_water

SAR_BIT, OPTICAL_BIT, OUTSIDE = 1, 2, 255
CONDITIONS = ("both", "sar_only", "optical_only")
# Sets with a before and an after: the post-event optical image missing altogether, the
# pre-event one clear (the case event adaptation is for).
POST_SAR_ONLY = "post_sar_only"
# Dates of the nominal event: the local source dates a file to the middle of its window.
WINDOWS = {"pre": ("2000-01-01", "2000-01-10"), "post": ("2000-01-21", "2000-01-31")}


@dataclass(frozen=True)
class PipelineSettings:
    """What the stages need beyond the sample: the model and the config sections."""

    checkpoint: Path
    change: ChangeSettings
    coregister: CoregisterSettings
    model: dict = field(default_factory=dict)  # the model section: tile, overlap, device...
    fusion: Path | None = None
    calibration: Path | None = None
    cloud_cover: float = 0.0
    seed: int = 0
    threads: int = 2
    adapt: dict | None = None  # the model.adapt section: adapt to each sample first


@dataclass
class PeriodOutputs:
    """One period's products under one condition, read back as arrays on the event grid."""

    valid: np.ndarray  # availability bits of the condition
    classes: np.ndarray  # land-cover classes (255 unmapped)
    route: np.ndarray
    sar_water: np.ndarray  # 0/1/255
    evidence: np.ndarray  # (sar_margin_db, water_index, index_margin), NaN nodata
    water: np.ndarray  # fused water percent (255 nodata)
    land_cover_water: np.ndarray  # MetaRS water probability (NaN unmapped)


@dataclass
class SampleOutputs:
    """Everything scored for one sample: per condition and period, the products; the
    aligned stacks the baselines read; the labels on the event grid."""

    sample_id: str
    stacks: dict[str, np.ndarray]  # period -> aligned bands
    bands: dict[str, list[str]]  # period -> band names of the stack
    water_labels: dict[str, np.ndarray]
    flood_label: np.ndarray | None
    periods: dict[str, dict[str, PeriodOutputs]]  # condition -> period -> outputs
    flood: dict[str, dict]  # condition -> extent, sar_change, confidence, evidence


# --- writing the sample as the user's files ----------------------------------------------


def _write_float(path: Path, data: np.ndarray, sample: Sample, names: tuple[str, ...]) -> Path:
    profile = {
        "driver": "GTiff",
        "count": data.shape[0],
        "dtype": "float32",
        "width": data.shape[2],
        "height": data.shape[1],
        "crs": sample.crs,
        "transform": sample.transform,
        "nodata": np.nan,
        "compress": "deflate",
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data.astype(np.float32))
        dst.descriptions = names
    return path


def sample_event(sample: Sample, folder: Path) -> dict:
    """The event configuration of a sample: its files as `local` sources, its footprint
    (in its own CRS, a quarter pixel inside so the grid snaps onto its pixels) as the AOI,
    10 m pixels."""
    import geopandas as gpd
    from shapely.geometry import box

    folder.mkdir(parents=True, exist_ok=True)
    rows, cols = sample.shape
    t = sample.transform
    inset_x, inset_y = abs(t.a) / 4, abs(t.e) / 4
    footprint = box(
        t.c + inset_x,
        t.f - rows * abs(t.e) + inset_y,
        t.c + cols * abs(t.a) - inset_x,
        t.f - inset_y,
    )
    aoi = folder / "aoi.geojson"
    gpd.GeoDataFrame(geometry=[footprint], crs=sample.crs).to_file(aoi, driver="GeoJSON")
    crs = rasterio.crs.CRS.from_user_input(sample.crs)
    event: dict = {
        "aoi": {"file": str(aoi)},
        "grid": {
            "crs": sample.crs if crs.is_projected else "auto",
            "resolution": NOMINAL_RESOLUTION,
        },
        "pre": dict(zip(("start", "end"), WINDOWS["pre"], strict=True)),
        "post": dict(zip(("start", "end"), WINDOWS["post"], strict=True)),
    }
    for modality, data, names in (
        ("sar", sample.sar, sample.sar_bands),
        ("optical", sample.optical, sample.optical_bands),
    ):
        if not data:
            event[modality] = {"source": "none", "required": False}
            continue
        source: dict = {
            "source": "local",
            "bands": {name: i for i, name in enumerate(names, start=1)},
            "required": False,
        }
        for period, values in data.items():
            source[period] = str(
                _write_float(folder / f"{modality}_{period}.tif", values, sample, names)
            )
        if modality == "sar":
            source["sar_scale"] = "db"
        event[modality] = source
    return event


# --- conditions ----------------------------------------------------------------------------


def cloud_mask(shape: tuple[int, int], share: float, seed: int) -> np.ndarray:
    """A blobby simulated cloud over `share` of the image: smooth noise thresholded at its
    quantile, from a generator seeded by the sample (the same clouds every run)."""
    if share <= 0:
        return np.zeros(shape, bool)
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    field_ = ndimage.gaussian_filter(rng.standard_normal(shape), sigma=max(shape) / 12)
    return field_ >= np.quantile(field_, 1 - min(share, 1.0))


def condition_valid(
    valid: np.ndarray, condition: str, cloud: np.ndarray, period: str
) -> np.ndarray:
    """Availability with the condition's modality removed (bits cleared, the AOI kept)."""
    out = valid.copy()
    inside = valid != OUTSIDE
    if condition == "sar_only" or (condition == POST_SAR_ONLY and period == "post"):
        out[inside] &= ~np.uint8(OPTICAL_BIT)
    elif condition == "optical_only":
        out[inside] &= ~np.uint8(SAR_BIT)
    elif condition == "both":
        out[inside & cloud] &= ~np.uint8(OPTICAL_BIT)
    return out


def conditions_of(sample: Sample) -> tuple[str, ...]:
    """The conditions a sample can be scored in: both only where it has both modalities."""
    if sample.sar and sample.optical:
        return (*CONDITIONS, POST_SAR_ONLY) if len(sample.periods) == 2 else CONDITIONS
    return ("sar_only",) if sample.sar else ("optical_only",)


# --- the stages ------------------------------------------------------------------------------


def _labels_on_grid(label: np.ndarray, sample: Sample, profile: dict) -> np.ndarray:
    out = np.full((profile["height"], profile["width"]), LABEL_NONE, np.uint8)
    reproject(
        label,
        out,
        src_transform=sample.transform,
        src_crs=sample.crs,
        src_nodata=LABEL_NONE,
        dst_transform=profile["transform"],
        dst_crs=profile["crs"],
        dst_nodata=LABEL_NONE,
        resampling=Resampling.nearest,
    )
    return out


def _acquire(sample: Sample, event: dict, folder: Path, settings: PipelineSettings) -> None:
    name = "sample"
    periods = sample.periods
    selection = folder / "selection.json"
    cache = folder / "cache"
    search_scenes(event, name, demo_catalog=None, cache_dir=cache, out=selection, periods=periods)
    for period in periods:
        scenes = folder / "scenes" / period
        acquire_period(
            event,
            name,
            period,
            selection=selection,
            cache_dir=cache,
            out_sar=scenes / "sar.tif",
            out_optical=scenes / "optical.tif",
            out_optical_mask=scenes / "optical_mask.tif",
            out_scenes=scenes / "scenes.json",
            workers=settings.threads,
        )
    for period in periods:
        scenes = folder / "scenes" / period
        coregister_period(
            event,
            name,
            period,
            sar=scenes / "sar.tif",
            optical=scenes / "optical.tif",
            optical_mask=scenes / "optical_mask.tif",
            reference=folder / "scenes" / periods[0] / "sar.tif",
            out_stack=folder / "aligned" / f"{period}.tif",
            out_valid=folder / "aligned" / f"{period}_valid.tif",
            out_report=folder / "aligned" / f"{period}_coregistration.json",
            settings=Settings.of(settings.coregister, threads=settings.threads),
        )


def _adapted(
    folder: Path,
    where: Path,
    periods: tuple[str, ...],
    valid_paths: dict[str, Path],
    settings: PipelineSettings,
) -> Path:
    """The checkpoint to map a condition with: adapted to the sample under that condition
    (only its clear optical pixels teach the SAR head) when adaptation is asked for."""
    if not settings.adapt or not settings.adapt["enabled"]:
        return settings.checkpoint
    out = where / "adapted.pt"
    adapt_checkpoint(
        settings.checkpoint,
        {p: folder / "aligned" / f"{p}.tif" for p in periods},
        {p: valid_paths[p] for p in periods},
        out,
        where / "adaptation.json",
        settings=AdaptSettings.from_section(settings.adapt),
        change=settings.change,
        threads=settings.threads,
        device=settings.model["device"],
        log=lambda message: None,
    )
    return out


def _map_period(
    folder: Path, period: str, valid_path: Path, settings: PipelineSettings, checkpoint: Path
) -> dict[str, Path]:
    model = settings.model
    out = {
        "class": folder / f"{period}.tif",
        "proba": folder / f"{period}_proba.tif",
        "route": folder / f"{period}_route.tif",
        "sar": folder / f"water_{period}_sar.tif",
        "evidence": folder / f"water_{period}_evidence.tif",
        "water": folder / f"water_{period}.tif",
        "summary": folder / f"water_{period}.json",
    }
    stack = folder.parent / "aligned" / f"{period}.tif"
    predict_scene(
        stack,
        valid_path,
        checkpoint,
        out["class"],
        out["proba"],
        out["route"],
        window_px=model["tile"],
        overlap=model["overlap"],
        batch_size=model["batch_size"],
        device=model["device"],
        threads=settings.threads,
    )
    map_water(
        stack,
        valid_path,
        out["proba"],
        change=settings.change,
        fusion=settings.fusion,
        out_sar=out["sar"],
        out_evidence=out["evidence"],
        out_water=out["water"],
        out_summary=out["summary"],
    )
    return out


def _water_probability(proba: Path) -> np.ndarray:
    return stored_probability(_read(proba)[WATER])


def _read(path: Path) -> np.ndarray:
    data, _ = read_checked(path)
    return data[0] if data.shape[0] == 1 else data


def run_sample(sample: Sample, folder: Path, settings: PipelineSettings) -> SampleOutputs:
    """Map one sample under each of its conditions; products go under `folder`."""
    event = sample_event(sample, folder / "input")
    _acquire(sample, event, folder, settings)
    periods = sample.periods
    stacks, bands, valids, profile = {}, {}, {}, None
    for period in periods:
        stacks[period], profile = read_checked(folder / "aligned" / f"{period}.tif")
        bands[period] = [d or "" for d in profile["descriptions"]]
        valids[period], valid_profile = read_checked(folder / "aligned" / f"{period}_valid.tif")
    grid = {k: profile[k] for k in ("crs", "transform", "width", "height")}
    water_labels = {p: _labels_on_grid(lab, sample, grid) for p, lab in sample.water.items()}
    flood_label = _labels_on_grid(sample.flood, sample, grid) if sample.flood is not None else None
    seed = [settings.seed, *sample.id.encode()]
    cloud = cloud_mask((grid["height"], grid["width"]), settings.cloud_cover, seed)
    outputs: dict[str, dict[str, PeriodOutputs]] = {}
    flood: dict[str, dict[str, np.ndarray]] = {}
    for condition in conditions_of(sample):
        where = folder / condition
        paths, valid_paths, condition_valids = {}, {}, {}
        for period in periods:
            clouded = cloud if period == "post" else np.zeros_like(cloud)
            condition_valids[period] = condition_valid(
                valids[period][0], condition, clouded, period
            )
            valid_paths[period] = write_cog(
                where / f"{period}_valid.tif",
                condition_valids[period],
                crs=grid["crs"],
                transform=grid["transform"],
                nodata=OUTSIDE,
                descriptions=("availability",),
                categorical=True,
            )
        checkpoint = _adapted(folder, where, periods, valid_paths, settings)
        for period in periods:
            valid = condition_valids[period]
            paths[period] = _map_period(where, period, valid_paths[period], settings, checkpoint)
            outputs.setdefault(condition, {})[period] = PeriodOutputs(
                valid=valid,
                classes=_read(paths[period]["class"]),
                route=_read(paths[period]["route"]),
                sar_water=_read(paths[period]["sar"]),
                evidence=_read(paths[period]["evidence"]),
                water=_read(paths[period]["water"]),
                land_cover_water=_water_probability(paths[period]["proba"]),
            )
        if len(periods) == 2 and condition != "optical_only":
            flood[condition] = _map_flood(where, folder, paths, settings)
    return SampleOutputs(
        sample.id,
        {p: stacks[p] for p in periods},
        bands,
        water_labels,
        flood_label,
        outputs,
        flood,
    )


def _map_flood(
    where: Path, folder: Path, paths: dict[str, dict[str, Path]], settings: PipelineSettings
) -> dict:
    stacks = [folder / "aligned" / f"{p}.tif" for p in PERIODS]
    valid = [where / f"{p}_valid.tif" for p in PERIODS]
    out = {
        "evidence": where / "sar_change.tif",
        "ratio": where / "sar_logratio.tif",
        "summary": where / "sar_change.json",
        "extent": where / "extent.tif",
        "confidence": where / "confidence.tif",
    }
    map_sar_change(
        stacks,
        valid,
        change=settings.change,
        out_evidence=out["evidence"],
        out_ratio=out["ratio"],
        out_summary=out["summary"],
    )
    network = None
    if settings.change.flood_network:
        network = where / "network.tif"
        map_flood_network(
            stacks,
            valid,
            Path(settings.change.flood_network),
            out=network,
            out_summary=where / "network.json",
            device=settings.model.get("device", "cpu"),
        )
    map_flood(
        [paths[p]["class"] for p in PERIODS],
        [paths[p]["water"] for p in PERIODS],
        post_route=paths["post"]["route"],
        sar_evidence=out["evidence"],
        sar_ratio=out["ratio"],
        sar_summary=out["summary"],
        calibration=settings.calibration,
        out_extent=out["extent"],
        out_confidence=out["confidence"],
        out_polygons=where / "polygons.gpkg",
        out_transitions=where / "transitions.csv",
        min_area_m2=float(settings.change.min_area_m2),
        flooded_min_confidence=settings.change.flooded_min_confidence,
        network=network,
    )
    evidence, _ = read_evidence(
        [paths[p]["water"] for p in PERIODS],
        paths["post"]["route"],
        out["evidence"],
        out["ratio"],
        out["summary"],
    )
    return {
        "extent": _read(out["extent"]),
        "sar_change": _read(out["evidence"]),
        "confidence": _read(out["confidence"]),
        "evidence": evidence,
        "flooded_min_confidence": settings.change.flooded_min_confidence,
        "network": _read(network) if network is not None else None,
    }

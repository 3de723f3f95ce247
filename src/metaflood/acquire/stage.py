"""Acquisition: find the scenes of an event, then read them in a canonical form.

Two steps, two rules:
- `search_scenes` searches every source for both periods, chooses a scene per
  modality and period (SAR pre and post from one orbit), and writes `selection.json`:
  which items, their bands and the grid to read them on, and why. A required modality
  with no covering scene stops here, before anything is downloaded.
- `acquire_period` reads the AOI window of the chosen items (cached, in parallel,
  mosaicked when a scene has several items) and writes the canonical scenes:
  sar.tif (VV, VH linear power, float32, NaN nodata), optical.tif (the source's
  optical bands, in canonical order: blue, green, red, nir, swir16 where it has them;
  reflectance, float32, NaN nodata), optical_mask.tif (0 clear, 1 cloud, 2 cloud
  shadow, 255 nodata), sar_spread.tif and scenes.json. A scene's grid is the lattice of its finest
  band (`scene.grid_band`); coarser bands (Sentinel-2's 20 m B11) are resampled
  bilinearly onto it.
A modality with no scene is written as an all-nodata raster tagged absent=true and
marked missing, so MetaRS routes around it; a period with neither is an error.

With `pre.max_scenes` > 1 the pre-event reference is multi-date (`baseline`): the
search records the further scenes under the pre record (`baseline`, `scenes_used`, and
a `baseline_note` when the window held fewer than asked), and the read puts them on the
grid of the chosen (nearest, or least cloudy) scene: the SAR median in linear power and
its spread in dB, the optical least-cloud composite.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
from rasterio.enums import Resampling
from rasterio.features import geometry_mask
from shapely.geometry import Polygon, mapping

from metaflood.acquire import baseline as bl
from metaflood.acquire.canonical import (
    grid_args,
    mask_codes,
    sar_writer,
    scene_mask,
    spread_writer,
    write_absent,
    write_no_spread,
    write_optical,
    write_sar,
)
from metaflood.acquire.download import (
    Access,
    AssetCache,
    Downloader,
    Job,
    NoCache,
    first_valid,
    grid_for_aoi,
)
from metaflood.acquire.local import checked_local_item
from metaflood.acquire.plausibility import check_reflectance, check_sar
from metaflood.acquire.scene import MASK, SceneItem, grid_band
from metaflood.acquire.security import is_remote
from metaflood.acquire.select import (
    NO_ITEM,
    Candidate,
    Choice,
    candidates,
    choose_optical,
    choose_sar_pair,
    optical_baseline,
    sar_baseline,
)
from metaflood.acquire.sources import SourceSpec, resolve_source
from metaflood.acquire.stac import scene_item, search_api
from metaflood.acquire.static import search_static
from metaflood.core import optical as opt
from metaflood.core import sar
from metaflood.core.bands import canonical_bands
from metaflood.core.config import (
    MODALITIES,
    PERIODS,
    DateRange,
    aoi_polygon,
    date_range,
    event_grid,
    parse_day,
    to_crs,
)
from metaflood.core.errors import AcquisitionError, InputError
from metaflood.core.grid import Grid
from metaflood.core.raster import atomic_path
from metaflood.core.redact import redact_url

log = logging.getLogger(__name__)

# Reads the bands named of a scene record onto the chosen scene's grid.
Reader = Callable[[dict, list[str]], dict[str, np.ndarray]]

__all__ = ["Retry", "acquire_period", "search_scenes"]


def target_day(event: dict, period: str, key: str):
    """SAR nearest the flood: the latest pre scene and the earliest post scene."""
    win = date_range(event, period, key)
    if "event_date" in event:
        return parse_day(event["event_date"], f"{key}.event_date")
    return win.end if period == "pre" else win.start


@dataclass(frozen=True)
class Retry:
    """How often, and how patiently, a failing read is tried again."""

    retries: int = 3
    backoff_s: float = 1.0

    def access(self, spec: SourceSpec) -> Access:
        return Access(spec.sign, spec.bearer_env, self.retries, self.backoff_s)


# ---------------------------------------------------------------------------------------
# Search and choice


@dataclass
class _Found:
    items: list[SceneItem]
    note: str


def _search(spec: SourceSpec, period: str, win: DateRange, aoi: Polygon, access: Access) -> _Found:
    if spec.kind == "none":
        return _Found([], "not acquired for this event (source: none)")
    if spec.kind == "local":
        item = checked_local_item(spec, period, win, aoi)
        return _Found([item] if item else [], "" if item else f"no {period} file configured")
    if spec.kind == "stac":
        found, note = search_api(spec, win, aoi, access)
        return _Found([scene_item(i, spec, None) for i in found], note)
    found, note, root = search_static(spec, win, aoi, access)
    return _Found([scene_item(i, spec, root) for i in found], note)


class _Chooser:
    """Measures candidates (their grid, their cloud over the AOI) for one event."""

    def __init__(self, aoi: Polygon, cache: AssetCache, access_for, workers: int) -> None:
        self.aoi = aoi
        self.cache = cache
        self.access_for = access_for
        self.workers = workers
        self.grids: dict[int, Grid] = {}

    def grid(self, cand: Candidate, spec: SourceSpec) -> Grid:
        """The AOI on the lattice of the candidate's grid band (`scene.grid_band`)."""
        if id(cand) not in self.grids:
            bands = cand.items[0].bands
            ref = grid_band([bands[name] for name in spec.band_names])
            self.grids[id(cand)] = grid_for_aoi(
                ref.href, self.aoi, self.access_for(spec), cache=self.cache
            )
        return self.grids[id(cand)]

    def cloud(self, cand: Candidate, spec: SourceSpec) -> float | None:
        if MASK not in cand.items[0].bands:
            return None
        grid = self.grid(cand, spec)
        jobs = [
            Job(f"{item.id} {MASK}", item.bands[MASK], grid, Resampling.nearest)
            for item in cand.items
        ]
        downloader = Downloader(
            _cache_for(jobs, self.cache), self.access_for(spec), workers=self.workers
        )
        values = first_valid(downloader.read(jobs))
        mask = mask_codes(values, spec.mask_kind)
        observed = mask != opt.MASK_NODATA
        if not observed.any():
            return 1.0
        return float(1.0 - (mask[observed] == opt.CLEAR).mean())


def _missing_error(
    key: str, modality: str, period: str, win: DateRange, spec: SourceSpec, reason: str
) -> AcquisitionError:
    return AcquisitionError(
        f"{key}.{modality}: no {modality} scene for the {period} window {win} in collection "
        f"{spec.collection} of {spec.provider}: {reason}. The {modality} modality is required "
        f"in this period (required: {list(spec.required) or False}); widen the window, check "
        f"the AOI, or set required: false to map from the other modality"
    )


def _redacted(item: SceneItem) -> dict:
    """The item as selection.json keeps it: hrefs without credentials (a provider that
    signs its URLs, like Planetary Computer, is signed again when the bands are read)."""
    out = item.to_dict()
    for band in out["bands"].values():
        band["href"] = redact_url(band["href"])
    return out


def _why_missing(choice: Choice, note: str) -> str:
    """Why no scene was chosen, with the search's note (which, when the window held no
    item over the AOI, says it more precisely than the choice can)."""
    if note and choice.reason == NO_ITEM:
        return note
    return choice.reason + (f" ({note})" if note else "")


def _record(spec: SourceSpec, choice: Choice, chooser: _Chooser, note: str) -> dict:
    base = {
        "source": spec.kind,
        "provider": redact_url(spec.provider),
        "collection": spec.collection,
        "bands": list(spec.band_names),
    }
    if choice.candidate is None:
        return {"status": "missing", **base, "reason": _why_missing(choice, note)}
    cand = choice.candidate
    record = {
        "status": "found",
        **base,
        "reason": choice.reason,
        "coverage": round(cand.coverage, 4),
        "grid": chooser.grid(cand, spec).to_dict(),
        "items": [_redacted(item) for item in cand.items],
        "mask_kind": spec.mask_kind,
        "sar_scale": spec.sar_scale,
        "access": {"sign": spec.sign, "bearer_env": spec.bearer_env},
    }
    if cand.cloud is not None:
        record["cloud_over_aoi"] = round(cand.cloud, 4)
    return record


def _pre_baseline(
    modality: str,
    choice: Choice,
    cands: list[Candidate],
    target: dt.date,
    spec: SourceSpec,
    asked: int,
    chooser: _Chooser,
) -> list[Candidate]:
    """The further pre-event scenes of a multi-date reference (none for one scene)."""
    if choice.candidate is None:
        return []
    if modality == "sar":
        return sar_baseline(choice.candidate, cands, target, spec.min_coverage, asked)
    return optical_baseline(
        choice.candidate,
        cands,
        target,
        spec.min_coverage,
        asked,
        lambda c: chooser.cloud(c, spec),
    )


def _baseline_record(
    modality: str, chosen: Candidate, extras: list[Candidate], asked: int, window: DateRange
) -> dict:
    """The pre record's multi-date keys: how many scenes were asked and used, the further
    ones in the order they count (SAR: nearest the target day; optical: least cloud),
    and a note when the window held fewer than asked."""
    out = {"max_scenes": asked, "scenes_used": 1 + len(extras), "baseline": []}
    for cand in extras:
        entry = {
            "items": [_redacted(item) for item in cand.items],
            "datetime": cand.items[0].datetime,
            "coverage": round(cand.coverage, 4),
        }
        if cand.cloud is not None:
            entry["cloud_over_aoi"] = round(cand.cloud, 4)
            entry["cloud_source"] = cand.cloud_source
        out["baseline"].append(entry)
    note = bl.shortfall_note(modality, asked, 1 + len(extras), str(window), chosen.orbit)
    if note:
        out["baseline_note"] = note
    return out


def search_scenes(
    event: dict,
    name: str,
    *,
    demo_catalog: str | None,
    cache_dir: Path,
    out: Path,
    workers: int = 4,
    retry: Retry = Retry(),
    periods: Sequence[str] = PERIODS,
) -> dict:
    """Search both periods of every modality, choose, and write selection.json.

    `periods` narrows the search to one period for single-date uses (the real-data
    benchmark's single-date sets); the workflow always searches both."""
    key = f"events.{name}"
    aoi = aoi_polygon(event, key)
    wins = {p: date_range(event, p, key) for p in PERIODS}
    targets = {p: target_day(event, p, key) for p in PERIODS}
    cache = AssetCache(cache_dir)
    chooser = _Chooser(aoi, cache, retry.access, workers)
    asked = bl.max_scenes(event)
    searched = {p: {"window": str(wins[p]), "target_day": targets[p].isoformat()} for p in periods}
    for modality in MODALITIES:
        spec = resolve_source(event[modality], modality, demo_catalog, f"{key}.{modality}")
        access = retry.access(spec)
        found = {
            p: _search(spec, p, wins[p], aoi, access) if p in periods else _Found([], "")
            for p in PERIODS
        }
        cands = {p: candidates(found[p].items, aoi) for p in PERIODS}
        if modality == "sar":
            choices = choose_sar_pair(
                (cands["pre"], len(found["pre"].items)),
                (cands["post"], len(found["post"].items)),
                targets,
                {p: spec.min_coverage for p in PERIODS},
            )
        else:
            choices = {
                p: choose_optical(
                    cands[p],
                    len(found[p].items),
                    targets[p],
                    spec.min_coverage,
                    lambda c, spec=spec: chooser.cloud(c, spec),
                )
                for p in PERIODS
            }
        extras = (
            _pre_baseline(
                modality, choices["pre"], cands["pre"], targets["pre"], spec, asked, chooser
            )
            if "pre" in periods
            else []
        )
        for period in periods:
            choice = choices[period]
            record = _record(spec, choice, chooser, found[period].note)
            if period == "pre" and choice.candidate is not None:
                record.update(
                    _baseline_record(modality, choice.candidate, extras, asked, wins["pre"])
                )
                if "baseline_note" in record:
                    log.warning("%s pre %s: %s", name, modality, record["baseline_note"])
            # A scene all under cloud is found, but as good as none.
            all_cloud = record.get("cloud_over_aoi") == 1.0
            if spec.requires(period) and (choice.candidate is None or all_cloud):
                cloud = f"{choice.reason}; it is all cloud over the AOI"
                reason = cloud if all_cloud else record["reason"]
                raise _missing_error(key, modality, period, wins[period], spec, reason)
            searched[period][modality] = record
            what = choice.candidate.describe() if choice.candidate else "none"
            log.info("%s %s %s: %s (%s)", name, period, modality, what, record["reason"])
    for period, records in searched.items():
        if all(records[m]["status"] == "missing" for m in MODALITIES):
            where = ", ".join(
                f"{records[m]['collection']} ({records[m]['reason']})" for m in MODALITIES
            )
            raise AcquisitionError(
                f"{key}.{period}: no scene of either modality in the window {wins[period]} "
                f"(searched {where})"
            )
    selection = {"event": name, "aoi_bounds": list(aoi.bounds), "periods": searched}
    with atomic_path(out) as tmp:
        tmp.write_text(json.dumps(selection, indent=2))
    return selection


# ---------------------------------------------------------------------------------------
# Reading the chosen scenes


def _read_layers(
    record: dict,
    names: list[str],
    grid: Grid,
    cache: AssetCache,
    workers: int,
    retry: Retry,
) -> dict[str, np.ndarray]:
    """The bands `names` of the scene whose items `record` names, on `grid`, (rows,
    cols) float32 each, by name (the items mosaicked in their order)."""
    items = [SceneItem.from_dict(d) for d in record["items"]]
    # Bilinear onto the grid: a coarser band (B11 at 20 m on a 10 m grid) is interpolated,
    # a band on the grid's own lattice is read as it is (`download.read_band`).
    jobs = [
        Job(
            f"{item.id} {name}",
            item.bands[name],
            grid,
            Resampling.nearest if name == MASK else Resampling.bilinear,
        )
        for name in names
        for item in items
    ]
    access = Access(**record["access"], retries=retry.retries, backoff_s=retry.backoff_s)
    downloader = Downloader(_cache_for(jobs, cache), access, workers=workers, progress=log.info)
    layers = downloader.read(jobs)
    n = len(items)
    return {name: first_valid(layers[i * n : (i + 1) * n]) for i, name in enumerate(names)}


def _check_values(
    record: dict, data: list[np.ndarray], data_names: list[str], modality: str, where: str
) -> None:
    """Refuse a scene with no value over the AOI, or values that cannot be in the
    configured unit (`plausibility`)."""
    ids = _ids(record)
    if all(np.isnan(band).all() for band in data):
        raise InputError(f"{ids}: every pixel over the AOI is nodata")
    if modality == "sar":
        check_sar(data, data_names, f"{where} {ids}", record["sar_scale"])
    else:
        check_reflectance(data, data_names, f"{where} {ids}")


def _read_scene(
    record: dict,
    data_names: list[str],
    modality: str,
    cache: AssetCache,
    workers: int,
    retry: Retry,
    where: str,
) -> dict[str, np.ndarray]:
    """The bands `data_names` of a found scene on its grid, (rows, cols) float32 each, by
    name; the optical mask band (when there is one) under MASK. Values that cannot be in
    the configured unit are refused (`plausibility`)."""
    grid = Grid.from_dict(record["grid"])
    names = data_names + ([MASK] if MASK in record["items"][0]["bands"] else [])
    bands = _read_layers(record, names, grid, cache, workers, retry)
    _check_values(record, [bands[name] for name in data_names], data_names, modality, where)
    return bands


def _scenes(record: dict) -> list[dict]:
    """The reference scene and the further ones of a multi-date baseline, each as a
    record to read on the reference scene's grid."""
    return [record] + [{**record, **entry} for entry in record.get("baseline", [])]


def _write_sar_baseline(
    record: dict,
    names: list[str],
    grid: dict,
    paths: list[Path],
    aoi_inside: np.ndarray,
    reader: Reader,
    where: str,
) -> dict:
    """sar.tif as the per-pixel median in linear power of the baseline's scenes, and
    sar_spread.tif as their spread in dB, band by band (one band of every scene in
    memory at a time); returns the median spread per band over the AOI."""
    scenes = _scenes(record)
    order = canonical_bands("sar", names)
    spreads: dict[str, float | None] = {}
    with ExitStack() as stack:
        dst = stack.enter_context(sar_writer(paths[0], order, grid))
        spread_dst = (
            stack.enter_context(spread_writer(paths[1], order, grid, scenes=len(scenes)))
            if len(paths) > 1
            else None
        )
        seen = [False] * len(scenes)
        for index, name in enumerate(order, start=1):
            layers = []
            for i, scene in enumerate(scenes):
                band = reader(scene, [name])[name]
                check_sar([band], [name], f"{where} {_ids(scene)}", record["sar_scale"])
                seen[i] |= bool(np.isfinite(band).any())
                if record["sar_scale"] == "db":
                    band = sar.to_linear(band)
                layers.append(band)
            dst.write(bl.median_linear(layers), index)
            spread = bl.spread_db(layers)
            del layers
            if spread_dst is not None:
                spread_dst.write(spread, index)
            spreads[name] = bl.median_over(spread, aoi_inside)
        for i, scene in enumerate(scenes):
            if not seen[i]:
                raise InputError(f"{_ids(scene)}: every pixel over the AOI is nodata")
    return spreads


def _write_optical_composite(
    record: dict,
    names: list[str],
    grid: dict,
    paths: list[Path],
    reader: Reader,
    where: str,
) -> None:
    """optical.tif and optical_mask.tif as the least-cloud composite of the baseline's
    scenes (ranked by cloud over the AOI): each pixel from the first scene clear there;
    without a mask band, from the first scene with a value."""
    scenes = _scenes(record)
    has_mask = record["mask_kind"] is not None and MASK in record["items"][0]["bands"]
    masks = [scene_mask(reader(s, [MASK]), record["mask_kind"]) for s in scenes] if has_mask else []
    order = bl.least_cloud_order(masks) if has_mask else None
    composite: dict[str, np.ndarray] = {}
    for name in names:
        layers = [reader(scene, [name])[name] for scene in scenes]
        composite[name] = bl.pick(layers, order) if has_mask else first_valid(layers)
    _check_values(record, [composite[n] for n in names], list(names), "optical", where)
    mask = bl.pick(masks, order) if has_mask else None
    del masks
    write_optical(composite, names, mask, grid, *paths)


def _ids(record: dict) -> str:
    return ", ".join(_named(SceneItem.from_dict(d)) for d in record["items"])


def _named(item: SceneItem) -> str:
    """An item as messages name it: a local file by its path too (the user's own file)."""
    file = item.properties.get("file")
    return f"{item.id} ({file})" if file else item.id


def _cache_for(jobs: list[Job], cache: AssetCache) -> AssetCache:
    return cache if all(is_remote(job.ref.href) for job in jobs) else NoCache()


def _band_names(record: dict, cfg: dict, modality: str, key: str) -> tuple[str, ...]:
    """The bands the selection recorded; a selection written before it recorded them
    holds the source's configured bands."""
    if "bands" in record:
        return tuple(record["bands"])
    return resolve_source(cfg, modality, None, key).band_names


def _provenance(record: dict) -> dict:
    """scenes.json's entry for one modality: what was used and why, no credentials."""
    if record["status"] != "found":
        return {k: record[k] for k in ("status", "source", "provider", "collection", "reason")}
    items = [SceneItem.from_dict(d) for d in record["items"]]
    first = items[0]
    out = {
        "status": "found",
        "source": record["source"],
        "provider": record["provider"],
        "collection": record["collection"],
        "item": ", ".join(i.id for i in items),
        "datetime": first.datetime,
        "coverage": record["coverage"],
        "reason": record["reason"],
        "properties": first.properties,
        "items": [
            {
                "id": i.id,
                "datetime": i.datetime,
                "assets": {
                    band: {
                        "href": redact_url(ref.href),
                        "band": ref.band,
                        "scale": ref.scale,
                        "offset": ref.offset,
                        "radiometry": ref.radiometry,
                    }
                    for band, ref in i.bands.items()
                },
            }
            for i in items
        ],
    }
    if "cloud_over_aoi" in record:
        out["cloud_over_aoi"] = record["cloud_over_aoi"]
    return out


def _baseline_provenance(modality: str, record: dict, spreads: dict | None) -> dict:
    """scenes.json's `baseline` of a pre-event modality: the scenes the reference was
    made of, in order, and (SAR) the median spread in dB over the AOI per band (None
    for one scene)."""
    scenes = []
    for scene in _scenes(record):
        entry = {
            "id": ", ".join(d["id"] for d in scene["items"]),
            "datetime": scene["items"][0]["datetime"],
        }
        if "cloud_over_aoi" in scene:
            entry["cloud_over_aoi"] = scene["cloud_over_aoi"]
        scenes.append(entry)
    out = {
        "max_scenes": record["max_scenes"],
        "scenes_used": record["scenes_used"],
        "scenes": scenes,
    }
    if modality == "optical":
        out["order"] = "least cloud over the AOI first; each pixel from the first clear there"
    else:
        out["order"] = "nearest the target day first; the reference is their median"
        out["median_spread_db"] = spreads
    if "baseline_note" in record:
        out["note"] = record["baseline_note"]
    return out


def _inside_aoi(event: dict, key: str, grid: dict) -> np.ndarray:
    """Pixels of a scene grid whose centre is in the AOI."""
    aoi = to_crs(aoi_polygon(event, key), grid["crs"])
    shape = (grid["height"], grid["width"])
    return geometry_mask([mapping(aoi)], shape, grid["transform"], invert=True)


def acquire_period(
    event: dict,
    name: str,
    period: str,
    *,
    selection: Path,
    cache_dir: Path,
    out_sar: Path,
    out_optical: Path,
    out_optical_mask: Path,
    out_scenes: Path,
    out_sar_spread: Path | None = None,
    workers: int = 4,
    retry: Retry = Retry(),
) -> dict:
    """Read one period's chosen scenes and write them in canonical form; the pre-event
    reference of several scenes when the selection recorded a baseline. sar_spread.tif
    is written where `out_sar_spread` names it (the workflow always does)."""
    key = f"events.{name}"
    chosen = json.loads(Path(selection).read_text())["periods"][period]
    cache = AssetCache(cache_dir)
    sar_paths = [out_sar] + ([out_sar_spread] if out_sar_spread is not None else [])
    outputs = {"sar": sar_paths, "optical": [out_optical, out_optical_mask]}
    spreads: dict | None = None
    # Each modality is read, then written band by band beside its products; they are all
    # moved into place together at the end, so a failure leaves no product.
    with ExitStack() as staged:
        for modality in MODALITIES:
            record = chosen[modality]
            paths = [staged.enter_context(atomic_path(p)) for p in outputs[modality]]
            names = _band_names(record, event[modality], modality, f"{key}.{modality}")
            if record["status"] != "found":
                absent = event_grid(event, key)
                grid = grid_args(absent)
                write_absent(modality, names, grid, paths)
                continue
            where = f"{key}.{modality}"
            found = Grid.from_dict(record["grid"])
            grid = grid_args(found)
            if record.get("baseline"):
                # Every scene of the baseline is read onto the grid of the chosen one.
                reader = partial(
                    _read_layers, grid=found, cache=cache, workers=workers, retry=retry
                )
                if modality == "sar":
                    inside = _inside_aoi(event, key, grid)
                    spreads = _write_sar_baseline(
                        record, list(names), grid, paths, inside, reader, where
                    )
                else:
                    _write_optical_composite(record, list(names), grid, paths, reader, where)
                continue
            bands = _read_scene(record, list(names), modality, cache, workers, retry, where)
            if modality == "sar":
                write_sar(bands, record["sar_scale"], grid, paths[0])
                if len(paths) > 1:
                    write_no_spread(canonical_bands("sar", bands), grid, paths[1], scenes=1)
            else:
                mask = scene_mask(bands, record["mask_kind"])
                write_optical(bands, names, mask, grid, *paths)
            del bands
    scenes = {
        "event": name,
        "period": period,
        "window": chosen["window"],
        "target_day": chosen["target_day"],
        **{m: _provenance(chosen[m]) for m in MODALITIES},
    }
    for modality in MODALITIES:
        if "max_scenes" in chosen[modality]:
            spread = spreads if modality == "sar" else None
            scenes[modality]["baseline"] = _baseline_provenance(modality, chosen[modality], spread)
    with atomic_path(out_scenes) as tmp:
        tmp.write_text(json.dumps(scenes, indent=2))
    return scenes

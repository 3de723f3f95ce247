"""An event's products as one lazy xarray Dataset, for notebooks and scripts.

`open_event` reads every raster product of `results/<event>/` through rioxarray with
dask chunks, so nothing is loaded until it is computed, and a whole-event reduction
holds a few chunks at a time whatever the grid's size. Products of both periods share a
`period` dimension; the land-cover legend is a `class` coordinate with names and
colours. What each code means is read from the files themselves (their `values`,
`codes` and `bits` tags, band descriptions and colour tables, as `raster.write_cog`
writes them), so a product whose bands change keeps its right labels.

Polygons and statistics sit beside the Dataset on its `metaflood` accessor:
`ds.metaflood.polygons` (a GeoDataFrame), `ds.metaflood.stats` (stats.json), and
`ds.metaflood.missing` with what is absent and how to make it.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import rioxarray
import xarray as xr

from metaflood.core.classes import CLASS_COLORS, CLASS_NAMES, CLASS_NODATA
from metaflood.core.config import PERIODS
from metaflood.core.errors import InputError, NotAnEventError, RunIncompleteError

# Rows and columns of a dask chunk: 64 of the products' 256 px blocks, so a chunk is
# whole blocks and an 8-band probability chunk is 32 MB.
CHUNK_PX = 2048
# Written last of the event's data products (its inputs are every other one): the run
# of an event finished when it exists.
FINISHED = "flood/stats.json"
STAGE_FOLDERS = ("scenes", "aligned", "landcover", "flood")


@dataclass(frozen=True)
class Product:
    """One raster product of an event: where it is and what it becomes in the Dataset."""

    name: str
    path: str  # relative to the event folder; "{period}" for one file per period
    what: str
    band_dim: str | None = None  # several bands: a dimension named so, labelled by them
    made_by: str = "the workflow"
    # Made only when this configuration key is set; stats.json then records the product
    # under its name (a file a run with the option on left behind is not this run's).
    option: str | None = None

    @property
    def per_period(self) -> bool:
        return "{period}" in self.path

    def files(self, event_dir: Path) -> list[Path]:
        periods = PERIODS if self.per_period else (None,)
        return [event_dir / self.path.format(period=p) for p in periods]

    def made_by_run(self, stats: dict) -> bool:
        """Whether the run whose stats.json is `stats` made this product: always for a
        product of every run, and for an option's only where stats.json records it."""
        return self.option is None or stats.get(self.name) is not None


PRODUCTS: tuple[Product, ...] = (
    Product("landcover", "landcover/{period}.tif", "land-cover classes"),
    Product(
        "probability",
        "landcover/{period}_proba.tif",
        "land-cover class probabilities (scale_factor gives the probability)",
        band_dim="class",
    ),
    Product("route", "landcover/{period}_route.tif", "which MetaRS head mapped each pixel"),
    Product("availability", "aligned/{period}_valid.tif", "which modalities were usable"),
    Product(
        "image",
        "aligned/{period}.tif",
        "co-registered SAR backscatter (dB) and optical reflectance",
        band_dim="band",
    ),
    Product(
        "water",
        "water/{period}.tif",
        "fused water probability (percent)",
        made_by="the water stage",
    ),
    Product(
        "water_sar", "water/{period}_sar.tif", "single-date SAR water", made_by="the water stage"
    ),
    Product(
        "water_evidence",
        "water/{period}_evidence.tif",
        "water evidence: SAR margin, optical water index and its margin",
        band_dim="evidence",
        made_by="the water stage",
    ),
    Product("sar_change", "flood/sar_change.tif", "SAR change evidence"),
    Product(
        "sar_logratio",
        "flood/sar_logratio.tif",
        "post/pre SAR log-ratio (dB) and filtered post-event VV",
        band_dim="ratio",
    ),
    Product("exclusion", "flood/exclusion.tif", "terrain exclusion: where SAR cannot say flood"),
    Product("reference_water", "flood/reference_water.tif", "water before the event, by source"),
    Product(
        "flood_network",
        "flood/network.tif",
        "flood network probability (percent, not calibrated)",
        option="change.flood_network",
    ),
    Product("extent", "flood/extent.tif", "flood extent"),
    Product("confidence", "flood/confidence.tif", "calibrated flood confidence (percent)"),
    Product("support", "flood/support.tif", "what each flooded pixel rests on"),
)
# Tags holding "<code> <meaning>, ..." lists (a "bits" tag holds "bit <n> <meaning>").
CODE_TAGS = ("values", "codes")
# "probability = value / 254": what a stored value is worth.
SCALE = re.compile(r"=\s*value\s*/\s*([0-9.]+)")


def parse_codes(text: str) -> dict[int, str]:
    """{code: meaning} from a tag such as "0 dry, 1 flooded, 255 nodata" (a meaning may
    hold commas or colons; a new entry starts at a comma or semicolon before a number).
    Entries of the form "bit <n> ..." are left out (see `parse_bits`)."""
    codes = {}
    for entry in re.split(r"[,;]\s*(?=(?:bit\s+)?\d+\s)", text.strip()):
        match = re.fullmatch(r"(\d+)\s+(.+)", entry.strip(), flags=re.DOTALL)
        if match:
            codes[int(match[1])] = match[2].strip()
    return codes


def parse_bits(text: str) -> dict[int, str]:
    """{bit: meaning} from a tag such as "bit 0 SAR valid, bit 1 optical valid; 255 ..."."""
    return {int(n): meaning.strip() for n, meaning in re.findall(r"bit\s+(\d+)\s+([^,;]+)", text)}


def bit_codes(bits: dict[int, str]) -> dict[int, str]:
    """The meaning of every value a bit field can take ("SAR valid and optical valid")."""
    return {
        value: " and ".join(m for b, m in sorted(bits.items()) if value >> b & 1) or "none"
        for value in range(1 << (max(bits) + 1) if bits else 0)
    }


def code_of(da: xr.DataArray, meaning: str) -> int:
    """The code whose meaning (in `da.attrs["codes"]`) is `meaning`, or starts with it."""
    codes = da.attrs.get("codes") or {}
    for exact in (True, False):
        for code, text in codes.items():
            if text == meaning if exact else text.startswith(meaning):
                return code
    raise KeyError(f"{da.name}: no code means {meaning!r} (codes: {codes})")


def _hex(rgba: tuple[int, ...]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgba[:3])


def _header(path: Path) -> dict[str, Any]:
    """What rioxarray does not carry: the colour table, band descriptions, the grid."""
    try:
        src = rasterio.open(path)
    except rasterio.errors.RasterioError as err:
        raise InputError(f"{path}: cannot be read as a raster ({err})") from err
    with src:
        try:
            colormap = src.colormap(1)
        except ValueError:
            colormap = None
        return {
            "descriptions": src.descriptions,
            "units": src.units,
            "tags": src.tags(),
            "colormap": colormap,
            "grid": (src.crs, src.transform, src.width, src.height),
        }


def _band_array(path: Path, product: Product, header: dict, chunks: int) -> xr.DataArray:
    """One file as a DataArray: (y, x), or (band_dim, y, x) labelled by its bands."""
    try:
        da = rioxarray.open_rasterio(
            path,
            chunks={"band": -1, "y": chunks, "x": chunks},
            mask_and_scale=False,
            cache=False,
        )
    except rasterio.errors.RasterioError as err:
        raise InputError(f"{path}: cannot be read as a raster ({err})") from err
    if product.band_dim is None:
        if da.sizes["band"] != 1:
            raise InputError(f"{path}: expected one band, found {da.sizes['band']}")
        return da.squeeze("band", drop=True)
    names = [d or f"band_{i}" for i, d in enumerate(header["descriptions"], start=1)]
    da = da.rename(band=product.band_dim)
    if product.band_dim == "class":  # labelled by code; names and colours as coordinates
        return da.assign_coords({"class": np.arange(len(names))})
    return da.assign_coords({product.band_dim: names})


def open_raster(path: str | os.PathLike, *, chunks: int = CHUNK_PX) -> xr.DataArray:
    """One single-band product file as a lazy (y, x) DataArray with its CRS, transform
    and nodata, for a stage that reads products before the event's run has finished."""
    path = Path(path)
    product = Product(path.stem, path.name, "")
    return _band_array(path, product, _header(path), chunks)


def _attrs(
    product: Product, header: dict, files: list[Path], legend: tuple[list[str], list[str]]
) -> dict[str, Any]:
    """The product's attributes: its tags as written, parsed code meanings, colours."""
    tags = header["tags"]
    attrs: dict[str, Any] = {k: v for k, v in tags.items() if k != "AREA_OR_POINT"}
    attrs["description"] = product.what
    attrs["source"] = [str(f) for f in files]
    if product.band_dim is None:
        attrs["long_name"] = header["descriptions"][0] or product.name
        if header["units"][0]:
            attrs["units"] = header["units"][0]
    elif any(header["units"]):
        attrs["units"] = [u or "" for u in header["units"]]
    codes: dict[int, str] = {}
    for key in CODE_TAGS:
        if key in tags:
            codes.update(parse_codes(tags[key]))
    if "bits" in tags:
        attrs["bits"] = bits = parse_bits(tags["bits"])
        codes.update(bit_codes(bits))
        codes.update(parse_codes(tags["bits"]))
    if product.name == "landcover":
        codes.update(dict(enumerate(legend[0])))
        codes[CLASS_NODATA] = "no class (nodata)"
    colormap = header["colormap"]
    if codes:
        attrs["codes"] = dict(sorted(codes.items()))
        if colormap:
            attrs["colors"] = {c: _hex(colormap[c]) for c in sorted(codes) if c in colormap}
    scale = SCALE.search(tags.get("scale", ""))
    if scale:
        attrs["scale_factor"] = 1 / float(scale[1])
    return attrs


def class_legend(event_dir: Path) -> tuple[list[str], list[str]]:
    """Class names and colours: the probability bands' names and the class map's colour
    table as the run wrote them, else the legend of metaflood.core.classes."""
    names, colormap = list(CLASS_NAMES), {}
    proba, classes = (event_dir / f"landcover/pre{s}.tif" for s in ("_proba", ""))
    if proba.is_file():
        names = [d or str(i) for i, d in enumerate(_header(proba)["descriptions"])]
    if classes.is_file():
        colormap = _header(classes)["colormap"] or {}
    defaults = dict(enumerate(CLASS_COLORS))
    colors = [_hex(colormap.get(i) or defaults.get(i, (128, 128, 128))) for i in range(len(names))]
    return names, colors


def _read_product(
    product: Product,
    files: list[Path],
    chunks: int,
    grid: tuple | None,
    legend: tuple[list[str], list[str]],
) -> tuple[xr.DataArray, tuple]:
    headers = [_header(f) for f in files]
    grid = grid or headers[0]["grid"]
    for path, header in zip(files, headers, strict=True):
        if header["grid"] != grid:
            raise InputError(
                f"{path}: not on the event's grid (CRS, transform, size {header['grid']} "
                f"against {grid}): it is not one of this run's products"
            )
    arrays = [_band_array(f, product, h, chunks) for f, h in zip(files, headers, strict=True)]
    if product.per_period:
        da = xr.concat(
            arrays,
            dim="period",
            join="outer" if product.band_dim else "exact",
            combine_attrs="drop",
        ).assign_coords(period=list(PERIODS))
    else:
        da = arrays[0]
    nodata = arrays[0].attrs.get("_FillValue")
    da.attrs = _attrs(product, headers[0], files, legend)
    if nodata is not None:
        da.attrs["_FillValue"] = nodata
    return da.rename(product.name), grid


def _not_set_message(product: Product, event_dir: Path) -> str:
    stale = [str(p) for p in product.files(event_dir) if p.is_file()]
    left = f" ({', '.join(stale)} is left from an earlier run)" if stale else ""
    return (
        f"{product.name}: made only when the configuration sets {product.option}, "
        f"which this run did not{left}"
    )


def _missing_message(product: Product, absent: list[Path], event_dir: Path) -> str:
    what = ", ".join(str(p) for p in absent)
    if product.made_by != "the workflow":
        return (
            f"{product.name}: {what} not found: made by {product.made_by}, which this "
            "run did not have; run the workflow again with a metaflood version that has it"
        )
    targets = " ".join(f"results/{event_dir.name}/{p.relative_to(event_dir)}" for p in absent)
    return (
        f"{product.name}: {what} not found (removed since the run?); make it again with "
        f"`snakemake --cores all {targets}` in the folder above results/"
    )


def events_in(results_dir: Path) -> list[str]:
    """The event folders of a results folder (those holding a stage's folder)."""
    if not results_dir.is_dir():
        return []
    return sorted(
        d.name
        for d in results_dir.iterdir()
        if d.is_dir() and any((d / s).is_dir() for s in STAGE_FOLDERS)
    )


def event_folder(results_dir: str | os.PathLike, event: str | None = None) -> Path:
    """The folder of a finished event's results; NotAnEventError or RunIncompleteError
    saying which, and what to run, otherwise."""
    results_dir = Path(results_dir)
    event_dir = results_dir / event if event is not None else results_dir
    name = event_dir.name
    run_hint = (
        f"map it first: `snakemake --cores all` with a configuration whose `events` has "
        f"'{name}', or metaflood.run(config) from Python"
    )
    if not event_dir.is_dir():
        where = event_dir.parent
        known = events_in(where)
        there = f" (events there: {', '.join(known)})" if known else ""
        raise NotAnEventError(f"{event_dir}: no such folder{there}; {run_hint}")
    if not any((event_dir / s).is_dir() for s in STAGE_FOLDERS):
        known = events_in(event_dir)
        if known:
            hint = f"it is a results folder: name an event (events there: {', '.join(known)})"
        elif any((event_dir.parent / s).is_dir() for s in STAGE_FOLDERS):
            hint = f"it is a folder inside event '{event_dir.parent.name}': open {event_dir.parent}"
        else:
            hint = run_hint
        raise NotAnEventError(
            f"{event_dir}: not an event's results (none of {', '.join(STAGE_FOLDERS)}/ "
            f"in it); {hint}"
        )
    if not (event_dir / FINISHED).is_file():
        made = [s for s in STAGE_FOLDERS if (event_dir / s).is_dir()]
        raise RunIncompleteError(
            f"{event_dir}: the run of event '{name}' did not finish ({FINISHED} is missing; "
            f"made so far: {', '.join(made)}). Run it to the end: `snakemake --cores all "
            f"results/{name}/{FINISHED}` (with the --configfile that defines '{name}', and "
            "--rerun-incomplete if it was killed), or metaflood.run(config)"
        )
    return event_dir


def open_event(
    results_dir: str | os.PathLike, event: str | None = None, *, chunks: int = CHUNK_PX
) -> xr.Dataset:
    """The products of `results_dir/event` (or of the event folder `results_dir` when
    `event` is None) as one lazy Dataset of dask arrays, `chunks` pixels a side.

    Every variable keeps its file's CRS, transform and nodata (`da.rio.crs`,
    `da.rio.transform()`, `da.rio.nodata`) and its code meanings (`attrs["codes"]`).
    A product that is not there is left out and named in `ds.metaflood.missing`;
    `ds.metaflood["name"]` says why it is absent and how to make it. A product of an
    option the run did not set (`flood_network`) is left out, and is not missing, even
    where an earlier run with the option on left its file.
    """
    event_dir = event_folder(results_dir, event).resolve()
    stats = json.loads((event_dir / FINISHED).read_text())
    variables: dict[str, xr.DataArray] = {}
    missing: dict[str, str] = {}
    grid = None
    legend = class_legend(event_dir)
    for product in PRODUCTS:
        if not product.made_by_run(stats):  # an option this run did not set
            continue
        files = product.files(event_dir)
        absent = [f for f in files if not f.is_file()]
        if absent:
            missing[product.name] = _missing_message(product, absent, event_dir)
            continue
        variables[product.name], grid = _read_product(product, files, chunks, grid, legend)
    ds = xr.Dataset(variables)
    names, colors = legend
    ds = ds.assign_coords(
        {
            "class": np.arange(len(names)),
            "class_name": ("class", names),
            "class_color": ("class", colors),
        }
    )
    crs, transform = grid[:2] if grid else (None, None)
    ds.attrs = {
        "event": event_dir.name,
        "event_dir": str(event_dir),
        "crs": crs.to_string() if crs else None,
        "pixel_area_m2": abs(transform.a * transform.e) if transform else None,
        "missing": missing,
    }
    return ds


def area_by_class(mask: xr.DataArray, classes: xr.DataArray, ds: xr.Dataset) -> xr.DataArray:
    """Area (km²) of `mask` in each class of `classes` (a class map of `ds`), lazily:
    the comparison broadcasts over the `class` coordinate, chunk by chunk."""
    per_class = (mask & (classes == ds["class"])).sum(("y", "x"))
    area = per_class * ds.attrs["pixel_area_m2"] / 1e6
    return area.rename("area_km2").assign_attrs(units="km2")


def flooded_area_by_pre_class(ds: xr.Dataset) -> xr.DataArray:
    """Flooded area (km²) by pre-event land-cover class, as stats.json counts it."""
    flooded = ds["extent"] == code_of(ds["extent"], "flooded")
    return area_by_class(flooded, ds["landcover"].sel(period="pre"), ds)


@xr.register_dataset_accessor("metaflood")
class EventAccessor:
    """`ds.metaflood`: what lies beside an event's Dataset (polygons, statistics) and
    what is missing from it."""

    def __init__(self, ds: xr.Dataset) -> None:
        self._ds = ds

    @property
    def event_dir(self) -> Path:
        if "event_dir" not in self._ds.attrs:
            raise AttributeError("this Dataset was not made by metaflood.open_event")
        return Path(self._ds.attrs["event_dir"])

    @property
    def missing(self) -> dict[str, str]:
        """{variable: why it is absent and how to make it}."""
        return dict(self._ds.attrs.get("missing", {}))

    def __getitem__(self, name: str) -> xr.DataArray:
        if name in self._ds.data_vars:
            return self._ds[name]
        if name in self.missing:
            raise KeyError(self.missing[name])
        optional = {p.name: p for p in PRODUCTS if p.option}
        if name in optional:
            raise KeyError(_not_set_message(optional[name], self.event_dir))
        known = ", ".join(p.name for p in PRODUCTS)
        raise KeyError(f"{name!r} is not a metaflood product (products: {known})")

    @cached_property
    def stats(self) -> dict[str, Any]:
        """stats.json of the event."""
        return json.loads((self.event_dir / FINISHED).read_text())

    @cached_property
    def polygons(self):
        """The flood polygons (flood/polygons.gpkg) as a GeoDataFrame."""
        import geopandas as gpd

        path = self.event_dir / "flood" / "polygons.gpkg"
        if not path.is_file():
            product = Product("polygons", "flood/polygons.gpkg", "flood polygons")
            raise KeyError(_missing_message(product, [path], self.event_dir))
        return gpd.read_file(path)

    def code(self, name: str, meaning: str) -> int:
        """The code of `meaning` in product `name` (e.g. code("route", "sar_only"))."""
        return code_of(self[name], meaning)

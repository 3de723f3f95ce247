"""Adapters from the public layouts of labelled flood sets to one in-memory sample.

Each layout finds its samples under a dataset root (`discover`), checking that every
image has its pair and its label before any work starts, and reads one sample at a time
(`load`) as physical bands with the names the workflow uses: SAR backscatter in dB (VV,
VH), optical reflectance (blue, green, red, nir, swir16), labels as 0 dry, 1 water,
255 unlabelled. A set never gains a band it does not have: OMBRIA's optical image is
SWIR, NIR and green, and its SAR is VV alone.

The 8-bit sets (ETCI 2021, OMBRIA) are stretched images, not calibrated values. They are
read onto a nominal scale so that the workflow's physical guards hold (`NOMINAL_DB`,
`NOMINAL_REFLECTANCE`): an affine stand-in, not a calibration. Anything that compares
across scenes in absolute dB will not transfer; scene-relative thresholds and per-scene
standardised networks do.

The train/measure split of each layout is fixed here, before any result is looked at:
- ETCI 2021: tiles carry their place in the pass (x, y); blocks of 8 x 8 tiles are held
  out where (x // 8 + y // 8) % 3 == 0, a third of the scene in blocks apart from the
  training tiles, whatever folder the pass is published in (the competition's own
  "valid" pass is the one the shared tiles come from).
- OMBRIA: the dataset's own test folder measures, all of it; in its train folder the
  triplets are numbered along each event and runs of 50 numbers are held out where
  (number // 50) % 4 == 3, a quarter of the set.
- Sen1Floods11: the dataset's own hand-labelled split files when present
  (flood_test_data.csv measures; train and valid train); without them every chip
  measures (a model that never trained on the set).

A second fit that learns from a trained model's outputs (the flood network's join to the
change stage's evidence) needs outputs on samples that model did not train on: the
training split has two parts, `fit` and `validation`, the model training on `fit` and the
second fit learning on `validation`. OMBRIA's validation part is the runs of 50 where
(number // 50) % 4 == 2, ETCI's the blocks where (x // 8 + y // 8) % 3 == 1.
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import rasterio
from PIL import Image
from rasterio.errors import RasterioError
from rasterio.transform import Affine, from_origin

from metaflood.core.config import PERIODS
from metaflood.core.errors import InputError

LABEL_DRY, LABEL_WATER, LABEL_NONE = 0, 1, 255
TRAIN, TEST = "train", "test"
SPLITS = (TRAIN, TEST)
FIT, VALIDATION = "fit", "validation"  # the two parts of TRAIN
PARTS = (FIT, VALIDATION)
# The 8-bit sets on a nominal scale: 0..255 -> -30..0 dB, 0..255 -> reflectance 0..0.2
# (the Sentinel-2 true-colour stretch). A stand-in so that water lands below -15 dB and
# reflectance in 0..1, not a calibration.
NOMINAL_DB = (-30.0, 0.0)
NOMINAL_REFLECTANCE = 0.2
# 8-bit SAR value meaning "outside the swath" in ETCI 2021.
ETCI_NODATA = 255
# Where the unreferenced 8-bit sets are placed: a UTM grid of 10 m pixels.
NOMINAL_RESOLUTION = 10.0
NOMINAL_CRS = {"etci2021": "EPSG:32646", "ombria": "EPSG:32634"}  # Bangladesh; Europe
NOMINAL_ORIGIN = (300_000.0, 2_700_000.0)


@dataclass(frozen=True)
class SampleRef:
    """One sample's files, its split and, for tiles of one pass, its place in it."""

    layout: str
    id: str
    files: Mapping[str, Path]
    split: str
    position: tuple[int, int] | None = None  # (column, row) in tiles


@dataclass
class Sample:
    """A labelled sample in workflow units, on its own grid."""

    id: str
    crs: str
    transform: Affine
    sar: dict[str, np.ndarray]  # period -> (bands, rows, cols) dB, NaN nodata
    sar_bands: tuple[str, ...]
    optical: dict[str, np.ndarray]  # period -> (bands, rows, cols) reflectance, NaN nodata
    optical_bands: tuple[str, ...]
    water: dict[str, np.ndarray] = field(default_factory=dict)  # period -> labels (0/1/255)
    flood: np.ndarray | None = None  # new water between pre and post (0/1/255)
    units: str = "calibrated"

    @property
    def shape(self) -> tuple[int, int]:
        first = next(iter({**self.sar, **self.optical}.values()))
        return first.shape[-2], first.shape[-1]

    @property
    def periods(self) -> tuple[str, ...]:
        return tuple(p for p in PERIODS if p in self.sar or p in self.optical)


def nominal_db(dn: np.ndarray, nodata: int | None = None) -> np.ndarray:
    low, high = NOMINAL_DB
    db = low + (high - low) * dn.astype(np.float32) / np.float32(255)
    if nodata is not None:
        db[dn == nodata] = np.nan
    return db


def nominal_reflectance(dn: np.ndarray) -> np.ndarray:
    return dn.astype(np.float32) * np.float32(NOMINAL_REFLECTANCE / 255)


def _png(path: Path, channels: int | None = None) -> np.ndarray:
    """An 8-bit PNG as (rows, cols) or (rows, cols, channels), refused with its name when
    it cannot be read or has another number of channels."""
    try:
        with Image.open(path) as image:
            array = np.asarray(image)
    except (OSError, ValueError) as err:
        raise InputError(f"{path}: cannot be read as an image ({err})") from err
    if array.dtype != np.uint8:
        raise InputError(f"{path}: expected 8-bit values, found {array.dtype}")
    if channels is None and array.ndim == 3:  # a grey image saved as RGB(A)
        array = array[..., 0]
    if channels is not None and (array.ndim != 3 or array.shape[2] < channels):
        raise InputError(f"{path}: expected {channels} channels, found shape {array.shape}")
    return array


def _same_shape(arrays: Mapping[Path, np.ndarray], shape: tuple[int, int]) -> None:
    for path, array in arrays.items():
        if array.shape[:2] != shape:
            raise InputError(
                f"{path}: is {array.shape[0]} x {array.shape[1]} px, but its sample is "
                f"{shape[0]} x {shape[1]} px"
            )


def _folder(root: Path, *parts: str) -> Path:
    path = root.joinpath(*parts)
    if not path.is_dir():
        raise InputError(f"{path}: missing folder (is {root} a dataset root of this layout?)")
    return path


def _paired(first: dict[str, Path], others: Mapping[str, dict[str, Path]], what: str) -> list[str]:
    """The ids found in every folder; an id missing from any folder is an error naming
    the file that has no pair."""
    for name, found in others.items():
        for key in sorted(set(first) ^ set(found)):
            lone = first.get(key) or found[key]
            raise InputError(f"{lone}: has no {name} pair in this {what} set")
    if not first:
        raise InputError(f"no {what} sample found")
    return sorted(first)


# --- ETCI 2021 -------------------------------------------------------------------------

_ETCI_TILE = re.compile(r"^(?P<id>.+_x-(?P<x>\d+)_y-(?P<y>\d+))_vv\.png$")


def etci_block_class(x: int, y: int) -> int:
    """0, 1 or 2 for the tile's block of 8 x 8 tiles: 0 measures, 1 validates."""
    return (x // 8 + y // 8) % 3


def etci_split(x: int, y: int) -> str:
    return TEST if etci_block_class(x, y) == 0 else TRAIN


# Each tile's files beside its VV image: role -> (folder, file name).
ETCI_ROLES = {
    "vh": ("vh", "{id}_vh.png"),
    "flood": ("flood_label", "{id}.png"),
    "water_body": ("water_body_label", "{id}.png"),
}
ETCI_FOLDERS = ("vv", *(folder for folder, _ in ETCI_ROLES.values()))


def etci_passes(root: Path) -> list[Path]:
    """The folders that hold a pass's tile folders: `root` itself, `<pass>/`, or as the
    competition publishes them `<split>/<pass>/tiles/`, at any depth."""
    passes = []
    for folder, subfolders, _ in os.walk(root):
        if set(subfolders) & set(ETCI_FOLDERS):
            passes.append(Path(folder))
            subfolders.clear()  # not into the tile folders themselves
    return sorted(passes)


def discover_etci(root: Path) -> list[SampleRef]:
    """Every tile of every pass folder (`vv/<tile>_vv.png` with its vh, flood and
    water-body labels)."""
    refs: list[SampleRef] = []
    for folder in etci_passes(root):
        vv_dir = _folder(folder, "vv")
        tiles = {}
        for path in sorted(vv_dir.glob("*_vv.png")):
            match = _ETCI_TILE.match(path.name)
            if match is None:
                raise InputError(f"{path}: not an ETCI tile name (<pass>_x-<x>_y-<y>_vv.png)")
            tiles[match["id"]] = (path, int(match["x"]), int(match["y"]))
        others = {}
        for role, (name, pattern) in ETCI_ROLES.items():
            directory = _folder(folder, name)
            suffix = pattern.replace("{id}", "")
            others[role] = {
                p.name[: -len(suffix)]: p for p in directory.glob(f"*{suffix}") if "_x-" in p.name
            }
        ids = _paired({k: v[0] for k, v in tiles.items()}, others, "ETCI 2021")
        for tile_id in ids:
            path, x, y = tiles[tile_id]
            files = {"vv": path, **{role: others[role][tile_id] for role in ETCI_ROLES}}
            refs.append(SampleRef("etci2021", tile_id, files, etci_split(x, y), (x, y)))
    if not refs:
        raise InputError(
            f"{root}: no ETCI 2021 tile found (a pass folder holds {', '.join(ETCI_FOLDERS)})"
        )
    return refs


def load_etci(ref: SampleRef) -> Sample:
    vv, vh = _png(ref.files["vv"]), _png(ref.files["vh"])
    flood, body = _png(ref.files["flood"]), _png(ref.files["water_body"])
    _same_shape(
        {ref.files["vh"]: vh, ref.files["flood"]: flood, ref.files["water_body"]: body}, vv.shape
    )
    swath = (vv != ETCI_NODATA) & (vh != ETCI_NODATA)
    sar = np.stack([nominal_db(vv), nominal_db(vh)])
    sar[:, ~swath] = np.nan
    water = np.where((flood > 0) | (body > 0), LABEL_WATER, LABEL_DRY).astype(np.uint8)
    water[~swath] = LABEL_NONE
    x, y = ref.position or (0, 0)
    rows, cols = vv.shape
    left = NOMINAL_ORIGIN[0] + x * cols * NOMINAL_RESOLUTION
    top = NOMINAL_ORIGIN[1] - y * rows * NOMINAL_RESOLUTION
    return Sample(
        id=ref.id,
        crs=NOMINAL_CRS["etci2021"],
        transform=from_origin(left, top, NOMINAL_RESOLUTION, NOMINAL_RESOLUTION),
        sar={"post": sar},
        sar_bands=("VV", "VH"),
        optical={},
        optical_bands=(),
        water={"post": water},
        units=f"8-bit, read as nominal dB {NOMINAL_DB[0]:g}..{NOMINAL_DB[1]:g}",
    )


# --- OMBRIA ----------------------------------------------------------------------------

_OMBRIA_IMAGE = re.compile(r"^S(?P<sensor>[12])_(?P<role>before|after|mask)_(?P<n>\d+)\.png$")
OMBRIA_ROLES = {
    "sar_pre": ("OmbriaS1", "BEFORE"),
    "sar_post": ("OmbriaS1", "AFTER"),
    "mask": ("OmbriaS1", "MASK"),
    "optical_pre": ("OmbriaS2", "BEFORE"),
    "optical_post": ("OmbriaS2", "AFTER"),
}
# OMBRIA's Sentinel-2 false colour, channel by channel (its README).
OMBRIA_OPTICAL_BANDS = ("swir16", "nir", "green")


OMBRIA_TRAIN_FOLDER = "train"


def ombria_run_class(number: int) -> int:
    """0 to 3 for the triplet's run of 50 numbers: 3 measures, 2 validates."""
    return (number // 50) % 4


def ombria_number(ref: SampleRef) -> int:
    return int(ref.id.rsplit("_", 1)[1])


def ombria_split(number: int, folder: str = OMBRIA_TRAIN_FOLDER) -> str:
    """Only the dataset's own train folder may train, and a quarter of it measures."""
    if folder != OMBRIA_TRAIN_FOLDER:
        return TEST
    return TEST if ombria_run_class(number) == 3 else TRAIN


def discover_ombria(root: Path) -> list[SampleRef]:
    """Triplets of `OmbriaS1/<split>/{BEFORE,AFTER,MASK}` and `OmbriaS2/<split>/{BEFORE,
    AFTER}` matched by number, in every split folder found (train, test)."""
    splits = sorted(p.name for p in _folder(root, "OmbriaS1").iterdir() if p.is_dir())
    refs: list[SampleRef] = []
    for split_name in splits:
        found: dict[str, dict[str, Path]] = {}
        for role, (sensor, folder) in OMBRIA_ROLES.items():
            directory = _folder(root, sensor, split_name, folder)
            found[role] = {}
            for path in sorted(directory.glob("*.png")):
                match = _OMBRIA_IMAGE.match(path.name)
                if match is None:
                    raise InputError(f"{path}: not an OMBRIA image name (S1_after_0001.png)")
                found[role][match["n"]] = path
        first = found.pop("sar_post")
        numbers = _paired(first, found, f"OMBRIA {split_name}")
        for n in numbers:
            files = {"sar_post": first[n], **{role: found[role][n] for role in found}}
            split = ombria_split(int(n), split_name)
            refs.append(SampleRef("ombria", f"{split_name}_{n}", files, split))
    return refs


def load_ombria(ref: SampleRef) -> Sample:
    sar = {p: _png(ref.files[f"sar_{p}"]) for p in PERIODS}
    optical = {p: _png(ref.files[f"optical_{p}"], channels=3)[..., :3] for p in PERIODS}
    mask = _png(ref.files["mask"])
    shape = sar["post"].shape
    _same_shape(
        {ref.files["sar_pre"]: sar["pre"], ref.files["mask"]: mask}
        | {ref.files[f"optical_{p}"]: optical[p] for p in PERIODS},
        shape,
    )
    number = ombria_number(ref)
    left = NOMINAL_ORIGIN[0] + (number % 64) * 2 * shape[1] * NOMINAL_RESOLUTION
    top = NOMINAL_ORIGIN[1] - (number // 64) * 2 * shape[0] * NOMINAL_RESOLUTION
    return Sample(
        id=ref.id,
        crs=NOMINAL_CRS["ombria"],
        transform=from_origin(left, top, NOMINAL_RESOLUTION, NOMINAL_RESOLUTION),
        sar={p: nominal_db(a)[None] for p, a in sar.items()},
        sar_bands=("VV",),
        optical={p: np.moveaxis(nominal_reflectance(a), -1, 0) for p, a in optical.items()},
        optical_bands=OMBRIA_OPTICAL_BANDS,
        flood=np.where(mask > 0, LABEL_WATER, LABEL_DRY).astype(np.uint8),
        units=(
            f"8-bit, read as nominal dB {NOMINAL_DB[0]:g}..{NOMINAL_DB[1]:g} and "
            f"reflectance 0..{NOMINAL_REFLECTANCE:g}"
        ),
    )


# --- Sen1Floods11 ----------------------------------------------------------------------

# Band numbers (1-based) of Sentinel-2 L1C's 13 bands in S2Hand chips (B1..B12, B8A after
# B8), and the L1C scale.
S1F11_OPTICAL_BANDS = {"blue": 2, "green": 3, "red": 4, "nir": 8, "swir16": 12}
S1F11_REFLECTANCE_SCALE = 1e-4
S1F11_SPLIT_FILES = {
    "flood_train_data.csv": TRAIN,
    "flood_valid_data.csv": TRAIN,
    "flood_test_data.csv": TEST,
}


def _s1f11_splits(root: Path) -> dict[str, str]:
    """Chip id -> split from the dataset's split files (beside the folders, or under
    splits/flood_handlabeled as in its bucket); empty when there are none."""
    splits: dict[str, str] = {}
    for folder in (root, root / "splits" / "flood_handlabeled"):
        for name, split in S1F11_SPLIT_FILES.items():
            path = folder / name
            if path.is_file():
                with path.open(newline="") as handle:
                    for row in csv.reader(handle):
                        if row and row[0].endswith("_S1Hand.tif"):
                            splits[row[0][: -len("_S1Hand.tif")]] = split
    return splits


def discover_sen1floods11(root: Path) -> list[SampleRef]:
    """`S1Hand/<id>_S1Hand.tif`, `S2Hand/<id>_S2Hand.tif` and `LabelHand/<id>_LabelHand.tif`
    under the root (or under data/flood_events/HandLabeled, as in the bucket)."""
    bucket = root / "data" / "flood_events" / "HandLabeled"
    base = bucket if bucket.is_dir() else root
    roles = {"sar": "S1Hand", "optical": "S2Hand", "label": "LabelHand"}
    found = {}
    for role, name in roles.items():
        directory = _folder(base, name)
        suffix = f"_{name}.tif"
        found[role] = {p.name[: -len(suffix)]: p for p in directory.glob(f"*{suffix}")}
    first = found.pop("sar")
    ids = _paired(first, found, "Sen1Floods11")
    splits = _s1f11_splits(root)
    return [
        SampleRef(
            "sen1floods11",
            chip,
            {"sar": first[chip], **{role: found[role][chip] for role in found}},
            splits.get(chip, TEST) if splits else TEST,
        )
        for chip in ids
    ]


def _geotiff(path: Path) -> tuple[np.ndarray, dict]:
    try:
        with rasterio.open(path) as src:
            if src.crs is None:
                raise InputError(f"{path}: has no coordinate reference system")
            return src.read(), {"crs": src.crs.to_string(), "transform": src.transform}
    except RasterioError as err:
        raise InputError(f"{path}: cannot be read as a raster ({err})") from err


def load_sen1floods11(ref: SampleRef) -> Sample:
    sar, grid = _geotiff(ref.files["sar"])
    optical, _ = _geotiff(ref.files["optical"])
    label, _ = _geotiff(ref.files["label"])
    if sar.shape[0] < 2:
        raise InputError(f"{ref.files['sar']}: expected VV and VH, found {sar.shape[0]} band")
    if optical.shape[0] < max(S1F11_OPTICAL_BANDS.values()):
        raise InputError(
            f"{ref.files['optical']}: expected the 13 Sentinel-2 bands, found {optical.shape[0]}"
        )
    shape = sar.shape[1:]
    _same_shape({ref.files["optical"]: optical[0], ref.files["label"]: label[0]}, shape)
    sar_db = sar[:2].astype(np.float32)
    sar_db[~np.isfinite(sar_db)] = np.nan
    reflectance = np.stack([optical[i - 1] for i in S1F11_OPTICAL_BANDS.values()]).astype(
        np.float32
    ) * np.float32(S1F11_REFLECTANCE_SCALE)
    reflectance[:, (optical == 0).all(axis=0)] = np.nan
    labels = label[0]
    water = np.full(shape, LABEL_NONE, np.uint8)
    water[labels == 0] = LABEL_DRY
    water[labels == 1] = LABEL_WATER
    return Sample(
        id=ref.id,
        crs=grid["crs"],
        transform=grid["transform"],
        sar={"post": sar_db},
        sar_bands=("VV", "VH"),
        optical={"post": reflectance},
        optical_bands=tuple(S1F11_OPTICAL_BANDS),
        water={"post": water},
    )


def partial_water_labels(
    water: Mapping[str, np.ndarray], flood: np.ndarray | None
) -> dict[str, np.ndarray]:
    """Water labels per period. A flood mask says water after the event and dry before it
    where it flooded, and nothing of water elsewhere (permanent water is not flood)."""
    labels = dict(water)
    if flood is not None:
        flooded = flood == LABEL_WATER
        labels.setdefault("post", np.where(flooded, LABEL_WATER, LABEL_NONE).astype(np.uint8))
        labels.setdefault("pre", np.where(flooded, LABEL_DRY, LABEL_NONE).astype(np.uint8))
    return {period: labels[period] for period in PERIODS if period in labels}


@dataclass(frozen=True)
class Layout:
    name: str
    discover: Callable[[Path], list[SampleRef]]
    load: Callable[[SampleRef], Sample]


LAYOUTS = {
    "sen1floods11": Layout("sen1floods11", discover_sen1floods11, load_sen1floods11),
    "etci2021": Layout("etci2021", discover_etci, load_etci),
    "ombria": Layout("ombria", discover_ombria, load_ombria),
}


def layout(name: str) -> Layout:
    if name not in LAYOUTS:
        raise InputError(f"unknown layout {name!r}: one of {', '.join(LAYOUTS)}")
    return LAYOUTS[name]


def discover(root: str | Path, name: str, split: str | None = None) -> list[SampleRef]:
    """The samples of a dataset root in a layout, of one split (None: all)."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: no such dataset folder")
    refs = layout(name).discover(root)
    if split in PARTS:
        if name not in VALIDATION_PARTS:
            raise InputError(f"{name}: no validation part of the training split is defined")
        validates = VALIDATION_PARTS[name]
        return [r for r in refs if r.split == TRAIN and validates(r) == (split == VALIDATION)]
    if split is not None:
        if split not in SPLITS:
            raise InputError(f"unknown split {split!r}: one of {', '.join(SPLITS + PARTS)}")
        refs = [r for r in refs if r.split == split]
    return refs


# Whether a training sample lies in the validation part of the training split (see the
# module's docstring): runs and blocks, as the measuring split is cut.
VALIDATION_PARTS: dict[str, Callable[[SampleRef], bool]] = {
    "ombria": lambda ref: ombria_run_class(ombria_number(ref)) == 2,
    "etci2021": lambda ref: etci_block_class(*ref.position) == 1,
}

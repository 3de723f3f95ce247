"""Small labelled sets in the three public layouts, written by the tests.

Each sample is a scene with a water body (a disc and a river band) in dry land with
speckle: SAR dark over water, optical wet (green above NIR and SWIR) over water. The
8-bit layouts store what their sets store (stretched grey and false colour PNGs); the
Sen1Floods11 layout stores georeferenced dB and L1C reflectance x 10000.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from PIL import Image
from rasterio.transform import from_origin


def water_scene(rng: np.random.Generator, size: int, shift: int = 0) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size]
    disc = (yy - size * 0.35) ** 2 + (xx - size * 0.4 - shift) ** 2 < (size * 0.18) ** 2
    river = np.abs(yy - 0.6 * xx - size * 0.45) < size * 0.06
    return disc | river


def sar_db(rng: np.random.Generator, water: np.ndarray, pol: str = "VV") -> np.ndarray:
    land, wet = (-9.0, -21.0) if pol == "VV" else (-16.0, -28.0)
    speckle = 10 * np.log10(rng.gamma(4.0, 1 / 4.0, water.shape))
    return (np.where(water, wet, land) + speckle).astype(np.float32)


def reflectance(rng: np.random.Generator, water: np.ndarray) -> dict[str, np.ndarray]:
    """Blue, green, red, NIR and SWIR 1.6 um of water and of vegetated land."""
    values = {
        "blue": (0.06, 0.05),
        "green": (0.08, 0.07),
        "red": (0.06, 0.04),
        "nir": (0.30, 0.02),
        "swir16": (0.20, 0.01),
    }
    noise = rng.normal(0, 0.005, water.shape)
    return {
        band: np.clip(np.where(water, wet, dry) + noise, 0.001, 1).astype(np.float32)
        for band, (dry, wet) in values.items()
    }


def _to_u8(db: np.ndarray) -> np.ndarray:
    return np.clip(np.rint((db + 30) / 30 * 255), 0, 254).astype(np.uint8)


def _png(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def write_etci(root: Path, tiles: list[tuple[int, int]], size: int = 96, seed: int = 0) -> Path:
    """`<pass>/{vv,vh,flood_label,water_body_label}` tiles at the given (x, y) places."""
    rng = np.random.default_rng(seed)
    folder = root / "bangladesh_20170314t115609"
    for x, y in tiles:
        name = f"bangladesh_20170314t115609_x-{x}_y-{y}"
        water = water_scene(rng, size, shift=x)
        vv, vh = _to_u8(sar_db(rng, water, "VV")), _to_u8(sar_db(rng, water, "VH"))
        vv[:, :4] = vh[:, :4] = 255  # a strip outside the swath
        flood = np.where(water & (np.arange(size)[None, :] > size // 2), 255, 0)
        body = np.where(water & (np.arange(size)[None, :] <= size // 2), 255, 0)
        _png(folder / "vv" / f"{name}_vv.png", vv)
        _png(folder / "vh" / f"{name}_vh.png", vh)
        _png(folder / "flood_label" / f"{name}.png", flood.astype(np.uint8))
        _png(folder / "water_body_label" / f"{name}.png", body.astype(np.uint8))
    return root


def write_ombria(
    root: Path, numbers: list[int], size: int = 96, seed: int = 0, split: str = "train"
) -> Path:
    """`OmbriaS1/<split>/{BEFORE,AFTER,MASK}` and `OmbriaS2/<split>/{BEFORE,AFTER,MASK}`:
    the river before, the river and a flooded disc after."""
    rng = np.random.default_rng(seed)
    for n in numbers:
        after = water_scene(rng, size, shift=n % 7)
        yy, xx = np.mgrid[:size, :size]
        before = np.abs(yy - 0.6 * xx - size * 0.45) < size * 0.06  # the river only
        flooded = after & ~before
        for role, water in (("before", before), ("after", after)):
            folder = role.upper()
            _png(
                root / "OmbriaS1" / split / folder / f"S1_{role}_{n:04d}.png",
                _to_u8(sar_db(rng, water)),
            )
            refl = reflectance(rng, water)
            rgb = np.stack([refl["swir16"], refl["nir"], refl["green"]], axis=-1)
            _png(
                root / "OmbriaS2" / split / folder / f"S2_{role}_{n:04d}.png",
                np.clip(np.rint(rgb / 0.4 * 255), 0, 255).astype(np.uint8),
            )
        mask = np.where(flooded, 255, 0).astype(np.uint8)
        _png(root / "OmbriaS1" / split / "MASK" / f"S1_mask_{n:04d}.png", mask)
        _png(root / "OmbriaS2" / split / "MASK" / f"S2_mask_{n:04d}.png", mask)
    return root


def _geotiff(path: Path, data: np.ndarray, transform, dtype: str, nodata=None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        count=data.shape[0],
        height=data.shape[1],
        width=data.shape[2],
        dtype=dtype,
        crs="EPSG:4326",
        transform=transform,
        nodata=nodata,
    ) as dst:
        dst.write(data.astype(dtype))


def write_sen1floods11(
    root: Path, chips: list[str], size: int = 96, seed: int = 0, test: list[str] | None = None
) -> Path:
    """`S1Hand`, `S2Hand` (13 L1C bands x 10000) and `LabelHand` chips in EPSG:4326 near
    the equator (about 10 m pixels), and the test split file when `test` is given."""
    rng = np.random.default_rng(seed)
    degrees = 10 / 111_320
    for i, chip in enumerate(chips):
        transform = from_origin(-63.0 + i * 0.05, -16.0, degrees, degrees)
        water = water_scene(rng, size, shift=i)
        sar = np.stack([sar_db(rng, water, "VV"), sar_db(rng, water, "VH")])
        refl = reflectance(rng, water)
        l1c = np.full((13, size, size), 1200, np.float32)
        for band, number in (("blue", 2), ("green", 3), ("red", 4), ("nir", 8), ("swir16", 12)):
            l1c[number - 1] = refl[band] * 10000
        label = water.astype(np.int16)
        label[:3] = -1  # unlabelled rows
        _geotiff(root / "S1Hand" / f"{chip}_S1Hand.tif", sar, transform, "float32")
        _geotiff(root / "S2Hand" / f"{chip}_S2Hand.tif", l1c, transform, "uint16")
        _geotiff(root / "LabelHand" / f"{chip}_LabelHand.tif", label[None], transform, "int16")
    if test is not None:
        folder = root / "splits" / "flood_handlabeled"
        folder.mkdir(parents=True, exist_ok=True)
        rows = [f"{c}_S1Hand.tif,{c}_LabelHand.tif" for c in test]
        (folder / "flood_test_data.csv").write_text("\n".join(rows) + "\n")
        train = [f"{c}_S1Hand.tif,{c}_LabelHand.tif" for c in chips if c not in test]
        (folder / "flood_train_data.csv").write_text("\n".join(train) + "\n")
    return root

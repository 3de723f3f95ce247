"""Synthetic scenes with known offsets, written the way the acquisition stage writes them.

The co-registration tests and `benchmarks/coregister_sweep.py` use these to measure the
residual misalignment against the offsets the simulator injected.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from metaflood.core import optical as opt
from metaflood.core.raster import write_cog
from metaflood.core.settings import CoregisterSettings, section_defaults
from metaflood.coregister.scenes import Settings
from metaflood.demo.events import demo_footprint
from metaflood.demo.materials import OPTICAL_BANDS
from metaflood.demo.simulate import simulate_event
from metaflood.demo.spec import SceneSpec


def event_config(size_m: float = 300.0, seed: int = 3, resolution: float = 2.0) -> dict:
    """A demo-shaped event whose AOI is about `size_m` square, near Derna."""
    lon0, lat0 = 22.6300, 32.7600
    dlat = size_m / 111_000.0
    dlon = size_m / (111_000.0 * np.cos(np.radians(lat0)))
    return {
        "aoi": {"bbox": [lon0, lat0, round(lon0 + dlon, 6), round(lat0 + dlat, 6)]},
        "grid": {"crs": "auto", "resolution": resolution},
        "pre": {"start": "2023-09-01", "end": "2023-09-09"},
        "post": {"start": "2023-09-11", "end": "2023-09-20"},
        "sar": {"source": "demo"},
        "optical": {"source": "demo"},
        "demo": {"seed": seed, "resolution": 1.0, "margin_m": 20},
    }


@dataclass
class Truth:
    """Injected offsets in native pixels and metres of the native grid."""

    post_offset_px: tuple[float, float]
    optical_offset_px: tuple[float, float]
    native_resolution: float


def write_scenes(
    out: Path,
    event: dict,
    *,
    seed: int,
    post_offset_px=(0.0, 0.0),
    optical_offset_px=(0.0, 0.0),
    cloud_fraction: float = 0.3,
    optical_bands: tuple[str, ...] = OPTICAL_BANDS,
) -> tuple[dict[str, dict[str, Path]], Truth]:
    """Simulate an event and write {period: {sar, optical, optical_mask}} scene files, the
    optical file with `optical_bands` (named, in canonical order) of the simulator's."""
    crs, transform, width, height = demo_footprint(event, "events.t")
    spec = SceneSpec(
        seed=seed,
        height=height,
        width=width,
        resolution=transform.a,
        cloud_fraction=cloud_fraction,
        post_offset_px=tuple(post_offset_px),
        optical_offset_px=tuple(optical_offset_px),
    )
    synthetic = simulate_event(spec)
    paths: dict[str, dict[str, Path]] = {}
    common = {"crs": crs, "transform": transform}
    for period in ("pre", "post"):
        folder = Path(out) / period
        paths[period] = {
            "sar": write_cog(
                folder / "sar.tif",
                synthetic.sar[period],
                nodata=np.nan,
                descriptions=("VV", "VH"),
                **common,
            ),
            "optical": write_cog(
                folder / "optical.tif",
                synthetic.optical[period][[OPTICAL_BANDS.index(b) for b in optical_bands]],
                nodata=np.nan,
                descriptions=optical_bands,
                **common,
            ),
            "optical_mask": write_cog(
                folder / "optical_mask.tif",
                opt.mask_from_scl(synthetic.scl[period]),
                nodata=opt.MASK_NODATA,
                **common,
            ),
        }
    truth = Truth(spec.post_offset_px, spec.optical_offset_px, transform.a)
    return paths, truth


@dataclass
class Case:
    """One estimated pair against the truth, in grid pixels (rows, cols)."""

    period: str
    pair: str
    truth: np.ndarray
    estimate: np.ndarray
    reliable: bool
    reason: str

    @property
    def residual(self) -> float:
        return float(np.hypot(*(self.estimate - self.truth)))


def expected_shifts(report: dict, truth: Truth, grid_resolution: float) -> dict[str, np.ndarray]:
    """The correction each pair should find: the opposite of the injected offsets.

    The optical shift of the post period includes the SAR correction the stage applied,
    so the optical image lands on the SAR as it is in the product.
    """
    scale = truth.native_resolution / grid_resolution
    post = -np.array(truth.post_offset_px) * scale
    optical = -np.array(truth.optical_offset_px) * scale
    shifts = report["shifts"]
    expected = {}
    if "sar_to_reference" in shifts:
        expected["sar_to_reference"] = post
    if "optical_to_sar" in shifts:
        included = shifts["optical_to_sar"].get("sar_shift_included", (0.0, 0.0))
        expected["optical_to_sar"] = optical + np.array(included)
    return expected


def coregister_settings(**overrides):
    """The stage's settings: the schema's `coregister` defaults with `overrides`, one thread."""
    section = section_defaults("coregister", overrides, check=False)
    return Settings.of(CoregisterSettings.from_section(section), threads=1)


def run_period(paths: dict, period: str, event: dict, out: Path, settings=None) -> dict:
    from metaflood.coregister.stage import coregister_period

    scenes = paths[period]
    return coregister_period(
        event,
        "t",
        period,
        sar=scenes["sar"],
        optical=scenes["optical"],
        optical_mask=scenes["optical_mask"],
        reference=paths["pre"]["sar"],
        out_stack=out / f"{period}.tif",
        out_valid=out / f"{period}_valid.tif",
        out_report=out / f"{period}_coregistration.json",
        settings=settings if settings is not None else coregister_settings(),
    )


def sweep_case(
    out: Path, seed: int, size_m: float, max_offset: float, cloud_fraction: float
) -> list[Case]:
    """Random offsets for one seed; every estimated pair of both periods against the truth."""
    rng = np.random.default_rng(1000 + seed)
    post_offset = rng.uniform(-max_offset, max_offset, 2)
    optical_offset = rng.uniform(-max_offset, max_offset, 2)
    event = event_config(size_m, seed)
    paths, truth = write_scenes(
        out,
        event,
        seed=seed,
        post_offset_px=post_offset,
        optical_offset_px=optical_offset,
        cloud_fraction=cloud_fraction,
    )
    cases = []
    for period in ("pre", "post"):
        report = run_period(paths, period, event, out)
        for pair, expected in expected_shifts(report, truth, 2.0).items():
            record = report["shifts"][pair]
            cases.append(
                Case(
                    period,
                    pair,
                    expected,
                    np.array(record["shift"]),
                    record["reliable"],
                    record["reason"],
                )
            )
    return cases

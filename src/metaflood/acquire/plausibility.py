"""Acquired values checked against the unit the source's configuration declares.

A scene in the wrong unit maps without complaint into a wrong flood: dB read as linear
power is dark as water almost everywhere, and digital numbers read as reflectance are
brighter than any cloud. Such values cannot be what the configuration says, so the
acquisition stops and names the setting to change. The bounds are far outside what a
real AOI gives, so a real scene never trips them.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from metaflood.core.errors import InputError

# Linear power: a share of negative values above this is dB (a real product has none).
SAR_NEGATIVE_SHARE = 0.5
# dB: a share of values above 0 dB beyond this is linear power (0 to about 1, all of it
# "above 0 dB" when read as dB); a real AOI, even a dense city, is mostly below 0 dB.
SAR_POSITIVE_DB_SHARE = 0.9
# Linear power: an AOI's median above +10 dB is not calibrated backscatter (cities reach
# about 0 dB); such values are digital numbers or uncalibrated amplitude.
SAR_MAX_MEDIAN = 10.0
# Reflectance: an AOI's median above 2 is digital numbers without their scale (a cloud
# is about 1).
OPTICAL_MAX_MEDIAN = 2.0
# Values looked at per band: a regular sample of a large AOI judges its unit as well.
SAMPLE_PIXELS = 1_000_000


def _finite_samples(bands: list[np.ndarray], names: list[str]) -> Iterator[tuple[str, np.ndarray]]:
    """Each band's name and the finite values of a regular subgrid of about
    SAMPLE_PIXELS of its pixels; a band with none is left out."""
    for name, band in zip(names, bands, strict=True):
        step = max(1, int(np.ceil(np.sqrt(band.size / SAMPLE_PIXELS))))
        sample = band[::step, ::step]
        finite = sample[np.isfinite(sample)]
        if finite.size:
            yield name, finite


def check_sar(bands: list[np.ndarray], names: list[str], where: str, scale: str) -> None:
    """Refuse backscatter that cannot be in `scale` (linear power or dB).

    Linear power: dB values (mostly negative), or no value above 0 (a product that
    writes 0 where it has no data and does not declare it); a few values of 0 or below
    are real (thermal noise removed over calm water) and stay. dB: linear power (nearly
    every value above 0 dB). Either scale: a median far brighter than any landscape
    (digital numbers)."""
    for name, finite in _finite_samples(bands, names):
        if scale == "linear":
            _check_linear_power(finite, f"{where} {name}")
        median = float(np.median(finite))
        if scale == "db":
            db = median
        elif median > 0:
            db = 10 * np.log10(median)
        else:
            continue  # half or more at 0 or below: no level to judge (the linear checks passed)
        if db > 10 * np.log10(SAR_MAX_MEDIAN):
            raise InputError(
                f"{where} {name}: the median over the AOI is {median:.4g} "
                f"({db:+.0f} dB), which is not calibrated backscatter: "
                f"the values look like digital numbers or amplitude; use a sigma0 or "
                f"gamma0 product (linear power, or dB with sar_scale: db)"
            )
        if scale == "db":
            _check_db(finite, f"{where} {name}")


def _check_linear_power(finite: np.ndarray, where: str) -> None:
    if (share := float((finite < 0).mean())) > SAR_NEGATIVE_SHARE:
        raise InputError(
            f"{where}: {share:.0%} of the values over the AOI are negative, "
            f"which linear power cannot be; they look like dB: set sar_scale: db"
        )
    if not (finite > 0).any():
        raise InputError(
            f"{where}: no value over the AOI is above 0, so there is no "
            f"backscatter: if the file writes 0 where it has no data, declare 0 as "
            f"its nodata value"
        )


def _check_db(finite: np.ndarray, where: str) -> None:
    if (share := float((finite > 0).mean())) > SAR_POSITIVE_DB_SHARE:
        raise InputError(
            f"{where}: {share:.0%} of the values over the AOI are above 0 dB, which "
            f"backscatter in dB is not (an AOI is mostly below 0 dB); they look like "
            f"linear power: set sar_scale: linear"
        )


def check_reflectance(bands: list[np.ndarray], names: list[str], where: str) -> None:
    """Refuse reflectance far above 1 (digital numbers read without their scale)."""
    for name, finite in _finite_samples(bands, names):
        if (median := float(np.median(finite))) > OPTICAL_MAX_MEDIAN:
            raise InputError(
                f"{where} {name}: the median over the AOI is {median:.4g}, which is not "
                f"reflectance (0 to about 1): the values look like digital numbers; give "
                f"the source's scale and offset (for Sentinel-2 L2A, scale: 0.0001)"
            )

"""The bands metaflood knows, by name: what a source may have and what it must have.

Every raster between stages names its bands in its band descriptions, and every stage
finds a band by its name, never by its position: a source may lack optional bands.
"""

from __future__ import annotations

from collections.abc import Iterable

SAR_BANDS = ("VV", "VH")
# The optical bands metaflood knows (Earth Search's common names), in canonical order:
# a source has the ones it declares, and optical.tif and the aligned stack hold exactly
# those, in this order. SWIR 1.6 um is Sentinel-2 B11 (20 m; read onto the scene grid).
OPTICAL_BANDS = ("blue", "green", "red", "nir", "swir16")
BANDS = {"sar": SAR_BANDS, "optical": OPTICAL_BANDS}
# What every source of a modality must have: SAR VV (the water level and the change are
# found on it; VH, where acquired, joins the change's average and the SAR head); optical
# green and NIR, since the water index (NDWI) and the cloud-shadow test need them. VH,
# blue, red and SWIR are optional (OMBRIA has VV and green, NIR and SWIR only), and a
# missing band is never invented: a model that reads it maps without that modality.
REQUIRED_BANDS = {"sar": ("VV",), "optical": ("green", "nir")}


def canonical_bands(modality: str, names: Iterable[str]) -> tuple[str, ...]:
    """`names` (known bands of `modality`) in canonical order."""
    present = set(names)
    return tuple(b for b in BANDS[modality] if b in present)


def unknown_band(names: Iterable[str], modality: str) -> str | None:
    """The first name that is no band of `modality`, or None."""
    return next((b for b in names if b not in BANDS[modality]), None)


def missing_bands_message(names: Iterable[str], modality: str) -> str | None:
    """What a band set lacks of the required bands, as a sentence; None when complete."""
    present = set(names)
    missing = [b for b in REQUIRED_BANDS[modality] if b not in present]
    if not missing:
        return None
    optional = [b for b in BANDS[modality] if b not in REQUIRED_BANDS[modality]]
    also = f"; a source may also have {', '.join(optional)}" if optional else ""
    return (
        f"no band given for {', '.join(missing)} (the {modality} modality needs "
        f"{', '.join(REQUIRED_BANDS[modality])}{also})"
    )


def unknown_band_message(name: str, modality: str) -> str:
    return f"unknown {modality} band {name!r} (known: {', '.join(BANDS[modality])})"

"""Ready settings for the STAC APIs the project knows, per modality.

A preset fills in what a `stac` source leaves out (the API URL, the collection, which
asset is which band, the cloud mask, URL signing); anything the configuration gives
wins (an asset set to null drops a band the provider's mirror lacks). Asset keys are
those of each provider's collections.

The static layers (`dem`, `reference_water`: `acquire.auxiliary`) map each collection a
provider has for the layer to its asset and, for reference water, how its values read
as water; the first collection is the one a preset takes when none is given. Earth
Search has no reference water collection (JRC GSW and ESA WorldCover are Planetary
Computer's).
"""

from __future__ import annotations

PLANETARY_COMPUTER_URL = "https://planetarycomputer.microsoft.com/api/stac/v1"
EARTH_SEARCH_URL = "https://earth-search.aws.element84.com/v1"

PRESETS: dict[str, dict] = {
    "planetary-computer": {
        "title": "Microsoft Planetary Computer",
        "url": PLANETARY_COMPUTER_URL,
        "sign": "planetary-computer",
        "sar": {
            # Sentinel-1 GRD, radiometrically terrain corrected, gamma0 in linear power.
            "collection": "sentinel-1-rtc",
            "assets": {"VV": "vv", "VH": "vh"},
            "sar_scale": "linear",
        },
        "optical": {
            # Sentinel-2 Level-2A; DNs are reflectance x 10000 (+1000 from baseline 04.00).
            # B11 (SWIR 1.6 um) is 20 m, the others 10 m: it is read onto their grid.
            "collection": "sentinel-2-l2a",
            "assets": {
                "blue": "B02",
                "green": "B03",
                "red": "B04",
                "nir": "B08",
                "swir16": "B11",
            },
            "mask_asset": "SCL",
            "mask_kind": "scl",
            "scale": 0.0001,
        },
        # Copernicus GLO-30: 1 x 1 degree COG tiles in EPSG:4326, metres (no tile over
        # open sea).
        "dem": {"cop-dem-glo-30": {"asset": "data"}},
        "reference_water": {
            # JRC Global Surface Water: percent of months water 1984-2020 (255 nodata).
            "jrc-gsw": {"asset": "occurrence", "layer": "occurrence"},
            # ESA WorldCover 10 m: class 80 permanent water bodies (0 nodata).
            "esa-worldcover": {"asset": "map", "layer": "worldcover"},
        },
    },
    "earth-search": {
        "title": "Element 84 Earth Search",
        "url": EARTH_SEARCH_URL,
        "sign": None,
        "optical": {
            "collection": "sentinel-2-l2a",
            "assets": {
                "blue": "blue",
                "green": "green",
                "red": "red",
                "nir": "nir",
                "swir16": "swir16",
            },
            "mask_asset": "scl",
            "mask_kind": "scl",
            "scale": 0.0001,
        },
        "dem": {"cop-dem-glo-30": {"asset": "data"}},
    },
}

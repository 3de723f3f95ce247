"""Event configurations for tests and benchmarks."""

from __future__ import annotations


def demo_event_config(**overrides) -> dict:
    """A small demo event (about 300 m square) in the shape of config.yaml."""
    event = {
        "aoi": {"bbox": [22.6300, 32.7600, 22.6332, 32.7627]},
        "grid": {"crs": "auto", "resolution": 2.0},
        "event_date": "2023-09-10",
        "pre": {"start": "2023-09-01", "end": "2023-09-09"},
        "post": {"start": "2023-09-11", "end": "2023-09-20"},
        "sar": {"source": "demo"},
        "optical": {"source": "demo"},
        "demo": {
            "seed": 3,
            "resolution": 1.0,
            "margin_m": 20,
            "cloud_fraction": 0.5,
            "post_optical": True,
            "post_offset_px": [0.4, -0.3],
            "optical_offset_px": [0.3, 0.25],
        },
    }
    event.update(overrides)
    return event

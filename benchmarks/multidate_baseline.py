"""SAR-change false positives with one pre-event scene against a three-scene baseline.

Runs the workflow up to the SAR change (`flood/sar_change.tif`) twice on one demo
event, in temporary folders: the demo publishes three pre-event SAR passes of one
orbit (`demo.pre_sar_scenes: 3`, same ground, independent speckle), and the event asks
for `pre.max_scenes` 1, then 3. Outside the true flood the only change between pre and
post is speckle (and the post-event wetness of the soil), so every pixel the SAR change
calls flooded there is a false positive. Prints, per run: the SAR change's false-positive
pixels at its own automatic thresholds (which move with the noise they see) and their
share of the non-flooded ground with SAR in both periods, the true positives; the
spread (standard deviation, dB) of the VV+VH log-ratio over that ground; and the share of
it whose log-ratio falls below fixed thresholds (-3 and -6 dB), as a change detector with
a set threshold would call it; then the ratios of the two runs.

Run from the repository root: `.venv/bin/python -m benchmarks.multidate_baseline`
(a few minutes on two cores; no model is trained: the SAR change needs none).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import rasterio

from metaflood.flood.sar_change import EVIDENCE_NODATA, FLOOD_SIGNAL
from metaflood.flood.validate import truth_on_grid
from tests.helpers.events import demo_event_config
from tests.helpers.workflow_runs import snakemake, write_config

EVENT = "speckle"
FIXED_DB = (-3.0, -6.0)
# About 600 m square: large enough for the automatic thresholds' bimodal tiles.
BBOX = [22.6300, 32.7590, 22.6364, 32.7644]


def event_config(max_scenes: int, seed: int) -> dict:
    event = demo_event_config(aoi={"bbox": BBOX})
    event["pre"] = {"start": "2023-08-15", "end": "2023-09-09", "max_scenes": max_scenes}
    event["demo"] = {**event["demo"], "seed": seed, "pre_sar_scenes": 3}
    return event


def false_positives(workdir: Path) -> dict:
    """The SAR change's flood signal against the simulator's flood truth."""
    flood_dir = workdir / "results" / EVENT / "flood"
    with rasterio.open(flood_dir / "sar_change.tif") as src:
        evidence = src.read(1)
        like = {
            "height": src.height,
            "width": src.width,
            "transform": src.transform,
            "crs": src.crs,
        }
    truth = truth_on_grid(workdir / "resources" / "demo" / EVENT / "truth" / "flood.tif", like)
    seen = evidence != EVIDENCE_NODATA
    dry = seen & (truth == 0)
    signal = evidence == FLOOD_SIGNAL
    summary = json.loads((flood_dir / "sar_change.json").read_text())
    with rasterio.open(flood_dir / "sar_logratio.tif") as src:
        ratio = src.read((1, 2)).mean(axis=0)
    quiet = dry & np.isfinite(ratio)
    return {
        "logratio_std_db": float(ratio[quiet].std()),
        **{f"below_{-t}db_share": float((ratio[quiet] < t).mean()) for t in FIXED_DB},
        "false_positive_px": int((signal & dry).sum()),
        "false_positive_share": float((signal & dry).sum() / max(dry.sum(), 1)),
        "true_positive_px": int((signal & seen & (truth == 1)).sum()),
        "flood_px": int((seen & (truth == 1)).sum()),
        "ratio_threshold_db": summary["ratio_threshold_db"]["value"],
    }


def run(max_scenes: int, seed: int, root: Path) -> dict:
    workdir = root / f"scenes{max_scenes}"
    config = write_config(workdir, {"events": {EVENT: event_config(max_scenes, seed)}})
    target = f"results/{EVENT}/flood/sar_change.tif"
    result = snakemake(workdir, target, "--configfile", str(config), timeout=3000)
    if result.returncode != 0:
        raise SystemExit(result.stdout[-3000:] + result.stderr[-3000:])
    selection = json.loads((workdir / "results" / EVENT / "scenes/selection.json").read_text())
    used = selection["periods"]["pre"]["sar"].get("scenes_used", 1)
    return {"max_scenes": max_scenes, "scenes_used": used, **false_positives(workdir)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[7])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            one, three = (run(n, seed, Path(tmp) / f"seed{seed}") for n in (1, 3))
            for row in (one, three):
                print(f"seed {seed}: " + json.dumps(row))
            for key in (
                "false_positive_px",
                "logratio_std_db",
                "below_3db_share",
                "below_6db_share",
            ):
                ratio = three[key] / one[key] if one[key] else float("nan")
                print(f"seed {seed}: {key}, 3-scene baseline / one scene: {ratio:.3f}")


if __name__ == "__main__":
    main()

"""SAR-change false positives with one pre-event scene against a three-scene baseline.

Two measurements, each printed with the ratio of the baseline's figure to one scene's:

1. **Speckle-only change** (`speckle_only`): the simulator renders the same pre-event
   ground four times with independent speckle (`SceneSpec.pre_sar_scenes`); the fourth
   stands for the post-event scene, so nothing changed but the speckle and every pixel
   the SAR change calls flooded is a false positive. The reference is the first render,
   or the median in linear power of the first three (`acquire.baseline.median_linear`,
   what `pre.max_scenes: 3` writes). Both go through the SAR change stage's own code
   (`flood.sar_change`,
   thresholds found automatically, or the fixed fallbacks when the image is not
   bimodal, as here) and, to see the noise itself, through fixed log-ratio thresholds
   (-2 and -3 dB, the stage's fallback), on the simulator's 1 m pixels (4.5 looks, about
   a Sentinel-1 GRD pixel's) and on the demo's 2 m grid.
2. **The demo workflow** (`--workflow`): the workflow up to `flood/sar_change.tif` on a
   600 m demo event with `pre.max_scenes` 1, then 3, in temporary folders; false positives
   outside the simulator's flood (where the change is speckle, and the soil's post-event
   wetness), the log-ratio spread there, and the true positives.

Run from the repository root: `.venv/bin/python -m benchmarks.multidate_baseline
[--seeds 7 11] [--workflow]` (seconds for the first part; a few minutes more for the
second on two cores: no model is trained, the SAR change needs none).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import rasterio

from metaflood.acquire.baseline import median_linear
from metaflood.core.settings import ChangeSettings, section_defaults
from metaflood.demo.simulate import simulate_event
from metaflood.demo.spec import SceneSpec
from metaflood.flood.sar_change import (
    EVIDENCE_NODATA,
    FLOOD_SIGNAL,
    SarChangeSettings,
    filtered_change,
    sar_evidence,
)
from metaflood.flood.validate import truth_on_grid
from tests.helpers.events import demo_event_config
from tests.helpers.workflow_runs import snakemake, write_config

EVENT = "speckle"
# About 600 m square: large enough for the automatic thresholds' bimodal tiles.
BBOX = [22.6300, 32.7590, 22.6364, 32.7644]


SPECKLE_PX = 600  # a 600 m square of 1 m pixels
# The simulator's native 1 m pixel has 4.5 looks, about a Sentinel-1 GRD pixel's (4.4);
# the demo's 2 m event grid averages four of them, and hides most of the speckle.
NATIVE, EVENT_GRID = 1, 2
FIXED_DB = (-2.0, -3.0)


def to_grid_db(power: np.ndarray, factor: int) -> np.ndarray:
    """(bands, rows, cols) linear power at 1 m -> dB on a grid `factor` times coarser
    (the mean in power over factor x factor pixels)."""
    b, h, w = power.shape
    h, w = h // factor * factor, w // factor * factor
    coarse = power[:, :h, :w].reshape(b, h // factor, factor, w // factor, factor).mean((2, 4))
    return 10 * np.log10(coarse)


def speckle_only(seed: int, factor: int) -> dict[str, dict]:
    """False positives of the SAR change when only the speckle changed."""
    event = simulate_event(
        SceneSpec(seed=seed, height=SPECKLE_PX, width=SPECKLE_PX, pre_sar_scenes=4)
    )
    post = to_grid_db(event.sar["pre-3"], factor)
    references = {
        "one scene": event.sar["pre"],
        "3-scene median": np.stack(
            [median_linear([event.sar[k][b] for k in ("pre", "pre-1", "pre-2")]) for b in (0, 1)]
        ),
    }
    change = ChangeSettings.from_section(section_defaults("change"))
    settings = SarChangeSettings.for_grid(change, rasterio.Affine(factor, 0, 0, 0, -factor, 0))
    out = {}
    for name, reference in references.items():
        pre = to_grid_db(reference, factor)
        usable = np.isfinite(pre).all(0) & np.isfinite(post).all(0)
        found = sar_evidence(pre, post, usable, settings)
        _, _, usable, _, ratio = filtered_change(pre, post, usable, settings)
        row = {
            "false_positive_px": int((found.evidence == FLOOD_SIGNAL).sum()),
            "thresholds_db": [
                found.summary["ratio_threshold_db"]["value"],
                found.summary["water_threshold_db"]["value"],
            ],
            "logratio_std_db": float(ratio[usable].std()),
        }
        for drop in FIXED_DB:  # the change step alone, whatever the backscatter level
            row[f"below_{-drop:g}db_share"] = float((ratio[usable] < drop).mean())
        out[name] = row
    return out


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
        **{f"below_{-t:g}db_share": float((ratio[quiet] < t).mean()) for t in FIXED_DB},
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


def print_ratios(label: str, one: dict, three: dict) -> None:
    for key in one:
        if isinstance(one[key], float | int) and key != "max_scenes":
            ratio = three[key] / one[key] if one[key] else float("nan")
            print(f"{label}: {key}, 3-scene baseline / one scene: {ratio:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[7])
    parser.add_argument("--workflow", action="store_true", help="also run the demo workflow")
    args = parser.parse_args()
    for seed in args.seeds:
        for factor, grid in ((NATIVE, "1 m (S-1-like speckle)"), (EVENT_GRID, "2 m")):
            rows = speckle_only(seed, factor)
            label = f"speckle only, {grid}, seed {seed}"
            for name, row in rows.items():
                print(f"{label}, {name}: " + json.dumps(row))
            print_ratios(label, rows["one scene"], rows["3-scene median"])
    if not args.workflow:
        return
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            one, three = (run(n, seed, Path(tmp) / f"seed{seed}") for n in (1, 3))
            for row in (one, three):
                print(f"workflow, seed {seed}: " + json.dumps(row))
            print_ratios(f"workflow, seed {seed}", one, three)


if __name__ == "__main__":
    main()

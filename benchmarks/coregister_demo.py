"""Residual misalignment on the demo event after co-registration, against the offsets
the generator injected (resources/demo/<event>/truth/offsets.json, read only here).

Make the co-registration products first, then compare:

    .venv/bin/snakemake --cores 2 results/demo/aligned/post_coregistration.json \\
        results/demo/aligned/pre_coregistration.json
    .venv/bin/python -m benchmarks.coregister_demo [--config config.yaml] [--event demo]

Issue 5's bounds: 0.2 grid px SAR to SAR, 0.5 grid px optical to SAR.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import yaml

from tests.helpers.coregister_scenes import Truth, expected_shifts

BOUNDS = {"sar_to_reference": 0.2, "optical_to_sar": 0.5}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="config.yaml")
    parser.add_argument("--event", default="demo")
    parser.add_argument("--results", default="results")
    parser.add_argument("--resources", default="resources")
    args = parser.parse_args()
    event = yaml.safe_load(Path(args.config).read_text())["events"][args.event]
    grid_res = float(event.get("grid", {}).get("resolution", 2.0))
    offsets = json.loads(
        (Path(args.resources) / "demo" / args.event / "truth" / "offsets.json").read_text()
    )
    truth = Truth(
        tuple(offsets["post_offset_px"]),
        tuple(offsets["optical_offset_px"]),
        float(event.get("demo", {}).get("resolution", 1.0)),
    )
    print(f"injected (native px): post {truth.post_offset_px}, optical {truth.optical_offset_px}")
    print(
        f"{'period':<6} {'pair':<16} {'expected (grid px)':>20} {'estimate':>18} "
        f"{'residual':>8} {'bound':>5} {'reliable':>8}"
    )
    failures = 0
    for period in ("pre", "post"):
        path = Path(args.results) / args.event / "aligned" / f"{period}_coregistration.json"
        report = json.loads(path.read_text())
        for pair, expected in expected_shifts(report, truth, grid_res).items():
            record = report["shifts"][pair]
            estimate = np.array(record["shift"])
            residual = float(np.hypot(*(estimate - expected)))
            failures += record["reliable"] and residual > BOUNDS[pair]
            print(
                f"{period:<6} {pair:<16} {np.array2string(expected, precision=3):>20} "
                f"{np.array2string(estimate, precision=3):>18} {residual:8.3f} "
                f"{BOUNDS[pair]:5.1f} {'yes' if record['reliable'] else 'no':>8}"
            )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

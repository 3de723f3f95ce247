"""Co-registration accuracy over many synthetic events with random injected offsets.

For each seed, the demo generator makes a pre/post event with a random post-event
offset and a random optical-to-SAR offset (each component uniform in +-5 native pixels),
the coregister stage estimates the shifts, and the residual misalignment against the
truth is printed in grid pixels. The issue's bounds: 0.2 px SAR to SAR, 0.5 px optical
to SAR, for every estimate the stage calls reliable; the others must be flagged (they
are not applied).

    .venv/bin/python -m benchmarks.coregister_sweep [--seeds 20] [--size 400]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

from tests.helpers.coregister_scenes import sweep_case

SAR_BOUND, OPTICAL_BOUND = 0.2, 0.5


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--size", type=float, default=400.0, help="AOI side (m)")
    parser.add_argument("--max-offset", type=float, default=5.0, help="native pixels")
    parser.add_argument("--cloud", type=float, default=0.3, help="post cloud fraction")
    args = parser.parse_args()
    print(
        f"{'seed':>4} {'period':<6} {'pair':<16} {'truth (grid px)':>16} {'estimate':>16} "
        f"{'residual':>8} {'reliable':>8} {'bound':>5}  note"
    )
    failures, rows = 0, []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.seeds):
            for case in sweep_case(
                Path(tmp) / str(seed), seed, args.size, args.max_offset, args.cloud
            ):
                bound = SAR_BOUND if case.pair == "sar_to_reference" else OPTICAL_BOUND
                ok = (not case.reliable) or case.residual <= bound
                failures += not ok
                rows.append((case.pair, case.reliable, case.residual))
                truth = np.array2string(case.truth, precision=2)
                estimate = np.array2string(case.estimate, precision=2)
                print(
                    f"{seed:>4} {case.period:<6} {case.pair:<16} {truth:>16} "
                    f"{estimate:>16} {case.residual:8.3f} "
                    f"{'yes' if case.reliable else 'no':>8} {'ok' if ok else 'FAIL':>5}  "
                    f"{'' if case.reliable else case.reason}"
                )
    print()
    for pair in ("sar_to_reference", "optical_to_sar"):
        res = np.array([r for p, rel, r in rows if p == pair and rel])
        n = sum(p == pair for p, _, _ in rows)
        if res.size:
            print(
                f"{pair:<16} reliable {res.size}/{n}: residual RMSE {np.sqrt(np.mean(res**2)):.3f} "
                f"px, max {res.max():.3f} px (bound "
                f"{SAR_BOUND if pair == 'sar_to_reference' else OPTICAL_BOUND})"
            )
        else:
            print(f"{pair:<16} reliable 0/{n}")
    print(f"reliable estimates out of bounds: {failures}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

"""Gathering the co-registered tiles of a tiled period into the stack, availability and
report an untiled run writes."""

from __future__ import annotations

import json
from pathlib import Path

from metaflood.core.errors import InputError
from metaflood.core.mosaic import copy_gather
from metaflood.core.raster import atomic_path, open_checked


def gather_aligned(
    shifts: Path,
    stacks: list[Path],
    valid: list[Path],
    *,
    out_stack: Path,
    out_valid: Path,
    out_report: Path,
    where: str,
    threads: int = 1,
) -> dict:
    """The co-registered stack and availability of a tiled period, and its report: the
    shared shifts plus the coverage of the whole AOI."""
    report = json.loads(Path(shifts).read_text())
    copy_gather(stacks, out_stack, threads=threads)
    copy_gather(valid, out_valid, threads=threads, categorical=True)
    inside = sar = optical = 0
    with open_checked(out_valid) as src:
        for _, window in src.block_windows(1):
            v = src.read(1, window=window)
            ok = v != 255
            inside += int(ok.sum())
            sar += int((ok & (v & 1 > 0)).sum())
            optical += int((ok & (v & 2 > 0)).sum())
    if sar + optical == 0:
        out_stack.unlink()
        out_valid.unlink()
        raise InputError(f"{where}: no pixel of the AOI has a valid SAR or optical value")
    if "looks" in report["speckle"]:
        report["speckle"]["looks"] = [round(v, 2) for v in report["speckle"]["looks"]]
    report["coverage"] = {
        "sar_valid": sar / max(inside, 1),
        "optical_valid": optical / max(inside, 1),
    }
    with atomic_path(out_report) as tmp:
        tmp.write_text(json.dumps(report, indent=2))
    return report

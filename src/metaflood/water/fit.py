"""Fitting the water fusion from the labelled pixels that `benchmark-real` saves."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np

from metaflood.core.classes import NUM_CLASSES, WATER, stored_probability
from metaflood.core.config import PERIODS
from metaflood.core.errors import InputError
from metaflood.core.hashing import file_sha256
from metaflood.core.raster import atomic_path, read_checked
from metaflood.flood.validate import truth_on_grid
from metaflood.water.fusion import WaterEvidence, fit_fusion, load_fusion

DUMP_KEYS = ("land_cover", "sar_margin", "index_margin", "label")


def read_dump(path: Path) -> tuple[WaterEvidence, np.ndarray]:
    try:
        with np.load(path) as data:
            arrays = {key: data[key] for key in DUMP_KEYS}
    except (OSError, KeyError, ValueError) as err:
        raise InputError(f"{path}: not an evidence dump of benchmark-real ({err})") from err
    evidence = WaterEvidence(arrays["land_cover"], arrays["sar_margin"], arrays["index_margin"])
    return evidence, arrays["label"]


def fit_from_dumps(
    paths: list[Path],
    out: Path,
    *,
    events: list[tuple[Path, Path]] = (),
    checkpoint: Path | None = None,
    keep_from: Path | None = None,
) -> dict:
    """One fit over the real sets' dumps (each one set) and demo events run through the
    workflow (together one set: `events` pairs an event's results folder with its truth);
    written as JSON with what it was fitted on. Variants none of them can fit are taken
    from the fusion at `keep_from`, where one is given."""

    sets = [(path.stem, *read_dump(path)) for path in paths]
    if events:
        evidence = [event_evidence(e, t) for e, t in events]
        joined = WaterEvidence(
            *(np.concatenate([getattr(ev, f) for ev, _ in evidence]) for f in DUMP_KEYS[:3])
        )
        sets.append(("synthetic events", joined, np.concatenate([lab for _, lab in evidence])))
    kept = (keep_from.name, load_fusion(keep_from)) if keep_from else None
    fusion = fit_fusion(sets, keep_from=kept)
    fusion["fitted"] = {
        "on": [path.name for path in paths] + [e.name for e, _ in events],
        "variants_kept_from": keep_from.name if keep_from else None,
        "checkpoint_sha256": file_sha256(checkpoint) if checkpoint else None,
        "date": dt.date.today().isoformat(),
    }
    with atomic_path(out) as tmp:
        tmp.write_text(json.dumps(fusion, indent=2) + "\n")
    return fusion


def event_evidence(event_dir: Path, truth_dir: Path) -> tuple[WaterEvidence, np.ndarray]:
    """Both periods of a demo event run through the workflow: the evidence its water
    stage weighed and the simulator's water (from its true land cover), 255 off the truth."""
    parts, labels = [], []
    for period in PERIODS:
        paths = [
            event_dir / "water" / f"{period}_evidence.tif",
            event_dir / "landcover" / f"{period}_proba.tif",
            truth_dir / f"landcover_{period}.tif",
        ]
        missing = [str(p) for p in paths if not p.exists()]
        if missing:
            raise InputError(f"{event_dir.name}: missing {', '.join(missing)} (run it first)")
        evidence, profile = read_checked(paths[0])
        proba, _ = read_checked(paths[1])
        truth = truth_on_grid(paths[2], profile)
        parts.append(WaterEvidence(stored_probability(proba[WATER]), evidence[0], evidence[2]))
        label = np.where(truth == WATER, 1, 0).astype(np.uint8)
        label[truth >= NUM_CLASSES] = 255
        labels.append(label)
    joined = WaterEvidence(
        *(np.concatenate([getattr(p, f).ravel() for p in parts]) for f in DUMP_KEYS[:3])
    )
    return joined, np.concatenate([label.ravel() for label in labels])

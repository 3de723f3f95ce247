"""Fitting the flood confidence on held-out synthetic events, and checking it.

The simulator's truth says which pixels really flooded, so the mapping from evidence
to confidence can be fitted (logistic regression, then isotonic regression so the
output is calibrated) and its reliability measured: per confidence bin, the share of
pixels that were flooded. The reliability reported is leave-one-event-out: each event
is scored by a model fitted on the others, so the table shows how the confidence
behaves on a scene it has not seen.

The flood network's join to that confidence (`fit-flood-join`) is fitted the same way, on
a real set's evidence dumps mapped with the network on samples it did not train on, and
checked leave-one-out over runs of the dump.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from metaflood.core.errors import InputError
from metaflood.core.hashing import file_sha256
from metaflood.core.raster import atomic_path
from metaflood.core.reliability import high_confidence_precision, reliability_table
from metaflood.flood.change import NETWORK_NODATA
from metaflood.flood.confidence import (
    JOIN_FEATURES,
    NETWORK_JOIN,
    VARIANTS,
    WITH_SAR,
    Evidence,
    apply_variant,
    feature_matrix,
    flood_probability,
    join_features,
    load_calibration,
    read_evidence,
    variant_masks,
)
from metaflood.flood.validate import truth_on_grid


@dataclass
class CalibrationEvent:
    name: str
    evidence: Evidence
    flooded: np.ndarray  # bool truth on the grid
    known: np.ndarray  # truth defined and land cover mapped
    network: np.ndarray | None = None  # the flood network's probability (NaN unknown)


def load_event(event_dir: Path, truth_dir: Path) -> CalibrationEvent:
    """Evidence and truth of one event run through the workflow (results/<event>)."""
    event_dir, truth_dir = Path(event_dir), Path(truth_dir)
    flood = event_dir / "flood"
    landcover = event_dir / "landcover"
    paths = [
        event_dir / "water" / "pre.tif",
        event_dir / "water" / "post.tif",
        landcover / "post_route.tif",
        flood / "sar_change.tif",
        flood / "sar_logratio.tif",
        flood / "sar_change.json",
        truth_dir / "flood.tif",
    ]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise InputError(f"{event_dir.name}: missing {', '.join(missing)} (run the workflow first)")
    evidence, profile = read_evidence(paths[:2], *paths[2:6])
    truth = truth_on_grid(paths[6], profile)
    return CalibrationEvent(event_dir.name, evidence, truth == 1, (truth != 255) & evidence.mapped)


# The fields of confidence.Evidence a flood dump keeps, for `calibrate-confidence`.
FLOOD_FIELDS = (
    "water_pre",
    "water_post",
    "optical_post",
    "sar",
    "ratio_margin_db",
    "water_margin_db",
)
# The cuts (change.flooded_min_confidence, percent) at which the join's check scores the
# extent: a calibrated confidence maps its best IoU below 50 where the evidence is weak.
CHECKED_CUTS = (20, 25, 30, 35, 40, 45, 50)
# The dump's flood network probability (percent, 255 unknown), where the benchmark ran one.
NETWORK_FIELD = "flood_network"
# A real set's dump is cut into this many runs of consecutive samples, scored as events of
# their own (leave-one-event-out), so its reliability is measured on samples it did not fit.
DUMP_PARTS = 4


def load_dump(path: Path) -> list[CalibrationEvent]:
    """The labelled pixels of a real set that `benchmark-real --dump-evidence` saved (a set
    with a flood mask), as calibration events of consecutive samples."""
    try:
        with np.load(path) as data:
            fields = {f: data[f"flood_{f}"] for f in FLOOD_FIELDS}
            label, sample = data["flood_label"], data["flood_sample"]
            network = data.get(NETWORK_FIELD)
    except (OSError, KeyError, ValueError) as err:
        raise InputError(
            f"{path}: not a flood evidence dump of benchmark-real (a set with flood masks, "
            f"run with --dump-evidence): {err}"
        ) from err
    fields["optical_post"] = fields["optical_post"].astype(bool)
    samples = np.unique(sample)
    events = []
    for i, part in enumerate(np.array_split(samples, min(DUMP_PARTS, len(samples)))):
        where = np.isin(sample, part)
        evidence = Evidence(**{f: v[where] for f, v in fields.items()})
        known = (label[where] <= 1) & evidence.mapped
        name = f"{Path(path).stem}#{i + 1}"
        events.append(
            CalibrationEvent(
                name, evidence, label[where] == 1, known, network_probability(network, where)
            )
        )
    return events


def network_probability(percent: np.ndarray | None, where: np.ndarray) -> np.ndarray | None:
    """A dump's flood network percent (255 unknown) as a probability, NaN where unknown."""
    if percent is None:
        return None
    picked = percent[where]
    return np.where(picked == NETWORK_NODATA, np.nan, picked / 100.0)


def fit_variant(X: np.ndarray, y: np.ndarray) -> dict:
    """Logistic weights, then an isotonic map from the logistic output to the flood rate."""
    from sklearn.isotonic import IsotonicRegression
    from sklearn.linear_model import LogisticRegression

    if y.all() or not y.any():
        raise InputError("the calibration events need both flooded and dry pixels")
    logistic = LogisticRegression(C=1.0, max_iter=2000).fit(X, y)
    raw = logistic.predict_proba(X)[:, 1]
    iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(raw, y)
    return {
        "coef": [round(float(c), 8) for c in logistic.coef_[0]],
        "intercept": round(float(logistic.intercept_[0]), 8),
        "isotonic": {
            "x": [round(float(v), 8) for v in iso.X_thresholds_],
            "y": [round(float(v), 8) for v in iso.y_thresholds_],
        },
    }


def fit_models(events: list[CalibrationEvent]) -> dict:
    variants = {}
    for variant, features in VARIANTS.items():
        X, y = [], []
        for event in events:
            # The water-only variant learns from every pixel, as if SAR were absent.
            where = event.known & (
                variant_masks(event.evidence)[variant]
                if variant == WITH_SAR
                else event.evidence.mapped
            )
            X.append(feature_matrix(event.evidence, where, variant))
            y.append(event.flooded[where])
        variants[variant] = {"features": list(features)} | fit_variant(
            np.concatenate(X), np.concatenate(y)
        )
    return variants


def leave_one_event_out(events: list[CalibrationEvent]) -> dict:
    """Each event scored by a model fitted on the others."""
    percents, truths, per_event = [], [], {}
    for i, event in enumerate(events):
        others = events[:i] + events[i + 1 :]
        model = {"variants": fit_models(others)}
        probability = flood_probability(event.evidence, model)
        known = event.known & np.isfinite(probability)
        percent = np.rint(100 * probability[known])
        percents.append(percent)
        truths.append(event.flooded[known])
        per_event[event.name] = high_confidence_precision(percent, event.flooded[known])
    percent, flooded = np.concatenate(percents), np.concatenate(truths)
    return {
        "reliability": reliability_table(percent, flooded),
        "high_confidence": high_confidence_precision(percent, flooded),
        "per_event": per_event,
    }


def calibrate(
    event_dirs: list[Path],
    truth_dirs: list[Path],
    out: Path,
    *,
    checkpoint: Path | None,
    real: list[Path] = (),
) -> dict:
    """Fit on every event (synthetic events run through the workflow, and real sets'
    evidence dumps), report leave-one-event-out reliability, write the JSON."""

    if len(event_dirs) != len(truth_dirs):
        raise InputError("give one truth directory per event directory")
    events = [load_event(e, t) for e, t in zip(event_dirs, truth_dirs, strict=True)]
    events += [event for path in real for event in load_dump(path)]
    if len(events) < 2:
        raise InputError("at least two events are needed (reliability is leave-one-event-out)")
    calibration = {
        "description": "flood confidence: logistic regression on the change of the water maps "
        "and the SAR change evidence, then isotonic calibration; fitted on held-out synthetic "
        "events and the training split of real sets",
        "fitted_on": {
            "events": [e.name for e in events],
            "pixels": int(sum(e.known.sum() for e in events)),
            "checkpoint_sha256": file_sha256(checkpoint) if checkpoint else None,
            "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        },
        "variants": fit_models(events),
        "leave_one_event_out": leave_one_event_out(events),
    }
    with atomic_path(out) as tmp:
        tmp.write_text(json.dumps(calibration, indent=1))
    return calibration


# --- the flood network's join ------------------------------------------------------------


@dataclass
class JoinPixels:
    """One event's pixels where the calibrated probability (by the base calibration) and
    the network's are both known: what the join is fitted on and checked with."""

    calibrated: np.ndarray
    network: np.ndarray
    optical_post: np.ndarray
    flooded: np.ndarray

    @property
    def features(self) -> np.ndarray:
        return join_features(self.calibrated, self.network, self.optical_post)


def join_pixels(event: CalibrationEvent, base: dict) -> JoinPixels:
    if event.network is None:
        raise InputError(
            f"{event.name}: no flood network probability in this dump (run "
            "benchmark-real with --flood-network and --dump-evidence)"
        )
    probability = flood_probability(event.evidence, base)
    where = event.known & np.isfinite(probability) & np.isfinite(event.network)
    return JoinPixels(
        probability[where],
        event.network[where],
        event.evidence.optical_post[where],
        event.flooded[where],
    )


def fit_join(pixels: list[JoinPixels]) -> dict:
    """The join (logistic, then isotonic) of the calibrated probability and the
    network's, fitted on every pixel of the events."""
    X = np.concatenate([p.features for p in pixels])
    y = np.concatenate([p.flooded for p in pixels])
    return {"features": list(JOIN_FEATURES)} | fit_variant(X, y)


def join_leave_one_event_out(pixels: list[JoinPixels]) -> dict:
    """Each event joined by a fit on the others: its reliability, and the flood IoU at
    each of CHECKED_CUTS of the calibrated probability alone, of the higher of the two
    (the default join), of the fitted join and of the network alone, on the same pixels."""
    percents, truths = [], []
    lines = ("calibrated", "higher", "fitted", "network")
    counts = {(line, cut): np.zeros(3, np.int64) for line in lines for cut in CHECKED_CUTS}
    for i, event in enumerate(pixels):
        join = fit_join(pixels[:i] + pixels[i + 1 :])
        fitted = apply_variant(join, event.features)
        calibrated, network, flooded = event.calibrated, event.network, event.flooded
        joined = (calibrated, np.fmax(calibrated, network), fitted, network)
        for line, p in zip(lines, joined, strict=True):
            for cut in CHECKED_CUTS:
                mapped = np.rint(100 * p) >= cut  # as the extent is cut from the percent
                hits = (mapped & flooded).sum()
                counts[line, cut] += [hits, mapped.sum() - hits, flooded.sum() - hits]
        percents.append(np.rint(100 * fitted))
        truths.append(flooded)
    percent, flooded = np.concatenate(percents), np.concatenate(truths)
    return {
        "reliability": reliability_table(percent, flooded),
        "high_confidence": high_confidence_precision(percent, flooded),
        "flood_iou_by_cut": {
            str(cut): {line: _iou(*counts[line, cut]) for line in lines} for cut in CHECKED_CUTS
        },
    }


def _iou(hits: int, false_alarms: int, misses: int) -> float:
    return round(float(hits / max(hits + false_alarms + misses, 1)), 4)


def calibrate_network_join(
    dumps: list[Path], network: Path, out: Path, *, base: Path | None = None
) -> dict:
    """Add to a confidence calibration (`base`; the shipped one by default) the join of its
    probability to the flood network's, fitted on real sets' evidence dumps that were
    mapped with that network (on samples it did not train on), and write it to `out`."""
    if not Path(network).is_file():
        raise InputError(f"{network}: flood network checkpoint not found")
    calibration = load_calibration(base)
    events = [event for path in dumps for event in load_dump(path)]
    if len(events) < 2:
        raise InputError("at least two parts of a dump are needed (the check is leave-one-out)")
    pixels = [join_pixels(event, calibration) for event in events]
    calibration[NETWORK_JOIN] = fit_join(pixels) | {
        "network_sha256": file_sha256(network),
        "fitted_on": {
            "dumps": [str(p) for p in dumps],
            "events": [e.name for e in events],
            "pixels": int(sum(e.known.sum() for e in events)),
            "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        },
        "leave_one_event_out": join_leave_one_event_out(pixels),
    }
    with atomic_path(out) as tmp:
        tmp.write_text(json.dumps(calibration, indent=1))
    return calibration

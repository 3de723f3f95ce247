"""How far thresholding the backscatter can map a flood set's floods when each sample's
thresholds are chosen by its own flood mask: an upper bound for any per-sample threshold
on the SAR, beside what metaflood's SAR change finds without the mask.

    .venv/bin/python -m benchmarks.sar_threshold_ceiling ../shared/realdata/ombria \
        [--bins 80] [--out results/realdata/sar_threshold_ceiling]

Each triplet's pre- and post-event VV are read as the SAR change stage reads them
(`sar_change.sar_evidence`: a boxcar in linear power; the pre-event image brought to
the post-event level by the median log-ratio). A pixel is called flooded where the
log-ratio is below one threshold and the post-event VV below another. Every pair of
thresholds on a grid of the sample's own quantiles is tried, and the pair that gives the
sample its best IoU against its mask is kept: what an analyst who knew the answer could
draw with two thresholds, or with either alone (one threshold at the top of its range).
The same run scores, on the same pixels and without the mask, metaflood's SAR change
evidence (`sar_change.sar_evidence`, the `change` section's defaults), the log-ratio
below its Otsu threshold per sample, and three rules whose one parameter pair for the
whole set is chosen on the training split's masks and applied to both splits: a pair of
thresholds in dB; one in each sample's own standard deviations from its mean (an image
stretched on its own keeps its shape on that scale); and the SAR change grown into the
pixels connected to it that pass its own thresholds relaxed by a number of dB (region
growing, as DSWx-SAR and others grow their water from confident seeds). Both splits of
the layout are scored.

It writes `sar_threshold_ceiling.json` and `sar_threshold_ceiling.md` under --out.
"""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from skimage import measure

from benchmarks.tables import FLOOD_SCORES, split_table
from metaflood.core.settings import ChangeSettings, section_defaults
from metaflood.flood import sar_change
from metaflood.realdata.scores import Tally, otsu_below
from metaflood.training.layouts import (
    LABEL_NONE,
    LABEL_WATER,
    TEST,
    TRAIN,
    Sample,
    discover,
    load_ombria,
)

ORACLE_BOTH = "oracle: log-ratio and post-event VV thresholds"
ORACLE_RATIO = "oracle: log-ratio threshold"
ORACLE_POST = "oracle: post-event VV threshold"
SAR_CHANGE = "SAR change (no mask)"
OTSU = "log-ratio Otsu (VV, per sample; no mask)"
FITTED_DB = "thresholds fitted on the training split, in dB"
FITTED_STANDARD = "thresholds fitted on the training split, per-sample standardised"
GROWN = "SAR change grown, relaxation fitted on the training split"

# The thresholds a fitted line may choose, (log-ratio, post-event VV): in dB, and in
# standard deviations from the sample's mean.
FITTED_GRIDS = {
    FITTED_DB: (np.arange(-12.0, 6.01, 0.25), np.arange(-30.0, 0.01, 0.5)),
    FITTED_STANDARD: (np.arange(-4.0, 4.01, 0.1),) * 2,
}
# How far (dB) the grown SAR change may relax its water and its drop threshold.
GROW_STEPS_DB = np.array([0.0, 1.0, 2.0, 3.0, 4.0, 6.0])
# Each fitted line's parameters: (name, the values its option axis runs over); an index
# past the last value leaves that threshold out.
FITTED_PARAMETERS = {
    line: tuple(zip(("log_ratio_below", "post_vv_below"), grids, strict=True))
    for line, grids in FITTED_GRIDS.items()
} | {GROWN: (("water_relaxed_db", GROW_STEPS_DB), ("drop_relaxed_db", GROW_STEPS_DB))}


def cut_tallies(flooded: np.ndarray, dry: np.ndarray) -> np.ndarray:
    """True positives, false positives and false negatives (axis 0) of "flooded below
    both thresholds" for every pair of bin edges.

    `flooded` and `dry` count labelled pixels per (log-ratio bin, post-event bin);
    cumulative sums give, for each pair of upper edges, the pixels called flooded."""
    tp = flooded.cumsum(0).cumsum(1)
    return np.stack([tp, dry.cumsum(0).cumsum(1), flooded.sum() - tp])


def option_ious(tallies: np.ndarray) -> np.ndarray:
    """The IoU of each option of (tp, fp, fn, *options) tallies; 0 where nothing is
    flooded or called flooded."""
    union = tallies.sum(0)
    return np.divide(tallies[0], union, out=np.zeros(union.shape), where=union > 0)


def best_option(tallies: np.ndarray) -> tuple[int, ...]:
    """The option with the best IoU."""
    iou = option_ious(tallies)
    return tuple(int(i) for i in np.unravel_index(np.argmax(iou), iou.shape))


def tally_at(tallies: np.ndarray, option: tuple[int, ...], labelled: int) -> Tally:
    """One option's tally, over `labelled` scored pixels."""
    tp, fp, fn = (int(v) for v in tallies[(slice(None), *option)])
    return Tally(tp, fp, fn, labelled, labelled)


def best_cut(flooded: np.ndarray, dry: np.ndarray) -> Tally:
    """The best IoU of "flooded below both thresholds" over every pair of bin edges. A
    single-column histogram scores one threshold alone."""
    tallies = cut_tallies(flooded, dry)
    return tally_at(tallies, best_option(tallies), int(flooded.sum() + dry.sum()))


def grid_counts(
    ratio: np.ndarray, post: np.ndarray, flooded: np.ndarray, grids: tuple[np.ndarray, ...]
) -> np.ndarray:
    """Flooded and dry pixels (axis 0) per (log-ratio bin, post-event bin) of fixed
    thresholds: bin k holds the values from threshold k-1 up to threshold k, and the
    last bin those above every threshold, so each threshold is an upper edge."""
    shape = (grids[0].size + 1, grids[1].size + 1)
    cell = np.ravel_multi_index(
        (np.searchsorted(grids[0], ratio, "right"), np.searchsorted(grids[1], post, "right")),
        shape,
    )
    return np.stack(
        [
            np.bincount(cell[where], minlength=shape[0] * shape[1]).reshape(shape)
            for where in (flooded, ~flooded)
        ]
    )


def standardised(values: np.ndarray) -> np.ndarray:
    """Standard deviations from the mean (zero for a flat image)."""
    if values.size == 0:
        return values
    spread = values.std()
    return (values - values.mean()) / spread if spread > 0 else np.zeros_like(values)


def grown(seed: np.ndarray, candidate: np.ndarray) -> np.ndarray:
    """The seeds and the candidate pixels 8-connected to one."""
    labels = measure.label(seed | candidate, connectivity=2)
    touched = np.unique(labels[seed])
    return np.isin(labels, touched[touched > 0])


def grow_tallies(
    evidence: sar_change.SarEvidence, scored: np.ndarray, label: np.ndarray
) -> np.ndarray:
    """The tp, fp and fn (axis 0) of the SAR change grown into the pixels that pass its
    thresholds relaxed by GROW_STEPS_DB, for each (water relaxation, drop relaxation);
    `scored` are the sample's scored pixels and `label` its flood mask, on its grid."""
    water = evidence.summary["water_threshold_db"]["value"]
    drop = evidence.summary["ratio_threshold_db"]["value"]
    seed = evidence.evidence == sar_change.FLOOD_SIGNAL
    # NaN (unusable) pixels compare False, so they never join.
    change = evidence.ratio_db.mean(axis=0)
    steps = GROW_STEPS_DB.size
    tallies = np.zeros((3, steps, steps), np.int64)
    for i, j in np.ndindex(steps, steps):
        candidate = (evidence.post_vv_db < water + GROW_STEPS_DB[i]) & (
            change < drop + GROW_STEPS_DB[j]
        )
        tally = Tally()
        tally.add(grown(seed, candidate), scored, label)
        tallies[:, i, j] = tally.tp, tally.fp, tally.fn
    return tallies


def quantile_edges(values: np.ndarray, bins: int) -> np.ndarray:
    """Bin edges at the values' quantiles, the last just above the maximum (so a
    threshold there calls every pixel below it)."""
    edges = np.unique(np.quantile(values, np.linspace(0, 1, bins + 1)))
    if edges.size == 1:  # a flat image: one bin
        edges = np.append(edges, edges[0])
    edges[-1] = np.nextafter(edges[-1], np.inf)
    return edges


def oracle_tallies(ratio: np.ndarray, post: np.ndarray, flooded: np.ndarray, bins: int) -> dict:
    """The mask-chosen thresholds' tallies for one sample's usable, labelled pixels."""
    edges = (quantile_edges(ratio, bins), quantile_edges(post, bins))
    counts = {
        truth: np.histogram2d(ratio[where], post[where], bins=edges)[0]
        for truth, where in ((True, flooded), (False, ~flooded))
    }
    if not flooded.any():  # nothing to find: the best cut calls nothing flooded
        empty = Tally(0, 0, 0, int(flooded.size), int(flooded.size))
        return dict.fromkeys((ORACLE_BOTH, ORACLE_RATIO, ORACLE_POST), empty)
    return {
        ORACLE_BOTH: best_cut(counts[True], counts[False]),
        ORACLE_RATIO: best_cut(
            counts[True].sum(1, keepdims=True), counts[False].sum(1, keepdims=True)
        ),
        ORACLE_POST: best_cut(
            counts[True].sum(0, keepdims=True), counts[False].sum(0, keepdims=True)
        ),
    }


def vv_evidence(
    sample: Sample, change: ChangeSettings
) -> tuple[sar_change.SarEvidence, np.ndarray]:
    """A sample's VV read as the SAR change stage reads it (the `change` settings on the
    sample's grid), and the pixels with VV in both periods."""
    pre_db, post_db = sample.sar["pre"], sample.sar["post"]
    valid = np.isfinite(pre_db[0]) & np.isfinite(post_db[0])
    settings = sar_change.SarChangeSettings.for_grid(change, sample.transform)
    return sar_change.sar_evidence(pre_db, post_db, valid, settings), valid


def sample_tallies(
    sample: Sample, change: ChangeSettings, bins: int
) -> tuple[dict[str, Tally], dict[str, np.ndarray], int]:
    """One sample's tally on every line scored sample by sample, the (tp, fp, fn,
    *options) tallies of each fitted line, and its scored pixels: the sample's VV is read
    with `change`'s settings, and scored against its flood mask (LABEL_NONE unlabelled)."""
    evidence, valid = vv_evidence(sample, change)
    label = sample.flood
    # The level-matched log-ratio is NaN where the filtered pair is not usable.
    ratio, post = evidence.ratio_db[0], evidence.post_vv_db
    scored = np.isfinite(ratio) & (label != LABEL_NONE)
    scored_label = np.where(scored, label, LABEL_NONE)
    options = {GROWN: grow_tallies(evidence, scored, scored_label)}
    ratio, post, flooded = ratio[scored], post[scored], label[scored] == LABEL_WATER
    tallies = oracle_tallies(ratio, post, flooded, bins)
    flagged = evidence.evidence == sar_change.FLOOD_SIGNAL
    raw_ratio = sample.sar["post"][0] - sample.sar["pre"][0]
    for line, predicted in ((SAR_CHANGE, flagged), (OTSU, otsu_below(raw_ratio, valid))):
        tally = Tally()
        tally.add(predicted, scored, scored_label)
        tallies[line] = tally
    options[FITTED_DB] = cut_tallies(*grid_counts(ratio, post, flooded, FITTED_GRIDS[FITTED_DB]))
    options[FITTED_STANDARD] = cut_tallies(
        *grid_counts(
            standardised(ratio), standardised(post), flooded, FITTED_GRIDS[FITTED_STANDARD]
        )
    )
    return tallies, options, int(scored.sum())


@dataclass
class SplitTallies:
    """One split's samples: their tallies per line, and, per fitted line, their (tp, fp,
    fn, *options) tallies and scored pixels (scored once the training split has chosen
    the option)."""

    tallies: dict[str, list[Tally]] = field(default_factory=dict)
    options: dict[str, list[tuple[np.ndarray, int]]] = field(default_factory=dict)


def collect_split(root: Path, split: str, bins: int) -> SplitTallies:
    """Every sample of one split of an OMBRIA-layout set, read as the SAR change reads it."""
    refs = discover(root, "ombria", split)
    if not refs:
        raise SystemExit(f"{root}: no {split} triplet in the OMBRIA layout")
    change = ChangeSettings.from_section(section_defaults("change"))
    collected = SplitTallies()
    for ref in refs:
        tallies, options, scored = sample_tallies(load_ombria(ref), change, bins)
        for line, tally in tallies.items():
            collected.tallies.setdefault(line, []).append(tally)
        for line, option_tallies in options.items():
            collected.options.setdefault(line, []).append((option_tallies, scored))
    return collected


def fit_options(splits: dict[str, SplitTallies], training: str) -> dict[str, dict]:
    """Choose each fitted line's option on the `training` split's pooled tallies and score
    every split's samples with it; returns the parameters chosen (None where a threshold
    is left out)."""
    chosen = {}
    for line, parameters in FITTED_PARAMETERS.items():
        option = best_option(sum(tallies for tallies, _ in splits[training].options[line]))
        for split in splits.values():
            split.tallies[line] = [
                tally_at(tallies, option, scored) for tallies, scored in split.options[line]
            ]
        chosen[line] = {
            name: round(float(values[i]), 4) if i < values.size else None
            for (name, values), i in zip(parameters, option, strict=True)
        }
    return chosen


def scores(split: SplitTallies) -> dict[str, dict[str, float]]:
    """Pooled IoU, precision and recall of each line, and the median of the samples' own
    IoU."""
    results = {}
    for line, tallies in split.tallies.items():
        pooled = Tally()
        for tally in tallies:
            pooled.merge(tally)
        own = [tally.iou for tally in tallies if tally.tp + tally.fp + tally.fn]
        results[line] = {
            "iou": pooled.iou,
            "precision": pooled.precision,
            "recall": pooled.recall,
            "median_sample_iou": float(np.median(own)) if own else None,
            "samples": len(tallies),
        }
    return results


def table(results: dict[str, dict[str, dict[str, float]]]) -> str:
    return split_table(results, FLOOD_SCORES | {"median_sample_iou": "median per sample"})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", type=Path, help="an OMBRIA-layout dataset root")
    parser.add_argument("--bins", type=int, default=80, help="quantile bins per threshold")
    parser.add_argument("--out", type=Path, default=Path("results/realdata/sar_threshold_ceiling"))
    args = parser.parse_args(argv)
    logging.getLogger("metaflood").setLevel(logging.ERROR)  # one level warning per sample
    splits = {
        name: collect_split(args.root, split, args.bins)
        for name, split in (("held-out", TEST), ("training", TRAIN))
    }
    chosen = fit_options(splits, training="training")
    results = {name: scores(split) for name, split in splits.items()}
    args.out.mkdir(parents=True, exist_ok=True)
    summary = {
        "root": str(args.root),
        "bins": args.bins,
        "fitted": chosen,
        "scores": results,
    }
    (args.out / "sar_threshold_ceiling.json").write_text(json.dumps(summary, indent=2) + "\n")
    (args.out / "sar_threshold_ceiling.md").write_text(table(results))
    print(table(results))


if __name__ == "__main__":
    main()

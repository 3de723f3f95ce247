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
evidence (`sar_change.sar_evidence`, the `change` section's defaults) and the log-ratio
below its Otsu threshold per sample. Both splits of the layout are scored.

It writes `sar_threshold_ceiling.json` and `sar_threshold_ceiling.md` under --out.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np

from benchmarks.tables import FLOOD_SCORES, split_table
from metaflood.core.settings import ChangeSettings, section_defaults
from metaflood.flood import sar_change
from metaflood.realdata.scores import Tally, otsu_below
from metaflood.training.layouts import LABEL_NONE, LABEL_WATER, TEST, TRAIN, discover, load_ombria

ORACLE_BOTH = "oracle: log-ratio and post-event VV thresholds"
ORACLE_RATIO = "oracle: log-ratio threshold"
ORACLE_POST = "oracle: post-event VV threshold"
SAR_CHANGE = "SAR change (no mask)"
OTSU = "log-ratio Otsu (VV, per sample; no mask)"
LINES = (ORACLE_BOTH, ORACLE_RATIO, ORACLE_POST, SAR_CHANGE, OTSU)


def best_cut(flooded: np.ndarray, dry: np.ndarray) -> Tally:
    """The best IoU of "flooded below both thresholds" over every pair of bin edges.

    `flooded` and `dry` count a sample's labelled pixels per (log-ratio bin, post-event
    bin); cumulative sums give, for each pair of upper edges, the pixels called flooded.
    A single-column histogram scores one threshold alone."""
    tp = flooded.cumsum(0).cumsum(1)
    fp = dry.cumsum(0).cumsum(1)
    fn = flooded.sum() - tp
    union = tp + fp + fn
    iou = np.divide(tp, union, out=np.zeros(tp.shape), where=union > 0)
    i = np.unravel_index(np.argmax(iou), iou.shape)
    labelled = int(flooded.sum() + dry.sum())
    return Tally(int(tp[i]), int(fp[i]), int(fn[i]), labelled, labelled)


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


def sample_tallies(
    pre_db: np.ndarray,
    post_db: np.ndarray,
    label: np.ndarray,
    settings: sar_change.SarChangeSettings,
    bins: int,
) -> dict[str, Tally]:
    """Every line's tally for one sample: `pre_db` and `post_db` are (1, rows, cols) VV in
    dB, `label` the flood mask (LABEL_NONE unlabelled)."""
    valid = np.isfinite(pre_db[0]) & np.isfinite(post_db[0])
    evidence = sar_change.sar_evidence(pre_db, post_db, valid, settings)
    # The level-matched log-ratio is NaN where the filtered pair is not usable.
    ratio, post = evidence.ratio_db[0], evidence.post_vv_db
    scored = np.isfinite(ratio) & (label != LABEL_NONE)
    tallies = oracle_tallies(ratio[scored], post[scored], label[scored] == LABEL_WATER, bins)
    flagged = evidence.evidence == sar_change.FLOOD_SIGNAL
    raw_ratio = post_db[0] - pre_db[0]
    for line, predicted in ((SAR_CHANGE, flagged), (OTSU, otsu_below(raw_ratio, valid))):
        tally = Tally()
        tally.add(predicted, scored, np.where(scored, label, LABEL_NONE))
        tallies[line] = tally
    return tallies


def score_split(root: Path, split: str, bins: int) -> dict[str, dict[str, float]]:
    """Pooled IoU, precision and recall of each line, and the median of the samples' own
    IoU, over one split of an OMBRIA-layout set."""
    refs = discover(root, "ombria", split)
    if not refs:
        raise SystemExit(f"{root}: no {split} triplet in the OMBRIA layout")
    change = ChangeSettings.from_section(section_defaults("change"))
    pooled = {line: Tally() for line in LINES}
    per_sample: dict[str, list[float]] = {line: [] for line in LINES}
    for ref in refs:
        sample = load_ombria(ref)
        settings = sar_change.SarChangeSettings.for_grid(change, sample.transform)
        for line, tally in sample_tallies(
            sample.sar["pre"], sample.sar["post"], sample.flood, settings, bins
        ).items():
            pooled[line].merge(tally)
            if tally.tp + tally.fp + tally.fn:
                per_sample[line].append(tally.iou)
    return {
        line: {
            "iou": tally.iou,
            "precision": tally.precision,
            "recall": tally.recall,
            "median_sample_iou": float(np.median(per_sample[line])) if per_sample[line] else None,
            "samples": len(refs),
        }
        for line, tally in pooled.items()
    }


def table(results: dict[str, dict[str, dict[str, float]]]) -> str:
    return split_table(results, FLOOD_SCORES | {"median_sample_iou": "median per sample"})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", type=Path, help="an OMBRIA-layout dataset root")
    parser.add_argument("--bins", type=int, default=80, help="quantile bins per threshold")
    parser.add_argument("--out", type=Path, default=Path("results/realdata/sar_threshold_ceiling"))
    args = parser.parse_args(argv)
    logging.getLogger("metaflood").setLevel(logging.ERROR)  # one level warning per sample
    results = {
        name: score_split(args.root, split, args.bins)
        for name, split in (("held-out", TEST), ("training", TRAIN))
    }
    args.out.mkdir(parents=True, exist_ok=True)
    summary = {"root": str(args.root), "bins": args.bins, "scores": results}
    (args.out / "sar_threshold_ceiling.json").write_text(json.dumps(summary, indent=2) + "\n")
    (args.out / "sar_threshold_ceiling.md").write_text(table(results))
    print(table(results))


if __name__ == "__main__":
    main()

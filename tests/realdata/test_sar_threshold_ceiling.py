"""benchmarks/sar_threshold_ceiling.py: the thresholds a flood mask itself would choose."""

from __future__ import annotations

import json

import numpy as np

from benchmarks.sar_threshold_ceiling import (
    ORACLE_BOTH,
    ORACLE_POST,
    ORACLE_RATIO,
    OTSU,
    SAR_CHANGE,
    best_cut,
    main,
    quantile_edges,
)
from tests.helpers.realdata_sets import write_ombria


def test_the_best_cut_finds_the_pair_of_thresholds_that_isolates_the_flood():
    # rows: log-ratio bins, low to high; columns: post-event VV bins, dark to bright
    flooded = np.array([[5, 1], [0, 0]])
    dry = np.array([[0, 3], [4, 2]])
    both = best_cut(flooded, dry)
    assert (both.tp, both.fp, both.fn) == (5, 0, 1)
    # the log-ratio alone must take the whole first row, bright dry pixels with it
    ratio = best_cut(flooded.sum(1, keepdims=True), dry.sum(1, keepdims=True))
    assert (ratio.tp, ratio.fp, ratio.fn) == (6, 3, 0)
    assert both.iou > ratio.iou and both.labelled == 15


def test_quantile_edges_keep_the_maximum_inside_and_survive_a_flat_image():
    values = np.arange(10.0)
    edges = quantile_edges(values, 4)
    assert edges[0] == 0 and edges[-1] > 9 and np.histogram(values, edges)[0].sum() == 10
    flat = quantile_edges(np.full(5, 2.0), 4)
    assert flat.size == 2 and np.histogram(np.full(5, 2.0), flat)[0].sum() == 5


def test_each_split_is_scored_with_the_oracles_beside_what_needs_no_mask(tmp_path):
    # Numbers 150-199 are held out in OMBRIA's train folder; the others train.
    root = write_ombria(tmp_path / "ombria", [1, 2, 151, 152], size=96)
    out = tmp_path / "out"
    main([str(root), "--bins", "40", "--out", str(out)])

    scores = json.loads((out / "sar_threshold_ceiling.json").read_text())["scores"]
    assert set(scores) == {"held-out", "training"}
    for split in scores.values():
        assert set(split) == {ORACLE_BOTH, ORACLE_RATIO, ORACLE_POST, SAR_CHANGE, OTSU}
        assert {row["samples"] for row in split.values()} == {2}
        # The fixture's flood is a dark disc after the event: the mask's own thresholds
        # find it, and a pair of them does at least as well as either alone.
        assert split[ORACLE_BOTH]["iou"] > 0.9
        assert split[ORACLE_BOTH]["iou"] >= max(
            split[ORACLE_RATIO]["iou"], split[ORACLE_POST]["iou"]
        )
        assert 0 < split[SAR_CHANGE]["iou"] <= split[ORACLE_BOTH]["iou"]
    assert "| SAR change (no mask) | held-out |" in (out / "sar_threshold_ceiling.md").read_text()

"""benchmarks/sar_threshold_ceiling.py: the thresholds a flood mask itself would choose."""

from __future__ import annotations

import json

import numpy as np

from benchmarks.sar_threshold_ceiling import (
    FITTED_DB,
    FITTED_STANDARD,
    GROWN,
    ORACLE_BOTH,
    ORACLE_POST,
    ORACLE_RATIO,
    OTSU,
    SAR_CHANGE,
    SplitTallies,
    best_cut,
    cut_tallies,
    fit_options,
    grid_counts,
    grown,
    main,
    quantile_edges,
    standardised,
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


def test_grid_counts_put_each_value_below_the_first_threshold_above_it():
    grids = (np.array([-1.0, 0.0]), np.array([-10.0]))
    ratio = np.array([-2.0, -1.0, -0.5, 3.0])
    post = np.array([-20.0, -20.0, 0.0, -20.0])
    counts = grid_counts(ratio, post, np.array([True, True, False, False]), grids)
    assert counts.shape == (2, 3, 2)
    # -1.0 sits on a threshold: it is not below it, so it falls in the next bin
    assert counts[0].tolist() == [[1, 0], [1, 0], [0, 0]]
    assert counts[1].tolist() == [[0, 0], [0, 1], [1, 0]]


def test_standardised_values_have_no_spread_on_a_flat_image():
    assert np.allclose(standardised(np.array([1.0, 3.0])), [-1.0, 1.0])
    assert standardised(np.full(3, 7.0)).tolist() == [0.0, 0.0, 0.0]
    assert standardised(np.empty(0)).size == 0


def test_growing_joins_the_candidates_touching_a_seed_and_no_other():
    seed = np.zeros((5, 6), bool)
    seed[1, 1] = True
    candidate = np.zeros_like(seed)
    candidate[2, 2] = candidate[3, 3] = True  # diagonal steps from the seed
    candidate[1, 5] = candidate[4, 5] = True  # touches no seed
    called = grown(seed, candidate)
    assert called.sum() == 3 and called[1, 1] and called[3, 3] and not called[:, 5].any()


def test_the_training_split_alone_chooses_the_option_both_splits_are_scored_by():
    def split(flooded_bin: int) -> SplitTallies:
        # one sample per split: its flood in one log-ratio bin, dry land in the last;
        # for the grown line, the flood is found whole at one relaxation only
        options = {}
        for line, size in ((FITTED_DB, (74, 62)), (FITTED_STANDARD, (82, 82))):
            counts = np.zeros((2, *size), dtype=int)
            counts[0, flooded_bin, 0] = 10
            counts[1, -1, -1] = 10
            options[line] = [(cut_tallies(*counts), 20)]
        growth = np.zeros((3, 6, 6), dtype=int)
        growth[2] = 10  # by default the flood is missed
        growth[:, flooded_bin % 6, 1] = (10, 0, 0)
        options[GROWN] = [(growth, 20)]
        return SplitTallies(options=options)

    splits = {"training": split(flooded_bin=5), "held-out": split(flooded_bin=40)}
    chosen = fit_options(splits, training="training")
    # the training flood lies in bin 5: below the log-ratio threshold -12 + 5 x 0.25 dB
    assert chosen[FITTED_DB]["log_ratio_below"] == -10.75
    assert chosen[GROWN] == {"water_relaxed_db": 6.0, "drop_relaxed_db": 1.0}
    training, held_out = splits["training"].tallies, splits["held-out"].tallies
    assert training[FITTED_DB][0].iou == 1.0 and training[GROWN][0].iou == 1.0
    # held out, the flood lies above the chosen threshold: nothing of it is found
    assert held_out[FITTED_DB][0].tp == 0 and held_out[FITTED_DB][0].fn == 10
    assert held_out[GROWN][0].tp == 0 and held_out[FITTED_DB][0].labelled == 20


def test_each_split_is_scored_with_the_oracles_beside_what_needs_no_mask(tmp_path):
    # Numbers 150-199 are held out in OMBRIA's train folder; the others train.
    root = write_ombria(tmp_path / "ombria", [1, 2, 151, 152], size=96)
    out = tmp_path / "out"
    main([str(root), "--bins", "40", "--out", str(out)])

    summary = json.loads((out / "sar_threshold_ceiling.json").read_text())
    scores = summary["scores"]
    assert set(summary["fitted"][FITTED_DB]) == {"log_ratio_below", "post_vv_below"}
    assert set(summary["fitted"][GROWN]) == {"water_relaxed_db", "drop_relaxed_db"}
    assert set(scores) == {"held-out", "training"}
    for split in scores.values():
        assert set(split) == {
            ORACLE_BOTH,
            ORACLE_RATIO,
            ORACLE_POST,
            SAR_CHANGE,
            OTSU,
            FITTED_DB,
            FITTED_STANDARD,
            GROWN,
        }
        assert {row["samples"] for row in split.values()} == {2}
        # The fixture's flood is a dark disc after the event: the mask's own thresholds
        # find it, and a pair of them does at least as well as either alone.
        assert split[ORACLE_BOTH]["iou"] > 0.9
        assert split[ORACLE_BOTH]["iou"] >= max(
            split[ORACLE_RATIO]["iou"], split[ORACLE_POST]["iou"]
        )
        assert 0 < split[SAR_CHANGE]["iou"] <= split[ORACLE_BOTH]["iou"]
        # every triplet's disc is equally dark, so one pair for the set finds it too
        assert split[FITTED_DB]["iou"] > 0.9 and split[FITTED_STANDARD]["iou"] > 0.9
        # growing starts from the SAR change and only adds to it
        assert split[GROWN]["recall"] >= split[SAR_CHANGE]["recall"]
    assert "| SAR change (no mask) | held-out |" in (out / "sar_threshold_ceiling.md").read_text()

"""Scores of the real-data benchmark: every line on the same pixels, set-wide thresholds."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.filters import threshold_otsu

from metaflood.realdata.scores import PooledThreshold, Tally
from metaflood.training.layouts import LABEL_NONE


def test_a_line_without_an_answer_counts_the_pixel_as_not_water():
    label = np.array([1, 1, 0, 0, LABEL_NONE], np.uint8)
    predicted = np.array([True, True, True, False, True])
    answered = np.array([True, False, True, True, True])
    tally = Tally()
    tally.add(predicted, answered, label)
    assert (tally.tp, tally.fp, tally.fn) == (1, 1, 1)
    assert tally.iou == pytest.approx(1 / 3)
    assert tally.coverage == pytest.approx(3 / 4)


def test_one_threshold_for_the_set_is_otsus_on_every_sample_pooled():
    rng = np.random.default_rng(0)
    samples = []
    for n_water in (50, 3000, 400):
        values = np.concatenate([rng.normal(-21, 2, n_water), rng.normal(-9, 2, 5000)])
        label = np.concatenate([np.ones(n_water), np.zeros(5000)]).astype(np.uint8)
        samples.append((values, label))
    pooled = PooledThreshold(-50, 20)
    for values, label in samples:
        answered = np.ones(values.shape, bool)
        answered[:10] = False  # a few pixels without SAR: water missed
        pooled.add(values, answered, label)
    values = np.concatenate([v[10:] for v, _ in samples])
    label = np.concatenate([lab for _, lab in samples])
    threshold = threshold_otsu(values)
    direct = Tally()
    answered = np.concatenate([np.arange(v.size) >= 10 for v, _ in samples])
    direct.add(np.concatenate([v for v, _ in samples]) < threshold, answered, label)
    tally = pooled.tally()
    assert tally.iou == pytest.approx(direct.iou, abs=0.002)
    assert tally.labelled == direct.labelled and tally.answered == direct.answered


def test_samples_pooled_one_by_one_give_the_sets_threshold():
    rng = np.random.default_rng(1)
    together, merged = PooledThreshold(-50, 20), PooledThreshold(-50, 20)
    for n_water in (80, 2000):
        values = np.concatenate([rng.normal(-20, 2, n_water), rng.normal(-8, 2, 3000)])
        label = np.concatenate([np.ones(n_water), np.zeros(3000)]).astype(np.uint8)
        answered = np.ones(values.shape, bool)
        together.add(values, answered, label)
        one = PooledThreshold(-50, 20)
        one.add(values, answered, label)
        merged.merge(one)
    assert merged.tally() == together.tally()

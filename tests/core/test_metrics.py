"""Confusion matrix, IoU and mIoU against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from metaflood.core.metrics import confusion_matrix, iou_per_class, mean_iou, summarize


def test_confusion_matrix_by_hand():
    truth = np.array([[0, 0, 1, 1], [2, 2, 255, 1]])
    pred = np.array([[0, 1, 1, 1], [2, 0, 2, 255]])
    cm = confusion_matrix(truth, pred, num_classes=3)
    # (0,0) (0,1) (1,1) (1,1) (2,2) (2,0); the 255 truth and the 255 prediction drop out.
    expected = np.array(
        [
            [1, 1, 0],
            [0, 2, 0],
            [1, 0, 1],
        ]
    )
    np.testing.assert_array_equal(cm, expected)


def test_iou_and_miou_by_hand():
    cm = np.array(
        [
            [1, 1, 0, 0],
            [0, 2, 0, 0],
            [1, 0, 1, 0],
            [0, 0, 0, 0],  # class 3: neither in truth nor predicted
        ]
    )
    iou = iou_per_class(cm)
    # class 0: tp 1, row 2, col 2 -> 1/3; class 1: 2/(2+3-2)=2/3; class 2: 1/(2+1-1)=1/2.
    np.testing.assert_allclose(iou[:3], [1 / 3, 2 / 3, 1 / 2])
    assert np.isnan(iou[3])
    assert mean_iou(cm) == pytest.approx((1 / 3 + 2 / 3 + 1 / 2) / 3)


def test_class_only_predicted_counts_as_zero():
    cm = confusion_matrix(np.array([0, 0]), np.array([0, 1]), num_classes=3)
    iou = iou_per_class(cm)
    assert iou[0] == pytest.approx(0.5) and iou[1] == 0.0 and np.isnan(iou[2])
    assert mean_iou(cm) == pytest.approx(0.25)


def test_summary_is_json_ready():
    cm = confusion_matrix(np.array([0, 1, 1]), np.array([0, 1, 0]), num_classes=3)
    out = summarize(cm, ["a", "b", "c"])
    assert out["iou"] == {"a": 0.5, "b": 0.5, "c": None}
    assert out["miou"] == 0.5 and out["pixels"] == 3
    assert out["pixel_accuracy"] == pytest.approx(2 / 3, abs=1e-6)


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="pixels"):
        confusion_matrix(np.zeros(3), np.zeros(4))

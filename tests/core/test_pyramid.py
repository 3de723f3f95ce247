"""Overview levels averaged from strips as they are written, against a direct mean."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from metaflood.core.pyramid import MeanPyramid


def block_mean(values: np.ndarray, covered: np.ndarray, factor: int):
    """Mean of the covered pixels in each factor x factor block (partial at the edges)."""
    bands, rows, cols = values.shape
    out_rows, out_cols = -(-rows // factor), -(-cols // factor)
    sums = np.zeros((bands, out_rows, out_cols))
    counts = np.zeros((out_rows, out_cols))
    for i in range(out_rows):
        for j in range(out_cols):
            block = (slice(i * factor, (i + 1) * factor), slice(j * factor, (j + 1) * factor))
            counts[i, j] = covered[block].sum()
            sums[:, i, j] = (values[(slice(None), *block)] * covered[block]).sum(axis=(1, 2))
    return sums / np.maximum(counts, 1), counts > 0


@pytest.mark.parametrize("strips", [[37], [1, 2, 3, 31], [5, 5, 5, 5, 17], [36, 1]])
def test_levels_are_the_mean_of_the_covered_pixels_under_them(strips):
    rng = np.random.default_rng(len(strips))
    rows, cols = sum(strips), 53  # odd both ways
    covered = rng.random((rows, cols)) > 0.3
    covered[:9, :11] = False  # whole blocks of every level without data
    values = rng.random((3, rows, cols)).astype(np.float32) * covered  # 0 where no data
    emitted: dict[int, list] = {0: [], 1: [], 2: []}

    def emit(level, row, mean, cov):
        emitted[level].append((row, mean.numpy(), cov.numpy()))

    pyramid = MeanPyramid(3, emit)
    start = 0
    for n in strips:
        pyramid.add(
            torch.from_numpy(values[:, start : start + n]),
            torch.from_numpy(covered[start : start + n]),
        )
        start += n
    pyramid.finish()
    for level, parts in emitted.items():
        rows_seen = [row for row, _, _ in parts]
        heights = [mean.shape[1] for _, mean, _ in parts]
        assert rows_seen == list(np.cumsum([0, *heights[:-1]]))  # in order, no gap
        mean = np.concatenate([m for _, m, _ in parts], axis=1)
        cov = np.concatenate([c for _, _, c in parts], axis=0)
        expected, expected_cov = block_mean(values, covered, 2 ** (level + 1))
        assert mean.shape == expected.shape
        np.testing.assert_array_equal(cov, expected_cov)
        np.testing.assert_allclose(mean, expected, rtol=1e-5, atol=1e-6)
        assert not mean[:, ~cov].any()


def test_no_levels_emit_nothing():
    calls = []
    pyramid = MeanPyramid(0, lambda *a: calls.append(a))
    pyramid.add(torch.ones(2, 4, 4), torch.ones(4, 4, dtype=torch.bool))
    pyramid.finish()
    assert calls == []

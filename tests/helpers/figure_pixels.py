"""Where a rendered map draws its north arrow, read from the picture's pixels (not from
the constants of the code that drew it)."""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage


@dataclass(frozen=True)
class NorthArrow:
    """Pixel rows and columns of a map's north arrow and of its N, in the PNG."""

    head_row: float  # where the arrow's head (its widest rows) is
    tail_row: float  # the arrow's other end
    column: float
    n_row: float  # the centre of the N
    n_column: float


def map_area(rgb: np.ndarray) -> tuple[slice, slice]:
    """The map (the largest connected patch of coloured pixels): legend swatches and
    colour bars are smaller patches beside it."""
    coloured = (rgb.max(axis=-1) - rgb.min(axis=-1)) > 60
    labels, _ = ndimage.label(coloured)
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    return ndimage.find_objects(labels)[int(sizes.argmax()) - 1]


def north_arrow(png: bytes) -> NorthArrow:
    """The two dark shapes in the upper right of the map: the N (compact) and the arrow
    (tall). The arrow's head is the end where it is widest."""
    rgb = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    rows, cols = map_area(rgb)
    height, width = rows.stop - rows.start, cols.stop - cols.start
    top, left = rows.start, cols.start + int(0.8 * width)
    corner = rgb[top : top + height // 2, left : cols.stop]
    labels, count = ndimage.label(corner.max(axis=-1) < 80, structure=np.ones((3, 3)))
    assert count >= 2, f"{count} dark shapes in the map's upper right corner"
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    largest = [int(i) for i in np.argsort(sizes)[::-1][:2]]
    shapes = {i: ndimage.find_objects(labels)[i - 1] for i in largest}
    tall = {i: (s[0].stop - s[0].start) / (s[1].stop - s[1].start) for i, s in shapes.items()}
    arrow_label, letter_label = sorted(largest, key=tall.get, reverse=True)
    arrow, letter = shapes[arrow_label], shapes[letter_label]
    widths = (labels[arrow] == arrow_label).sum(axis=1)
    widest = np.flatnonzero(widths >= 0.6 * widths.max())
    middle = (arrow[0].stop - arrow[0].start - 1) / 2
    head_up = widest.mean() < middle
    head, tail = (arrow[0].start, arrow[0].stop - 1)[:: 1 if head_up else -1]
    return NorthArrow(
        head_row=top + head,
        tail_row=top + tail,
        column=left + (arrow[1].start + arrow[1].stop - 1) / 2,
        n_row=top + (letter[0].start + letter[0].stop - 1) / 2,
        n_column=left + (letter[1].start + letter[1].stop - 1) / 2,
    )


def assert_points_north(png: bytes) -> NorthArrow:
    """North is the top of a north-up map: the head above the tail, the N above the
    head, and both in one column."""
    arrow = north_arrow(png)
    assert arrow.head_row < arrow.tail_row, f"the arrow points down (south): {arrow}"
    assert arrow.n_row < arrow.head_row, f"the N is not above the arrow's head: {arrow}"
    assert abs(arrow.n_column - arrow.column) <= 3, arrow
    return arrow

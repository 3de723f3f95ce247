"""Markdown tables the real-data benchmarks share."""

from __future__ import annotations

# The scores of a flood line, and their headings.
FLOOD_SCORES = {"iou": "flood IoU", "precision": "precision", "recall": "recall"}


def split_table(results: dict[str, dict[str, dict]], columns: dict[str, str]) -> str:
    """One row per split and line: `results` maps a split to its lines' scores, `columns`
    a score's key to its heading. A score of None is an empty cell."""
    lines = [
        "| line | split | " + " | ".join(columns.values()) + " |",
        "|---" * (2 + len(columns)) + "|",
    ]
    for split, rows in results.items():
        for line, row in rows.items():
            cells = ("" if row[key] is None else f"{row[key]:.3f}" for key in columns)
            lines.append(f"| {line} | {split} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"

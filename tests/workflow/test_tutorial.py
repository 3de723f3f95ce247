"""docs/tutorial.ipynb: stored without outputs, and runs top to bottom, offline."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "docs" / "tutorial.ipynb"


def test_the_tutorial_is_stored_without_outputs():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, cell.source[:60]


@pytest.mark.integration
def test_the_tutorial_runs_top_to_bottom(tmp_path):
    """Executed as a reader would (a fresh folder, the tiny demo, no network): every cell
    runs, its checks against stats.json hold, and it draws its maps and writes the COG."""
    from nbclient import NotebookClient

    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=1800,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()
    run = tmp_path / "tutorial_run"
    assert (run / "results" / "tutorial" / "flood" / "stats.json").is_file()
    assert (run / "confidence_largest_flood.tif").is_file()
    figures = [
        output
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if "image/png" in output.get("data", {})
    ]
    assert len(figures) == 4
    printed = "".join(
        output.get("text", "")
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
    )
    assert "invalid configuration: events.tutorial.pre" in printed
    assert "valid COG True" in printed

"""What every rule's script does around its stage: the job's output into its log, and a
clear line for an expected failure.

A rule runs a thin script (workflow/scripts/) with Snakemake's `script:` directive; the
script builds its stage's settings from the configuration and calls `run_job`. Scripts
import their stage inside their `main`, after the job's output goes to its log, so that
a failure to import is in the log too.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from typing import Any

from metaflood.cli import configure_logging
from metaflood.core.errors import MetafloodError
from metaflood.core.raster import open_checked
from metaflood.core.redact import redact_text
from metaflood.core.tiling import find_tile, tile_layout


def _into_log(path: str) -> None:
    """stdout and stderr (Python's and the libraries' own) into `path`, as `> log 2>&1`."""
    sys.stdout.flush()
    sys.stderr.flush()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    sys.stdout = os.fdopen(1, "w", buffering=1, closefd=False)
    sys.stderr = os.fdopen(2, "w", buffering=1, closefd=False)


def run_job(snakemake: Any, stage: Callable[[Any], object]) -> None:
    """Run `stage(snakemake)` as the rule's job.

    Its output goes to the rule's first log; logging is configured with credentials
    redacted; an expected failure (MetafloodError) ends the job with one line,
    "metaflood <rule>: error: <message>" (what `metaflood.runner` shows of a failed job),
    and exit status 1; anything else is a bug and keeps its traceback.
    """
    if snakemake.log:
        _into_log(str(snakemake.log[0]))
    configure_logging()
    name = snakemake.rule.replace("_", "-")
    try:
        stage(snakemake)
    except MetafloodError as err:
        print(f"metaflood {name}: error: {redact_text(err)}", file=sys.stderr, flush=True)
        sys.exit(1)
    sys.stdout.flush()
    sys.stderr.flush()


def tile_of(tiling: Any, tile_id: str, height: int, width: int):
    """The tile `tile_id` of a (height, width) grid cut as `tiling` (TilingSettings) says."""
    return find_tile(tile_layout(height, width, tiling.tile_px, tiling.overlap_px), tile_id)


def shape_of(path: str) -> tuple[int, int]:
    """(height, width) of a raster."""
    with open_checked(path) as src:
        return src.height, src.width


def section(snakemake: Any, name: str) -> dict:
    """A configuration section the rule passes as a JSON param (`section_json` in
    common.smk: a changed section reruns the job, an unchanged one does not)."""
    return json.loads(snakemake.params[name])

"""Rule sar_change_tile: SAR change evidence over one tile, with the grid's thresholds."""

from pathlib import Path

from metaflood.core.settings import ChangeSettings, TilingSettings
from metaflood.jobs import run_job, section, shape_of, tile_of


def main(smk) -> None:
    from metaflood.flood.sar_tiled import sar_change_tile

    tiling = TilingSettings.from_section(section(smk, "tiling"))
    sar_change_tile(
        [Path(p) for p in smk.input.stacks],
        [Path(p) for p in smk.input.valid],
        change=ChangeSettings.from_section(section(smk, "change")),
        thresholds=Path(smk.input.thresholds),
        window=tile_of(tiling, smk.wildcards.tile, *shape_of(smk.input.stacks[0])).core,
        out_evidence=Path(smk.output.evidence),
        out_ratio=Path(smk.output.ratio),
    )


run_job(snakemake, main)  # noqa: F821

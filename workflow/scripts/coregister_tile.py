"""Rule coregister_tile: one tile of a period on the event grid."""

from pathlib import Path

from metaflood.core.settings import CoregisterSettings, TilingSettings
from metaflood.jobs import run_job, section, tile_of


def main(smk) -> None:
    from metaflood.core.config import event_grid
    from metaflood.coregister.scenes import Settings
    from metaflood.coregister.stage import coregister_tile

    grid = event_grid(section(smk, "event"), f"events.{smk.wildcards.event}")
    tiling = TilingSettings.from_section(section(smk, "tiling"))
    coregister_tile(
        section(smk, "event"),
        smk.wildcards.event,
        smk.wildcards.period,
        sar=Path(smk.input.sar),
        optical=Path(smk.input.optical),
        optical_mask=Path(smk.input.optical_mask),
        shifts=Path(smk.input.shifts),
        window=tile_of(tiling, smk.wildcards.tile, grid.height, grid.width).core,
        out_stack=Path(smk.output.stack),
        out_valid=Path(smk.output.valid),
        settings=Settings.of(
            CoregisterSettings.from_section(section(smk, "coregister")), threads=smk.threads
        ),
    )


run_job(snakemake, main)  # noqa: F821

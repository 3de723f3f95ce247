"""Rule landcover_tile: MetaRS over one tile of a period and its overlap."""

import json
from pathlib import Path

from metaflood.core.settings import ModelSettings, TilingSettings
from metaflood.jobs import run_job, section, shape_of, tile_of


def main(smk) -> None:
    from metaflood.landcover.infer import predict_tile

    model = ModelSettings.from_section(section(smk, "model"))
    tiling = TilingSettings.from_section(section(smk, "tiling"))
    summary = predict_tile(
        Path(smk.input.stack),
        Path(smk.input.valid),
        Path(smk.input.checkpoint),
        tile_of(tiling, smk.wildcards.tile, *shape_of(smk.input.stack)).padded,
        Path(smk.output.proba),
        Path(smk.output.route),
        window_px=model.tile,
        overlap=model.overlap,
        batch_size=model.batch_size,
        device=model.device,
        threads=smk.threads,
    )
    print(json.dumps(summary, indent=2))


run_job(snakemake, main)  # noqa: F821

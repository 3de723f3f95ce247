"""Rule landcover_gather: blend a period's tiles, then classes, probabilities, routes."""

import json
from pathlib import Path

from metaflood.core.settings import ComputeSettings, TilingSettings
from metaflood.jobs import run_job, section


def main(smk) -> None:
    from metaflood.landcover.gather import gather_landcover

    summary = gather_landcover(
        [Path(p) for p in smk.input.proba],
        [Path(p) for p in smk.input.route],
        TilingSettings.from_section(section(smk, "tiling")),
        out_class=Path(smk.output.classes),
        out_proba=Path(smk.output.proba),
        out_route=Path(smk.output.route),
        threads=smk.threads,
        scheduler=ComputeSettings.from_section(section(smk, "compute")).scheduler,
    )
    print(json.dumps(summary, indent=2))


run_job(snakemake, main)  # noqa: F821

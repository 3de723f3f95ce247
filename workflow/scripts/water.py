"""Rule water: one period's water evidence (SAR water, the index, the fused map)."""

import json
from pathlib import Path

from metaflood.core.settings import ChangeSettings
from metaflood.jobs import run_job, section


def main(smk) -> None:
    from metaflood.water.stage import map_water

    summary = map_water(
        Path(smk.input.stack),
        Path(smk.input.valid),
        Path(smk.input.proba),
        change=ChangeSettings.from_section(section(smk, "change")),
        fusion=Path(smk.input.fusion) if smk.input.fusion else None,
        out_sar=Path(smk.output.sar),
        out_evidence=Path(smk.output.evidence),
        out_water=Path(smk.output.water),
        out_summary=Path(smk.output.summary),
    )
    print(json.dumps(summary["thresholds"], indent=2))


run_job(snakemake, main)  # noqa: F821

"""Rule sar_change_gather: the SAR change mosaic of a tiled event, and its summary."""

import json
from pathlib import Path

from metaflood.core.settings import ChangeSettings
from metaflood.jobs import run_job, section


def main(smk) -> None:
    from metaflood.flood.sar_tiled import gather_sar_change

    summary = gather_sar_change(
        [Path(p) for p in smk.input.evidence],
        [Path(p) for p in smk.input.ratio],
        change=ChangeSettings.from_section(section(smk, "change")),
        thresholds=Path(smk.input.thresholds),
        out_evidence=Path(smk.output.evidence),
        out_ratio=Path(smk.output.ratio),
        out_summary=Path(smk.output.summary),
        threads=smk.threads,
    )
    print(json.dumps(summary, indent=2))


run_job(snakemake, main)  # noqa: F821

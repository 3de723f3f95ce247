"""Rule sar_change: SAR change evidence of an untiled event (log-ratio, thresholds)."""

import json
from pathlib import Path

from metaflood.core.settings import ChangeSettings
from metaflood.jobs import run_job, section


def main(smk) -> None:
    from metaflood.flood.sar_change import map_sar_change

    summary = map_sar_change(
        [Path(p) for p in smk.input.stacks],
        [Path(p) for p in smk.input.valid],
        change=ChangeSettings.from_section(section(smk, "change")),
        out_evidence=Path(smk.output.evidence),
        out_ratio=Path(smk.output.ratio),
        out_summary=Path(smk.output.summary),
    )
    print(json.dumps(summary, indent=2))


run_job(snakemake, main)  # noqa: F821

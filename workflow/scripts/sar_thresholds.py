"""Rule sar_thresholds: a tiled event's SAR thresholds, found over the whole grid."""

import json
from pathlib import Path

from metaflood.core.settings import ChangeSettings
from metaflood.jobs import run_job, section


def main(smk) -> None:
    from metaflood.flood.sar_tiled import global_thresholds

    found = global_thresholds(
        [Path(p) for p in smk.input.stacks],
        [Path(p) for p in smk.input.valid],
        change=ChangeSettings.from_section(section(smk, "change")),
        out=Path(smk.output[0]),
    )
    print(json.dumps(found, indent=2))


run_job(snakemake, main)  # noqa: F821

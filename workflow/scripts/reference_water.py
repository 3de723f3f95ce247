"""Rule reference_water: permanent water from the reference layer and the pre-event map."""

import json
from pathlib import Path

from metaflood.jobs import run_job


def main(smk) -> None:
    from metaflood.flood.reference_water import write_reference_water

    record = write_reference_water(
        Path(smk.input.layer),
        Path(smk.input.water_pre),
        Path(smk.input.sar_evidence),
        Path(smk.output.reference_water),
        Path(smk.output.record),
    )
    print(json.dumps(record, indent=2))


run_job(snakemake, main)  # noqa: F821

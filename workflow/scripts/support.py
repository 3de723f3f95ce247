"""Rule support: what each flooded pixel rests on, both lines of evidence or one."""

import json
from pathlib import Path

from metaflood.jobs import run_job


def main(smk) -> None:
    from metaflood.flood.support import write_support

    pixels = write_support(
        Path(smk.input.extent),
        [Path(p) for p in smk.input.water],
        Path(smk.input.sar_evidence),
        Path(smk.output[0]),
        threads=smk.threads,
    )
    print(json.dumps({"flooded_pixels": pixels}, indent=2))


run_job(snakemake, main)  # noqa: F821

"""Rule convert_checkpoint: the EarthMiss authors' weights as a MetaRS checkpoint."""

import json
from pathlib import Path

from metaflood.core.settings import AuthorsCheckpoint
from metaflood.jobs import run_job, section


def main(smk) -> None:
    from metaflood.model.convert import convert_authors_checkpoint

    authors = AuthorsCheckpoint.from_section(section(smk, "authors_checkpoint"))
    result = convert_authors_checkpoint(
        Path(smk.input[0]),
        Path(smk.output[0]),
        sar_full_scale_db=authors.sar_full_scale_db,
        optical_full_scale=authors.optical_full_scale,
    )
    print(json.dumps(result, indent=2))


run_job(snakemake, main)  # noqa: F821

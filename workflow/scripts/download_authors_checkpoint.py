"""Rule download_authors_checkpoint: the EarthMiss authors' weights, with retries."""

from pathlib import Path

from metaflood.core.settings import AuthorsCheckpoint
from metaflood.jobs import run_job, section


def main(smk) -> None:
    from metaflood.model.download import download_file

    authors = AuthorsCheckpoint.from_section(section(smk, "authors_checkpoint"))
    download_file(
        authors.url,
        Path(smk.output[0]),
        sha256=authors.sha256,
        log=lambda msg: print(msg, flush=True),
    )


run_job(snakemake, main)  # noqa: F821

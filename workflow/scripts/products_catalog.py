"""Rule products_catalog: the STAC catalog of an event's products."""

from pathlib import Path

from metaflood.jobs import run_job, section


def main(smk) -> None:
    from metaflood.report.products_catalog import write_catalog

    write_catalog(
        smk.wildcards.event,
        section(smk, "event"),
        Path(smk.output.catalog).parent,
        Path(smk.output.catalog),
    )


run_job(snakemake, main)  # noqa: F821

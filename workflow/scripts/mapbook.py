"""Rule mapbook: a printable PDF map book of an event."""

from pathlib import Path

from metaflood.jobs import run_job


def main(smk) -> None:
    from metaflood.report.mapbook import write_mapbook
    from metaflood.report.maps import ReportInputs

    inputs = ReportInputs.from_named(smk.input)
    write_mapbook(smk.wildcards.event, inputs, Path(smk.output[0]))


run_job(snakemake, main)  # noqa: F821

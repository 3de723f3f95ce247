"""Rule report: one self-contained HTML page of an event."""

from pathlib import Path

from metaflood.jobs import run_job


def main(smk) -> None:
    from metaflood.report.maps import ReportInputs
    from metaflood.report.page import write_report

    inputs = ReportInputs.from_named(smk.input)
    write_report(smk.wildcards.event, inputs, Path(smk.output[0]))


run_job(snakemake, main)  # noqa: F821

"""Rule qgis_project: a QGIS project of the event's products."""

from pathlib import Path

from metaflood.jobs import run_job


def main(smk) -> None:
    from metaflood.report.qgis_project import write_project

    out = Path(smk.output[0])
    write_project(out.parent, smk.wildcards.event, out)


run_job(snakemake, main)  # noqa: F821

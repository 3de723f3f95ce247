"""Rule qgis_style: the QGIS style beside a product."""

from metaflood.jobs import run_job


def main(smk) -> None:
    from metaflood.report.qgis_styles import write_style

    write_style(smk.input[0], smk.params.product)


run_job(snakemake, main)  # noqa: F821

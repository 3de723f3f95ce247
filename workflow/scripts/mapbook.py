"""Rule mapbook: a printable PDF map book of an event."""

from pathlib import Path

from metaflood.jobs import run_job


def main(smk) -> None:
    from metaflood.report.mapbook import write_mapbook
    from metaflood.report.maps import ReportInputs

    inputs = ReportInputs(
        stacks=[Path(p) for p in smk.input.stacks],
        valid=[Path(p) for p in smk.input.valid],
        landcover=[Path(p) for p in smk.input.landcover],
        extent=Path(smk.input.extent),
        confidence=Path(smk.input.confidence),
        sar_evidence=Path(smk.input.sar_evidence),
        sar_ratio=Path(smk.input.sar_ratio),
        stats=Path(smk.input.stats),
    )
    write_mapbook(smk.wildcards.event, inputs, Path(smk.output[0]))


run_job(snakemake, main)  # noqa: F821

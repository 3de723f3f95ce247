"""Rule coregister_gather: the mosaic of a period's tiles, and its report."""

from pathlib import Path

from metaflood.jobs import run_job


def main(smk) -> None:
    from metaflood.coregister.gather import gather_aligned

    gather_aligned(
        Path(smk.input.shifts),
        [Path(p) for p in smk.input.stacks],
        [Path(p) for p in smk.input.valid],
        out_stack=Path(smk.output.stack),
        out_valid=Path(smk.output.valid),
        out_report=Path(smk.output.report),
        where=f"events.{smk.wildcards.event}.{smk.wildcards.period}",
        threads=smk.threads,
    )


run_job(snakemake, main)  # noqa: F821

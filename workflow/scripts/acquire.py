"""Rule acquire: read the chosen scenes of one period over the AOI."""

from pathlib import Path

from metaflood.jobs import run_job, section


def main(smk) -> None:
    from metaflood.acquire.stage import acquire_period

    acquire_period(
        section(smk, "event"),
        smk.wildcards.event,
        smk.wildcards.period,
        selection=Path(smk.input.selection),
        cache_dir=Path(smk.params.cache),
        out_sar=Path(smk.output.sar),
        out_sar_spread=Path(smk.output.sar_spread),
        out_optical=Path(smk.output.optical),
        out_optical_mask=Path(smk.output.optical_mask),
        out_scenes=Path(smk.output.scenes),
        workers=smk.threads,
    )


run_job(snakemake, main)  # noqa: F821

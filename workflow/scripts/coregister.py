"""Rule coregister: put one period of an untiled event on the event grid."""

from pathlib import Path

from metaflood.core.settings import CoregisterSettings
from metaflood.jobs import run_job, section


def main(smk) -> None:
    from metaflood.coregister.scenes import Settings
    from metaflood.coregister.stage import coregister_period

    coregister_period(
        section(smk, "event"),
        smk.wildcards.event,
        smk.wildcards.period,
        sar=Path(smk.input.sar),
        optical=Path(smk.input.optical),
        optical_mask=Path(smk.input.optical_mask),
        reference=Path(smk.input.reference),
        out_stack=Path(smk.output.stack),
        out_valid=Path(smk.output.valid),
        out_report=Path(smk.output.report),
        settings=Settings.of(
            CoregisterSettings.from_section(section(smk, "coregister")), threads=smk.threads
        ),
    )


run_job(snakemake, main)  # noqa: F821

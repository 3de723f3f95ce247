"""Rule acquire_auxiliary: read the event's DEM and reference water onto its grid."""

from pathlib import Path

from metaflood.core.settings import ChangeSettings, ExclusionSettings
from metaflood.jobs import run_job, section


def main(smk) -> None:
    from metaflood.acquire.auxiliary import acquire_auxiliary

    change = ChangeSettings.from_section(section(smk, "change"))
    acquire_auxiliary(
        section(smk, "event"),
        smk.wildcards.event,
        exclusion=ExclusionSettings.from_section(section(smk, "exclusion")),
        reference_occurrence_min=change.reference_occurrence_min,
        demo_catalog=smk.params.demo_catalog or None,
        cache_dir=Path(smk.params.cache),
        out_dem=Path(smk.output.dem),
        out_reference_water=Path(smk.output.reference_water),
        out_record=Path(smk.output.record),
        workers=smk.threads,
    )


run_job(snakemake, main)  # noqa: F821

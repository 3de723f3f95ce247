"""Rule stats: an event's flood statistics, coverage and provenance."""

from pathlib import Path

from metaflood.core.settings import ChangeSettings
from metaflood.jobs import run_job, section


def main(smk) -> None:
    from metaflood.flood.stats import write_stats

    calibration = ChangeSettings.from_section(section(smk, "full_config")["change"]).calibration
    paths = {
        name: [Path(p) for p in smk.input[name]]
        for name in ("landcover", "routes", "scenes", "coregistration", "water")
    }
    write_stats(
        smk.wildcards.event,
        section(smk, "full_config"),
        extent=Path(smk.input.extent),
        confidence=Path(smk.input.confidence),
        polygons=Path(smk.input.polygons),
        transitions=Path(smk.input.transitions),
        **paths,
        sar_summary=Path(smk.input.sar_summary),
        support=Path(smk.input.support),
        checkpoint=Path(smk.input.checkpoint),
        calibration=Path(calibration) if calibration else None,
        validation=Path(smk.input.validation) if smk.input.validation else None,
        out=Path(smk.output.stats),
        out_impact=Path(smk.output.impact),
        exclusion=Path(smk.input.exclusion),
        reference_water=Path(smk.input.reference_water),
        auxiliary=Path(smk.input.auxiliary),
        network_summary=Path(smk.input.network_summary) if smk.input.network_summary else None,
    )


run_job(snakemake, main)  # noqa: F821

"""Rule change: flood extent, confidence, polygons, transitions and what the flood rests on."""

import json
from pathlib import Path

from metaflood.core.settings import ChangeSettings, ExclusionSettings
from metaflood.jobs import run_job, section


def main(smk) -> None:
    from metaflood.flood.change import map_flood

    change = ChangeSettings.from_section(section(smk, "change"))
    exclusion = ExclusionSettings.from_section(section(smk, "exclusion"))
    summary = map_flood(
        [Path(p) for p in smk.input.landcover],
        [Path(p) for p in smk.input.water],
        post_route=Path(smk.input.post_route),
        sar_evidence=Path(smk.input.sar_evidence),
        sar_ratio=Path(smk.input.sar_ratio),
        sar_summary=Path(smk.input.sar_summary),
        calibration=Path(change.calibration) if change.calibration else None,
        out_extent=Path(smk.output.extent),
        out_confidence=Path(smk.output.confidence),
        out_polygons=Path(smk.output.polygons),
        out_transitions=Path(smk.output.transitions),
        out_support=Path(smk.output.support),
        min_area_m2=change.min_area_m2,
        flooded_min_confidence=change.flooded_min_confidence,
        reference_water=Path(smk.input.reference_water),
        exclusion=Path(smk.input.exclusion) if exclusion.enabled else None,
        out_unexcluded=Path(smk.output.unexcluded),
        network=Path(smk.input.network) if change.flood_network else None,
    )
    print(json.dumps(summary, indent=2))


run_job(snakemake, main)  # noqa: F821

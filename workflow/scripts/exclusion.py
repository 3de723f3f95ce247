"""Rule exclusion: flood/exclusion.tif and its record from the DEM and the SAR geometry."""

import json
from pathlib import Path

from metaflood.jobs import run_job, section


def main(smk) -> None:
    from metaflood.core.config import event_grid
    from metaflood.core.settings import ExclusionSettings
    from metaflood.terrain.stage import terrain_exclusion

    event = json.loads(smk.params.event)
    record = terrain_exclusion(
        Path(smk.input.dem),
        Path(smk.input.post_scenes),
        event_grid(event, f"events.{smk.wildcards.event}"),
        settings=ExclusionSettings.from_section(section(smk, "exclusion")),
        out_exclusion=Path(smk.output.exclusion),
        out_record=Path(smk.output.record),
    )
    print(json.dumps(record["areas"]["excluded"], indent=2))


run_job(snakemake, main)  # noqa: F821

"""Rule adapt: fine-tune the SAR head on the event's clear-optical pixels."""

import json
from pathlib import Path

from metaflood.core.settings import AdaptSettings, ChangeSettings
from metaflood.jobs import run_job, section


def main(smk) -> None:
    from metaflood.training.adapt import adapt_checkpoint

    summary = adapt_checkpoint(
        Path(smk.input.checkpoint),
        dict(zip(smk.params.periods, map(Path, smk.input.stacks), strict=True)),
        dict(zip(smk.params.periods, map(Path, smk.input.valid), strict=True)),
        Path(smk.output.checkpoint),
        Path(smk.output.summary),
        settings=AdaptSettings.from_section(section(smk, "adapt")),
        change=ChangeSettings.from_section(section(smk, "change")),
        threads=smk.threads,
        device=smk.params.device,
        log=lambda message: print(message, flush=True),
    )
    print(json.dumps({k: summary[k] for k in ("adapted", "reason")}, indent=2))


run_job(snakemake, main)  # noqa: F821

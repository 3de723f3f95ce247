"""Rule landcover: routed MetaRS inference over one period of an untiled event."""

import json
from pathlib import Path

from metaflood.core.settings import ModelSettings
from metaflood.jobs import run_job, section


def main(smk) -> None:
    from metaflood.landcover.infer import predict_scene

    model = ModelSettings.from_section(section(smk, "model"))
    summary = predict_scene(
        Path(smk.input.stack),
        Path(smk.input.valid),
        Path(smk.input.checkpoint),
        Path(smk.output.classes),
        Path(smk.output.proba),
        Path(smk.output.route),
        window_px=model.tile,
        overlap=model.overlap,
        batch_size=model.batch_size,
        device=model.device,
        threads=smk.threads,
    )
    print(json.dumps(summary, indent=2))


run_job(snakemake, main)  # noqa: F821

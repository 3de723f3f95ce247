"""Rule flood_network: the flood network's probability over the event grid."""

import json
from pathlib import Path

from metaflood.jobs import run_job, section


def main(smk) -> None:
    import torch

    from metaflood.flood.network import map_flood_network

    torch.set_num_threads(smk.threads)

    summary = map_flood_network(
        [Path(p) for p in smk.input.stacks],
        [Path(p) for p in smk.input.valid],
        Path(smk.input.checkpoint),
        out=Path(smk.output.probability),
        out_summary=Path(smk.output.summary),
        device=section(smk, "model")["device"],
    )
    print(json.dumps(summary, indent=2))


run_job(snakemake, main)  # noqa: F821

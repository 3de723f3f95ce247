"""Rule train: train MetaRS (model keys that shape the network, the train section)."""

from pathlib import Path

from metaflood.jobs import run_job, section


def main(smk) -> None:
    from metaflood.training.train import train_model

    train_model(
        section(smk, "model"),
        section(smk, "train"),
        Path(smk.output.checkpoint),
        Path(smk.output.metrics),
        threads=smk.threads,
        log=lambda msg: print(msg, flush=True),
        device=section(smk, "model")["device"],
    )


run_job(snakemake, main)  # noqa: F821

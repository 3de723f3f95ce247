"""Rule evaluate: MetaRS against the baselines on a held-out split."""

from pathlib import Path

from metaflood.jobs import run_job, section


def main(smk) -> None:
    from metaflood.training.evaluate import run_evaluation

    run_evaluation(
        section(smk, "model"),
        section(smk, "train"),
        section(smk, "evaluate"),
        Path(smk.output.csv),
        Path(smk.output.md),
        Path(smk.output.csv).parent / "evaluation",
        threads=smk.threads,
        device=section(smk, "model")["device"],
        log=lambda msg: print(msg, flush=True),
    )


run_job(snakemake, main)  # noqa: F821

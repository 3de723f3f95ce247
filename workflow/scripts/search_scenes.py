"""Rule search_scenes: search the sources and choose the scenes of both periods."""

from pathlib import Path

from metaflood.jobs import run_job, section


def main(smk) -> None:
    from metaflood.acquire.stage import search_scenes

    search_scenes(
        section(smk, "event"),
        smk.wildcards.event,
        demo_catalog=smk.params.demo_catalog or None,
        cache_dir=Path(smk.params.cache),
        out=Path(smk.output[0]),
        workers=smk.threads,
    )


run_job(snakemake, main)  # noqa: F821

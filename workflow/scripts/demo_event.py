"""Rule demo_event: generate the embedded demo event as a local STAC catalog."""

from pathlib import Path

from metaflood.jobs import run_job, section


def main(smk) -> None:
    from metaflood.demo.events import build_demo_event

    build_demo_event(section(smk, "event"), smk.wildcards.event, Path(smk.output[0]))


run_job(snakemake, main)  # noqa: F821

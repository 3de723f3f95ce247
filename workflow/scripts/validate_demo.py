"""Rule validate_demo: a demo event's flood products against the simulator's truth."""

from pathlib import Path

from metaflood.jobs import run_job


def main(smk) -> None:
    from metaflood.flood.validate import summary_lines, validate_against_truth

    result = validate_against_truth(
        Path(smk.input.extent),
        Path(smk.input.confidence),
        Path(smk.input.sar_evidence),
        Path(smk.input.pre),
        Path(smk.input.post),
        Path(smk.input.demo) / "truth",
        Path(smk.output[0]),
        support_path=Path(smk.input.support),
        min_area_m2=smk.params.min_area_m2,
        unexcluded_path=Path(smk.input.unexcluded),
    )
    print("\n".join(summary_lines(smk.wildcards.event, result)))


run_job(snakemake, main)  # noqa: F821

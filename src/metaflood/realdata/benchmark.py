"""`metaflood benchmark-real`: a labelled set through the workflow, scored beside baselines.

Every sample of the chosen split is checked first (each image has its pair, each label
the size of its image), so a bad set stops before any work and leaves no table. Then each
sample runs through `pipeline.run_sample`, is scored (`scores`), and its products are
removed unless kept. The table (CSV and Markdown), each sample's scores (`samples.csv`)
and the plot are written at the end, atomically.
"""

from __future__ import annotations

import csv
import logging
import shutil
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from metaflood.core.errors import ConfigError
from metaflood.core.raster import atomic_path
from metaflood.core.settings import (
    SCHEMA_PATH,
    ChangeSettings,
    CoregisterSettings,
    apply_defaults,
)
from metaflood.flood.calibrate import FLOOD_FIELDS, NETWORK_FIELD
from metaflood.realdata.pipeline import PipelineSettings, SampleOutputs, run_sample
from metaflood.realdata.scores import KEY_FIELDS, SCORE_FIELDS, Scoreboard
from metaflood.training.layouts import LABEL_NONE, discover, layout, partial_water_labels
from metaflood.workflow import check_config_file

log = logging.getLogger(__name__)
COLUMNS = (*KEY_FIELDS, *SCORE_FIELDS, "coverage", "median_sample_iou", "labelled_pixels")
SAMPLE_COLUMNS = (
    "sample",
    *KEY_FIELDS,
    *SCORE_FIELDS,
    "true_positives",
    "false_positives",
    "false_negatives",
    "labelled_pixels",
)


@dataclass(frozen=True)
class BenchmarkRun:
    root: Path
    layout: str
    split: str | None
    out: Path
    settings: PipelineSettings
    limit: int | None = None
    keep: Path | None = None
    evidence_dump: Path | None = None


def config_sections(configfile: str | Path | None) -> dict:
    """The model, change and coregister sections of a configuration file (the demo's
    config.yaml by default), with the schema's defaults filled in."""
    path = Path(configfile) if configfile else SCHEMA_PATH.parents[2] / "config.yaml"
    config = apply_defaults(check_config_file(path))
    return {k: config[k] for k in ("model", "change", "coregister")}


def run_benchmark(run: BenchmarkRun) -> Scoreboard:
    adapter = layout(run.layout)
    refs = discover(run.root, run.layout, run.split)
    if run.limit is not None:
        refs = refs[: run.limit]
    if not refs:
        raise ConfigError(f"{run.root}: no {run.split or ''} sample in the {run.layout} layout")
    log.info("checking %d samples of %s", len(refs), run.root)
    for ref in refs:  # every pair and label size, before any work
        adapter.load(ref)
    board = Scoreboard()
    dump: dict[str, list[np.ndarray]] = {}
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="benchmark-real-") as scratch:
        for i, ref in enumerate(refs):
            folder = (run.keep or Path(scratch)) / ref.id
            result = run_sample(adapter.load(ref), folder, run.settings)
            board.add(result)
            if run.evidence_dump is not None:
                collect_evidence(dump, result, seed=i)
            if run.keep is None:
                shutil.rmtree(folder, ignore_errors=True)
            elapsed = time.monotonic() - started
            log.info("%d/%d %s (%.1f s a sample)", i + 1, len(refs), ref.id, elapsed / (i + 1))
    write_outputs(board, run)
    if run.evidence_dump is not None:
        with atomic_path(run.evidence_dump) as tmp, tmp.open("wb") as handle:
            np.savez_compressed(handle, **{k: np.concatenate(v) for k, v in dump.items()})
        log.info("evidence of labelled pixels saved to %s", run.evidence_dump)
    return board


# --- the evidence of labelled pixels, for fitting the water fusion ------------------------


def collect_evidence(
    dump: dict[str, list[np.ndarray]], result: SampleOutputs, *, seed: int, per_sample: int = 4000
) -> None:
    """Up to `per_sample` labelled pixels of each condition: for the water fusion, each
    period's MetaRS water probability, SAR and index margins and water label; for the
    flood confidence (sets with a flood mask), its evidence and the flood label."""
    rng = np.random.default_rng(seed)
    labels = partial_water_labels(result.water_labels, result.flood_label)
    for condition, periods in result.periods.items():
        for period, label in labels.items():
            outputs = periods[period]
            picked = _pick(rng, label != LABEL_NONE, per_sample)
            dump.setdefault("land_cover", []).append(outputs.land_cover_water.ravel()[picked])
            dump.setdefault("sar_margin", []).append(outputs.evidence[0].ravel()[picked])
            dump.setdefault("index_margin", []).append(outputs.evidence[2].ravel()[picked])
            dump.setdefault("label", []).append(label.ravel()[picked])
        if condition in result.flood and result.flood_label is not None:
            evidence = result.flood[condition]["evidence"]
            picked = _pick(rng, (result.flood_label != LABEL_NONE) & evidence.mapped, per_sample)
            for field in FLOOD_FIELDS:
                values = getattr(evidence, field).ravel()[picked]
                dump.setdefault(f"flood_{field}", []).append(values)
            if result.flood[condition]["network"] is not None:  # for fit-flood-join
                network = result.flood[condition]["network"].ravel()[picked]
                dump.setdefault(NETWORK_FIELD, []).append(network)
            dump.setdefault("flood_label", []).append(result.flood_label.ravel()[picked])
            dump.setdefault("flood_sample", []).append(np.full(picked.size, seed, np.int32))


def _pick(rng: np.random.Generator, where: np.ndarray, most: int) -> np.ndarray:
    candidates = np.flatnonzero(where.ravel())
    return rng.choice(candidates, min(most, candidates.size), replace=False)


# --- tables and plot ------------------------------------------------------------------------


def _fmt(value: float) -> str:
    return "" if np.isnan(value) else f"{value:.3f}"


def markdown(board: Scoreboard, run: BenchmarkRun) -> str:
    rows = board.rows()
    settings = run.settings
    lines = [
        f"# Real-data benchmark: {run.layout}",
        "",
        f"- dataset root: `{run.root}`; split: {run.split or 'all'}; samples: {board.samples}",
        f"- checkpoint: `{settings.checkpoint}`; simulated cloud over the post-event optical "
        f"image: {settings.cloud_cover:.0%} (condition `both`); event adaptation: "
        f"{'on, per sample and condition' if settings.adapt else 'off'}; flood network: "
        + (f"`{settings.change.flood_network}`" if settings.change.flood_network else "none"),
        "- IoU of the water (or flood) class, pooled over every labelled pixel; a line without"
        " an answer at a pixel counts it as not water (coverage: the share it answered)",
        "- median per sample: the median of the samples' own IoU (`samples.csv` has each)",
        "",
        "| target | condition | kind | line | IoU | precision | recall | coverage "
        "| median per sample |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['target']} | {row['condition']} | {row['kind']} | {row['line']} | "
            f"{_fmt(row['iou'])} | {_fmt(row['precision'])} | {_fmt(row['recall'])} | "
            f"{_fmt(row['coverage'])} | {_fmt(row['median_sample_iou'])} |"
        )
    return "\n".join(lines) + "\n"


def plot(board: Scoreboard, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in board.rows() if not np.isnan(r["iou"])]
    groups = sorted({(r["target"], r["condition"]) for r in rows})
    fig, axes = plt.subplots(len(groups), 1, figsize=(8, 1.2 + 0.35 * len(rows)), squeeze=False)
    colours = {
        "evidence": "#1f6fb4",
        "baseline": "#999999",
        "route": "#7fb3e0",
        "support": "#b9d3ec",
    }
    for ax, (target, condition) in zip(axes[:, 0], groups, strict=True):
        part = [r for r in rows if (r["target"], r["condition"]) == (target, condition)]
        ax.barh(
            [r["line"] for r in part],
            [r["iou"] for r in part],
            color=[colours[r["kind"]] for r in part],
        )
        ax.set_xlim(0, 1)
        ax.invert_yaxis()
        ax.set_title(f"{target}, {condition}", fontsize=9)
        ax.tick_params(labelsize=8)
    axes[-1, 0].set_xlabel("IoU (blue: metaflood, grey: baseline of the same run)")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def _write_csv(path: Path, columns: tuple[str, ...], rows: list[dict]) -> None:
    with atomic_path(path) as tmp, tmp.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: (_fmt(v) if isinstance(v, float) else v) for k, v in row.items()})


def write_outputs(board: Scoreboard, run: BenchmarkRun) -> dict[str, Path]:
    run.out.mkdir(parents=True, exist_ok=True)
    paths = {
        "csv": run.out / "benchmark.csv",
        "samples": run.out / "samples.csv",
        "markdown": run.out / "benchmark.md",
        "plot": run.out / "benchmark.png",
    }
    _write_csv(paths["csv"], COLUMNS, board.rows())
    _write_csv(paths["samples"], SAMPLE_COLUMNS, board.sample_rows())
    with atomic_path(paths["markdown"]) as tmp:
        tmp.write_text(markdown(board, run))
    plot(board, paths["plot"], f"{run.layout}, {run.split or 'all'} split, {board.samples} samples")
    return paths


def settings_from(
    checkpoint: str | Path,
    configfile: str | Path | None,
    *,
    fusion: str | Path | None = None,
    calibration: str | Path | None = None,
    flood_network: str | Path | None = None,
    cloud_cover: float = 0.0,
    threads: int = 2,
    seed: int = 0,
    adapt: bool = False,
) -> PipelineSettings:
    sections = config_sections(configfile)
    if not 0 <= cloud_cover <= 1:
        raise ConfigError(f"--cloud-cover {cloud_cover}: a share between 0 and 1")
    if not Path(checkpoint).is_file():
        raise ConfigError(f"--checkpoint {checkpoint}: no such file (run `make demo` first)")
    change = ChangeSettings.from_section(sections["change"])
    if flood_network:
        change = replace(change, flood_network=str(flood_network))
    if change.flood_network and not Path(change.flood_network).is_file():
        raise ConfigError(
            f"flood network {change.flood_network}: no such file (metaflood train-flood)"
        )
    return PipelineSettings(
        checkpoint=Path(checkpoint),
        model=sections["model"],
        change=change,
        coregister=CoregisterSettings.from_section(sections["coregister"]),
        fusion=Path(fusion) if fusion else None,
        calibration=Path(calibration) if calibration else None,
        cloud_cover=cloud_cover,
        seed=seed,
        threads=threads,
        adapt={**sections["model"]["adapt"], "enabled": True} if adapt else None,
    )

"""`metaflood evaluate`: MetaRS against the baselines on a held-out synthetic split.

Five models are trained with the same data, budget and seed (each resumable, kept under
`<workdir>/<name>.pt`), then tested on scenes from seeds no training or validation run
uses, under three conditions: both modalities, SAR only (optical missing) and optical
only (SAR missing). MetaRS serves them with its joint, SAR and optical heads; early
fusion zero-fills the missing modality; the SAR-only network uses SAR in every
condition it can serve. The result is a CSV and a Markdown table.
"""

from __future__ import annotations

import csv
import io
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from metaflood.core.metrics import mean_iou
from metaflood.model.checkpoint import build_model, load_checkpoint, resolve_device, write_atomic
from metaflood.model.metars import MetaRSConfig
from metaflood.model.normalization import Normalization
from metaflood.training.data import make_held_out_pool
from metaflood.training.train import CONDITION_HEADS, evaluate, train_model, training_config

# name -> (label, training overrides)
MODELS: dict[str, tuple[str, dict[str, Any]]] = {
    "metars": ("MetaRS", {"architecture": "metars", "mmr": True}),
    "metars_no_mmr": ("MetaRS without MMR", {"architecture": "metars", "mmr": False}),
    "sar_only": ("SAR-only network", {"architecture": "sar_only"}),
    "early_fusion": ("Early fusion, zero-filled", {"architecture": "early_fusion"}),
    "early_fusion_dropout": (
        "Early fusion, modality dropout",
        {"architecture": "early_fusion", "modality_dropout": True},
    ),
}
CONDITION_LABELS = {
    "both": "both",
    "sar_only": "optical missing (SAR only)",
    "optical_only": "SAR missing (optical only)",
}
EVALUATE_DEFAULTS = {"iterations": None, "test_scenes": 6, "models": list(MODELS)}


def run_evaluation(
    model_cfg: Mapping[str, Any],
    train_cfg: Mapping[str, Any],
    eval_cfg: Mapping[str, Any],
    out_csv: str | os.PathLike,
    out_md: str | os.PathLike,
    workdir: str | os.PathLike,
    *,
    threads: int = 2,
    device: str,
    log: Callable[[str], None] = print,
) -> list[dict[str, Any]]:
    """Train (or reuse) every model, test each on the held-out split, write both tables."""
    ecfg = {**EVALUATE_DEFAULTS, **dict(eval_cfg)}
    unknown = sorted(set(ecfg) - set(EVALUATE_DEFAULTS))
    if unknown:
        raise ValueError(f"evaluate: unknown keys {unknown}")
    bad = sorted(set(ecfg["models"]) - set(MODELS))
    if bad:
        raise ValueError(f"evaluate.models: unknown {bad}; expected some of {list(MODELS)}")
    base = dict(train_cfg)
    if base.get("dataset", "synthetic") != "synthetic":
        raise ValueError("evaluate: the comparison runs on the synthetic dataset only")
    if ecfg["iterations"]:
        base["iterations"] = int(ecfg["iterations"])
    cfg = training_config(base)
    workdir = Path(workdir)
    dev = resolve_device(device)

    grid = (cfg["scene_size_m"], cfg["native_resolution"], cfg["model_resolution"])
    bands = MetaRSConfig.from_dict(dict(model_cfg), ignore_unknown=True).optical_bands
    test_pool = make_held_out_pool(
        "test", int(ecfg["test_scenes"]), *grid, int(cfg["seed"]), optical_bands=bands
    )
    log(f"test split: {len(test_pool)} samples from {ecfg['test_scenes']} held-out scenes")

    rows = []
    for name in ecfg["models"]:
        label, overrides = MODELS[name]
        log(f"--- {label} ({name})")
        metrics = train_model(
            model_cfg,
            {**base, **overrides},
            workdir / f"{name}.pt",
            workdir / f"{name}_metrics.json",
            threads=threads,
            log=log,
            device=str(dev),
        )
        ckpt = load_checkpoint(workdir / f"{name}.pt")
        model = build_model(ckpt, workdir / f"{name}.pt").to(dev)
        arch = ckpt["architecture"]
        t0 = time.perf_counter()
        cms = evaluate(model, test_pool, Normalization.from_dict(ckpt["normalization"]), dev, arch)
        row: dict[str, Any] = {"model": name, "label": label}
        for condition in CONDITION_LABELS:
            row[condition] = round(100 * mean_iou(cms[condition]), 1) if condition in cms else None
        row["heads"] = "/".join(CONDITION_HEADS[arch].get(c, "-") for c in CONDITION_LABELS)
        row["train_seconds"] = metrics["seconds"]
        row["iterations"] = metrics["iterations"]
        rows.append(row)
        log(f"test {name}: {row} (in {time.perf_counter() - t0:.1f} s)")

    write_atomic(out_csv, lambda tmp: tmp.write_text(to_csv(rows)))
    write_atomic(out_md, lambda tmp: tmp.write_text(to_markdown(rows, cfg, ecfg)))
    return rows


def to_csv(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    fields = ["model", "label", *CONDITION_LABELS, "heads", "iterations", "train_seconds"]
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if row.get(k) is None else row[k] for k in fields})
    return buf.getvalue()


def to_markdown(rows: list[dict[str, Any]], cfg: Mapping[str, Any], ecfg: Mapping[str, Any]) -> str:
    header = "| model | " + " | ".join(CONDITION_LABELS.values()) + " | training (s) |"
    lines = [
        "mIoU (%) on the held-out synthetic split "
        f"({ecfg['test_scenes']} scenes, pre and post; {cfg['iterations']} iterations of "
        f"batch {cfg['batch_size']}, crop {cfg['crop']}, seed {cfg['seed']}):",
        "",
        header,
        "|" + "---|" * (len(CONDITION_LABELS) + 2),
    ]
    for row in rows:
        cells = ["n/a" if row[c] is None else f"{row[c]:.1f}" for c in CONDITION_LABELS]
        lines.append(
            f"| {row['label']} | " + " | ".join(cells) + f" | {row['train_seconds']:.0f} |"
        )
    lines += [
        "",
        "MetaRS serves the three conditions with its joint, SAR and optical heads; early "
        "fusion zero-fills the missing modality; the SAR-only network uses SAR wherever it "
        "can.",
        "",
    ]
    return "\n".join(lines)

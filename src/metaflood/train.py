"""Training MetaRS on synthetic scenes: resumable, deterministic, and talkative.

The run is a pure function of its configuration: the model is initialised from the
seed and every batch is drawn from a generator seeded by (seed, item), so a run killed
and resumed from its last checkpoint ends with the same model as an uninterrupted one.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from metaflood.checkpoint import load_checkpoint, resolve_device, save_checkpoint, write_atomic
from metaflood.classes import CLASS_NAMES
from metaflood.data import (
    Normalization,
    Sample,
    SyntheticCrops,
    make_synthetic_pool,
    make_validation_pool,
)
from metaflood.errors import ModelError
from metaflood.metrics import confusion_matrix, summarize
from metaflood.model.losses import metars_losses
from metaflood.model.metars import MetaRS, MetaRSConfig

TRAIN_DEFAULTS: dict[str, Any] = {
    "dataset": "synthetic",
    "iterations": 300,
    "batch_size": 8,
    "crop": 128,
    "lr": 3e-3,
    "weight_decay": 0.05,
    "align_weight": 0.1,
    "seed": 0,
    "scenes": 16,
    "val_scenes": 4,
    "scene_size_m": 512.0,
    "native_resolution": 1.0,
    "model_resolution": 2.0,
    "save_every": 50,
    "log_every": 10,
    "poly_power": 0.9,
}
# Keys that may change between a run and its resumption without changing the result.
RESUMABLE_KEYS = {"iterations", "save_every", "log_every"}
# Validation condition -> the head that serves it at inference.
CONDITIONS = {"both": "joint", "sar_only": "sar", "optical_only": "optical"}


def training_config(train_cfg: Mapping[str, Any]) -> dict[str, Any]:
    """Defaults filled in; the workflow's `resolution` key is the model resolution."""
    cfg = dict(TRAIN_DEFAULTS)
    given = dict(train_cfg)
    if "resolution" in given:
        given.setdefault("model_resolution", given.pop("resolution"))
    cfg.update(given)
    if cfg["dataset"] != "synthetic":
        raise ValueError(f"train.dataset {cfg['dataset']!r}: only 'synthetic' is implemented")
    return cfg


def poly_lr(base_lr: float, iteration: int, total: int, power: float = 0.9) -> float:
    return base_lr * (1.0 - iteration / total) ** power


def make_optimizer(model: torch.nn.Module, lr: float, weight_decay: float) -> torch.optim.AdamW:
    """AdamW, without decay on norm weights and biases (decaying them only hurts)."""
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (no_decay if p.ndim <= 1 else decay).append(p)
    groups = [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=lr)


@torch.inference_mode()
def evaluate(
    model: MetaRS,
    pool: Sequence[Sample],
    normalization: Normalization,
    device: torch.device,
) -> dict[str, np.ndarray]:
    """Confusion matrix of each modality condition over whole validation scenes."""
    was_training = model.training
    model.eval()
    n = model.config.num_classes
    cms = {c: np.zeros((n, n), dtype=np.int64) for c in CONDITIONS}
    for sample in pool:
        sar = torch.from_numpy(normalization.apply(sample["sar"], "sar"))[None].to(device)
        opt = torch.from_numpy(normalization.apply(sample["optical"], "optical"))[None].to(device)
        out = model(sar, opt, heads=tuple(CONDITIONS.values()), features=False)
        for condition, head in CONDITIONS.items():
            pred = out[head].argmax(dim=1)[0].cpu().numpy()
            cms[condition] += confusion_matrix(sample["label"], pred, n)
    model.train(was_training)
    return cms


def _fmt_eta(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    m, s = divmod(int(round(seconds)), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def _resume_state(
    path: Path, model_cfg: MetaRSConfig, cfg: dict[str, Any], log: Callable[[str], None]
) -> dict | None:
    """The checkpoint to continue from, or None when there is none or it does not match."""
    if not path.exists():
        return None
    try:
        ckpt = load_checkpoint(path)
    except ModelError as err:
        log(f"cannot resume ({err}); training from scratch")
        return None
    training = ckpt.get("training") or {}
    if ckpt["model_config"] != model_cfg.to_dict():
        log(f"{path}: different architecture, training from scratch")
        return None
    old = training.get("train_config", {})
    keys = (set(old) | set(cfg)) - RESUMABLE_KEYS
    changed = sorted(k for k in keys if old.get(k) != cfg.get(k))
    if changed:
        log(f"{path}: trained with other settings ({', '.join(changed)}), training from scratch")
        return None
    return ckpt


def train_model(
    model_cfg: Mapping[str, Any],
    train_cfg: Mapping[str, Any],
    out_checkpoint: str | os.PathLike,
    out_metrics: str | os.PathLike,
    threads: int = 2,
    log: Callable[[str], None] = print,
    *,
    device: str = "auto",
) -> dict[str, Any]:
    """Train (or resume training) MetaRS on synthetic scenes; write checkpoint and metrics.

    `model_cfg` may be the workflow's whole `model:` section (inference keys are ignored).
    Returns the metrics that are written to `out_metrics`.
    """
    torch.set_num_threads(max(1, int(threads)))
    out_checkpoint, out_metrics = Path(out_checkpoint), Path(out_metrics)
    cfg = training_config(train_cfg)
    mcfg = MetaRSConfig.from_dict(dict(model_cfg), ignore_unknown=True)
    dev = resolve_device(device)
    total = int(cfg["iterations"])
    seed = int(cfg["seed"])

    t0 = time.perf_counter()
    grid = (cfg["scene_size_m"], cfg["native_resolution"], cfg["model_resolution"])
    pool = make_synthetic_pool(cfg["scenes"], *grid, seed)
    val_pool = make_validation_pool(cfg["val_scenes"], *grid, seed)
    norm = Normalization.from_pool(pool)
    h, w = pool[0]["label"].shape
    log(
        f"data: {len(pool)} training and {len(val_pool)} validation samples of {h}x{w} px "
        f"at {cfg['model_resolution']} m, built in {time.perf_counter() - t0:.1f} s"
    )

    torch.manual_seed(seed)
    model = MetaRS(mcfg).to(dev)
    optimizer = make_optimizer(model, cfg["lr"], cfg["weight_decay"])
    start, seconds = 0, 0.0
    ckpt = _resume_state(out_checkpoint, mcfg, cfg, log)
    if ckpt is not None:
        training = ckpt["training"]
        model.load_state_dict(ckpt["state_dict"])
        if training.get("optimizer") is not None:
            optimizer.load_state_dict(training["optimizer"])
        else:
            log("the checkpoint holds no optimizer state (a finished run): fresh AdamW moments")
        if "torch_rng" in training:
            torch.set_rng_state(training["torch_rng"])
        start, seconds = int(training["iteration"]), float(training.get("seconds", 0.0))
        norm = Normalization.from_dict(ckpt["normalization"])
        log(f"resuming from {out_checkpoint} at iteration {start}")

    n_params = sum(p.numel() for p in model.parameters())
    log(
        f"model: {mcfg.backbone} width {mcfg.width}, {n_params / 1e6:.2f} M parameters; "
        f"{total} iterations of batch {cfg['batch_size']} crop {cfg['crop']} on {dev} "
        f"with {torch.get_num_threads()} threads"
    )
    crops = SyntheticCrops(pool, cfg["crop"], norm, total * cfg["batch_size"], seed)

    def save(iteration: int, elapsed: float) -> None:
        # The optimizer state (twice the weights) only matters to resume an unfinished run.
        training = {
            "iteration": iteration,
            "total_iterations": total,
            "optimizer": optimizer.state_dict() if iteration < total else None,
            "torch_rng": torch.get_rng_state(),
            "seconds": elapsed,
            "train_config": cfg,
        }
        save_checkpoint(out_checkpoint, model, norm, training=training)

    model.train()
    t_start = time.perf_counter()
    for it in range(start, total):
        lr = poly_lr(cfg["lr"], it, total, cfg["poly_power"])
        for group in optimizer.param_groups:
            group["lr"] = lr
        batch = {
            k: v.to(dev) for k, v in crops.batch(it * cfg["batch_size"], cfg["batch_size"]).items()
        }
        out = model(batch["sar"], batch["optical"])
        losses = metars_losses(out, batch["label"], align_weight=cfg["align_weight"])
        optimizer.zero_grad(set_to_none=True)
        losses["total"].backward()
        optimizer.step()

        done = it + 1
        elapsed = time.perf_counter() - t_start
        if done % cfg["log_every"] == 0 or done == total or done == start + 1:
            rate = (done - start) / elapsed if elapsed > 0 else float("nan")
            terms = " ".join(f"{k} {v.item():.3f}" for k, v in losses.items())
            log(
                f"iter {done}/{total} {terms} lr {lr:.2e} {rate:.2f} it/s "
                f"ETA {_fmt_eta((total - done) / rate if rate > 0 else math.inf)}"
            )
        if done % cfg["save_every"] == 0 or done == total:
            save(done, seconds + elapsed)
    train_seconds = seconds + (time.perf_counter() - t_start)
    if start >= total:
        log(f"{out_checkpoint} already holds {start} iterations; evaluating only")

    t_eval = time.perf_counter()
    cms = evaluate(model, val_pool, norm, dev)
    conditions = {
        cond: {"head": head, **summarize(cms[cond], CLASS_NAMES)}
        for cond, head in CONDITIONS.items()
    }
    metrics = {
        "iterations": max(start, total),
        "seconds": round(train_seconds, 2),
        "iterations_per_second": round((total - start) / max(train_seconds - seconds, 1e-9), 3)
        if total > start
        else None,
        "conditions": conditions,
        "model_config": mcfg.to_dict(),
        "train_config": cfg,
        "normalization": norm.to_dict(),
    }
    write_atomic(out_metrics, lambda tmp: tmp.write_text(json.dumps(metrics, indent=2) + "\n"))
    for cond, m in conditions.items():
        water = m["iou"].get("water")
        log(
            f"validation {cond:13s} mIoU {m['miou']}  water IoU {water}  "
            f"(evaluated in {time.perf_counter() - t_eval:.1f} s)"
        )
    return metrics

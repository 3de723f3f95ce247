"""Training MetaRS (and the baselines) on synthetic scenes or EarthMiss: resumable,
deterministic, and talkative.

The run is a pure function of its configuration: the model is initialised from the
seed, every batch is drawn from a generator seeded by (seed, item), and the MMR masks
are computed from a fixed calibration set, so a run killed and resumed from its last
periodic save ends with the same model as an uninterrupted one. Periodic saves go to
`<name>.resume.pt` beside the output, not to the output itself: Snakemake deletes a
job's declared outputs before it runs the job again, and the resume file must survive
that. The final checkpoint is written atomically to the output.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from metaflood.core.classes import CLASS_NAMES
from metaflood.core.errors import ConfigError, ModelError
from metaflood.core.metrics import confusion_matrix, summarize
from metaflood.core.settings import authors_input_scales
from metaflood.demo.materials import SAR_BANDS as SIMULATED_SAR
from metaflood.model.baselines import ARCHITECTURES, build_network, drop_modalities
from metaflood.model.checkpoint import (
    load_checkpoint,
    resolve_device,
    save_checkpoint,
    write_atomic,
)
from metaflood.model.encoding import InputEncoding
from metaflood.model.losses import metars_losses
from metaflood.model.metars import MetaRSConfig
from metaflood.model.mmr import calibrate
from metaflood.model.normalization import NORMALIZATION_MODES, Normalization, network_input
from metaflood.model.pretrained import load_imagenet_weights
from metaflood.training import earthmiss
from metaflood.training.data import (
    Sample,
    SyntheticCrops,
    make_held_out_pool,
    make_synthetic_pool,
)
from metaflood.training.pools import RESOLUTION as REAL_RESOLUTION
from metaflood.training.pools import training_samples

TRAIN_DEFAULTS: dict[str, Any] = {
    "dataset": "synthetic",
    "architecture": "metars",
    "iterations": 300,
    "batch_size": 8,
    "crop": 128,
    "lr": 3e-3,
    "weight_decay": 0.05,
    "align_weight": 0.1,
    "seed": 0,
    "scenes": 16,
    "val_scenes": 4,
    # Synthetic scenes: None = 256 model pixels a side, rendered at half the model's pixel.
    "scene_size_m": None,
    "native_resolution": None,
    "model_resolution": 2.0,
    "save_every": 50,
    "log_every": 10,
    "poly_power": 0.9,
    # MMR (DESIGN.md section 5): calibration after warm-up, then the masked penalty.
    "mmr": True,
    "mmr_warmup": 0.1,
    "mmr_clusters": 10,
    "mmr_calibration_images": 16,
    "mmr_weight": 1.0,
    "align_weight_mmr": 1.25,
    # Early-fusion baseline: zero one modality of a sample with probability 1/3 each.
    "modality_dropout": False,
    # EarthMiss (dataset: earthmiss).
    "earthmiss_root": None,
    "earthmiss_split": None,
    "val_images": 20,
    "norm_images": 64,
    # Real labelled sets mixed in ({layout, root, split}); share of the crops drawn from them.
    "real_sets": [],
    "real_share": 0.5,
    # dataset: the training set's statistics; scene, scene_moments: each scene's own.
    "normalization": "dataset",
}
# Keys that may change between a run and its resumption without changing the result.
RESUMABLE_KEYS = {"save_every", "log_every"}
# Validation condition -> the head that serves it, per architecture.
CONDITION_HEADS: dict[str, dict[str, str]] = {
    "metars": {"both": "joint", "sar_only": "sar", "optical_only": "optical"},
    "sar_only": {"both": "joint", "sar_only": "sar"},
    "early_fusion": {"both": "joint", "sar_only": "sar", "optical_only": "optical"},
}
CONDITIONS = CONDITION_HEADS["metars"]
# Heads trained, per architecture.
TRAIN_HEADS = {"metars": ("sar", "optical", "joint"), "sar_only": ("sar",)}
TRAIN_HEADS["early_fusion"] = ("joint",)
# Calibration crops come from their own stream of items, apart from the batches.
CALIBRATION_SEED_OFFSET = 7919


def training_config(train_cfg: Mapping[str, Any]) -> dict[str, Any]:
    """Defaults filled in; the workflow's `resolution` key is the model resolution."""
    cfg = dict(TRAIN_DEFAULTS)
    given = dict(train_cfg)
    if "resolution" in given:
        given.setdefault("model_resolution", given.pop("resolution"))
    unknown = sorted(set(given) - set(cfg))
    if unknown:
        raise ConfigError(f"train: unknown keys {unknown}")
    cfg.update(given)
    resolution = float(cfg["model_resolution"])
    if cfg["native_resolution"] is None:
        cfg["native_resolution"] = resolution / 2
    if cfg["scene_size_m"] is None:
        cfg["scene_size_m"] = 256 * resolution
    if cfg["normalization"] not in NORMALIZATION_MODES:
        raise ConfigError(
            f"train.normalization {cfg['normalization']!r}: one of {NORMALIZATION_MODES}"
        )
    if cfg["real_sets"] and abs(resolution - REAL_RESOLUTION) > 1e-6:
        raise ConfigError(
            f"train.real_sets: the real sets are {REAL_RESOLUTION:g} m products; train at "
            f"{REAL_RESOLUTION:g} m (train.resolution), not {resolution:g} m"
        )
    if cfg["dataset"] not in ("synthetic", "earthmiss"):
        raise ConfigError(f"train.dataset {cfg['dataset']!r}: expected synthetic or earthmiss")
    if cfg["dataset"] == "earthmiss" and not cfg["earthmiss_root"]:
        raise ConfigError("train.earthmiss_root: required when train.dataset is earthmiss")
    if cfg["architecture"] not in ARCHITECTURES:
        raise ConfigError(f"train.architecture {cfg['architecture']!r}: one of {ARCHITECTURES}")
    if not 0 <= float(cfg["mmr_warmup"]) < 1:
        raise ConfigError(f"train.mmr_warmup {cfg['mmr_warmup']}: a fraction in [0, 1)")
    return cfg


def resume_path(out_checkpoint: str | os.PathLike) -> Path:
    """Where periodic saves go: beside the output, not a declared output itself."""
    out = Path(out_checkpoint)
    return out.with_name(f"{out.stem}.resume.pt")


def mmr_start(cfg: Mapping[str, Any]) -> int | None:
    """The iteration at which MMR calibrates and switches on (None: MMR off)."""
    if not cfg["mmr"] or cfg["architecture"] != "metars":
        return None
    return max(1, int(round(float(cfg["mmr_warmup"]) * int(cfg["iterations"]))))


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


# --- data ------------------------------------------------------------------------------


@dataclass
class TrainingData:
    """Training samples (possibly read lazily), validation samples and their statistics.

    `weights` (one per training sample, None: uniform) mixes synthetic and real sets;
    `partial` says some samples carry water labels only, or lack a modality."""

    train: Sequence[Sample]
    validation: Sequence[Sample]
    normalization: Normalization
    encoding: InputEncoding
    sar_bands: list[str]
    optical_bands: list[str]
    description: str
    weights: list[float] | None = None
    partial: bool = False


def _with_sar_bands(pool: list[Sample], sar: Sequence[str]) -> list[Sample]:
    """Synthetic samples with the model's SAR bands, in its order (a VV-only model)."""
    missing = [b for b in sar if b not in SIMULATED_SAR]
    if missing:
        raise ConfigError(f"model SAR bands {missing}: the simulator renders {list(SIMULATED_SAR)}")
    if list(sar) == list(SIMULATED_SAR):
        return pool
    pick = [SIMULATED_SAR.index(b) for b in sar]
    return [{**s, "sar": s["sar"][pick]} for s in pool]


def prepare_data(cfg: Mapping[str, Any], model_cfg: MetaRSConfig) -> TrainingData:
    """The configured dataset; normalisation statistics come from its training part."""
    if cfg["dataset"] == "earthmiss":
        return _earthmiss_data(cfg)
    sar, optical = list(model_cfg.sar_bands), list(model_cfg.optical_bands)
    grid = (cfg["scene_size_m"], cfg["native_resolution"], cfg["model_resolution"])
    # The model trains on the bands its configuration names, picked by name.
    pool = _with_sar_bands(
        make_synthetic_pool(cfg["scenes"], *grid, cfg["seed"], optical_bands=optical), sar
    )
    val = _with_sar_bands(
        make_held_out_pool(
            "validation", cfg["val_scenes"], *grid, cfg["seed"], optical_bands=optical
        ),
        sar,
    )
    h, w = pool[0]["label"].shape
    description = (
        f"{len(pool)} synthetic training and {len(val)} validation samples of {h}x{w} px "
        f"at {cfg['model_resolution']} m"
    )
    weights = None
    if cfg["real_sets"]:
        real = [
            training_samples(s["root"], s["layout"], sar, optical, s.get("split", "train"))
            for s in cfg["real_sets"]
        ]
        share = float(cfg["real_share"])
        # Synthetic crops share (1 - share); each real set an equal part of `share`.
        weights = [(1 - share) / len(pool)] * len(pool)
        for samples in real:
            weights += [share / len(real) / len(samples)] * len(samples)
        description += (
            "; real: "
            + ", ".join(
                f"{len(samples)} {s['layout']} samples"
                for s, samples in zip(cfg["real_sets"], real, strict=True)
            )
            + f" ({share:.0%} of the crops)"
        )
        pool = pool + [sample for samples in real for sample in samples]
    return TrainingData(
        pool,
        val,
        Normalization.from_pool(pool, cfg["normalization"]),
        InputEncoding(),
        sar,
        optical,
        description,
        weights=weights,
        partial=bool(cfg["real_sets"]),
    )


def _earthmiss_data(cfg: Mapping[str, Any]) -> TrainingData:
    split = earthmiss.split_cities(cfg["earthmiss_split"])
    train = earthmiss.EarthMissImages(earthmiss.find_pairs(cfg["earthmiss_root"], split["train"]))
    val_pairs = earthmiss.find_pairs(cfg["earthmiss_root"], split["val"])
    val = earthmiss.EarthMissImages(val_pairs[: int(cfg["val_images"])])
    # Statistics from an evenly spread subset of the training images.
    n = min(len(train), int(cfg["norm_images"]))
    picks = np.linspace(0, len(train) - 1, n).round().astype(int)
    norm = Normalization.from_pool([train[int(i)] for i in picks])
    return TrainingData(
        train,
        val,
        norm,
        InputEncoding.earthmiss(**authors_input_scales()),
        list(earthmiss.SAR_BANDS),
        list(earthmiss.OPTICAL_BANDS),
        f"EarthMiss: {len(train)} training images ({', '.join(split['train'])}), "
        f"{len(val)} validation images; normalisation from {n} training images",
    )


# --- validation ------------------------------------------------------------------------


@torch.inference_mode()
def evaluate(
    model: torch.nn.Module,
    samples: Sequence[Sample],
    normalization: Normalization,
    device: torch.device,
    architecture: str = "metars",
) -> dict[str, np.ndarray]:
    """Confusion matrix of each modality condition the architecture serves."""
    was_training = model.training
    model.eval()
    n = model.config.num_classes
    conditions = CONDITION_HEADS[architecture]
    cms = {c: np.zeros((n, n), dtype=np.int64) for c in conditions}
    for sample in samples:
        norm = normalization.for_scene(sample["sar"], sample["optical"])
        sar = torch.from_numpy(network_input(norm, sample["sar"], "sar"))[None].to(device)
        opt = torch.from_numpy(network_input(norm, sample["optical"], "optical"))[None].to(device)
        out = model(sar, opt, heads=tuple(conditions.values()), features=False)
        for condition, head in conditions.items():
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


# --- resumption ------------------------------------------------------------------------


def _resume_state(
    paths: Sequence[Path],
    model_cfg: MetaRSConfig,
    cfg: dict[str, Any],
    log: Callable[[str], None],
) -> tuple[Path, dict] | None:
    """The first checkpoint of `paths` that this run can continue from, if any."""
    for path in paths:
        if not path.exists():
            continue
        try:
            ckpt = load_checkpoint(path)
        except ModelError as err:
            log(f"cannot resume ({err}); training from scratch")
            continue
        training = ckpt.get("training") or {}
        if ckpt["model_config"] != model_cfg.to_dict():
            log(f"{path}: different architecture, training from scratch")
            continue
        old = training.get("train_config", {})
        keys = (set(old) | set(cfg)) - RESUMABLE_KEYS
        changed = sorted(k for k in keys if old.get(k) != cfg.get(k))
        if changed:
            log(
                f"{path}: trained with other settings ({', '.join(changed)}), training from scratch"
            )
            continue
        return path, ckpt
    return None


# --- training --------------------------------------------------------------------------


def train_model(
    model_cfg: Mapping[str, Any],
    train_cfg: Mapping[str, Any],
    out_checkpoint: str | os.PathLike,
    out_metrics: str | os.PathLike,
    threads: int = 2,
    log: Callable[[str], None] = print,
    *,
    device: str,
) -> dict[str, Any]:
    """Train (or resume training); write the checkpoint and the validation metrics.

    `model_cfg` may be the workflow's whole `model:` section (inference keys are
    ignored; `pretrained` names an ImageNet ResNet weights file to start from).
    Returns the metrics that are written to `out_metrics`.
    """
    torch.set_num_threads(max(1, int(threads)))
    out_checkpoint, out_metrics = Path(out_checkpoint), Path(out_metrics)
    resume_file = resume_path(out_checkpoint)
    cfg = training_config(train_cfg)
    arch = cfg["architecture"]
    dev = resolve_device(device)
    total, seed, batch_size = int(cfg["iterations"]), int(cfg["seed"]), int(cfg["batch_size"])

    t0 = time.perf_counter()
    mcfg = MetaRSConfig.from_dict(dict(model_cfg), ignore_unknown=True)
    data = prepare_data(cfg, mcfg)
    mcfg.sar_bands, mcfg.optical_bands = data.sar_bands, data.optical_bands
    norm = data.normalization
    log(f"data: {data.description}, ready in {time.perf_counter() - t0:.1f} s")

    torch.manual_seed(seed)
    model = build_network(arch, mcfg)
    if model_cfg.get("pretrained"):
        for line in load_imagenet_weights(model, model_cfg["pretrained"]):
            log(line)
    model = model.to(dev)
    optimizer = make_optimizer(model, cfg["lr"], cfg["weight_decay"])
    start, seconds = 0, 0.0
    masks: list[torch.Tensor] | None = None
    found = _resume_state([resume_file, out_checkpoint], mcfg, cfg, log)
    if found is not None:
        path, ckpt = found
        training = ckpt["training"]
        model.load_state_dict(ckpt["state_dict"])
        if training.get("optimizer") is not None:
            optimizer.load_state_dict(training["optimizer"])
        elif int(training["iteration"]) < total:
            log("the checkpoint holds no optimizer state: fresh AdamW moments")
        if "torch_rng" in training:
            torch.set_rng_state(training["torch_rng"])
        if training.get("mmr_masks") is not None:
            masks = [m.bool() for m in training["mmr_masks"]]
        start, seconds = int(training["iteration"]), float(training.get("seconds", 0.0))
        norm = Normalization.from_dict(ckpt["normalization"])
        log(f"resuming from {path} at iteration {start}")

    n_params = sum(p.numel() for p in model.parameters())
    log(
        f"model: {arch} {mcfg.backbone} width {mcfg.width}, {n_params / 1e6:.2f} M parameters; "
        f"{total} iterations of batch {batch_size} crop {cfg['crop']} on {dev} "
        f"with {torch.get_num_threads()} threads"
    )
    crops = SyntheticCrops(
        data.train,
        cfg["crop"],
        norm,
        total * batch_size,
        seed,
        weights=data.weights,
        partial=data.partial,
    )
    first_mmr = mmr_start(cfg)
    if first_mmr is not None:
        log(f"MMR: calibration at iteration {first_mmr} of {total}, then the penalty")

    def save(path: Path, iteration: int, elapsed: float) -> None:
        # The optimizer state (twice the weights) only matters to resume an unfinished run.
        training = {
            "iteration": iteration,
            "total_iterations": total,
            "optimizer": optimizer.state_dict() if iteration < total else None,
            "torch_rng": torch.get_rng_state(),
            "seconds": elapsed,
            "train_config": cfg,
            "mmr_masks": masks,
        }
        save_checkpoint(
            path, model, norm, training=training, encoding=data.encoding, architecture=arch
        )

    def calibration_batches():
        n = int(cfg["mmr_calibration_images"])
        # Calibrated on samples with both modalities (synthetic ones, when sets are mixed).
        both = None
        if data.partial:
            both = [
                float(not np.isnan(s["optical"]).all() and not np.isnan(s["sar"]).all())
                for s in data.train
            ]
        calib = SyntheticCrops(
            data.train, cfg["crop"], norm, n, seed + CALIBRATION_SEED_OFFSET, weights=both
        )
        for b in range(0, n, batch_size):
            batch = calib.batch(b, min(batch_size, n - b))
            yield batch["sar"].to(dev), batch["optical"].to(dev)

    dropout_rng = torch.Generator().manual_seed(seed)
    heads = TRAIN_HEADS[arch]
    model.train()
    t_start = time.perf_counter()
    for it in range(start, total):
        if first_mmr is not None and masks is None and it >= first_mmr:
            t_cal = time.perf_counter()
            masks = calibrate(model.meta_encoder, calibration_batches(), cfg["mmr_clusters"])
            share = ", ".join(f"{int(m.sum())}/{m.shape[0] * (m.shape[0] - 1) // 2}" for m in masks)
            log(
                f"MMR calibrated at iteration {it} in {time.perf_counter() - t_cal:.1f} s: "
                f"sensitive covariance entries per layer {share}"
            )
        lr = poly_lr(cfg["lr"], it, total, cfg["poly_power"])
        for group in optimizer.param_groups:
            group["lr"] = lr
        batch = {k: v.to(dev) for k, v in crops.batch(it * batch_size, batch_size).items()}
        sar, optical = batch["sar"], batch["optical"]
        if cfg["modality_dropout"]:
            dropout_rng.manual_seed(seed * 1_000_003 + it)
            sar, optical = drop_modalities(sar, optical, dropout_rng)
        out = model(sar, optical, heads=heads, features=arch == "metars")
        losses = metars_losses(
            out,
            batch["label"],
            align_weight=cfg["align_weight_mmr"] if masks is not None else cfg["align_weight"],
            mmr_masks=masks,
            mmr_weight=cfg["mmr_weight"],
            water=batch.get("water"),
            present=batch.get("present"),
        )
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
        if done % cfg["save_every"] == 0 and done < total:
            save(resume_file, done, seconds + elapsed)
    train_seconds = seconds + (time.perf_counter() - t_start)
    if start >= total:
        log(f"{out_checkpoint} already holds {start} iterations; evaluating only")
    save(out_checkpoint, max(start, total), train_seconds)
    resume_file.unlink(missing_ok=True)

    t_eval = time.perf_counter()
    cms = evaluate(model, data.validation, norm, dev, arch)
    conditions = {
        cond: {"head": head, **summarize(cms[cond], CLASS_NAMES)}
        for cond, head in CONDITION_HEADS[arch].items()
    }
    metrics = {
        "architecture": arch,
        "iterations": max(start, total),
        "seconds": round(train_seconds, 2),
        "iterations_per_second": round((total - start) / max(train_seconds - seconds, 1e-9), 3)
        if total > start
        else None,
        "conditions": conditions,
        "model_config": mcfg.to_dict(),
        "train_config": cfg,
        "normalization": norm.to_dict(),
        "input_encoding": data.encoding.to_dict(),
    }
    write_atomic(out_metrics, lambda tmp: tmp.write_text(json.dumps(metrics, indent=2) + "\n"))
    for cond, m in conditions.items():
        water = m["iou"].get("water")
        log(
            f"validation {cond:13s} mIoU {m['miou']}  water IoU {water}  "
            f"(evaluated in {time.perf_counter() - t_eval:.1f} s)"
        )
    return metrics

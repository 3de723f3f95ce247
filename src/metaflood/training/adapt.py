"""Event-adaptive fine-tuning: teach the SAR head what this place looks like to the radar.

Before an event is mapped, the model is fine-tuned briefly on the event's own pixels
where the optical image is clear, in either period: a clear pre-event pair shows the SAR
head this place's backscatter before the post-event SAR is mapped under cloud. The labels
are pseudo-labels, kept only where three independent answers agree: the optical head
(the model seeing the optical image), the optical water index and SAR water (each above
or below its automatic threshold). Water or not is all they say; the SAR head learns
them with the partial water loss, and the joint head's confident classes (where they
agree with the water answer) keep its other classes in place.

Only the SAR-specific encoder and the SAR decoder change: the meta-modal encoder, the
projection and the joint and optical heads are shared with the routes that see the
optical image, and stay as they were. An event without clear optical pixels (or too
few agreeing ones) is not adapted, and the summary says so. Nor is one whose post-event
optical image gives too few (`model.adapt.min_post_pixels`): on real data a clear
pre-event pair alone taught the SAR head that the place is dry, and it then missed the
flood; beside the post-event pixels it helped (docs/realdata.md).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from rasterio.windows import Window

from metaflood.core.classes import IGNORE_INDEX, WATER
from metaflood.core.raster import atomic_path, band_index, open_checked, read_window
from metaflood.core.settings import AdaptSettings, ChangeSettings
from metaflood.flood.sar_change import SarChangeSettings
from metaflood.landcover.reading import scene_bands
from metaflood.model.checkpoint import (
    InferenceModel,
    build_model,
    load_checkpoint,
    resolve_device,
    save_checkpoint,
)
from metaflood.model.encoding import InputEncoding
from metaflood.model.losses import segmentation_ce, water_bce
from metaflood.model.normalization import Normalization, network_input
from metaflood.training.data import augment
from metaflood.water.evidence import (
    SAR_INDEX_BANDS,
    Pools,
    choose_index,
    filtered_sar,
    index_margin,
    normalised_difference,
    pool_block,
    sar_margin,
    thresholds,
)

SAR_BIT, OPTICAL_BIT, OUTSIDE = 1, 2, 255
# The joint head's classes are kept as labels where it is at least this sure.
CONFIDENT = 0.8
TRAINED = ("sar_encoder", "sar_decoder")


@dataclass
class Labelled:
    """One window of an event period: the SAR head's input (standardised by the period's
    own statistics, 0 where SAR is invalid) and its pseudo-labels."""

    sar: np.ndarray
    water: np.ndarray  # 0/1 pseudo water label, 255 elsewhere
    label: np.ndarray  # confident joint-head classes agreeing with `water`, 255 elsewhere


def candidate_windows(valid: np.ndarray, crop: int) -> list[Window]:
    """Windows of `crop` px on a half-overlapping lattice where at least a quarter is clear
    in both modalities (where pseudo-labels can come from)."""
    both = (valid != OUTSIDE) & ((valid & SAR_BIT) > 0) & ((valid & OPTICAL_BIT) > 0)
    rows, cols = valid.shape
    step = max(1, crop // 2)
    found = []
    for r in range(0, max(rows - crop, 0) + 1, step):
        for c in range(0, max(cols - crop, 0) + 1, step):
            if both[r : r + crop, c : c + crop].mean() >= 0.25:
                found.append(Window(c, r, min(crop, cols - c), min(crop, rows - r)))
    return found


@torch.inference_mode()
def _head_probabilities(
    model: torch.nn.Module, sar: np.ndarray, optical: np.ndarray
) -> dict[str, np.ndarray]:
    model.eval()
    out = model(
        torch.from_numpy(sar)[None], torch.from_numpy(optical)[None], heads=("optical", "joint")
    )
    return {h: torch.softmax(out[h], dim=1)[0].numpy() for h in ("optical", "joint")}


def pseudo_labels(
    optical_water: np.ndarray,
    joint: np.ndarray,
    sar_margin_db: np.ndarray,
    index_margin_: np.ndarray,
    usable: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Water (1) or not (0) where the optical head, the index and SAR water all agree;
    and the joint head's class where it is confident and agrees with that answer."""
    finite = usable & np.isfinite(sar_margin_db) & np.isfinite(index_margin_)
    wet = finite & (optical_water >= 0.5) & (index_margin_ > 0) & (sar_margin_db < 0)
    dry = finite & (optical_water < 0.5) & (index_margin_ <= 0) & (sar_margin_db >= 0)
    water = np.full(usable.shape, IGNORE_INDEX, np.uint8)
    water[wet] = 1
    water[dry] = 0
    classes = joint.argmax(axis=0)
    sure = joint.max(axis=0) >= CONFIDENT
    agrees = (wet & (classes == WATER)) | (dry & (classes != WATER))
    label = np.where(sure & agrees, classes, IGNORE_INDEX).astype(np.uint8)
    return water, label


def adapt_checkpoint(
    checkpoint: Path,
    stacks: Mapping[str, Path],
    valids: Mapping[str, Path],
    out: Path,
    out_summary: Path,
    *,
    settings: AdaptSettings,
    change: ChangeSettings,
    threads: int = 1,
    device: str,
    log: Callable[[str], None] = print,
) -> dict:
    """Fine-tune `checkpoint` on the event's periods (`stacks` and `valids` by period name);
    write the adapted checkpoint (the original's weights where adaptation is off, or finds
    too little to learn from in the periods `settings.periods` lets teach)."""
    torch.set_num_threads(max(1, int(threads)))
    ckpt = load_checkpoint(checkpoint)
    model = build_model(ckpt, checkpoint)
    loaded = InferenceModel(
        model=model.eval(),
        config=model.config,
        normalization=Normalization.from_dict(ckpt["normalization"]),
        class_names=list(ckpt["class_names"]),
        encoding=InputEncoding.from_dict(ckpt.get("input_encoding")),
    )
    summary: dict = {"settings": asdict(settings), "checkpoint": Path(checkpoint).name}
    teaching = [p for p in stacks if p in settings.periods]
    labelled: dict[str, list[Labelled]] = {}
    if settings.enabled:
        labelled = _pseudo_labelled(
            loaded,
            {p: stacks[p] for p in teaching},
            {p: valids[p] for p in teaching},
            settings,
            change,
            summary,
        )
    by_period = {
        p: sum(int((w.water != IGNORE_INDEX).sum()) for w in labelled.get(p, [])) for p in teaching
    }
    count = sum(by_period.values())
    summary["pseudo_labelled_pixels"] = count
    summary["pseudo_labelled_by_period"] = by_period
    shortfall = _shortfall(by_period, settings)
    summary["adapted"] = settings.enabled and shortfall is None
    if not settings.enabled:
        summary["reason"] = "model.adapt.enabled is false"
    elif shortfall is not None:
        summary["reason"] = shortfall
    else:
        windows = [w for period in labelled.values() for w in period]
        _fine_tune(model, windows, settings, resolve_device(device), log)
        taught = ", ".join(f"{n} {p}" for p, n in by_period.items())
        summary["reason"] = (
            f"fine-tuned on {count} agreeing pixels ({taught}) of {len(windows)} windows"
        )
    log(summary["reason"])
    training = dict(ckpt.get("training") or {})
    training["adaptation"] = {k: v for k, v in summary.items() if k != "thresholds"}
    save_checkpoint(
        out,
        model,
        loaded.normalization,
        training=training,
        class_names=ckpt["class_names"],
        encoding=loaded.encoding,
        source=ckpt.get("source"),
    )
    with atomic_path(out_summary) as tmp:
        tmp.write_text(json.dumps(summary, indent=2))
    return summary


def _shortfall(by_period: dict[str, int], settings: AdaptSettings) -> str | None:
    """Why the agreeing pixels are too few to adapt on, or None. The post-event period
    must give its own share: a clear pre-event pair alone taught the SAR head that the
    place is dry, and it then missed the flood (docs/realdata.md)."""
    count, post = sum(by_period.values()), by_period.get("post", 0)
    agree = "pixels where the optical head, the water index and SAR water agree"
    if count < settings.min_pixels:
        periods = " or ".join(by_period) or "no period model.adapt.periods names"
        return (
            f"{count} {agree} (clear optical in {periods}); "
            f"at least {settings.min_pixels} are needed"
        )
    if post < settings.min_post_pixels:
        return (
            f"{post} {agree} after the event; at least {settings.min_post_pixels} are needed "
            "(model.adapt.min_post_pixels: the pre-event pair alone would teach the SAR head "
            "that the place is dry)"
        )
    return None


def _pseudo_labelled(
    loaded: InferenceModel,
    stacks: Mapping[str, Path],
    valids: Mapping[str, Path],
    settings: AdaptSettings,
    change: ChangeSettings,
    summary: dict,
) -> dict[str, list[Labelled]]:
    """Each period's windows with clear optical, pseudo-labelled, in the SAR head's input
    units: the period's own statistics (scene normalisation) or the training set's."""
    labelled: dict[str, list[Labelled]] = {}
    summary["thresholds"] = {}
    for period, stack in stacks.items():
        valid = valids[period]
        with open_checked(stack) as src, open_checked(valid) as vsrc:
            names = [d or "" for d in src.descriptions]
            index = choose_index(names)
            model_bands = [*loaded.sar_bands, *loaded.optical_bands]
            if index is None or not set(model_bands) <= set(names):
                continue
            scene = loaded.normalization.for_scene(**scene_bands(src, vsrc, loaded))
            windows = candidate_windows(read_window(vsrc, None, 1), settings.crop)
            parts = [_read_window(src, vsrc, w, loaded, index, names) for w in windows]
            transform = src.transform
        if not parts:
            continue
        sar_settings = SarChangeSettings.for_grid(change, transform)
        pools = Pools.empty((*parts[0]["sar_db"], "index"))
        for part in parts:
            part["sar_db"] = filtered_sar(part["sar_db"], sar_settings.window_px)
            pool_block(
                pools,
                part["sar_db"],
                part["sar_ok"],
                part["index"],
                part["optical_ok"],
                sar_settings,
            )
        found = thresholds(pools, sar_settings)
        summary["thresholds"][Path(stack).name] = {k: v.value for k, v in found.items()}
        for part in parts:
            sar_in = network_input(scene, np.where(part["sar_ok"], part["sar"], np.nan), "sar")
            opt_in = network_input(scene, part["optical"], "optical")
            heads = _head_probabilities(loaded.model, sar_in, opt_in)
            water, label = pseudo_labels(
                heads["optical"][WATER],
                heads["joint"],
                sar_margin(part["sar_db"], found, part["sar_ok"]),
                index_margin(part["index"], found, part["optical_ok"]),
                part["sar_ok"] & part["optical_ok"],
            )
            labelled.setdefault(period, []).append(Labelled(sar_in, water, label))
    return labelled


def _read_window(src, vsrc, window: Window, loaded: InferenceModel, index, names) -> dict:
    """One window's availability, model bands (network units), SAR dB and water index."""
    valid = read_window(vsrc, window, 1)
    inside = valid != OUTSIDE

    def bands(wanted: Sequence[str]) -> np.ndarray:
        return read_window(src, window, [band_index(src, b) for b in wanted]).astype(np.float32)

    wet, dry = bands(index.bands)
    polarisations = [b for b in SAR_INDEX_BANDS if b in names]  # as the water stage reads them
    return {
        "sar_ok": inside & ((valid & SAR_BIT) > 0),
        "optical_ok": inside & ((valid & OPTICAL_BIT) > 0),
        "sar": loaded.encoding.apply(bands(loaded.sar_bands), "sar"),
        "optical": loaded.encoding.apply(bands(loaded.optical_bands), "optical"),
        "sar_db": dict(zip(polarisations, bands(polarisations), strict=True)),
        "index": normalised_difference(wet, dry),
    }


def _fine_tune(
    model: torch.nn.Module,
    labelled: list[Labelled],
    settings: AdaptSettings,
    device: torch.device,
    log: Callable[[str], None],
) -> None:
    """The SAR encoder and decoder trained on SAR alone against the pseudo-labels; every
    other part frozen, its batch norms included."""
    for name, parameter in model.named_parameters():
        parameter.requires_grad = name.split(".")[0] in TRAINED
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=settings.lr, weight_decay=0.0
    )
    model.to(device).eval()
    for part in TRAINED:
        getattr(model, part).train()
    samples = [{"sar": w.sar, "label": w.label, "water": w.water} for w in labelled]
    crop = min([settings.crop, *(min(w.water.shape) for w in labelled)])
    n_optical = len(model.config.optical_bands)
    rng = np.random.default_rng(settings.seed)
    for it in range(settings.iterations):
        items = [
            augment(samples[i], rng, crop)
            for i in rng.integers(len(samples), size=settings.batch_size)
        ]
        sar = torch.from_numpy(np.stack([s["sar"] for s in items])).to(device)
        optical = torch.zeros((len(items), n_optical, crop, crop), device=device)
        logits = model(sar, optical, heads=("sar",))["sar"]
        label = torch.from_numpy(np.stack([s["label"] for s in items]).astype(np.int64))
        water = torch.from_numpy(np.stack([s["water"] for s in items]).astype(np.int64))
        loss = segmentation_ce(logits, label.to(device)) + water_bce(logits, water.to(device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if (it + 1) % 10 == 0 or it + 1 == settings.iterations:
            log(f"adapt {it + 1}/{settings.iterations} loss {loss.item():.3f}")
    for parameter in model.parameters():
        parameter.requires_grad = True
    model.cpu().eval()

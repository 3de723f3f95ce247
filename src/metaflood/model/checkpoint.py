"""MetaRS checkpoints: one self-describing file, written atomically, read without pickle code.

A checkpoint carries everything inference needs besides the weights (architecture,
class names, band names, normalisation), so a model cannot silently be applied to data
it was not trained for; and the training state, so an interrupted training resumes.
Loading uses `weights_only=True`: a checkpoint from elsewhere cannot execute code.

A damaged file must not map quietly with damaged weights (PyTorch's reader checks
neither the zip's CRC-32s nor anything else), so a load checks the CRCs, and a content
hash of everything the checkpoint holds, tensors included, written at save. A
checkpoint from before the hash was written loads with a warning, its CRCs checked.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import logging
import os
import pickle
import re
import zipfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from metaflood.core.classes import CLASS_NAMES, NUM_CLASSES
from metaflood.core.errors import ModelError
from metaflood.core.raster import atomic_path
from metaflood.model.baselines import build_network
from metaflood.model.encoding import InputEncoding
from metaflood.model.fold import fold_batch_norms
from metaflood.model.metars import MetaRS, MetaRSConfig
from metaflood.model.normalization import Normalization

log = logging.getLogger(__name__)

FORMAT = "metaflood-metars/1"
REQUIRED_KEYS = ("format", "model_config", "state_dict", "class_names", "normalization")
# The payload's own key holding the sha256 of everything else in it (content_sha256).
HASH_KEY = "content_sha256"


def save_checkpoint(
    path: str | os.PathLike,
    model: torch.nn.Module,
    normalization: Normalization,
    *,
    training: dict[str, Any] | None = None,
    class_names: Sequence[str] = CLASS_NAMES,
    encoding: InputEncoding | None = None,
    architecture: str = "metars",
    source: dict[str, Any] | None = None,
) -> Path:
    """Write the checkpoint; a crash mid-write leaves any previous file intact.

    `encoding` says how workflow bands (dB, reflectance) become the network's inputs
    (identity unless the network was trained on EarthMiss-style 8-bit images);
    `source` records where converted weights came from.
    """
    cfg = model.config
    if len(class_names) != cfg.num_classes:
        raise ModelError(f"{len(class_names)} class names for {cfg.num_classes} classes")
    payload = {
        "format": FORMAT,
        "model_config": cfg.to_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "class_names": list(class_names),
        "sar_bands": list(cfg.sar_bands),
        "optical_bands": list(cfg.optical_bands),
        "normalization": normalization.to_dict(),
        "input_encoding": (encoding or InputEncoding()).to_dict(),
        "architecture": architecture,
        "training": on_cpu(training or {}),
    }
    if source:
        payload["source"] = source
    return save_payload(path, payload)


def save_payload(path: str | os.PathLike, payload: dict[str, Any]) -> Path:
    """Write a checkpoint's contents, with the hash of its content and zip CRCs."""
    payload = {k: v for k, v in payload.items() if k != HASH_KEY}
    payload[HASH_KEY] = content_sha256(payload)
    crc32 = torch.serialization.get_crc32_options()
    torch.serialization.set_crc32_options(True)  # the default: never write a file without
    try:
        return write_atomic(path, lambda tmp: torch.save(payload, tmp))
    finally:
        torch.serialization.set_crc32_options(crc32)


def content_sha256(tree: Any) -> str:
    """sha256 of a checkpoint's contents: every tensor's dtype, shape and bytes and every
    other value, walked in a fixed order (dict keys sorted), so the same contents give
    the same hash after a save and a load."""
    digest = hashlib.sha256()
    _feed(digest, tree)
    return digest.hexdigest()


def _feed(digest: Any, node: Any) -> None:
    if isinstance(node, torch.Tensor):
        tensor = node.detach().cpu().contiguous()
        digest.update(f"tensor {tensor.dtype} {tuple(tensor.shape)}\n".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy())
    elif isinstance(node, dict):
        digest.update(f"dict {len(node)}\n".encode())
        for key in sorted(node, key=repr):
            digest.update(f"{key!r}\n".encode())
            _feed(digest, node[key])
    elif isinstance(node, (list, tuple)):
        digest.update(f"{type(node).__name__} {len(node)}\n".encode())
        for value in node:
            _feed(digest, value)
    else:
        digest.update(f"{type(node).__name__} {node!r}\n".encode())


def read_torch_file(
    path: str | os.PathLike,
    what: str,
    *,
    zip_required: bool = True,
    remedy: str = "restore it from a copy, or retrain it or convert it again",
) -> Any:
    """`torch.load(path, weights_only=True)`, with a damaged or foreign file refused by
    saying what it is not. PyTorch's own refusals suggest loading with pickle code
    allowed, which a file from elsewhere must never be; they are not passed on.

    A zip archive (what torch.save writes) has its CRC-32s checked first. `zip_required`
    False accepts PyTorch's legacy format too (weights published before PyTorch 1.6)."""
    path = Path(path)
    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as archive:
                damaged = archive.testzip()
        except (zipfile.BadZipFile, OSError, EOFError) as err:
            raise ModelError(
                f"{path}: damaged: not a complete zip archive ({err}); {remedy}"
            ) from err
        if damaged is not None:
            raise ModelError(
                f"{path}: damaged: {damaged} in it does not match the CRC-32 written with it "
                f"(the file changed after it was saved); {remedy}"
            )
    elif zip_required:
        raise ModelError(
            f"{path}: not {what}: not a PyTorch zip archive (torch.save writes one; a file "
            "cut short is not one either)"
        )
    # Refusals are raised `from None`: PyTorch's message advises loading the file with
    # pickle code allowed, and a chained traceback would print it.
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        found = re.search(r"GLOBAL ([\w.]+)", str(err))
        if found:
            raise ModelError(
                f"{path}: not {what}: it holds a Python object ({found.group(1)}) where only "
                "tensors and plain values may be, and is refused (unpickling it could run code)"
            ) from None
        raise ModelError(
            f"{path}: not {what}: its contents are not what torch.save writes (tensors and "
            "plain values)"
        ) from None
    except Exception as err:  # torch raises many types for bytes that are not its format
        raise ModelError(
            f"{path}: not {what}: PyTorch cannot read it ({type(err).__name__})"
        ) from None


def on_cpu(tree: Any) -> Any:
    """A nested structure with every tensor on the CPU: a run trained on a GPU (its
    optimizer moments live there) writes a file that opens on a machine without one."""
    if isinstance(tree, torch.Tensor):
        return tree.detach().cpu()
    if isinstance(tree, dict):
        return {k: on_cpu(v) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(on_cpu(v) for v in tree)
    return tree


def write_atomic(path: str | os.PathLike, write: Callable[[Path], object]) -> Path:
    """Call `write(tmp)` on a temporary file beside `path`, then move it into place
    (`raster.atomic_path`: shareable permissions, a failed write for want of space
    named, what a killed writer left removed)."""
    with atomic_path(path) as tmp:
        write(tmp)
    return Path(path)


def load_checkpoint(path: str | os.PathLike) -> dict:
    """The checkpoint's contents on the CPU, checked for the expected format and against
    the hash of its content (one from before the hash was written: with a warning)."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: checkpoint not found")
    ckpt = read_torch_file(path, "a metaflood checkpoint")
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        found = ckpt.get("format") if isinstance(ckpt, dict) else type(ckpt).__name__
        raise ModelError(f"{path}: format {found!r}, expected {FORMAT!r}")
    missing = [k for k in REQUIRED_KEYS if k not in ckpt]
    if missing:
        raise ModelError(f"{path}: checkpoint lacks {missing}")
    stored = ckpt.pop(HASH_KEY, None)
    if stored is None:
        log.warning(
            "%s: the checkpoint carries no content hash (written by an earlier metaflood), "
            "so only its zip CRCs were checked; retrain it or convert it again to add one",
            path,
        )
    elif content_sha256(ckpt) != stored:
        raise ModelError(
            f"{path}: the checkpoint is damaged: its contents do not match the hash written "
            "with them (a tensor or a setting changed after it was saved); restore it from "
            "a copy, or retrain it or convert it again"
        )
    return ckpt


def check_band_counts(ckpt: dict, path: str | os.PathLike) -> None:
    """The bands a checkpoint names must be the bands its stem convolutions take."""
    cfg, state = ckpt["model_config"], ckpt["state_dict"]
    stems = {
        "sar": ("meta_encoder.conv1.weight", "sar_encoder.conv1.weight"),
        "optical": ("meta_encoder.optical_conv1.weight", "optical_encoder.conv1.weight"),
    }
    for modality, keys in stems.items():
        bands = list(cfg.get(f"{modality}_bands", []))
        for key in keys:
            if key in state and state[key].shape[1] != len(bands):
                raise ModelError(
                    f"{path}: the {modality} stem ({key}) takes {state[key].shape[1]} bands, "
                    f"but the checkpoint names {len(bands)} ({', '.join(bands)})"
                )


@contextmanager
def without_initialisation() -> Iterator[None]:
    """Make torch.nn.init's in-place initialisers do nothing while a model is built.

    On the meta device they still run PyTorch's reference implementations in Python,
    most of the time of building a network (docs/performance.md), for weights the
    checkpoint then replaces. Not thread-safe: a
    model built in another thread meanwhile would be left uninitialised.
    """
    init = torch.nn.init
    names = [n for n in dir(init) if n.endswith("_") and not n.startswith("_")]
    saved = {n: getattr(init, n) for n in names}
    for name in names:
        setattr(init, name, _leave_tensor)
    try:
        yield
    finally:
        for name, fn in saved.items():
            setattr(init, name, fn)


def _leave_tensor(tensor: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
    return tensor


def check_architecture(ckpt: dict, path: str | os.PathLike = "checkpoint") -> torch.nn.Module:
    """The network a loaded checkpoint describes, without weights (on the meta device:
    no memory, no time), once the stored weights' names and shapes are found to fit it.

    Cheap enough for the start-up checks, so a checkpoint of another metaflood version
    is refused before any job runs, not when inference reaches it."""
    check_band_counts(ckpt, path)
    with torch.device("meta"), without_initialisation():  # the weights replace it
        model = build_network(
            ckpt.get("architecture", "metars"), MetaRSConfig.from_dict(ckpt["model_config"])
        )
    expected, stored = model.state_dict(), ckpt["state_dict"]
    if set(expected) != set(stored):
        raise ModelError(
            f"{path}: weights do not fit the stored architecture "
            f"({_key_difference(set(expected) - set(stored), 'missing')}; "
            f"{_key_difference(set(stored) - set(expected), 'unexpected')}): "
            "it was written by another version of metaflood; retrain it or convert it again"
        )
    reshaped = [k for k, v in expected.items() if tuple(stored[k].shape) != tuple(v.shape)]
    if reshaped:
        first = reshaped[0]
        raise ModelError(
            f"{path}: weights do not fit the stored architecture ({len(reshaped)} of "
            f"another shape, e.g. {first}: {tuple(stored[first].shape)} where the model has "
            f"{tuple(expected[first].shape)}): it was written by another version of "
            "metaflood; retrain it or convert it again"
        )
    return model


def build_model(ckpt: dict, path: str | os.PathLike = "checkpoint") -> torch.nn.Module:
    """The network described by a loaded checkpoint, with its weights."""
    model = check_architecture(ckpt, path)
    try:
        model.load_state_dict(ckpt["state_dict"], strict=True, assign=True)
    except RuntimeError as err:
        raise ModelError(f"{path}: weights do not fit the stored architecture: {err}") from err
    return model


def _key_difference(keys: set[str], what: str, shown: int = 3) -> str:
    """A readable summary of a key mismatch (a real one lists hundreds of names)."""
    if not keys:
        return f"none {what}"
    first = ", ".join(sorted(keys)[:shown])
    return f"{len(keys)} {what}, e.g. {first}"


@dataclass
class InferenceModel:
    """A model ready for inference, with what is needed to prepare its inputs.

    `missing_optical` lists the optical bands the checkpoint's optical head takes that
    the data lacks: where it is not empty the optical modality is unusable for this model
    and every pixel is mapped as if optical were absent (SAR head)."""

    model: MetaRS
    config: MetaRSConfig
    normalization: Normalization
    class_names: list[str]
    encoding: InputEncoding = InputEncoding()
    missing_optical: list[str] = field(default_factory=list)

    def prepare(self, x: np.ndarray, modality: str) -> np.ndarray:
        """Workflow values (dB, reflectance) of one modality -> normalised network input."""
        return self.normalization.apply(self.encoding.apply(x, modality), modality)

    @property
    def sar_bands(self) -> list[str]:
        return list(self.config.sar_bands)

    @property
    def optical_bands(self) -> list[str]:
        return list(self.config.optical_bands)

    @property
    def optical_usable(self) -> bool:
        return not self.missing_optical


def check_compatible(
    ckpt: dict,
    path: str | os.PathLike,
    expected_classes: int = NUM_CLASSES,
    available_bands: Sequence[str] | None = None,
) -> None:
    """Refuse a checkpoint whose classes or SAR bands do not match the workflow's data
    (its optical bands may be missing: see `missing_optical_bands`)."""
    names = list(ckpt["class_names"])
    n = int(ckpt["model_config"].get("num_classes", len(names)))
    if n != expected_classes or len(names) != expected_classes:
        raise ModelError(
            f"{path}: checkpoint predicts {n} classes ({', '.join(names)}), but the workflow "
            f"expects {expected_classes} classes ({', '.join(CLASS_NAMES[:expected_classes])})"
        )
    if available_bands is None:
        return
    needed = list(ckpt["model_config"].get("sar_bands", []))
    missing = [b for b in needed if b not in set(available_bands)]
    if missing:
        raise ModelError(
            f"{path}: checkpoint needs SAR bands {needed}; the data lacks {missing} "
            f"(data bands: {list(available_bands)})"
        )


def missing_optical_bands(ckpt: dict, available_bands: Sequence[str] | None) -> list[str]:
    """The optical bands the checkpoint's optical head takes that the data lacks."""
    if available_bands is None:
        return []
    needed = ckpt["model_config"].get("optical_bands", [])
    return [b for b in needed if b not in set(available_bands)]


def load_for_inference(
    path: str | os.PathLike,
    expected_classes: int = NUM_CLASSES,
    available_bands: Sequence[str] | None = None,
    map_location: str | torch.device = "cpu",
) -> InferenceModel:
    """Load, check against the data's bands and the workflow's classes, and set eval mode."""
    stat = os.stat(path)
    ckpt, loaded = _loaded(str(Path(path).resolve()), stat.st_mtime_ns, stat.st_size, map_location)
    check_compatible(ckpt, path, expected_classes, available_bands)
    return dataclasses.replace(loaded, missing_optical=missing_optical_bands(ckpt, available_bands))


@functools.lru_cache(maxsize=2)
def _loaded(
    path: str, mtime_ns: int, size: int, map_location: str | torch.device
) -> tuple[dict, InferenceModel]:
    """A checkpoint's description and its model ready for inference, kept while the file
    is unchanged: a process that maps many scenes (the real-data benchmark) loads it once."""
    ckpt = load_checkpoint(path)
    architecture = ckpt.get("architecture", "metars")
    if architecture != "metars":
        raise ModelError(
            f"{path}: a {architecture} baseline checkpoint (for `metaflood evaluate`); "
            "routed inference needs a MetaRS checkpoint"
        )
    model = prepare_for_inference(build_model(ckpt, path), map_location)
    described = {k: ckpt[k] for k in ("class_names", "model_config")}
    return described, InferenceModel(
        model=model,
        config=model.config,
        normalization=Normalization.from_dict(ckpt["normalization"]),
        class_names=list(ckpt["class_names"]),
        encoding=InputEncoding.from_dict(ckpt.get("input_encoding")),
    )


def prepare_for_inference(
    model: torch.nn.Module, device: str | torch.device = "cpu"
) -> torch.nn.Module:
    """Eval mode, batch norms folded into their convolutions (one pass less over every
    feature map) and weights in channels-last order, which oneDNN and cuDNN convolve
    faster (benchmarks/model_flops.py; docs/performance.md)."""
    model = model.eval()
    fold_batch_norms(model)
    return model.to(device, memory_format=torch.channels_last)


def resolve_device(device: str = "auto") -> torch.device:
    """The device to run on; "auto" is CUDA when usable, else the CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ModelError(f"device {device!r} was asked for but CUDA is not available")
    return dev

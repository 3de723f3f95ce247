"""MetaRS checkpoints: one self-describing file, written atomically, read without pickle code.

A checkpoint carries everything inference needs besides the weights (architecture,
class names, band names, normalisation), so a model cannot silently be applied to data
it was not trained for; and the training state, so an interrupted training resumes.
Loading uses `weights_only=True`: a checkpoint from elsewhere cannot execute code.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from metaflood.classes import CLASS_NAMES, NUM_CLASSES
from metaflood.data import Normalization
from metaflood.encoding import InputEncoding
from metaflood.errors import ModelError
from metaflood.model.fold import fold_batch_norms
from metaflood.model.metars import MetaRS, MetaRSConfig

FORMAT = "metaflood-metars/1"
REQUIRED_KEYS = ("format", "model_config", "state_dict", "class_names", "normalization")


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
    return write_atomic(path, lambda tmp: torch.save(payload, tmp))


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
    """Call `write(tmp)` on a temporary file beside `path`, then move it into place.

    The temporary file is created like any other file (not with mkstemp's 0600), so the
    result is readable by the group as the umask allows: checkpoints are shared.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """The checkpoint's contents, checked for the expected format."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: checkpoint not found")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError) as err:
        raise ModelError(
            f"{path}: not a readable metaflood checkpoint (only plain tensors and types are "
            f"accepted): {err}"
        ) from err
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        found = ckpt.get("format") if isinstance(ckpt, dict) else type(ckpt).__name__
        raise ModelError(f"{path}: format {found!r}, expected {FORMAT!r}")
    missing = [k for k in REQUIRED_KEYS if k not in ckpt]
    if missing:
        raise ModelError(f"{path}: checkpoint lacks {missing}")
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

    On the meta device they still run PyTorch's reference implementations in Python:
    two thirds of building the compact network (0.17 s of a 0.3 s checkpoint load) and
    0.3 s for ResNet-50, for weights the checkpoint then replaces. Not thread-safe: a
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
    from metaflood.model.baselines import build_network

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
    ckpt = load_checkpoint(path, map_location="cpu")
    check_compatible(ckpt, path, expected_classes, available_bands)
    architecture = ckpt.get("architecture", "metars")
    if architecture != "metars":
        raise ModelError(
            f"{path}: a {architecture} baseline checkpoint (for `metaflood evaluate`); "
            "routed inference needs a MetaRS checkpoint"
        )
    model = prepare_for_inference(build_model(ckpt, path), map_location)
    return InferenceModel(
        model=model,
        config=model.config,
        normalization=Normalization.from_dict(ckpt["normalization"]),
        class_names=list(ckpt["class_names"]),
        encoding=InputEncoding.from_dict(ckpt.get("input_encoding")),
        missing_optical=missing_optical_bands(ckpt, available_bands),
    )


def prepare_for_inference(
    model: torch.nn.Module, device: str | torch.device = "cpu"
) -> torch.nn.Module:
    """Eval mode, batch norms folded into their convolutions (one pass less over every
    feature map) and weights in channels-last order, which oneDNN and cuDNN convolve
    faster (on a 2-core CPU: 1.5 times the compact model's FLOP/s, 1.1 times
    ResNet-50's; benchmarks/model_flops.py)."""
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

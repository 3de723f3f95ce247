"""The CUDA paths of inference and training; they run where a GPU is, and skip elsewhere."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
import torch

from metaflood.landcover.infer import predict_scene
from metaflood.model.checkpoint import load_checkpoint, load_for_inference, resolve_device
from metaflood.training.train import resume_path, train_model
from tests.landcover.test_infer import (  # noqa: F401  (checkpoint is a fixture used by name)
    _outputs,
    _scene,
    _valid_pattern,
    _write_inputs,
    checkpoint,
)
from tests.training.test_train import MODEL, TRAIN, KilledError

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here")


def read(path):
    with rasterio.open(path) as src:
        return src.read()


def tensors(tree):
    """Every tensor in a nested checkpoint structure."""
    if isinstance(tree, torch.Tensor):
        yield tree
    elif isinstance(tree, dict):
        for value in tree.values():
            yield from tensors(value)
    elif isinstance(tree, (list, tuple)):
        for value in tree:
            yield from tensors(value)


def test_auto_device_is_the_gpu():
    assert resolve_device("auto").type == "cuda"


def test_routed_inference_on_the_gpu_matches_the_cpu(tmp_path, checkpoint):  # noqa: F811
    stack, _ = _scene(np.random.default_rng(1))
    aligned, valid_path = _write_inputs(tmp_path, stack, _valid_pattern())
    runs = {}
    for device in ("cpu", "cuda"):
        runs[device] = predict_scene(
            aligned,
            valid_path,
            checkpoint,
            *_outputs(tmp_path, device),
            batch_size=4,
            window_px=64,
            overlap=16,
            device=device,
        )
    assert runs["cuda"]["device"].startswith("cuda")
    assert runs["cuda"]["pixels"] == runs["cpu"]["pixels"]
    assert runs["cuda"]["tiles"] == runs["cpu"]["tiles"]  # the same heads ran on the same tiles
    cpu = [read(p) for p in _outputs(tmp_path, "cpu")]
    gpu = [read(p) for p in _outputs(tmp_path, "cuda")]
    assert np.array_equal(cpu[2], gpu[2])  # routes
    # cuDNN picks other convolution algorithms (TF32 on recent GPUs): probabilities move
    # by a level of 254 or so, classes flip only where two classes nearly tie.
    assert (cpu[0] == gpu[0]).mean() >= 0.995
    assert np.abs(cpu[1].astype(int) - gpu[1].astype(int)).mean() <= 1.0


def test_training_on_the_gpu_resumes_and_loads_on_the_cpu(tmp_path):
    def killer(line: str) -> None:
        if line.startswith("iter 5/"):
            raise KilledError

    out, metrics = tmp_path / "gpu.pt", tmp_path / "gpu.json"
    lines: list[str] = []
    with pytest.raises(KilledError):
        train_model(MODEL, {**TRAIN, "log_every": 1}, out, metrics, log=killer, device="cuda")
    assert load_checkpoint(resume_path(out))["training"]["iteration"] == 3
    # The resume file holds the optimizer's moments; they are written from the CPU too.
    partial = torch.load(resume_path(out), weights_only=True)  # no map_location
    assert partial["training"]["optimizer"]["state"]
    assert {t.device.type for t in tensors(partial)} == {"cpu"}
    train_model(MODEL, TRAIN, out, metrics, log=lines.append, device="cuda")
    assert any("resuming" in line and "iteration 3" in line for line in lines)
    assert load_checkpoint(out)["training"]["iteration"] == 6
    # Every tensor in the files is on the CPU: plain torch.load opens them without a GPU.
    raw = torch.load(out, weights_only=True)  # no map_location
    assert {t.device.type for t in tensors(raw)} == {"cpu"}
    assert metrics.exists()
    loaded = load_for_inference(out)  # on a machine without a GPU
    assert next(loaded.model.parameters()).device.type == "cpu"

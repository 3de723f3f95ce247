"""Training: a tiny run writes its products; an interrupted run resumes to the same model."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from metaflood.core.classes import CLASS_NAMES
from metaflood.core.errors import ConfigError
from metaflood.model.checkpoint import load_checkpoint
from metaflood.training.train import mmr_start, poly_lr, resume_path, train_model, training_config
from tests.helpers.events import demo_event_config

ROOT = Path(__file__).resolve().parents[2]
# The workflow passes its whole `model:` section, inference keys included.
MODEL = {
    "backbone": "resnet18",
    "width": 8,
    "fpn_channels": 16,
    "decoder_channels": 16,
    "tile": 256,
    "overlap": 32,
    "device": "auto",
    "checkpoint": None,
}
TRAIN = {
    "iterations": 6,
    "batch_size": 2,
    "crop": 64,
    "lr": 1e-3,
    "weight_decay": 0.05,
    "seed": 3,
    "scenes": 1,
    "val_scenes": 1,
    "scene_size_m": 128.0,
    "native_resolution": 1.0,
    "resolution": 2.0,
    "save_every": 3,
    "align_weight": 0.1,
    "dataset": "synthetic",
    "mmr_warmup": 0.3,  # MMR calibrates at iteration 2 of 6, before the first save
    "mmr_calibration_images": 2,
}


class KilledError(Exception):
    """Stands in for the job being killed."""


def _run(tmp_path, name, log=None):
    lines: list[str] = []
    ckpt, metrics = tmp_path / f"{name}.pt", tmp_path / f"{name}.json"
    train_model(
        MODEL,
        {**TRAIN, "log_every": 1} if log else TRAIN,
        ckpt,
        metrics,
        threads=2,
        log=log or lines.append,
        device="cpu",
    )
    return ckpt, metrics, lines


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    pytest.importorskip("metaflood.demo.simulate")
    return _run(tmp_path_factory.mktemp("train"), "full")


def test_tiny_run_writes_checkpoint_and_metrics(uninterrupted):
    ckpt_path, metrics_path, lines = uninterrupted
    ckpt = load_checkpoint(ckpt_path)
    assert ckpt["training"]["iteration"] == 6
    assert ckpt["training"]["total_iterations"] == 6
    assert ckpt["training"]["optimizer"] is None  # only unfinished runs need it
    assert ckpt["model_config"]["width"] == 8 and "tile" not in ckpt["model_config"]
    assert len(ckpt["normalization"]["sar"]["mean"]) == 2

    metrics = json.loads(metrics_path.read_text())
    assert metrics["iterations"] == 6 and metrics["seconds"] > 0
    assert set(metrics["conditions"]) == {"both", "sar_only", "optical_only"}
    heads = {c: m["head"] for c, m in metrics["conditions"].items()}
    assert heads == {"both": "joint", "sar_only": "sar", "optical_only": "optical"}
    for m in metrics["conditions"].values():
        assert list(m["iou"]) == list(CLASS_NAMES)
        assert m["miou"] is None or 0.0 <= m["miou"] <= 1.0
        assert m["pixels"] == 2 * 64 * 64  # one validation scene, pre and post
    assert metrics["train_config"]["model_resolution"] == 2.0

    progress = [line for line in lines if line.startswith("iter ")]
    assert progress and "it/s" in progress[-1] and "ETA" in progress[-1]
    assert "ce_joint" in progress[-1] and "align" in progress[-1] and "mmr" in progress[-1]
    assert any(line.startswith("MMR calibrated at iteration 2") for line in lines)
    masks = ckpt["training"]["mmr_masks"]
    assert [m.shape[0] for m in masks] == [64, 8, 16] and all(m.dtype == torch.bool for m in masks)
    assert ckpt["input_encoding"]["sar"]["kind"] == "identity"


def test_killed_run_resumes_to_the_same_model(tmp_path, uninterrupted):
    full_ckpt = load_checkpoint(uninterrupted[0])

    def killer(line: str) -> None:
        if line.startswith("iter 5/"):
            raise KilledError

    with pytest.raises(KilledError):
        _run(tmp_path, "resumed", log=killer)
    # Periodic saves go beside the output, which Snakemake would delete before a rerun.
    assert not (tmp_path / "resumed.pt").exists()
    partial = load_checkpoint(resume_path(tmp_path / "resumed.pt"))
    assert partial["training"]["iteration"] == 3  # the last periodic save
    assert partial["training"]["optimizer"]["state"]
    assert partial["training"]["mmr_masks"] is not None  # calibrated before the save
    assert not (tmp_path / "resumed.json").exists()

    lines: list[str] = []
    train_model(
        MODEL,
        TRAIN,
        tmp_path / "resumed.pt",
        tmp_path / "resumed.json",
        threads=2,
        log=lines.append,
        device="cpu",
    )
    assert any("resuming" in line and "iteration 3" in line for line in lines)
    resumed = load_checkpoint(tmp_path / "resumed.pt")
    assert resumed["training"]["iteration"] == full_ckpt["training"]["iteration"] == 6
    for key, value in full_ckpt["state_dict"].items():
        torch.testing.assert_close(resumed["state_dict"][key], value, rtol=1e-5, atol=1e-6)
    assert json.loads((tmp_path / "resumed.json").read_text())["iterations"] == 6
    assert not resume_path(tmp_path / "resumed.pt").exists()  # cleaned up once complete


def test_changed_settings_restart_from_scratch(tmp_path, uninterrupted):
    ckpt = tmp_path / "m.pt"
    ckpt.write_bytes(uninterrupted[0].read_bytes())
    lines: list[str] = []
    train_model(
        MODEL,
        {**TRAIN, "seed": 4, "iterations": 2},
        ckpt,
        tmp_path / "m.json",
        threads=2,
        log=lines.append,
        device="cpu",
    )
    assert any("training from scratch" in line and "seed" in line for line in lines)
    assert load_checkpoint(ckpt)["training"]["iteration"] == 2


def test_poly_schedule_and_config_defaults():
    assert poly_lr(1e-3, 0, 100) == 1e-3
    assert poly_lr(1e-3, 50, 100) == pytest.approx(1e-3 * 0.5**0.9)
    cfg = training_config({"resolution": 4.0})
    assert cfg["model_resolution"] == 4.0 and "resolution" not in cfg
    assert mmr_start(training_config({"iterations": 300})) == 30  # 10% warm-up
    assert mmr_start(training_config({"mmr": False})) is None
    assert mmr_start(training_config({"architecture": "sar_only"})) is None
    with pytest.raises(ConfigError, match="earthmiss_root"):
        training_config({"dataset": "earthmiss"})
    with pytest.raises(ConfigError, match="unknown keys"):
        training_config({"iterationz": 3})


def test_unreadable_checkpoint_is_replaced(tmp_path):
    pytest.importorskip("metaflood.demo.simulate")
    ckpt = tmp_path / "m.pt"
    ckpt.write_bytes(b"not a checkpoint")
    lines: list[str] = []
    train_model(
        MODEL,
        {**TRAIN, "iterations": 1},
        ckpt,
        tmp_path / "m.json",
        threads=2,
        log=lines.append,
        device="cpu",
    )
    assert any("cannot resume" in line for line in lines)
    assert load_checkpoint(ckpt)["training"]["iteration"] == 1


def test_cli_run_killed_half_way_resumes_to_the_same_iteration_count(tmp_path):
    """The train command, killed (SIGKILL) after a periodic save, run again, completes."""
    out, metrics = tmp_path / "m.pt", tmp_path / "m.json"
    train = {**TRAIN, "iterations": 8, "save_every": 2, "log_every": 1}
    config = tmp_path / "config.yaml"
    sections = {"events": {"e": demo_event_config()}, "model": MODEL, "train": train}
    config.write_text(yaml.safe_dump(sections))
    command = [
        sys.executable, "-m", "metaflood", "train", "--config", str(config),
        "--out", str(out), "--metrics", str(metrics), "--threads", "1",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)
    for line in proc.stdout:
        if line.startswith("iter 5/"):  # iteration 4 has been saved
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(timeout=60)
    proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    assert not out.exists() and resume_path(out).exists()

    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "resuming from" in done.stdout and "at iteration 4" in done.stdout
    assert "iter 1/" not in done.stdout
    assert load_checkpoint(out)["training"]["iteration"] == 8
    assert json.loads(metrics.read_text())["iterations"] == 8
    assert not resume_path(out).exists()

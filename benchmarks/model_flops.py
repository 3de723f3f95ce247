"""Achieved model FLOP/s against a plain float32 matmul in the same process.

    .venv/bin/python -m benchmarks.model_flops [--config compact|authors] [--threads N]

FLOPs are counted by torch.utils.flop_counter (2 per multiply-add) on the inference
path the workflow runs (joint head of a batch of tiles); the reference is a square
float32 matmul of about the same duration. Prints both rates and their ratio.
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from metaflood.model import MetaRS, MetaRSConfig
from metaflood.model.checkpoint import prepare_for_inference

CONFIGS = {
    "compact": MetaRSConfig(),  # the demo model: resnet18 at width 32
    "authors": MetaRSConfig.authors(sar_bands=["VV"], optical_bands=["red", "green", "blue"]),
}


def best_time(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", choices=CONFIGS, default="compact")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--tile", type=int, default=256)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--heads", default="joint", help="comma-separated heads")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cfg = CONFIGS[args.config]
    model = prepare_for_inference(MetaRS(cfg))  # as the workflow loads it
    heads = tuple(args.heads.split(","))
    sar, opt = (
        torch.randn(args.batch, len(bands), args.tile, args.tile).contiguous(
            memory_format=torch.channels_last
        )
        for bands in (cfg.sar_bands, cfg.optical_bands)
    )

    def forward():
        with torch.inference_mode():
            model(sar, opt, heads=heads, features=False)

    with FlopCounterMode(display=False) as counter:
        forward()
    flops = counter.get_total_flops()
    t_model = best_time(forward, args.repeats)

    n = 2048
    a, b = torch.randn(n, n), torch.randn(n, n)
    t_mm = best_time(lambda: a @ b, max(args.repeats, 5))
    mm_rate = 2 * n**3 / t_mm
    model_rate = flops / t_model
    print(
        f"config {args.config}, heads {heads}, batch {args.batch} x {args.tile}^2"
        f", {args.threads} threads"
    )
    print(
        f"model: {flops / 1e9:.1f} GFLOP in {t_model * 1e3:.0f} ms = {model_rate / 1e9:.1f} GFLOP/s"
    )
    print(f"matmul {n}x{n} float32: {t_mm * 1e3:.1f} ms = {mm_rate / 1e9:.1f} GFLOP/s")
    print(f"ratio model / matmul FLOP/s: {model_rate / mm_rate:.2f}")


if __name__ == "__main__":
    main()

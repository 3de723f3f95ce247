"""Inference throughput in megapixels per second, compact and ResNet-50 configurations.

    .venv/bin/python -m benchmarks.model_throughput [--threads N] [--tile 256] [--batch 4]

For each configuration and each route (joint head; SAR head alone; optical head alone)
a batch of tiles is run under torch.inference_mode, best of a few runs, with the model
and inputs prepared as the workflow's inference prepares them (batch norms folded,
channels-last).
"""

from __future__ import annotations

import argparse
import time

import torch

from metaflood.model import MetaRS, MetaRSConfig
from metaflood.model.checkpoint import prepare_for_inference

CONFIGS = {
    "compact (resnet18, width 32)": MetaRSConfig(),
    "authors (resnet50)": MetaRSConfig.authors(
        sar_bands=["VV"], optical_bands=["red", "green", "blue"]
    ),
}
ROUTES = {"joint": ("joint",), "sar only": ("sar",), "optical only": ("optical",)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--tile", type=int, default=256)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    pixels = args.batch * args.tile**2
    rates = {}
    for name, cfg in CONFIGS.items():
        model = prepare_for_inference(MetaRS(cfg))  # as the workflow loads it
        sar, opt = (
            torch.randn(args.batch, len(bands), args.tile, args.tile).contiguous(
                memory_format=torch.channels_last
            )
            for bands in (cfg.sar_bands, cfg.optical_bands)
        )
        for route, heads in ROUTES.items():
            with torch.inference_mode():
                model(sar, opt, heads=heads)
                best = float("inf")
                for _ in range(args.repeats):
                    t0 = time.perf_counter()
                    model(sar, opt, heads=heads)
                    best = min(best, time.perf_counter() - t0)
            rates[(name, route)] = pixels / best / 1e6
            print(f"{name:30s} {route:13s} {rates[(name, route)]:6.3f} Mpx/s")
    compact, authors = list(CONFIGS)
    ratio = rates[(compact, "joint")] / rates[(authors, "joint")]
    print(f"{args.threads} threads, batch {args.batch} x {args.tile}^2")
    print(f"ratio compact / ResNet-50 (joint): {ratio:.1f}")


if __name__ == "__main__":
    main()

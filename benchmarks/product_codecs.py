"""What the land-cover products' codec costs: the COG copy of each product with other codecs.

    .venv/bin/python -m benchmarks.product_codecs [--size 1024] [--threads 2] [--repeats 7]

The routed-inference benchmark's scene (`model_routed_inference.make_scene`, 60% cloud)
is mapped once by `infer.predict_scene`; each product is then staged as `cog_writer`
stages it (tiled, uncompressed, bands in band order, its overviews inside) and copied to
a COG with each codec and the options `cog_writer` finishes it with (`cog_copy_options`).
Printed per product and in total: the best copy time, its ratio to the codec the
products use (DEFLATE level 1, the probabilities as differences), and the file size. It
answers how much of routed inference's overhead a lighter codec could take back, and at
what cost in disk.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import rasterio
import rasterio.shutil
import torch

from benchmarks.model_routed_inference import CONFIGS, make_scene, scene_checkpoint
from metaflood.core.raster import COG_COMPRESSION, cog_copy_options
from metaflood.landcover import infer
from metaflood.model import MetaRS

CODECS = {
    "DEFLATE 1 (used)": COG_COMPRESSION,
    "ZSTD 1": {"COMPRESS": "ZSTD", "LEVEL": 1},
    "LZW": {"COMPRESS": "LZW"},
    "none": {"COMPRESS": "NONE"},
}
USED = next(iter(CODECS))


def stage(product: Path, staging: Path) -> None:
    """The product as `cog_writer` stages it before the COG copy."""
    rasterio.shutil.copy(
        product,
        staging,
        driver="GTiff",
        TILED="YES",
        BLOCKXSIZE=256,
        BLOCKYSIZE=256,
        COMPRESS="NONE",
        INTERLEAVE="BAND",
        COPY_SRC_OVERVIEWS="YES",
    )


def best_copy(staging: Path, out: Path, options: dict, repeats: int) -> float:
    """Best wall time of the COG copy `cog_writer` makes, with these options."""
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        rasterio.shutil.copy(staging, out, driver="COG", **options)
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        aligned, valid = make_scene(folder, args.size)
        ckpt = scene_checkpoint(folder, MetaRS(CONFIGS["compact"]))
        products = {n: folder / f"{n}.tif" for n in ("class", "probabilities", "route")}
        infer.predict_scene(
            aligned,
            valid,
            ckpt,
            *products.values(),
            device="cpu",
            threads=args.threads,
            window_px=256,
            overlap=32,
            batch_size=4,
        )
        totals = {codec: [0.0, 0] for codec in CODECS}
        print(f"{args.size}² scene, {args.threads} threads, best of {args.repeats}")
        for name, product in products.items():
            staging = folder / f"{name}.staging.tif"
            stage(product, staging)
            with rasterio.open(product) as src:  # written as the job writes it
                dtype, blocksize = src.dtypes[0], src.block_shapes[0][0]
                smooth = src.tags(ns="IMAGE_STRUCTURE").get("PREDICTOR") == "2"
            times = {}
            for codec, compression in CODECS.items():
                options = cog_copy_options(
                    compression,
                    dtype=dtype,
                    smooth=smooth,
                    blocksize=blocksize,
                    threads=args.threads,
                )
                out = folder / f"{name}.{len(times)}.tif"
                times[codec] = best_copy(staging, out, options, args.repeats)
                size = out.stat().st_size
                totals[codec][0] += times[codec]
                totals[codec][1] += size
                print(
                    f"  {name:13s} {codec:17s} {times[codec] * 1000:6.1f} ms "
                    f"({times[codec] / times[USED]:.2f} of the used codec), {size / 1e6:6.2f} MB"
                )
        used_time, used_size = totals[USED]
        print("all three products:")
        for codec, (seconds, size) in totals.items():
            print(
                f"  {codec:17s} {seconds * 1000:6.1f} ms ({seconds / used_time:.2f}; "
                f"{(seconds - used_time) * 1000:+.1f} ms), {size / 1e6:6.2f} MB "
                f"({size / used_size:.2f} of the used codec's bytes)"
            )


if __name__ == "__main__":
    main()

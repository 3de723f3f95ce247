"""Keep freed memory in the process between inference batches.

glibc hands large freed blocks back to the operating system (mmap above a threshold,
heap trimming), so when a scene's reading and blending run between network batches,
every batch faults its activation buffers in again, which costs network time
(benchmarks/model_routed_inference.py prints the page faults; the figures are in
docs/performance.md). Raising both thresholds
keeps the blocks for reuse; the process keeps its peak memory, which a job has asked
for anyway.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

# mallopt parameters (malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_MAX = 32 << 20  # glibc's ceiling on 64-bit systems
TRIM_THRESHOLD = 1 << 30


@functools.cache  # a process-wide setting: once is enough
def keep_freed_memory() -> bool:
    """Ask glibc to keep freed blocks; False where the C library has no mallopt."""
    name = ctypes.util.find_library("c")
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError, TypeError):
        return False  # not glibc (macOS, musl without mallopt): nothing to tune
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX)) and bool(
        mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )

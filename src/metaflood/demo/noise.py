"""Named random streams derived from the scene's seed, and fractal noise."""

from __future__ import annotations

import functools
import math
import zlib

import numpy as np
from scipy import fft as sfft

from metaflood.demo.materials import Array
from metaflood.demo.spec import SceneSpec

# ---------------------------------------------------------------------------------------
# Random streams and noise


def stream(spec: SceneSpec, name: str) -> np.random.Generator:
    """An independent stream per component, so one knob never perturbs another."""
    key = zlib.crc32(name.encode())
    return np.random.default_rng(np.random.SeedSequence(spec.seed, spawn_key=(key,)))


def fractal(
    rng: np.random.Generator, shape: tuple[int, int], res: float, beta: float, outer_m: float
) -> Array:
    """Zero-mean unit-variance 1/f^beta noise; `outer_m` caps the largest features so
    the field looks the same whatever the scene size or resolution."""
    amp = _spectrum_amplitude(shape, res, beta, outer_m)
    spec = np.empty(amp.shape, dtype=np.complex64)
    spec.real = rng.standard_normal(amp.shape, dtype=np.float32) * amp
    spec.imag = rng.standard_normal(amp.shape, dtype=np.float32) * amp
    return _standardise(sfft.irfft2(spec, s=shape, workers=-1))


@functools.lru_cache(maxsize=16)
def _spectrum_amplitude(shape: tuple[int, int], res: float, beta: float, outer_m: float) -> Array:
    """Cached: the same spectra are reused for many fields and scenes (read-only)."""
    h, w = shape
    fy = sfft.fftfreq(h, d=res).astype(np.float32)[:, None]
    fx = sfft.rfftfreq(w, d=res).astype(np.float32)[None, :]
    amp = (fy * fy + fx * fx + np.float32(1.0 / outer_m) ** 2) ** np.float32(-beta / 4.0)
    amp[0, 0] = 0.0
    amp.flags.writeable = False
    return amp


def fractal_1d(rng: np.random.Generator, n: int, res: float, beta: float, outer_m: float) -> Array:
    """1-D version of `fractal`, for coastlines and meanders."""
    f = sfft.rfftfreq(n, d=res)
    amp = (f * f + (1.0 / outer_m) ** 2) ** (-beta / 4.0)
    amp[0] = 0.0
    spec = (rng.standard_normal(amp.shape) + 1j * rng.standard_normal(amp.shape)) * amp
    return _standardise(sfft.irfft(spec, n=n))


def _standardise(field: Array) -> Array:
    field = field.astype(np.float32, copy=False)
    field -= field.mean()
    std = field.std()
    return field / std if std > 0 else field


def quantile_threshold(values: Array, share: float) -> float:
    """Threshold above which `share` of `values` lie (exact, via partition)."""
    flat = values.ravel()
    if flat.size == 0 or share <= 0:
        return math.inf
    k = min(flat.size - 1, max(0, int(round((1.0 - share) * flat.size))))
    return float(np.partition(flat, k)[k])

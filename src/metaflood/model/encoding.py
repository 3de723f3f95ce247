"""How the workflow's physical bands become a network's input domain.

The workflow's aligned stacks hold SAR backscatter in dB and optical reflectance
(0..1). A network trained on those (the synthetic demo model) takes them as they are.
A network trained on EarthMiss (the authors' weights, or ours trained on their images)
expects their 8-bit images: one SAR amplitude band and three RGB bands, 0..255. The
checkpoint records which; inference applies it before the normalisation.

The EarthMiss 8-bit scaling is not documented by the authors. Assumed here, and
recorded in every checkpoint that uses it, so it can be changed without retraining:
SAR amplitude |s| = 10^(dB/20) scaled so that `full_scale_db` is 255 (0 dB by default:
bright urban double bounce saturates, calm water near -22 dB comes out about 20); RGB
reflectance scaled so that `full_scale` is 255 (0.2 by default, the Sentinel-2
true-colour-image stretch). With these, typical mixed urban scenes land near the
authors' normalisation means (SAR 63, RGB 112 to 118).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

IDENTITY = "identity"
SAR_AMPLITUDE_U8 = "sar_amplitude_u8"
REFLECTANCE_U8 = "reflectance_u8"
KINDS = {"sar": (IDENTITY, SAR_AMPLITUDE_U8), "optical": (IDENTITY, REFLECTANCE_U8)}


@dataclass(frozen=True)
class ModalityEncoding:
    kind: str = IDENTITY
    full_scale: float = 1.0  # reflectance at 255 (reflectance_u8)
    full_scale_db: float = 0.0  # backscatter at 255 (sar_amplitude_u8)


@dataclass(frozen=True)
class InputEncoding:
    """Per-modality transform from workflow units (dB, reflectance) to network units."""

    sar: ModalityEncoding = ModalityEncoding()
    optical: ModalityEncoding = ModalityEncoding()

    @classmethod
    def earthmiss(cls, sar_full_scale_db: float, optical_full_scale: float):
        """The assumed 8-bit encoding of EarthMiss images (see the module docstring)."""
        if optical_full_scale <= 0:
            raise ValueError(f"optical full scale must be positive, got {optical_full_scale}")
        return cls(
            ModalityEncoding(SAR_AMPLITUDE_U8, full_scale_db=float(sar_full_scale_db)),
            ModalityEncoding(REFLECTANCE_U8, full_scale=float(optical_full_scale)),
        )

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return {"sar": asdict(self.sar), "optical": asdict(self.optical)}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> InputEncoding:
        if not data:
            return cls()
        parts = {}
        for modality in ("sar", "optical"):
            spec = ModalityEncoding(**data.get(modality, {}))
            if spec.kind not in KINDS[modality]:
                raise ValueError(f"{modality} encoding {spec.kind!r}: expected {KINDS[modality]}")
            parts[modality] = spec
        return cls(**parts)

    def apply(self, x: np.ndarray, modality: str) -> np.ndarray:
        """(bands, ...) workflow values -> network values, float32 (NaN stays NaN)."""
        spec: ModalityEncoding = getattr(self, modality)
        x = np.asarray(x, dtype=np.float32)
        if spec.kind == IDENTITY:
            return x
        if spec.kind == SAR_AMPLITUDE_U8:
            amplitude = np.power(10.0, (x - spec.full_scale_db) / 20.0, dtype=np.float32)
            return np.minimum(amplitude, 1.0) * np.float32(255.0)
        return np.clip(x / np.float32(spec.full_scale), 0.0, 1.0) * np.float32(255.0)

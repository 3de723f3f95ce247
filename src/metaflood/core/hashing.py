"""sha256 of a file, plain and as a multihash (the STAC `file:checksum` form)."""

from __future__ import annotations

import hashlib
import os


def file_sha256(path: str | os.PathLike) -> str:
    """Hex sha256 of the file's bytes, read 1 MiB at a time."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def multihash_sha256(path: str | os.PathLike) -> str:
    """Multihash of the file: 0x12 (sha2-256), 0x20 (32 bytes), digest."""
    return "1220" + file_sha256(path)

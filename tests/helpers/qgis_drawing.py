"""Ask the QGIS a user has (Debian's python3-qgis, under the system Python) how it draws
products: tests/helpers/qgis_probe.py runs there, outside the project's environment."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

SYSTEM_PYTHON = "/usr/bin/python3"
PROBE = Path(__file__).with_name("qgis_probe.py")


def qgis_draws(*files: Path) -> dict[Path, dict]:
    """{file: how QGIS draws it (tests/helpers/qgis_probe.py)} as QGIS opens each file;
    GDAL's warnings on opening them fail the test."""
    has_qgis = subprocess.run(
        [SYSTEM_PYTHON, "-c", "import qgis.core"], capture_output=True, check=False
    )
    if has_qgis.returncode != 0:
        pytest.skip(
            "QGIS is not installed (Debian package python3-qgis; `make test` as root "
            "installs it, .ci/system-packages.sh)"
        )
    done = subprocess.run(
        [SYSTEM_PYTHON, str(PROBE), *map(str, files)],
        capture_output=True,
        text=True,
        timeout=300,
        env=os.environ | {"QT_QPA_PLATFORM": "offscreen", "XDG_RUNTIME_DIR": "/tmp"},
    )
    assert done.returncode == 0, done.stderr
    # QGIS opens them without complaint (GDAL's warnings and errors go to stderr).
    complaints = [
        line for line in done.stderr.splitlines() if line.startswith(("Warning", "ERROR"))
    ]
    assert complaints == [], complaints
    return {Path(path): drawn for path, drawn in json.loads(done.stdout).items()}


def argb(red: int, green: int, blue: int, alpha: int = 255) -> int:
    return alpha << 24 | red << 16 | green << 8 | blue

"""The documentation: the MkDocs site builds without a warning, the README stays short."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def mkdocs() -> str:
    path = Path(sys.executable).parent / "mkdocs"
    if path.exists():
        return str(path)
    found = shutil.which("mkdocs")
    if found is None:
        pytest.fail("mkdocs is not installed (pip install -e '.[test]')")
    return found


def test_the_site_builds_strictly(tmp_path):
    """--strict fails on a broken link or anchor, and on a page left out of the nav."""
    result = subprocess.run(
        [mkdocs(), "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    site = tmp_path / "site"
    assert (site / "index.html").is_file()
    assert (site / "performance" / "index.html").is_file()
    assert not (site / "tutorial_run").exists(), "the tutorial's run folder is not a page"


def test_the_readme_is_at_most_250_lines():
    lines = README.read_text().splitlines()
    assert len(lines) <= 250, f"README.md has {len(lines)} lines; move detail to docs/"


def test_the_readme_keeps_the_two_commands():
    text = README.read_text()
    assert re.search(r"^make demo +# ", text, re.MULTILINE)
    assert re.search(r"^make test +# ", text, re.MULTILINE)


def test_the_readmes_relative_links_exist():
    text = README.read_text()
    targets = re.findall(r"\]\(((?!https?://)[^)#\s]+)(?:#[^)]*)?\)", text)
    assert targets, "the README links to its documentation"
    missing = [t for t in targets if not (ROOT / t).exists()]
    assert not missing, missing

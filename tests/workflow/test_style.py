"""The project's own style gates, run as tests so CI enforces them."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=600)


def tool(name: str) -> str:
    path = BIN / name
    if not path.exists():
        found = shutil.which(name)
        if found is None:
            pytest.fail(f"{name} is not installed (pip install -e '.[test]')")
        return found
    return str(path)


def test_ruff_is_clean():
    result = run(tool("ruff"), "check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_snakefmt_is_clean():
    result = run(tool("snakefmt"), "--check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_snakemake_lint_reports_nothing():
    result = run(tool("snakemake"), "--lint", "--cores", "1")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Lints for" not in output, output


@pytest.mark.parametrize("profile", sorted(p.name for p in (ROOT / "profiles").iterdir()))
def test_every_profile_reruns_incomplete_jobs(profile):
    """docs/cluster.md (Resume) and the README say so: a killed job is rerun, whichever profile."""
    import yaml

    settings = yaml.safe_load((ROOT / "profiles" / profile / "config.yaml").read_text())
    assert settings.get("rerun-incomplete") is True, profile


def test_every_job_that_runs_a_network_asks_the_gpu_profile_for_a_gpu():
    """A rule whose script puts a network on `model.device` gets `gres: gpu:1` under
    profiles/slurm (or on a GPU cluster it runs on CPU threads); profiles/slurm-cpu is
    the same profile without those requests."""
    import re

    import yaml

    scripts = {
        path.name
        for path in (ROOT / "workflow" / "scripts").glob("*.py")
        if re.search(r"\bdevice\s*=", path.read_text())
    }
    rules = set()
    for smk in (ROOT / "workflow" / "rules").glob("*.smk"):
        for body in re.split(r"^rule ", smk.read_text(), flags=re.M)[1:]:
            script = re.search(r'"\.\./scripts/([\w.]+)"', body)
            if script and script.group(1) in scripts:
                rules.add(body.split(":", 1)[0])
    assert {"train", "landcover", "flood_network"} <= rules, rules
    gpu = yaml.safe_load((ROOT / "profiles" / "slurm" / "config.yaml").read_text())
    asks = {rule for rule, res in gpu["set-resources"].items() if res.get("gres") == "gpu:1"}
    assert rules <= asks, f"no GPU asked for {sorted(rules - asks)}"
    cpu = yaml.safe_load((ROOT / "profiles" / "slurm-cpu" / "config.yaml").read_text())
    assert cpu == {key: value for key, value in gpu.items() if key != "set-resources"}

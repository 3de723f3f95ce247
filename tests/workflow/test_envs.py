"""The conda environment files must ask for what pyproject.toml asks for."""

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
# conda-forge names that differ from the PyPI ones
CONDA_NAME = {"matplotlib": "matplotlib-base", "opencv-python-headless": "py-opencv"}
# needed to run the workflow itself, not inside a rule's environment
NOT_IN_ENVS = {"snakemake", "snakemake-executor-plugin-slurm"}
RULE_ENV = {"torch": "torch.yaml", "torchvision": "torch.yaml", "timm": "torch.yaml"}


def split(requirement: str) -> tuple[str, str]:
    name, spec = re.match(r"^([A-Za-z0-9_.-]+)\s*(.*)$", requirement).groups()
    return name.lower(), spec.replace(" ", "")


def env_requirements(path: Path) -> dict[str, str]:
    env = yaml.safe_load(path.read_text())
    found = {}
    for dep in env["dependencies"]:
        for item in dep["pip"] if isinstance(dep, dict) else [dep]:
            name, spec = split(item)
            found[name] = spec.replace("=", "==", 1) if re.match(r"^=[^=]", spec) else spec
    return found


def project_requirements() -> dict[str, str]:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return dict(split(r) for r in pyproject["project"]["dependencies"])


def test_every_dependency_is_in_an_environment_with_the_same_constraint():
    envs = {p.name: env_requirements(p) for p in (ROOT / "envs").glob("*.yaml")}
    assert set(envs) == {"geo.yaml", "torch.yaml"}
    for name, spec in project_requirements().items():
        if name in NOT_IN_ENVS:
            continue
        conda_name = CONDA_NAME.get(name, name)
        homes = [env for env, reqs in envs.items() if conda_name in reqs]
        assert homes, f"{name} is in pyproject.toml but in no envs/*.yaml"
        for env in homes:
            assert envs[env][conda_name] == spec, f"{name}: {spec} in pyproject, {env} differs"
        if name in RULE_ENV:
            assert RULE_ENV[name] in homes


def test_environments_ask_for_nothing_the_project_does_not():
    known = {CONDA_NAME.get(n, n) for n in project_requirements()} | {"python", "pip"}
    for path in (ROOT / "envs").glob("*.yaml"):
        extra = set(env_requirements(path)) - known
        assert not extra, f"{path.name} lists {extra}, which pyproject.toml does not"


def test_every_rule_names_an_existing_environment():
    for smk in (ROOT / "workflow" / "rules").glob("*.smk"):
        for env in re.findall(r'conda:\s*\n\s*"([^"]+)"', smk.read_text()):
            assert (smk.parent / env).resolve().is_file(), f"{smk.name}: {env} missing"

"""metaflood.run: the workflow run from Python through Snakemake's API."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

import metaflood
from metaflood.core.errors import ConfigError, MetafloodError, WorkflowRunError
from metaflood.runner import made_path
from tests.helpers.workflow_runs import tiny_config

SELECTION = "results/tiny/scenes/selection.json"


def test_a_bad_configuration_raises_config_error_naming_the_key(tmp_path):
    config = tiny_config(pre={"start": "2023-09-09", "end": "2023-09-01"})
    with pytest.raises(ConfigError) as raised:
        metaflood.run(config, workdir=tmp_path)
    assert str(raised.value) == (
        "invalid configuration: events.tiny.pre: the date window is inverted "
        "(start 2023-09-09 is after end 2023-09-01)"
    )
    config = tiny_config()
    config["events"]["tiny"]["grid"]["resolution"] = "fine"
    with pytest.raises(ConfigError, match="events.tiny.grid.resolution: 'fine' is not of type"):
        metaflood.run(config, workdir=tmp_path)
    with pytest.raises(ConfigError, match="is not a configuration value"):
        metaflood.run({"events": {"tiny": object()}}, workdir=tmp_path)
    assert not (tmp_path / ".snakemake").exists()  # refused before Snakemake started


def test_a_bad_configuration_file_names_the_file_and_line(tmp_path):
    path = tmp_path / "case.yaml"
    path.write_text("events:\n  tiny: {aoi: [1, 2}\n")
    with pytest.raises(ConfigError, match=r"case\.yaml: not valid YAML \(line 2"):
        metaflood.run(path, workdir=tmp_path)


def test_the_snakefile_s_own_checks_raise_without_a_traceback(tmp_path):
    (tmp_path / "results" / "tiny").mkdir(parents=True)
    (tmp_path / "results" / "tiny" / "flood").write_text("")
    with pytest.raises(WorkflowRunError) as raised:
        metaflood.run(tiny_config(), workdir=tmp_path, dryrun=True)
    assert str(raised.value).startswith(
        "cannot write the results: results/tiny/flood is a file, but the workflow writes"
    )


def test_a_dry_run_plans_and_returns_the_event_folder(tmp_path):
    made = metaflood.run(tiny_config(), workdir=tmp_path, dryrun=True, quiet=True)
    assert made == tmp_path.resolve() / "results" / "tiny"
    assert not made.exists()
    assert os.getcwd() != str(tmp_path)  # Snakemake changed back


@pytest.mark.integration
def test_a_run_makes_its_targets_and_a_failed_job_says_why(tmp_path):
    config = tmp_path / "case.yaml"
    config.write_text(yaml.safe_dump(tiny_config()))
    made = metaflood.run(config, targets=[SELECTION], cores=2, workdir=tmp_path, quiet=True)
    assert made == tmp_path / "results" / "tiny"
    assert (tmp_path / SELECTION).is_file()
    assert not (made / "flood").exists()  # only what the target needs
    # A job that fails: the post-event optical image is all cloud, and required.
    failing = tiny_config(optical={"source": "demo", "required": True})
    failing["events"]["tiny"]["demo"]["cloud_fraction"] = 1.0
    with pytest.raises(WorkflowRunError) as raised:
        metaflood.run(failing, targets=[SELECTION], cores=2, workdir=tmp_path / "b", quiet=True)
    message = str(raised.value)
    assert message.startswith("At least one job did not complete successfully: ")
    assert "results/tiny/logs/acquire_search.log: metaflood search-scenes: error: " in message
    assert "no optical scene for the post window" in message
    assert "Snakemake's log: " in message


def test_what_a_run_made():
    config = {"events": {"a": {}, "b": {}}}
    root = Path("/w")
    assert made_path({"events": {"a": {}}}, [], root) == root / "results" / "a"
    assert made_path(config, [], root) == root / "results"
    assert made_path(config, ["results/b/flood/stats.json"], root) == root / "results" / "b"
    assert made_path(config, ["results/models/metars.pt"], root) == root / "results"


def test_a_run_inside_a_running_event_loop(tmp_path):
    """A Jupyter kernel runs cells inside an asyncio loop, where Snakemake refuses to
    start: the run goes to a thread of its own."""
    import asyncio

    async def cell():
        return metaflood.run(tiny_config(), workdir=tmp_path, dryrun=True, quiet=True)

    assert asyncio.run(cell()) == tmp_path.resolve() / "results" / "tiny"


def test_the_workflow_profile_applies_as_on_the_command_line(tmp_path):
    """profiles/default, which `snakemake` reads for every run, is read by run() too."""
    from metaflood.runner import profile_settings

    assert profile_settings() == {"show_failed_logs": True, "force_incomplete": True}
    other = tmp_path / "config.yaml"
    other.write_text("show-failed-logs: true\nkeep-going: true\n")
    with pytest.raises(MetafloodError, match=r"does not apply \['keep-going'\]"):
        profile_settings(other)


def test_relative_paths_in_the_configuration_are_the_workdir_s(tmp_path):
    """As for Snakemake, which runs in the workdir: an AOI file named relative to it is
    found, whatever the caller's current folder."""
    import json

    west, south, east, north = tiny_config()["events"]["tiny"]["aoi"]["bbox"]
    ring = [[west, south], [east, south], [east, north], [west, north], [west, south]]
    feature = {
        "type": "Feature",
        "properties": {},
        "geometry": {"type": "Polygon", "coordinates": [ring]},
    }
    (tmp_path / "aoi.geojson").write_text(
        json.dumps({"type": "FeatureCollection", "features": [feature]})
    )
    config = tiny_config(aoi={"file": "aoi.geojson"})
    assert not Path("aoi.geojson").exists()
    made = metaflood.run(config, workdir=tmp_path, dryrun=True, quiet=True)
    assert made == tmp_path.resolve() / "results" / "tiny"

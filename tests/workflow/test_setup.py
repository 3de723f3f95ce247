import os
import sys
from pathlib import Path

import pytest
import yaml

from metaflood.core.errors import ConfigError
from metaflood.flood.confidence import JOIN_FEATURES
from metaflood.workflow import (
    check_config_file,
    job_memory_mb,
    prepare_job_environment,
    schema_error,
)
from tests.helpers.events import demo_event_config

ROOT = Path(__file__).resolve().parents[2]


def test_default_config_is_valid():
    config = check_config_file(ROOT / "config.yaml")
    assert list(config["events"]) == ["demo"]


def test_schema_error_names_the_key():
    config = {"events": {"e": demo_event_config()}, "model": {"tile": 100}}
    assert schema_error(config) == "model.tile: 100 is not a multiple of 32"
    config["model"] = {"device": "tpu"}
    assert schema_error(config).startswith("model.device: 'tpu' does not match")
    assert schema_error({"events": {"e": demo_event_config()}}) is None


def test_overlap_must_stay_below_half_the_tile(tmp_path):
    path = tmp_path / "c.yaml"
    config = {"events": {"e": demo_event_config()}, "model": {"tile": 128, "overlap": 64}}
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(ConfigError, match=r"c.yaml: model.overlap: 64 px must be less than half"):
        check_config_file(path)


def test_yaml_errors_carry_the_line(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("events:\n  e:\n    aoi: {bbox: [1, 2\n")
    with pytest.raises(ConfigError, match=r"not valid YAML \(line 4, column 1\)"):
        check_config_file(path)
    path.write_text("- just\n- a list\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        check_config_file(path)


def test_jobs_find_this_interpreter_and_the_source(monkeypatch):
    monkeypatch.setenv("PATH", "/usr/bin")
    monkeypatch.setenv("PYTHONPATH", "/elsewhere")
    prepare_job_environment(ROOT / "src")
    assert os.environ["PATH"].split(os.pathsep)[0] == str(Path(sys.executable).parent)
    assert os.environ["PYTHONPATH"].split(os.pathsep) == [str(ROOT / "src"), "/elsewhere"]
    prepare_job_environment(ROOT / "src")  # idempotent
    assert os.environ["PYTHONPATH"].count(str(ROOT / "src")) == 1


def test_jobs_cap_gdal_cache_unless_the_user_set_it(monkeypatch):
    monkeypatch.delenv("GDAL_CACHEMAX", raising=False)
    prepare_job_environment(ROOT / "src")
    assert os.environ["GDAL_CACHEMAX"] == "512"
    monkeypatch.setenv("GDAL_CACHEMAX", "2048")
    prepare_job_environment(ROOT / "src")
    assert os.environ["GDAL_CACHEMAX"] == "2048"


def test_whole_grid_jobs_ask_for_memory_in_proportion_to_the_grid():
    assert job_memory_mb(0, 2000, 48) == 2000
    # 8,093 x 8,130 px, the largest grid of benchmarks/tiled_scale.py
    assert job_memory_mb(8093 * 8130, 2000, 48) == 5159
    assert job_memory_mb(1, 2000, 0.5) == 2001  # rounded up, never down


def _dry_run(config: dict, path: Path) -> str:
    """What `snakemake -n` plans for `config` (written to `path`) in path's folder."""
    import subprocess

    path.write_text(yaml.safe_dump(config))
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"),
         "--directory", str(path.parent), "--cores", "1", "-n", "--configfile", str(path)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    return out


def test_authors_checkpoint_dag_plans_offline(tmp_path):
    """download and convert are planned without network and without the file."""
    config = {
        "events": {"e": demo_event_config()},
        "model": {
            "checkpoint": None,
            "authors_checkpoint": {
                "path": "resources/models/earthmiss_metars.pth",
                "url": "https://drive.google.com/uc?export=download&id=x",
                "sha256": None,
            },
        },
    }
    out = _dry_run(config, tmp_path / "c.yaml")
    for rule in ("download_authors_checkpoint", "convert_checkpoint", "landcover"):
        assert f"rule {rule}:" in out
    assert "rule train:" not in out
    assert "results/models/metars_earthmiss.pt" in out


def test_something_in_the_way_of_an_output_is_named(tmp_path):
    from metaflood.workflow import blocked_output

    outputs = [("results/e/flood/extent.tif", False), ("resources/demo/e", True)]
    assert blocked_output(outputs, tmp_path) is None
    (tmp_path / "results/e").mkdir(parents=True)
    (tmp_path / "results/e/flood").write_text("")
    assert blocked_output(outputs, tmp_path) == (
        "results/e/flood is a file, but the workflow writes into a folder of that name "
        "(for example results/e/flood/extent.tif): move or remove the file"
    )
    (tmp_path / "results/e/flood").unlink()
    (tmp_path / "results/e/flood/extent.tif").mkdir(parents=True)
    assert blocked_output(outputs, tmp_path).startswith(
        "results/e/flood/extent.tif is a folder, but the workflow writes a file there"
    )
    (tmp_path / "results/e/flood/extent.tif").rmdir()
    (tmp_path / "resources/demo").mkdir(parents=True)
    (tmp_path / "resources/demo/e").symlink_to(tmp_path / "nowhere")  # a broken link
    assert blocked_output(outputs, tmp_path).startswith("resources/demo/e is a file")


def test_a_file_where_an_output_folder_goes_stops_the_run_before_any_job(tmp_path):
    """Issue 21: results/demo/flood as a file cost 48 s of work, then Snakemake's
    internal NotADirectoryError traceback."""
    import subprocess

    config = {"events": {"e": demo_event_config()}}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config))
    (tmp_path / "results/e").mkdir(parents=True)
    (tmp_path / "results/e/flood").write_text("not a folder")
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"),
         "--directory", str(tmp_path), "--cores", "1", "--configfile", str(path)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    out = result.stdout + result.stderr
    assert result.returncode != 0
    assert (
        "cannot write the results: results/e/flood is a file, but the workflow writes into "
        "a folder of that name" in out
    ), out[-3000:]
    assert "Traceback" not in out and "NotADirectoryError" not in out
    assert not (tmp_path / "resources").exists()
    assert sorted(p.name for p in (tmp_path / "results/e").iterdir()) == ["flood"]


def test_the_model_trains_at_the_events_grid_resolution():
    from metaflood.workflow import train_section

    sentinel = demo_event_config(grid={"crs": "auto", "resolution": 10.0})
    config = {"events": {"a": sentinel, "b": sentinel}, "train": {"resolution": None}}
    assert train_section(config)["resolution"] == 10.0
    config["events"]["b"] = demo_event_config()  # 2 m
    with pytest.raises(ConfigError, match=r"the events map at \[2.0, 10.0\] m"):
        train_section(config)
    config["train"]["resolution"] = 5.0
    assert train_section(config)["resolution"] == 5.0


def test_pointing_the_model_at_a_checkpoint_does_not_retrain():
    """The train rule's parameters hold only the keys that shape the network: a
    calibration run that names the demo's checkpoint retrained (and replaced) it."""
    from metaflood.workflow import model_training_section

    trained = {"model": {"backbone": "resnet18", "width": 32, "checkpoint": None, "tile": 256}}
    mapping = {"model": trained["model"] | {"checkpoint": "results/models/metars.pt"}}
    mapping["model"] |= {"tile": 512, "adapt": {"enabled": True}}
    assert model_training_section(trained) == model_training_section(mapping)
    assert model_training_section(mapping) == {"backbone": "resnet18", "width": 32}


def test_a_flood_network_is_planned_only_when_the_configuration_names_one(tmp_path):
    """`change.flood_network` adds the flood_network job, whose probability the change
    job reads, and its QGIS style; without it neither the job nor its checkpoint is
    asked for."""
    checkpoint = _flood_network(tmp_path / "flood.pt")
    plans = {}
    for name, network in (("with", str(checkpoint)), ("without", None)):
        config = {"events": {"e": demo_event_config()}, "change": {"flood_network": network}}
        plans[name] = _dry_run(config, tmp_path / f"{name}.yaml")
    assert "rule flood_network:" in plans["with"]
    assert "results/e/flood/network.tif" in plans["with"]
    assert "output: results/e/flood/network.qml" in plans["with"]  # its QGIS style
    assert "rule flood_network:" not in plans["without"]
    assert "network.qml" not in plans["without"]


def _flood_network(path: Path) -> Path:
    from metaflood.model.flood_network import (
        FloodNetworkInputs,
        build_flood_network,
        save_flood_network,
    )

    inputs = FloodNetworkInputs("unet", ("green", "nir"))
    save_flood_network(path, build_flood_network(inputs), inputs)
    return path


def test_a_bad_flood_network_stops_the_run_at_start_naming_the_key(tmp_path):
    """A missing or foreign `change.flood_network` is refused before any job, not after
    acquisition and co-registration at the flood_network rule."""
    from metaflood.workflow import check_config

    config = {"events": {"e": demo_event_config()}, "change": {"flood_network": "flood.pt"}}
    with pytest.raises(ConfigError, match=r"change.flood_network: flood.pt does not exist"):
        check_config(config, tmp_path)
    (tmp_path / "flood.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(
        ConfigError, match=r"change.flood_network: .*flood.pt: not a readable flood network"
    ):
        check_config(config, tmp_path)
    _flood_network(tmp_path / "flood.pt")
    check_config(config, tmp_path)  # a flood network checkpoint passes
    # A calibration whose join was fitted for another network is refused at start too.
    import json

    from metaflood.core.hashing import file_sha256
    from metaflood.flood.confidence import load_calibration

    calibration = load_calibration()
    calibration["network_join"] = {"features": list(JOIN_FEATURES), "network_sha256": "0" * 64}
    (tmp_path / "cal.json").write_text(json.dumps(calibration))
    config["change"]["calibration"] = "cal.json"
    with pytest.raises(
        ConfigError, match=r"change.calibration: cal.json's network_join was fitted for another"
    ):
        check_config(config, tmp_path)
    calibration["network_join"]["network_sha256"] = file_sha256(tmp_path / "flood.pt")
    (tmp_path / "cal.json").write_text(json.dumps(calibration))
    check_config(config, tmp_path)

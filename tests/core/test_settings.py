"""Typed settings: built from the configuration as the schema validated it, the schema
the one place a default lives."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
import yaml

from metaflood.core.errors import ConfigError
from metaflood.core.settings import (
    SCHEMA_PATH,
    AuthorsCheckpoint,
    ChangeSettings,
    ComputeSettings,
    CoregisterSettings,
    ModelSettings,
    TilingSettings,
    TrainSettings,
    apply_defaults,
    section_defaults,
    validated,
)
from tests.helpers.events import demo_event_config

ROOT = Path(__file__).resolve().parents[2]
SECTIONS = (
    ModelSettings,
    TrainSettings,
    ChangeSettings,
    CoregisterSettings,
    TilingSettings,
    ComputeSettings,
)


def minimal() -> dict:
    return {"events": {"e": demo_event_config()}}


def test_the_schemas_defaults_fill_a_minimal_config():
    config = validated(minimal())
    model = ModelSettings.in_config(config)
    assert (model.tile, model.overlap, model.batch_size, model.device) == (256, 32, 4, "auto")
    assert model.adapt.iterations == 60 and model.authors_checkpoint is None
    assert ChangeSettings.in_config(config).min_area_m2 == 200
    assert TilingSettings.in_config(config) == TilingSettings(tile_px=4096, overlap_px=64)
    assert ComputeSettings.in_config(config).scheduler == "threads"
    for cls in SECTIONS:  # every section builds from the validated configuration
        assert cls.in_config(config)


def test_validated_leaves_its_argument_alone_and_keeps_what_is_set():
    config = {**minimal(), "change": {"min_area_m2": 40}}
    filled = validated(config)
    assert config["change"] == {"min_area_m2": 40} and "model" not in config
    assert filled["change"]["min_area_m2"] == 40 and filled["change"]["sar_window_px"] == 3


def test_defaults_are_never_shared_between_configurations():
    first, second = validated(minimal()), validated(minimal())
    first["model"]["sar_bands"].append("x")
    assert second["model"]["sar_bands"] == ["VV", "VH"]


def test_a_given_authors_checkpoint_gets_the_schemas_input_scales():
    config = validated({**minimal(), "model": {"authors_checkpoint": {"path": "a.pth"}}})
    authors = ModelSettings.in_config(config).authors_checkpoint
    assert authors == AuthorsCheckpoint("a.pth", None, None, 0.0, 0.2)


def test_apply_defaults_fills_in_place_and_names_a_bad_key():
    config = minimal()
    assert apply_defaults(config) is config and config["tiling"]["tile_px"] == 4096
    with pytest.raises(ConfigError, match=r"model.tile: 100 is not a multiple of 32"):
        apply_defaults({**minimal(), "model": {"tile": 100}})


def test_a_missing_key_is_named():
    section = section_defaults("change")
    del section["sar_tile_px"]
    with pytest.raises(ConfigError, match=r"change.sar_tile_px: missing"):
        ChangeSettings.from_section(section)
    adapt = section_defaults("model")
    del adapt["adapt"]["seed"]
    with pytest.raises(ConfigError, match=r"model.adapt.seed: missing"):
        ModelSettings.from_section(adapt)


def test_an_unknown_key_is_named():
    with pytest.raises(ConfigError, match=r"tiling.tile: not a setting of tiling"):
        TilingSettings.from_section({"tile_px": 80, "overlap_px": 24, "tile": 3})


def test_settings_classes_have_no_defaults_of_their_own():
    for cls in SECTIONS:
        for field in dataclasses.fields(cls):
            assert field.default is dataclasses.MISSING, f"{cls.__name__}.{field.name}"


def test_each_class_has_every_key_of_its_section():
    properties = yaml.safe_load(SCHEMA_PATH.read_text())["properties"]
    for cls in SECTIONS:
        names = {f.name for f in dataclasses.fields(cls)}
        assert names == set(properties[cls.SECTION]["properties"]), cls.__name__


# Settings whose schema default was restated as a literal default elsewhere: the
# pattern finds one written as a keyword or signature default, `.get(key, literal)`, an
# argparse default or a rule's fallback. The schema alone says what they default to.
RESTATED = [
    ("min_area_m2", r"200"),
    ("tile", r"256"),
    ("overlap", r"32"),
    ("batch_size", r"4"),
    ("sar_full_scale_db", r"0"),
    ("optical_full_scale", r"0\.2"),
    ("tile_px", r"4096"),
    ("overlap_px", r"64"),
    ("scheduler", r'"threads"'),
    # change.sar_* as sar_change.SarChangeSettings names them
    ("window_px", r"3"),
    ("tile_px", r"64"),
    ("min_ashman_d", r"2"),
    ("speckle_filter", r'"none"'),
    ("speckle_window", r"5"),
    ("cloud_mask", r'"provided"'),
    ("block_size", r"2048"),
    ("max_shift_px", r"8"),
    # event sections: the grid and the demo event's knobs (the simulator's SceneSpec,
    # which the training scenes use too, has defaults of its own)
    ("resolution", r"2"),
    ("seed", r"7"),
    ("margin_m", r"40"),
    # exclusion and the static layers
    ("hand_max_m", r"15"),
    ("slope_max_deg", r"40"),
    ("drainage_km2", r"1"),
    ("pad_m", r"3000"),
    ("incidence_deg", r"39"),
    ("reference_occurrence_min", r"50"),
]


# Lines that match but set something else: dask's own scheduler, not compute.scheduler.
NOT_SETTINGS = ('dask.config.set(scheduler="threads"',)


def restated(name: str, value: str) -> re.Pattern:
    key = rf"(?<![\w-]){name}['\"]?"
    end = r"(\.0*)?(?![\w.])"  # 200 and 200.0, not 2000 or 0.25
    return re.compile(
        rf"{key}\s*(:\s*[\w| .\[\]]+)?\s*=\s*{value}{end}"  # name: type = 200 / name=200
        rf"|{key}\s*,\s*{value}{end}"  # .get("name", 200)
        rf"|{key}\s*:\s*{value}{end}"  # {"name": 200}
        rf"|--{name.replace('_', '-')}\b.*default\s*=\s*{value}{end}"  # argparse
    )


def test_no_schema_default_is_restated_outside_the_schema():
    files = [
        *sorted((ROOT / "src").rglob("*.py")),
        *sorted((ROOT / "workflow").rglob("*.py")),
        *sorted((ROOT / "workflow").rglob("*.smk")),
        ROOT / "Snakefile",
    ]
    found = []
    for path in files:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            for name, value in RESTATED:
                if restated(name, value).search(line) and not any(
                    allowed in line for allowed in NOT_SETTINGS
                ):
                    found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not found, "schema defaults restated:\n" + "\n".join(found)


def test_an_events_section_gets_the_schemas_defaults():
    from metaflood.core.settings import event_section

    assert event_section({}, "grid") == {"crs": "auto", "resolution": 2.0}
    demo = event_section({"demo": {"seed": 3}}, "demo")
    assert demo["seed"] == 3 and demo["pre_sar_scenes"] == 1 and demo["lookalikes"] is False
    assert event_section({"dem": {"source": "local", "file": "x"}}, "dem")["band"] == 1


@pytest.mark.parametrize("name", ["model", "train", "change", "coregister", "tiling", "compute"])
def test_filling_without_jsonschema_gives_the_validators_defaults(name):
    """What a rule's conda environment fills (no jsonschema there) is what the workflow
    filled at start-up."""
    assert section_defaults(name, check=False) == section_defaults(name)
    given = {"authors_checkpoint": {"path": "a.pth"}} if name == "model" else {}
    assert section_defaults(name, given, check=False) == section_defaults(name, given)

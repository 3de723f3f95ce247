# Shared set-up: configuration checks and the helpers the rules use to find their inputs.
import json
import re
from pathlib import Path

from snakemake.exceptions import WorkflowError

# The package's source is on sys.path (the Snakefile put it there).
from metaflood.core.config import PERIODS, event_grid, event_tiles
from metaflood.core.errors import ConfigError
from metaflood.core.settings import apply_defaults
from metaflood.report.qgis_project import LAYERS as QGIS_PROJECT_LAYERS
from metaflood.report.qgis_styles import style_path, styled_products
from metaflood.workflow import (
    blocked_output,
    job_memory_mb,
    model_training_section,
    prepare_job_environment,
    semantic_errors,
    train_section,
)

prepare_job_environment(Path(workflow.basedir) / "src")
# The schema checks the configuration and fills every default (the one place a default
# lives): the rules and the scripts read the sections as validated.
try:
    apply_defaults(config)
except ConfigError as err:
    raise WorkflowError(f"invalid configuration: {err}") from None
CONFIG_ERROR = semantic_errors(config)
if CONFIG_ERROR:
    raise WorkflowError(f"invalid configuration: {CONFIG_ERROR}")

EVENTS = list(config["events"])


wildcard_constraints:
    event="|".join(EVENTS),
    period="pre|post",
    tile="r[0-9]+c[0-9]+",


def event_json(wildcards):
    """The event's configuration, passed to the package as one JSON argument."""
    return json.dumps(config["events"][wildcards.event], sort_keys=True)


def section_json(name, key=None):
    """A configuration section (or one key of it) as a job's JSON param: a job reruns
    when its settings change, and its script reads them (metaflood.jobs.section)."""
    section = train_section(config) if name == "train" else config[name]
    return json.dumps(section if key is None else section[key], sort_keys=True)


def training_model_json():
    """The train rule's model keys: inference-only settings never retrain."""
    return json.dumps(model_training_section(config), sort_keys=True)


def uses_demo(event):
    sources = config["events"][event]
    layers = ("sar", "optical", "dem", "reference_water")
    return any(sources[m]["source"] == "demo" for m in layers)


def demo_dir(wildcards):
    """The generated demo catalog, for events that read it; nothing otherwise."""
    if uses_demo(wildcards.event):
        return f"resources/demo/{wildcards.event}"
    return []


def demo_catalog(wildcards):
    """The demo catalog an event's scenes are searched in ("" when it has none)."""
    if uses_demo(wildcards.event):
        return f"resources/demo/{wildcards.event}/catalog.json"
    return ""


# Where rule download_authors_checkpoint writes when model.authors_checkpoint is unset
# (the rule is then never run, but needs an output).
AUTHORS_CHECKPOINT_PATH = "resources/models/earthmiss_metars.pth"


def authors_checkpoint_path():
    """The authors' .pth file: model.authors_checkpoint.path when set."""
    section = config["model"]["authors_checkpoint"]
    return section["path"] if section else AUTHORS_CHECKPOINT_PATH


# Windows already read from remote assets, keyed by asset and window.
ACQUIRE_CACHE = "resources/cache/acquire"


def local_scene_files(wildcards):
    """The user's own files of a `local` source, so that replacing one reruns the search."""
    files = []
    for modality in ("sar", "optical"):
        source = config["events"][wildcards.event][modality]
        if source["source"] == "local":
            files += [source[p] for p in PERIODS if source.get(p)]
    return files


def local_auxiliary_files(wildcards):
    """The user's own DEM and reference water files, so that replacing one rereads it."""
    event = config["events"][wildcards.event]
    return [
        event[layer]["file"]
        for layer in ("dem", "reference_water")
        if event[layer]["source"] == "local"
    ]


def checkpoint_path(wildcards=None):
    """A configured checkpoint; else the authors' weights, converted; else rule train's."""
    if config["model"]["checkpoint"]:
        return config["model"]["checkpoint"]
    if config["model"]["authors_checkpoint"]:
        return "results/models/metars_earthmiss.pt"
    return "results/models/metars.pt"


def mapping_checkpoint(wildcards):
    """The checkpoint an event is mapped with: adapted to the event when model.adapt is on."""
    if config["model"]["adapt"]["enabled"]:
        return f"results/{wildcards.event}/model/adapted.pt"
    return checkpoint_path()


def calibration_input(wildcards):
    """A refitted confidence calibration, when the configuration names one."""
    return config["change"]["calibration"] or []


def water_fusion_input(wildcards):
    """A refitted water fusion, when the configuration names one."""
    return config["change"]["water_fusion"] or []


def flood_network_input(wildcards):
    """The flood network's checkpoint, when the configuration names one."""
    return config["change"]["flood_network"] or []


def flood_network_product(wildcards):
    """The flood network's probability, the change stage's third line of evidence,
    when the configuration names a flood network."""
    if config["change"]["flood_network"]:
        return f"results/{wildcards.event}/flood/network.tif"
    return []


def flood_network_summary(wildcards):
    """What the flood network read, for the statistics, when there is one."""
    if config["change"]["flood_network"]:
        return f"results/{wildcards.event}/flood/network.json"
    return []


def validation_input(wildcards):
    """Validation against the simulator's truth exists only for demo events."""
    if uses_demo(wildcards.event):
        return f"results/{wildcards.event}/flood/validation.json"
    return []


def final_products():
    products = []
    for event in EVENTS:
        products += [
            f"results/{event}/report.html",
            f"results/{event}/flood/stats.json",
            f"results/{event}/flood/polygons.gpkg",
            f"results/{event}/catalog.json",
        ]
        products += [
            f"results/{event}/{style_path(product)}"
            for product in styled_products(
                flood_network=bool(config["change"]["flood_network"])
            )
        ]
        products.append(f"results/{event}/{event}.qgs")
    return products


# The products the rule qgis_style styles, by their path in the event folder without
# the suffix (its wildcard).
STYLED_PRODUCTS = {
    product.rsplit(".", 1)[0]: product
    for product in styled_products(flood_network=True)
}
QGIS_STYLED = "|".join(re.escape(stem) for stem in STYLED_PRODUCTS)


def styled_product(wildcards):
    """The product the rule qgis_style styles, its path in the event folder."""
    return STYLED_PRODUCTS[wildcards.product]


def styled_product_file(wildcards):
    """The file of the product the rule qgis_style styles."""
    return f"results/{wildcards.event}/{styled_product(wildcards)}"


def qgis_project_inputs(wildcards):
    """The products of the event's QGIS project, and the styles it takes from beside them."""
    paths = [layer.path for layer in QGIS_PROJECT_LAYERS]
    styled = set(styled_products(flood_network=False))
    return [f"results/{wildcards.event}/{path}" for path in paths] + [
        f"results/{wildcards.event}/{style_path(path)}"
        for path in paths
        if path in styled
    ]


# Tiling: an event whose grid is larger than tiling.tile_px runs co-registration, land
# cover and SAR change as one job per tile, gathered into the untiled products' paths.
GRIDS = {
    event: event_grid(config["events"][event], f"events.{event}") for event in EVENTS
}
TILES = {event: event_tiles(GRIDS[event], config["tiling"]) for event in EVENTS}
TILED_EVENTS = [event for event in EVENTS if len(TILES[event]) > 1]


def events_pattern(events):
    """A wildcard constraint matching exactly these events (nothing when there are none)."""
    return "|".join(re.escape(event) for event in events) or "(?!x)x"


TILED = events_pattern(TILED_EVENTS)
UNTILED = events_pattern([event for event in EVENTS if event not in TILED_EVENTS])


def grid_mem_mb(base_mb, bytes_per_pixel):
    """mem_mb of a job that holds whole-grid arrays: grows with the event's grid."""

    def mem_mb(wildcards):
        grid = GRIDS[wildcards.event]
        return job_memory_mb(grid.width * grid.height, base_mb, bytes_per_pixel)

    return mem_mb


def tile_files(pattern):
    """The files of every tile of the job's event (and period)."""

    def files(wildcards):
        return expand(pattern, tile=TILES[wildcards.event], **dict(wildcards.items()))

    return files


def output_paths():
    """Every output, log and benchmark path the rules can write for the configured
    events, with whether it is a folder (wildcards other than event, period and tile
    are cut off with the rest of the name)."""
    from snakemake.io import is_flagged, strip_wildcard_constraints

    paths = []
    for step in workflow.rules:
        for item in [
            *step.output,
            *step.log,
            *([step.benchmark] if step.benchmark else []),
        ]:
            folder = is_flagged(item, "directory")
            for event in EVENTS:
                values = {"event": event, "period": PERIODS, "tile": TILES[event]}
                pattern = strip_wildcard_constraints(str(item))
                for path in expand(pattern, **values, allow_missing=True):
                    if "{" in path:
                        paths.append((str(Path(path.split("{")[0]).parent), True))
                    else:
                        paths.append((path, folder))
    return paths


def check_output_paths():
    """Stop before any job when something in the way would fail one at its end."""
    blocked = blocked_output(output_paths())
    if blocked:
        raise WorkflowError(f"cannot write the results: {blocked}")

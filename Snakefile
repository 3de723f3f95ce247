# metaflood: flood mapping with a missing modality.
# Entry point: validates the configuration, then includes one rule file per stage.
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version

min_version("9.0")
sys.path.insert(0, str(Path(workflow.basedir) / "src"))

from metaflood.core.errors import ConfigError
from metaflood.workflow import read_config_file

# config.yaml (the demo) is the default; a --configfile replaces it rather than adding
# its events to the demo's. It is read here first, so a YAML error names its line (a
# --configfile is parsed by Snakemake before this file runs: `metaflood check-config`).
if not workflow.config_settings.configfiles:
    try:
        read_config_file("config.yaml")
    except ConfigError as err:
        raise WorkflowError(f"invalid configuration: {err}") from None

    configfile: "config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/acquire.smk"
include: "workflow/rules/coregister.smk"
include: "workflow/rules/terrain.smk"
include: "workflow/rules/landcover.smk"
include: "workflow/rules/water.smk"
include: "workflow/rules/change.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        final_products(),


# Before any job: a file where the rules write a folder (or the reverse) stops the run.
check_output_paths()

# metaflood: flood mapping with a missing modality.
# Entry point: validates the configuration, then includes one rule file per stage.
from snakemake.utils import min_version

min_version("9.0")


# config.yaml (the demo) is the default; a --configfile replaces it rather than adding
# its events to the demo's.
if not workflow.config_settings.configfiles:

    configfile: "config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/acquire.smk"
include: "workflow/rules/coregister.smk"
include: "workflow/rules/landcover.smk"
include: "workflow/rules/change.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        final_products(),


# Before any job: a file where the rules write a folder (or the reverse) stops the run.
check_output_paths()

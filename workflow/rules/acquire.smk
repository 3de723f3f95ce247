# Acquisition: the embedded demo event, the search for scenes (both periods at once, so
# SAR pre and post can share an orbit), then the AOI window of each period's scenes;
# and the event's static layers (DEM, reference water), which have no date.


rule demo_event:
    output:
        directory("resources/demo/{event}"),
    log:
        "results/{event}/logs/demo_event.log",
    benchmark:
        "results/{event}/benchmarks/demo_event.tsv"
    conda:
        "../../envs/geo.yaml"
    threads: 1
    resources:
        mem_mb=grid_mem_mb(2000, 150),
        runtime=10,
    params:
        event=event_json,
    script:
        "../scripts/demo_event.py"


rule search_scenes:
    input:
        demo_dir,
        local_scene_files,
    output:
        "results/{event}/scenes/selection.json",
    log:
        "results/{event}/logs/acquire_search.log",
    benchmark:
        "results/{event}/benchmarks/acquire_search.tsv"
    conda:
        "../../envs/geo.yaml"
    threads: 2
    resources:
        mem_mb=grid_mem_mb(2000, 32),
        runtime=30,
    params:
        event=event_json,
        demo_catalog=demo_catalog,
        cache=ACQUIRE_CACHE,
    script:
        "../scripts/search_scenes.py"


rule acquire:
    input:
        demo_dir,
        local_scene_files,
        selection="results/{event}/scenes/selection.json",
    output:
        sar="results/{event}/scenes/{period}/sar.tif",
        sar_spread="results/{event}/scenes/{period}/sar_spread.tif",
        optical="results/{event}/scenes/{period}/optical.tif",
        optical_mask="results/{event}/scenes/{period}/optical_mask.tif",
        scenes="results/{event}/scenes/{period}/scenes.json",
    log:
        "results/{event}/logs/acquire_{period}.log",
    benchmark:
        "results/{event}/benchmarks/acquire_{period}.tsv"
    conda:
        "../../envs/geo.yaml"
    threads: 2
    resources:
        mem_mb=grid_mem_mb(2000, 48),
        runtime=30,
    params:
        event=event_json,
        cache=ACQUIRE_CACHE,
    script:
        "../scripts/acquire.py"


rule acquire_auxiliary:
    input:
        demo_dir,
        local_auxiliary_files,
    output:
        dem="results/{event}/auxiliary/dem.tif",
        reference_water="results/{event}/auxiliary/reference_water.tif",
        record="results/{event}/auxiliary/auxiliary.json",
    log:
        "results/{event}/logs/acquire_auxiliary.log",
    benchmark:
        "results/{event}/benchmarks/acquire_auxiliary.tsv"
    conda:
        "../../envs/geo.yaml"
    threads: 2
    resources:
        mem_mb=grid_mem_mb(2000, 48),
        runtime=30,
    params:
        event=event_json,
        demo_catalog=demo_catalog,
        cache=ACQUIRE_CACHE,
        exclusion=section_json("exclusion"),
        change=section_json("change"),
    script:
        "../scripts/acquire_auxiliary.py"

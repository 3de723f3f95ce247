# Co-registration: both periods and both modalities onto one grid, SAR in dB,
# and a per-pixel availability mask.


rule coregister:
    input:
        sar="results/{event}/scenes/{period}/sar.tif",
        optical="results/{event}/scenes/{period}/optical.tif",
        optical_mask="results/{event}/scenes/{period}/optical_mask.tif",
        reference="results/{event}/scenes/pre/sar.tif",
    output:
        stack="results/{event}/aligned/{period}.tif",
        valid="results/{event}/aligned/{period}_valid.tif",
        report="results/{event}/aligned/{period}_coregistration.json",
    log:
        "results/{event}/logs/coregister_{period}.log",
    benchmark:
        "results/{event}/benchmarks/coregister_{period}.tsv"
    wildcard_constraints:
        event=UNTILED,
    conda:
        "../../envs/geo.yaml"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=30,
    params:
        event=event_json,
        coregister=section_json("coregister"),
    script:
        "../scripts/coregister.py"


# Tiled events: shifts once per period, then one job per tile, then the mosaic.


rule coregister_shifts:
    input:
        sar="results/{event}/scenes/{period}/sar.tif",
        optical="results/{event}/scenes/{period}/optical.tif",
        optical_mask="results/{event}/scenes/{period}/optical_mask.tif",
        reference="results/{event}/scenes/pre/sar.tif",
    output:
        "results/{event}/aligned/tiles/{period}_shifts.json",
    log:
        "results/{event}/logs/coregister_shifts_{period}.log",
    benchmark:
        "results/{event}/benchmarks/coregister_shifts_{period}.tsv"
    wildcard_constraints:
        event=TILED,
    conda:
        "../../envs/geo.yaml"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=30,
    params:
        event=event_json,
        coregister=section_json("coregister"),
    script:
        "../scripts/coregister_shifts.py"


rule coregister_tile:
    input:
        sar="results/{event}/scenes/{period}/sar.tif",
        optical="results/{event}/scenes/{period}/optical.tif",
        optical_mask="results/{event}/scenes/{period}/optical_mask.tif",
        shifts="results/{event}/aligned/tiles/{period}_shifts.json",
    output:
        stack=temp("results/{event}/aligned/tiles/{period}/{tile}.tif"),
        valid=temp("results/{event}/aligned/tiles/{period}/{tile}_valid.tif"),
    log:
        "results/{event}/logs/coregister_{period}_{tile}.log",
    benchmark:
        "results/{event}/benchmarks/coregister_{period}_{tile}.tsv"
    wildcard_constraints:
        event=TILED,
    conda:
        "../../envs/geo.yaml"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=30,
    params:
        event=event_json,
        coregister=section_json("coregister"),
        tiling=section_json("tiling"),
    script:
        "../scripts/coregister_tile.py"


rule coregister_gather:
    input:
        shifts="results/{event}/aligned/tiles/{period}_shifts.json",
        stacks=tile_files("results/{event}/aligned/tiles/{period}/{tile}.tif"),
        valid=tile_files("results/{event}/aligned/tiles/{period}/{tile}_valid.tif"),
    output:
        stack="results/{event}/aligned/{period}.tif",
        valid="results/{event}/aligned/{period}_valid.tif",
        report="results/{event}/aligned/{period}_coregistration.json",
    log:
        "results/{event}/logs/coregister_gather_{period}.log",
    benchmark:
        "results/{event}/benchmarks/coregister_gather_{period}.tsv"
    wildcard_constraints:
        event=TILED,
    conda:
        "../../envs/geo.yaml"
    threads: 2
    resources:
        mem_mb=grid_mem_mb(2000, 24),
        runtime=30,
    script:
        "../scripts/coregister_gather.py"

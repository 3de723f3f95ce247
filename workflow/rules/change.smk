# Change: SAR change evidence, then new water between the pre and post water maps
# weighed against it (extent, confidence), flood polygons, transitions and the
# statistics; validation against the truth for demo events only.


rule sar_change:
    input:
        stacks=expand("results/{{event}}/aligned/{period}.tif", period=PERIODS),
        valid=expand("results/{{event}}/aligned/{period}_valid.tif", period=PERIODS),
    output:
        evidence=report(
            "results/{event}/flood/sar_change.tif",
            caption="../report/sar_change.rst",
            category="Flood products",
        ),
        ratio="results/{event}/flood/sar_logratio.tif",
        summary="results/{event}/flood/sar_change.json",
    log:
        "results/{event}/logs/sar_change.log",
    benchmark:
        "results/{event}/benchmarks/sar_change.tsv"
    wildcard_constraints:
        event=UNTILED,
    conda:
        "../../envs/geo.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        change=section_json("change"),
    script:
        "../scripts/sar_change.py"


rule change:
    input:
        landcover=expand("results/{{event}}/landcover/{period}.tif", period=PERIODS),
        water=expand("results/{{event}}/water/{period}.tif", period=PERIODS),
        post_route="results/{event}/landcover/post_route.tif",
        sar_evidence="results/{event}/flood/sar_change.tif",
        sar_ratio="results/{event}/flood/sar_logratio.tif",
        sar_summary="results/{event}/flood/sar_change.json",
        reference_water="results/{event}/flood/reference_water.tif",
        exclusion="results/{event}/flood/exclusion.tif",
        calibration=calibration_input,
        network=flood_network_product,
    output:
        extent=report(
            "results/{event}/flood/extent.tif",
            caption="../report/extent.rst",
            category="Flood products",
        ),
        confidence=report(
            "results/{event}/flood/confidence.tif",
            caption="../report/confidence.rst",
            category="Flood products",
        ),
        polygons=report(
            "results/{event}/flood/polygons.gpkg",
            caption="../report/polygons.rst",
            category="Flood products",
        ),
        transitions=report(
            "results/{event}/flood/transitions.csv",
            caption="../report/transitions.rst",
            category="Flood statistics",
        ),
        support=report(
            "results/{event}/flood/support.tif",
            caption="../report/support.rst",
            category="Flood products",
        ),
        # the extent as it would be without the terrain exclusion, for validation
        unexcluded=temp("results/{event}/flood/extent_unexcluded.tif"),
    log:
        "results/{event}/logs/change.log",
    benchmark:
        "results/{event}/benchmarks/change.tsv"
    conda:
        "../../envs/geo.yaml"
    threads: 1
    resources:
        mem_mb=grid_mem_mb(3000, 24),
        runtime=30,
    params:
        change=section_json("change"),
        exclusion=section_json("exclusion"),
    script:
        "../scripts/change.py"


rule flood_network:
    input:
        stacks=expand("results/{{event}}/aligned/{period}.tif", period=PERIODS),
        valid=expand("results/{{event}}/aligned/{period}_valid.tif", period=PERIODS),
        checkpoint=flood_network_input,
    output:
        probability=report(
            "results/{event}/flood/network.tif",
            caption="../report/flood_network.rst",
            category="Flood products",
        ),
        summary="results/{event}/flood/network.json",
    log:
        "results/{event}/logs/flood_network.log",
    benchmark:
        "results/{event}/benchmarks/flood_network.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: 4
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        model=section_json("model"),
    script:
        "../scripts/flood_network.py"


rule reference_water:
    input:
        layer="results/{event}/auxiliary/reference_water.tif",
        water_pre="results/{event}/water/pre.tif",
        sar_evidence="results/{event}/flood/sar_change.tif",
    output:
        reference_water=report(
            "results/{event}/flood/reference_water.tif",
            caption="../report/reference_water.rst",
            category="Flood products",
        ),
        record="results/{event}/flood/reference_water.json",
    log:
        "results/{event}/logs/reference_water.log",
    benchmark:
        "results/{event}/benchmarks/reference_water.tsv"
    conda:
        "../../envs/geo.yaml"
    threads: 1
    resources:
        mem_mb=grid_mem_mb(2000, 12),
        runtime=10,
    script:
        "../scripts/reference_water.py"


rule validate_demo:
    input:
        extent="results/{event}/flood/extent.tif",
        unexcluded="results/{event}/flood/extent_unexcluded.tif",
        confidence="results/{event}/flood/confidence.tif",
        sar_evidence="results/{event}/flood/sar_change.tif",
        pre="results/{event}/landcover/pre.tif",
        post="results/{event}/landcover/post.tif",
        support="results/{event}/flood/support.tif",
        demo=demo_dir,
    output:
        report(
            "results/{event}/flood/validation.json",
            caption="../report/validation.rst",
            category="Flood statistics",
        ),
    log:
        "results/{event}/logs/validate_demo.log",
    benchmark:
        "results/{event}/benchmarks/validate_demo.tsv"
    conda:
        "../../envs/geo.yaml"
    threads: 1
    resources:
        mem_mb=grid_mem_mb(2000, 48),
        runtime=10,
    params:
        min_area_m2=config["change"]["min_area_m2"],
    script:
        "../scripts/validate_demo.py"


rule stats:
    input:
        extent="results/{event}/flood/extent.tif",
        confidence="results/{event}/flood/confidence.tif",
        polygons="results/{event}/flood/polygons.gpkg",
        transitions="results/{event}/flood/transitions.csv",
        landcover=expand("results/{{event}}/landcover/{period}.tif", period=PERIODS),
        routes=expand("results/{{event}}/landcover/{period}_route.tif", period=PERIODS),
        scenes=expand("results/{{event}}/scenes/{period}/scenes.json", period=PERIODS),
        coregistration=expand(
            "results/{{event}}/aligned/{period}_coregistration.json", period=PERIODS
        ),
        sar_summary="results/{event}/flood/sar_change.json",
        water=expand("results/{{event}}/water/{period}.json", period=PERIODS),
        support="results/{event}/flood/support.tif",
        exclusion="results/{event}/flood/exclusion.json",
        reference_water="results/{event}/flood/reference_water.json",
        auxiliary="results/{event}/auxiliary/auxiliary.json",
        checkpoint=checkpoint_path,
        calibration=calibration_input,
        validation=validation_input,
        network_summary=flood_network_summary,
    output:
        stats=report(
            "results/{event}/flood/stats.json",
            caption="../report/stats.rst",
            category="Flood statistics",
        ),
        impact=report(
            "results/{event}/flood/impact.csv",
            caption="../report/impact.rst",
            category="Flood statistics",
        ),
    log:
        "results/{event}/logs/stats.log",
    benchmark:
        "results/{event}/benchmarks/stats.tsv"
    conda:
        "../../envs/geo.yaml"
    threads: 1
    resources:
        # the rasters are counted a chunk at a time (stats.pixel_counts): no whole grid
        mem_mb=2000,
        runtime=10,
    params:
        event=event_json,
        full_config=json.dumps(config, sort_keys=True),
    script:
        "../scripts/stats.py"


# Tiled events: thresholds from the whole grid, evidence per tile, the minimum mapping
# unit on the mosaic.


rule sar_thresholds:
    input:
        stacks=expand("results/{{event}}/aligned/{period}.tif", period=PERIODS),
        valid=expand("results/{{event}}/aligned/{period}_valid.tif", period=PERIODS),
    output:
        "results/{event}/flood/tiles/sar_thresholds.json",
    log:
        "results/{event}/logs/sar_thresholds.log",
    benchmark:
        "results/{event}/benchmarks/sar_thresholds.tsv"
    wildcard_constraints:
        event=TILED,
    conda:
        "../../envs/geo.yaml"
    threads: 1
    resources:
        mem_mb=grid_mem_mb(3000, 8),
        runtime=30,
    params:
        change=section_json("change"),
    script:
        "../scripts/sar_thresholds.py"


rule sar_change_tile:
    input:
        stacks=expand("results/{{event}}/aligned/{period}.tif", period=PERIODS),
        valid=expand("results/{{event}}/aligned/{period}_valid.tif", period=PERIODS),
        thresholds="results/{event}/flood/tiles/sar_thresholds.json",
    output:
        evidence=temp("results/{event}/flood/tiles/{tile}_sar_change.tif"),
        ratio=temp("results/{event}/flood/tiles/{tile}_sar_logratio.tif"),
    log:
        "results/{event}/logs/sar_change_{tile}.log",
    benchmark:
        "results/{event}/benchmarks/sar_change_{tile}.tsv"
    wildcard_constraints:
        event=TILED,
    conda:
        "../../envs/geo.yaml"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=30,
    params:
        change=section_json("change"),
        tiling=section_json("tiling"),
    script:
        "../scripts/sar_change_tile.py"


rule sar_change_gather:
    input:
        evidence=tile_files("results/{event}/flood/tiles/{tile}_sar_change.tif"),
        ratio=tile_files("results/{event}/flood/tiles/{tile}_sar_logratio.tif"),
        thresholds="results/{event}/flood/tiles/sar_thresholds.json",
    output:
        evidence="results/{event}/flood/sar_change.tif",
        ratio="results/{event}/flood/sar_logratio.tif",
        summary="results/{event}/flood/sar_change.json",
    log:
        "results/{event}/logs/sar_change_gather.log",
    benchmark:
        "results/{event}/benchmarks/sar_change_gather.tsv"
    wildcard_constraints:
        event=TILED,
    conda:
        "../../envs/geo.yaml"
    threads: 2
    resources:
        mem_mb=grid_mem_mb(3000, 24),
        runtime=30,
    params:
        change=section_json("change"),
    script:
        "../scripts/sar_change_gather.py"

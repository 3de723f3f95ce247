# Water: where the water is in each period, from SAR alone, the optical index alone and
# both fused with the MetaRS water probability (the map a user reads as "the water").


rule water:
    input:
        stack="results/{event}/aligned/{period}.tif",
        valid="results/{event}/aligned/{period}_valid.tif",
        proba="results/{event}/landcover/{period}_proba.tif",
        fusion=water_fusion_input,
    output:
        water=report(
            "results/{event}/water/{period}.tif",
            caption="../report/water.rst",
            category="Water",
        ),
        sar="results/{event}/water/{period}_sar.tif",
        evidence="results/{event}/water/{period}_evidence.tif",
        summary="results/{event}/water/{period}.json",
    log:
        "results/{event}/logs/water_{period}.log",
    benchmark:
        "results/{event}/benchmarks/water_{period}.tsv"
    conda:
        "../../envs/geo.yaml"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=30,
    params:
        change=section_json("change"),
    script:
        "../scripts/water.py"

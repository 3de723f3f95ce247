# Terrain exclusion: where the SAR cannot say flood (high above drainage, steep, radar
# shadow and layover), from the event's DEM and the post-event SAR viewing geometry.


rule exclusion:
    input:
        dem="results/{event}/auxiliary/dem.tif",
        post_scenes="results/{event}/scenes/post/scenes.json",
    output:
        exclusion=report(
            "results/{event}/flood/exclusion.tif",
            caption="../report/exclusion.rst",
            category="Flood products",
        ),
        record="results/{event}/flood/exclusion.json",
    log:
        "results/{event}/logs/exclusion.log",
    benchmark:
        "results/{event}/benchmarks/exclusion.tsv"
    conda:
        "../../envs/geo.yaml"
    threads: 1
    resources:
        mem_mb=grid_mem_mb(2000, 64),
        runtime=30,
    params:
        event=event_json,
        exclusion=section_json("exclusion"),
    script:
        "../scripts/exclusion.py"

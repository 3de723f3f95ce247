# Change: new water between the pre and post land-cover maps, flood polygons,
# transitions and the statistics; validation against the truth for demo events only.


rule change:
    input:
        pre="results/{event}/landcover/pre.tif",
        post="results/{event}/landcover/post.tif",
    output:
        extent="results/{event}/flood/extent.tif",
        polygons="results/{event}/flood/polygons.gpkg",
        transitions="results/{event}/flood/transitions.csv",
    log:
        "results/{event}/logs/change.log",
    benchmark:
        "results/{event}/benchmarks/change.tsv"
    conda:
        "../../envs/geo.yaml"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=30,
    params:
        change=section_json("change"),
    shell:
        "python -m metaflood change --change-json {params.change:q}"
        " --pre {input.pre} --post {input.post} --out-extent {output.extent}"
        " --out-polygons {output.polygons} --out-transitions {output.transitions}"
        " > {log} 2>&1"


rule validate_demo:
    input:
        extent="results/{event}/flood/extent.tif",
        pre="results/{event}/landcover/pre.tif",
        post="results/{event}/landcover/post.tif",
        demo=demo_dir,
    output:
        "results/{event}/flood/validation.json",
    log:
        "results/{event}/logs/validate_demo.log",
    benchmark:
        "results/{event}/benchmarks/validate_demo.tsv"
    conda:
        "../../envs/geo.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "python -m metaflood validate --extent {input.extent} --pre {input.pre}"
        " --post {input.post} --truth-dir {input.demo}/truth --out {output}"
        " > {log} 2>&1"


rule stats:
    input:
        extent="results/{event}/flood/extent.tif",
        polygons="results/{event}/flood/polygons.gpkg",
        transitions="results/{event}/flood/transitions.csv",
        landcover=expand("results/{{event}}/landcover/{period}.tif", period=PERIODS),
        routes=expand("results/{{event}}/landcover/{period}_route.tif", period=PERIODS),
        scenes=expand("results/{{event}}/scenes/{period}/scenes.json", period=PERIODS),
        coregistration=expand(
            "results/{{event}}/aligned/{period}_coregistration.json", period=PERIODS
        ),
        checkpoint=checkpoint_path,
        validation=validation_input,
    output:
        "results/{event}/flood/stats.json",
    log:
        "results/{event}/logs/stats.log",
    benchmark:
        "results/{event}/benchmarks/stats.tsv"
    conda:
        "../../envs/geo.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        event=event_json,
        full_config=json.dumps(config, sort_keys=True),
        validation=lambda wc, input: (
            f"--validation {input.validation}" if input.validation else ""
        ),
    shell:
        "python -m metaflood stats --event {wildcards.event} --config-json {params.full_config:q}"
        " --extent {input.extent} --polygons {input.polygons}"
        " --transitions {input.transitions} --landcover {input.landcover}"
        " --routes {input.routes} --scenes {input.scenes}"
        " --coregistration {input.coregistration} --checkpoint {input.checkpoint}"
        " {params.validation} --out {output} > {log} 2>&1"

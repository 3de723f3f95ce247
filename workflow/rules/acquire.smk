# Acquisition: the embedded demo event, then the scenes of each period.


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
        mem_mb=2000,
        runtime=10,
    params:
        event=event_json,
    shell:
        "python -m metaflood demo --event {wildcards.event} --event-json {params.event:q}"
        " --out {output} > {log} 2>&1"


rule acquire:
    input:
        demo_dir,
    output:
        sar="results/{event}/scenes/{period}/sar.tif",
        optical="results/{event}/scenes/{period}/optical.tif",
        optical_mask="results/{event}/scenes/{period}/optical_mask.tif",
        scenes="results/{event}/scenes/{period}/scenes.json",
    log:
        "results/{event}/logs/acquire_{period}.log",
    benchmark:
        "results/{event}/benchmarks/acquire_{period}.tsv"
    conda:
        "../../envs/geo.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        event=event_json,
        demo=demo_flags,
    shell:
        "python -m metaflood acquire --event {wildcards.event} --event-json {params.event:q}"
        " --period {wildcards.period} {params.demo} --sar {output.sar}"
        " --optical {output.optical} --optical-mask {output.optical_mask}"
        " --scenes {output.scenes} > {log} 2>&1"

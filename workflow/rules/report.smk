# Report: one self-contained HTML page per event.


rule report:
    input:
        stacks=expand("results/{{event}}/aligned/{period}.tif", period=PERIODS),
        valid=expand("results/{{event}}/aligned/{period}_valid.tif", period=PERIODS),
        landcover=expand("results/{{event}}/landcover/{period}.tif", period=PERIODS),
        extent="results/{event}/flood/extent.tif",
        stats="results/{event}/flood/stats.json",
    output:
        report(
            "results/{event}/report.html",
            caption="../report/report.rst",
            category="Report",
        ),
    log:
        "results/{event}/logs/report.log",
    benchmark:
        "results/{event}/benchmarks/report.tsv"
    conda:
        "../../envs/geo.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "python -m metaflood report --event {wildcards.event} --stacks {input.stacks}"
        " --valid {input.valid} --landcover {input.landcover} --extent {input.extent}"
        " --stats {input.stats} --out {output} > {log} 2>&1"

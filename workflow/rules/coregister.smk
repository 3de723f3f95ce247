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
    conda:
        "../../envs/geo.yaml"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=30,
    params:
        event=event_json,
        coregister=section_json("coregister"),
    shell:
        "python -m metaflood coregister --event {wildcards.event} --event-json {params.event:q}"
        " --period {wildcards.period} --sar {input.sar} --optical {input.optical}"
        " --optical-mask {input.optical_mask} --reference {input.reference}"
        " --out-stack {output.stack} --out-valid {output.valid}"
        " --out-report {output.report} --coregister-json {params.coregister:q}"
        " --threads {threads} > {log} 2>&1"

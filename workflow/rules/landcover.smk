# Land cover: MetaRS training (when no checkpoint is configured) and routed inference.


rule train:
    output:
        checkpoint="results/models/metars.pt",
        metrics="results/models/metars_metrics.json",
    log:
        "results/models/logs/train.log",
    benchmark:
        "results/models/benchmarks/train.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: 8
    resources:
        mem_mb=6000,
        runtime=120,
    params:
        model=section_json("model"),
        train=section_json("train"),
    shell:
        "python -m metaflood train --model-json {params.model:q} --train-json {params.train:q}"
        " --out {output.checkpoint} --metrics {output.metrics} --threads {threads}"
        " > {log} 2>&1"


rule landcover:
    input:
        stack="results/{event}/aligned/{period}.tif",
        valid="results/{event}/aligned/{period}_valid.tif",
        checkpoint=checkpoint_path,
    output:
        classes="results/{event}/landcover/{period}.tif",
        proba="results/{event}/landcover/{period}_proba.tif",
        route="results/{event}/landcover/{period}_route.tif",
    log:
        "results/{event}/logs/landcover_{period}.log",
    benchmark:
        "results/{event}/benchmarks/landcover_{period}.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: 8
    resources:
        mem_mb=6000,
        runtime=60,
    params:
        model=section_json("model"),
    shell:
        "python -m metaflood landcover --model-json {params.model:q}"
        " --stack {input.stack} --valid {input.valid} --checkpoint {input.checkpoint}"
        " --out-class {output.classes} --out-proba {output.proba} --out-route {output.route}"
        " --threads {threads} > {log} 2>&1"

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
        model=training_model_json(),
        train=section_json("train"),
    script:
        "../scripts/train.py"


rule download_authors_checkpoint:
    output:
        authors_checkpoint_path(),
    log:
        "results/models/logs/download_authors_checkpoint.log",
    benchmark:
        "results/models/benchmarks/download_authors_checkpoint.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=60,
    params:
        authors_checkpoint=section_json("model", "authors_checkpoint"),
    script:
        "../scripts/download_authors_checkpoint.py"


rule convert_checkpoint:
    input:
        authors_checkpoint_path(),
    output:
        "results/models/metars_earthmiss.pt",
    log:
        "results/models/logs/convert_checkpoint.log",
    benchmark:
        "results/models/benchmarks/convert_checkpoint.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        authors_checkpoint=section_json("model", "authors_checkpoint"),
    script:
        "../scripts/convert_checkpoint.py"


rule evaluate:
    output:
        csv="results/models/evaluation.csv",
        md="results/models/evaluation.md",
    log:
        "results/models/logs/evaluate.log",
    benchmark:
        "results/models/benchmarks/evaluate.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: workflow.cores
    resources:
        mem_mb=6000,
        runtime=600,
    params:
        model=section_json("model"),
        train=section_json("train"),
        evaluate=section_json("evaluate"),
    script:
        "../scripts/evaluate.py"


rule landcover:
    input:
        stack="results/{event}/aligned/{period}.tif",
        valid="results/{event}/aligned/{period}_valid.tif",
        checkpoint=mapping_checkpoint,
    output:
        classes="results/{event}/landcover/{period}.tif",
        proba="results/{event}/landcover/{period}_proba.tif",
        route="results/{event}/landcover/{period}_route.tif",
    log:
        "results/{event}/logs/landcover_{period}.log",
    benchmark:
        "results/{event}/benchmarks/landcover_{period}.tsv"
    wildcard_constraints:
        event=UNTILED,
    conda:
        "../../envs/torch.yaml"
    threads: 8
    resources:
        mem_mb=6000,
        runtime=60,
    params:
        model=section_json("model"),
    script:
        "../scripts/landcover.py"


# Tiled events: inference over each tile and its overlap, then blended into one map.


rule landcover_tile:
    input:
        stack="results/{event}/aligned/{period}.tif",
        valid="results/{event}/aligned/{period}_valid.tif",
        checkpoint=mapping_checkpoint,
    output:
        proba=temp("results/{event}/landcover/tiles/{period}/{tile}_proba.tif"),
        route=temp("results/{event}/landcover/tiles/{period}/{tile}_route.tif"),
    log:
        "results/{event}/logs/landcover_{period}_{tile}.log",
    benchmark:
        "results/{event}/benchmarks/landcover_{period}_{tile}.tsv"
    wildcard_constraints:
        event=TILED,
    conda:
        "../../envs/torch.yaml"
    threads: 8
    resources:
        mem_mb=6000,
        runtime=60,
    params:
        model=section_json("model"),
        tiling=section_json("tiling"),
    script:
        "../scripts/landcover_tile.py"


rule landcover_gather:
    input:
        proba=tile_files("results/{event}/landcover/tiles/{period}/{tile}_proba.tif"),
        route=tile_files("results/{event}/landcover/tiles/{period}/{tile}_route.tif"),
    output:
        classes="results/{event}/landcover/{period}.tif",
        proba="results/{event}/landcover/{period}_proba.tif",
        route="results/{event}/landcover/{period}_route.tif",
    log:
        "results/{event}/logs/landcover_gather_{period}.log",
    benchmark:
        "results/{event}/benchmarks/landcover_gather_{period}.tsv"
    wildcard_constraints:
        event=TILED,
    conda:
        "../../envs/torch.yaml"
    threads: 2
    resources:
        mem_mb=grid_mem_mb(3000, 8),
        runtime=30,
    params:
        tiling=section_json("tiling"),
        compute=section_json("compute"),
    script:
        "../scripts/landcover_gather.py"


rule adapt:
    input:
        checkpoint=checkpoint_path,
        stacks=expand("results/{{event}}/aligned/{period}.tif", period=PERIODS),
        valid=expand("results/{{event}}/aligned/{period}_valid.tif", period=PERIODS),
    output:
        checkpoint="results/{event}/model/adapted.pt",
        summary="results/{event}/model/adaptation.json",
    log:
        "results/{event}/logs/adapt.log",
    benchmark:
        "results/{event}/benchmarks/adapt.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: 2
    resources:
        mem_mb=grid_mem_mb(3000, 40),
        runtime=60,
    params:
        periods=PERIODS,
        adapt=section_json("model", "adapt"),
        change=section_json("change"),
        device=config["model"]["device"],
    script:
        "../scripts/adapt.py"

# Report: one self-contained HTML page per event, a printable PDF map book, a STAC
# catalog of the products, QGIS styles beside the products, and a QGIS project of them.


rule report:
    input:
        stacks=expand("results/{{event}}/aligned/{period}.tif", period=PERIODS),
        valid=expand("results/{{event}}/aligned/{period}_valid.tif", period=PERIODS),
        landcover=expand("results/{{event}}/landcover/{period}.tif", period=PERIODS),
        extent="results/{event}/flood/extent.tif",
        confidence="results/{event}/flood/confidence.tif",
        sar_evidence="results/{event}/flood/sar_change.tif",
        sar_ratio="results/{event}/flood/sar_logratio.tif",
        stats="results/{event}/flood/stats.json",
        exclusion="results/{event}/flood/exclusion.tif",
        support="results/{event}/flood/support.tif",
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
    script:
        "../scripts/report.py"


rule mapbook:
    input:
        stacks=expand("results/{{event}}/aligned/{period}.tif", period=PERIODS),
        valid=expand("results/{{event}}/aligned/{period}_valid.tif", period=PERIODS),
        landcover=expand("results/{{event}}/landcover/{period}.tif", period=PERIODS),
        extent="results/{event}/flood/extent.tif",
        confidence="results/{event}/flood/confidence.tif",
        sar_evidence="results/{event}/flood/sar_change.tif",
        sar_ratio="results/{event}/flood/sar_logratio.tif",
        stats="results/{event}/flood/stats.json",
        exclusion="results/{event}/flood/exclusion.tif",
        support="results/{event}/flood/support.tif",
    output:
        report(
            "results/{event}/mapbook.pdf",
            caption="../report/mapbook.rst",
            category="Report",
        ),
    log:
        "results/{event}/logs/mapbook.log",
    benchmark:
        "results/{event}/benchmarks/mapbook.tsv"
    conda:
        "../../envs/geo.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        "../scripts/mapbook.py"


rule products_catalog:
    input:
        "results/{event}/flood/extent.tif",
        "results/{event}/flood/confidence.tif",
        "results/{event}/flood/sar_change.tif",
        "results/{event}/flood/sar_logratio.tif",
        "results/{event}/flood/exclusion.tif",
        "results/{event}/flood/reference_water.tif",
        "results/{event}/flood/support.tif",
        "results/{event}/flood/polygons.gpkg",
        "results/{event}/flood/transitions.csv",
        "results/{event}/flood/impact.csv",
        "results/{event}/flood/stats.json",
        "results/{event}/report.html",
        "results/{event}/mapbook.pdf",
        expand("results/{{event}}/landcover/{period}.tif", period=PERIODS),
        expand("results/{{event}}/water/{period}.tif", period=PERIODS),
        flood_network_product,
    output:
        catalog=report(
            "results/{event}/catalog.json",
            caption="../report/catalog.rst",
            category="Report",
        ),
        item="results/{event}/flood-products/{event}-flood-products.json",
    log:
        "results/{event}/logs/products_catalog.log",
    benchmark:
        "results/{event}/benchmarks/products_catalog.tsv"
    conda:
        "../../envs/geo.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        event=event_json,
    script:
        "../scripts/products_catalog.py"


# A second or two each, mostly starting Python: on a cluster they run where Snakemake
# runs rather than wait in the queue as jobs of their own.
localrules:
    qgis_style,
    qgis_project,


rule qgis_style:
    input:
        styled_product_file,
    output:
        "results/{event}/{product}.qml",
    log:
        "results/{event}/logs/qgis_style/{product}.log",
    benchmark:
        "results/{event}/benchmarks/qgis_style/{product}.tsv"
    wildcard_constraints:
        product=QGIS_STYLED,
    conda:
        "../../envs/geo.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    params:
        product=styled_product,
    script:
        "../scripts/qgis_style.py"


rule qgis_project:
    input:
        qgis_project_inputs,
    output:
        "results/{event}/{event}.qgs",
    log:
        "results/{event}/logs/qgis_project.log",
    benchmark:
        "results/{event}/benchmarks/qgis_project.tsv"
    conda:
        "../../envs/geo.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    script:
        "../scripts/qgis_project.py"

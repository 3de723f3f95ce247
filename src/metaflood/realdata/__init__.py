"""Real labelled Sentinel-1/2 sets through the workflow: the benchmark that runs each
sample through the workflow's stages and scores the products beside the baselines
(`metaflood benchmark-real`).

The sets' layouts (Sen1Floods11's hand-labelled chips, ETCI 2021's 8-bit VV/VH PNG tiles,
OMBRIA's before/after Sentinel-1 VV and Sentinel-2 PNG triplets) and the labelled pools
training reads are in `metaflood.training.layouts` and `metaflood.training.pools`. None
of their data is shipped: every entry point takes the path of a dataset root.
"""

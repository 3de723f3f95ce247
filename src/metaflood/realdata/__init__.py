"""Real labelled Sentinel-1/2 sets: adapters for their public layouts, the benchmark that
runs each sample through the workflow's stages, and the labelled pools training reads.

Three layouts are known: Sen1Floods11's hand-labelled chips (georeferenced, dB and L1C
reflectance), ETCI 2021 (8-bit VV/VH PNG tiles of one Sentinel-1 pass) and OMBRIA (8-bit
before/after Sentinel-1 VV and Sentinel-2 SWIR/NIR/green PNG triplets). None of their data
is shipped: every entry point takes the path of a dataset root.
"""

"""Where the water is, per period: single-date SAR water, an optical water index, and the
two fused with the MetaRS water probability into one water map.

Each line of evidence stands without training: SAR water is VV backscatter below an
automatic threshold found on bimodal tiles (as the change stage finds the water level),
the optical index is MNDWI where a SWIR 1.6 um band was acquired and NDWI otherwise,
thresholded the same way. The fused map (`water/{period}.tif`) is the product a user
reads as "where the water is"; the flood confidence rests on it.
"""

"""Where the terrain makes SAR flood mapping unreliable: height above nearest drainage
(HAND), steep slopes, and radar shadow and layover from the DEM and the viewing
geometry, combined into exclusion codes like GFM's exclusion mask.

Pure numerics, arrays in and arrays out: `geometry` (slope, aspect, local incidence,
shadow and layover along range lines), `hand` (HAND with pyflwdir on a padded DEM
window), and `exclusion` (the codes, their names and colours, and the area per code).
"""

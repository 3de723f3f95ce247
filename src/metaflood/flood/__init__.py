"""The flood: SAR change, the flood map with its confidence, calibration, vectors,
statistics and validation."""

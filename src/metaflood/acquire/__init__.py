"""Acquisition: search, download and canonicalise the Sentinel-1/2 scenes of an event."""

"""The layer every stage stands on: errors, rasters, blocks and tiles, class codes, bands,
metrics, the typed configuration and the lazy data cube. Imports no stage."""

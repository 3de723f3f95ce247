"""The event report: one self-contained HTML page (`page`), the PDF map book (`mapbook`),
the STAC catalog of the products (`products_catalog`)."""

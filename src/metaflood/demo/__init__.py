"""The synthetic demo events: a simulated landscape, its SAR and optical scenes, the
flood, and the catalogue of named demo events."""

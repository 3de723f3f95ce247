"""What tests and benchmarks share: servers, scenes, tiny models, workflow runs."""

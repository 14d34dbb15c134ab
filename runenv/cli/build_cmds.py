"""CLI commands: build (see the matching stage modules)."""

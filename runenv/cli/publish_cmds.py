"""CLI commands: publish (see the matching stage modules)."""

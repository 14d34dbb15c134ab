"""CLI commands: ops (see the matching stage modules)."""

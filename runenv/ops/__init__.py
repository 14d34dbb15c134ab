"""What the commands do around builds: freshness and status, running and unpacking runtimes, cleanup,
scaffolding new runtimes, the CI matrix."""

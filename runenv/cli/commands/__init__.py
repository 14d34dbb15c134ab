"""The commands, one module per group; each registers its commands on runenv.cli.app's app when imported
(runenv.cli.COMMAND_MODULES says which module holds which command)."""

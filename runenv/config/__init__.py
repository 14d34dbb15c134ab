"""Configuration: models, merge, and loading with located errors."""

from runenv.config.load import LoadedConfig, config_schema, load_runtime_config, read_json
from runenv.config.merge import merge
from runenv.config.models import RuntimeConfig

__all__ = ["LoadedConfig", "RuntimeConfig", "config_schema", "load_runtime_config", "merge", "read_json"]

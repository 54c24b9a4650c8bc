"""The configuration file (spec section 1): loading, interpolation, models."""

from bridge.config.loader import Credentials, check_settings, read_credentials, resolve_path
from bridge.config.model import BridgeConfig, RuleSettings, SourceSettings
from bridge.config.yaml_source import SourceDocument, load_yaml

__all__ = [
    "BridgeConfig",
    "Credentials",
    "RuleSettings",
    "SourceDocument",
    "SourceSettings",
    "check_settings",
    "load_yaml",
    "read_credentials",
    "resolve_path",
]

"""The core's plain data and rules: specs, settings, the registry, errors (no torch here)."""

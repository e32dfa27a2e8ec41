"""The presets shipped with metarl (``metarl.configs``): YAML files named by run."""

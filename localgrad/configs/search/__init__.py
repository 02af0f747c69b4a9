"""SEDONA search configs: `localgrad-search --config=search/<name>`."""

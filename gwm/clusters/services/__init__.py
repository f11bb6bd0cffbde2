"""Writes of the clusters domain: the registry (registry.py), the cache (cache.py, holds.py)."""

"""Reads of the clusters domain: the registry and the cache (cache.py), and what an
object looks like in an answer (fields.py). Every read takes the requesting user."""

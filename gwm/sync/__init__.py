"""Keeping the cache in step with Ganeti: which cluster is due, and one round of it.

Above both clusters (the cache it writes) and operations (a round records the
jobs others ran): ``dispatch`` claims the clusters that are due and rings one
round each; ``rounds`` reads the due tiers through gwm.ganeti and writes them
through gwm.clusters.services.cache; ``tasks`` are Celery's shells.
"""

"""The query field catalogue: one module per resource, built on ``base``.

``gwm.simulator.query`` puts them together (``FIELDS``) and answers queries
with them; the filter language is ``gwm.simulator.qfilter``.
"""

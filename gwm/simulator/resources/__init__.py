"""The RAPI resources (the ``/2/...`` handlers), by resource.

Each module fills a ``Resources`` table of its own; ``catalogue`` joins them
into the one ``asgi.build_app`` serves. The plumbing is ``gwm.simulator.http``.
"""

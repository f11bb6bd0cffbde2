"""What gwm tells its operators: metrics for Prometheus, and log lines that say whose they are.

``context``: which request, job and cluster the code at hand works for (contextvars), and
the logging filter that writes them on every line. ``logs``: the plain and JSON formats.
``metrics``: every figure gwm keeps, with one-line calls for the places that move them.
``collector`` reads the backlogs from the database at scrape time; ``endpoint`` serves
``/metrics``; ``tasklog`` carries the context into Celery tasks. docs/observability.md.
"""

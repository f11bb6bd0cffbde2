"""The worker side of operations: plain functions that drive Ganeti and call the services.

``submit`` sends a job (or adopts the one an interrupted attempt sent),
``track`` follows it to its end, ``refresh`` decides what to re-read when it
ends, ``sweep`` re-rings overdue work. Celery's task shells (operations.tasks)
only call these. Every function takes a job id and re-reads the row, so
running one twice is harmless; each claims the job with its lease first.
"""

"""Writes of the operations domain.

``submit`` accepts an operation (the request side); ``lifecycle`` moves a job
from its first attempt to its end (the worker side); ``foreign`` records the
jobs Ganeti ran for others; ``live`` answers what needs Ganeti now (dry runs,
consoles). Each write is one transaction with its change rows, and wakes the
job's waiters after commit.
"""

"""The broker queues: one per kind of work, so a flood of one cannot starve the others.

Every task is named ``<app>.<what>`` and goes to its kind's queue by that prefix:
sync rounds (``sync.*``), operations (``operations.*``: submitting, tracking,
cancelling, sweeping) and deliveries (``events.*``: webhooks, retention). A
worker consumes all three unless told otherwise (``gwm worker --queues``), and
an operator who wants a flood of syncs never to delay an operation runs a
worker per queue. Queue names start with ``GWM_CELERY_QUEUE`` so several
installations (or test runs) share one broker without taking each other's work.
"""

from __future__ import annotations

from kombu import Exchange, Queue

#: Kind of work → the task-name pattern routed to its queue.
KINDS: dict[str, str] = {
    "sync": "sync.*",
    "operations": "operations.*",
    "deliveries": "events.*",
}


def queue_name(prefix: str, kind: str) -> str:
    return f"{prefix}.{kind}"


def task_queues(prefix: str, kinds: list[str] | None = None) -> tuple[Queue, ...]:
    """The queues a worker consumes: ``kinds`` (default: all). Each has its own direct
    exchange and routing key: a bare ``Queue(name)`` would be bound to the default
    queue's exchange and key, and every task would land in that one queue."""
    names = [queue_name(prefix, kind) for kind in kinds or list(KINDS)]
    return tuple(Queue(name, Exchange(name, type="direct"), routing_key=name) for name in names)


def task_routes(prefix: str) -> dict[str, dict[str, str]]:
    return {pattern: {"queue": queue_name(prefix, kind)} for kind, pattern in KINDS.items()}


def parse_kinds(raw: str) -> list[str]:
    """``"sync,operations"`` → the kinds; a ValueError naming the unknown ones."""
    kinds = [part.strip() for part in raw.split(",") if part.strip()]
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown or not kinds:
        raise ValueError(
            f"unknown queue {', '.join(unknown) or '(none given)'}: choose from {', '.join(KINDS)}"
        )
    return kinds

"""Request accounting: how many RAPI calls, and what the cost model charged for them."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Counter:
    count: int = 0
    cost_seconds: float = 0.0  # what the cost model charged (simulated master time)
    wall_seconds: float = 0.0  # arrival to answer, including faults and waits

    def to_dict(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "cost_seconds": round(self.cost_seconds, 6),
            "wall_seconds": round(self.wall_seconds, 6),
        }


@dataclass
class Stats:
    # key: "METHOD /route/template", e.g. "GET /2/instances/{name}"
    by_route: dict[str, Counter] = field(default_factory=dict)
    by_status: dict[int, int] = field(default_factory=dict)
    total: Counter = field(default_factory=Counter)
    since: float = field(default_factory=time.time)

    def record(self, method: str, route: str, status: int, cost: float, wall: float) -> None:
        key = f"{method} {route}"
        counter = self.by_route.get(key)
        if counter is None:
            counter = self.by_route[key] = Counter()
        for c in (counter, self.total):
            c.count += 1
            c.cost_seconds += cost
            c.wall_seconds += wall
        self.by_status[status] = self.by_status.get(status, 0) + 1

    def reset(self) -> None:
        self.by_route.clear()
        self.by_status.clear()
        self.total = Counter()
        self.since = time.time()

    def to_dict(self) -> dict[str, Any]:
        return {
            "since": self.since,
            "elapsed_seconds": round(time.time() - self.since, 6),
            "total": self.total.to_dict(),
            "by_status": {str(k): v for k, v in sorted(self.by_status.items())},
            "requests": {k: v.to_dict() for k, v in sorted(self.by_route.items())},
        }

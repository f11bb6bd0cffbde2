"""The ASGI app of one simulated cluster: the admin API, then every RAPI path."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.routing import Route

from gwm.simulator.admin import admin_routes
from gwm.simulator.app import Simulator
from gwm.simulator.http import rapi_endpoint
from gwm.simulator.resources.catalogue import RESOURCES

# rapi answers every method itself (501 for the ones a resource lacks)
METHODS = ["GET", "PUT", "POST", "DELETE", "PATCH", "HEAD", "OPTIONS"]


def build_app(sim: Simulator) -> Starlette:
    """The ASGI app for one simulated cluster."""
    rapi = rapi_endpoint(sim, RESOURCES)
    app = Starlette(routes=[*admin_routes(sim), Route("/{path:path}", rapi, methods=METHODS)])
    app.state.sim = sim
    return app

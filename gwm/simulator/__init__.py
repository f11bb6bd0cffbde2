"""A stateful Ganeti RAPI v2 simulator, faithful to Ganeti 3.0.

    from gwm.simulator import Simulator, SimConfig, generate_cluster, serve_in_thread
    sim = Simulator(generate_cluster(nodes=2, instances=20), SimConfig(time_scale=0))
    with serve_in_thread(sim) as running:   # running.url, running.cert_path
        ...

README.md tells what it serves; in the code: ``app`` (one cluster), ``http``
and ``resources/`` (the RAPI), ``admin`` (the /__sim__ admin API), ``jobs``
and ``opcodes/`` (jobs and what they do), ``query``, ``fields/`` and
``qfilter`` (queries), ``cost`` (what calls cost), ``faults`` (fault
injection). It imports nothing from the rest of gwm.
"""

from gwm.simulator.app import Simulator
from gwm.simulator.asgi import build_app
from gwm.simulator.config import SimConfig
from gwm.simulator.data import generate_cluster
from gwm.simulator.server import Running, serve, serve_in_thread

__all__ = [
    "Running",
    "SimConfig",
    "Simulator",
    "build_app",
    "generate_cluster",
    "serve",
    "serve_in_thread",
]

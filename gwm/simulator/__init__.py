"""A stateful Ganeti RAPI v2 simulator, faithful to Ganeti 3.0.

    from gwm.simulator import Simulator, SimConfig, generate_cluster, serve_in_thread
    sim = Simulator(generate_cluster(nodes=2, instances=20), SimConfig(time_scale=0))
    with serve_in_thread(sim) as running:   # running.url, running.cert_path
        ...

See docs in app.py (RAPI and the /__sim__ admin API), cost.py (what calls
cost), faults.py (fault injection).
"""

from gwm.simulator.app import Simulator, build_app
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

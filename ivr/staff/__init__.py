"""Staff tools: login, the simulator (web and terminal), figures."""
from __future__ import annotations


def init_app(app) -> None:
    from ivr.staff import login, simulator, stats

    login.init_app(app)  # staff login: /staff/login, used by the simulator and the figures
    simulator.init_app(app)  # /simulator
    stats.init_app(app)  # /staff/stats
